"""Commands that put a grant's credentials to use: credential-process, env, exec and console.

Each one takes the session from the cache when a fresh one is there (unless ``--no-cache``),
else asks the broker for a grant and its credentials (:mod:`jit_cli.session`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any

from jit_cli import cache, client, guard, session
from jit_cli.broker import clean_text
from jit_cli.commands import say
from jit_cli.errors import CliError, ExitCode
from jit_cli.formats import credential_variables, fish_exports, ini_section, sh_exports
from jit_cli.signing import region_from_url, resolve_api_url, signing_profile

_NESTING_VARIABLE = "JIT_GRANT_ID"
_PROMPT_VARIABLE = "JIT_PROMPT"
_CALLER_PROFILE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")


def _wanted(args: argparse.Namespace) -> session.Wanted:
    return session.Wanted(
        args.profile_name,
        args.reason,
        args.duration,
        args.ticket,
        account=args.account,
        new=bool(getattr(args, "new", False)),
        # a credential_process profile's recorded flags never refuse a grant to reuse
        strict=args.command != "credential-process",
    )


def _session_entry(args: argparse.Namespace, profile: str | None) -> dict[str, Any]:
    """Credentials for ``args.profile_name`` signed as ``profile`` (cache unless --no-cache)."""
    api_url = resolve_api_url(args.api_url, os.environ, args.broker_name)
    environ = dict(os.environ)
    cache_key = None
    if not args.no_cache:
        identity = cache.signing_identity(profile, environ)
        cache_key = cache.key(api_url, identity, "profile", args.profile_name, args.account)
    connect = client.connect(api_url, profile, args.region, bool(args.aws_profile))
    return session.obtain(connect, _wanted(args), api_url, cache_key, environ, say)


def _work_region(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """The region for commands run with the credentials: --region, the usual variables,
    else the API's own region, else us-east-1."""
    api_url = environ.get("JIT_API_URL", "") if args.api_url is None else args.api_url
    return (
        args.region
        or environ.get("AWS_REGION")
        or environ.get("AWS_DEFAULT_REGION")
        or region_from_url(api_url)
        or "us-east-1"
    )


def cmd_credential_process(args: argparse.Namespace) -> str:
    # The caller's AWS_PROFILE names the JIT profile itself: signing with it would recurse.
    for name in _CALLER_PROFILE_VARIABLES:
        os.environ.pop(name, None)
    entry = _session_entry(args, args.aws_profile)
    return cache.credential_process_json(entry)


def _variables(entry: Mapping[str, Any]) -> dict[str, str]:
    return credential_variables(entry["credentials"], cache.ends_at(dict(entry)))


def cmd_env(args: argparse.Namespace) -> str:
    if args.unset:
        if args.format not in ("sh", "fish"):
            raise CliError(
                "--unset prints shell lines: use --format sh or fish",
                code="usage",
                exit_code=ExitCode.USAGE,
            )
        return guard.unset_lines(args.format)
    if args.profile_name is None:
        raise CliError(
            "which profile? jit env PROFILE (or jit env --unset)",
            code="usage",
            exit_code=ExitCode.USAGE,
        )
    entry = _session_entry(args, signing_profile(args.aws_profile, os.environ))
    variables = _variables(entry)
    if args.format == "json":
        return cache.credential_process_json(entry)
    if args.format == "ini":
        return ini_section(args.section or f"jit-{args.profile_name}", variables)
    variables[guard.GRANT_VARIABLE] = entry["grant"]["id"]  # the nesting guard sees it
    if args.format == "fish":
        return fish_exports(variables)
    return sh_exports(variables)


def child_environment(
    environ: Mapping[str, str], entry: Mapping[str, Any], region: str
) -> dict[str, str]:
    """The environment of ``jit exec``'s command: credentials in, AWS_PROFILE out."""
    child = {
        name: value for name, value in environ.items() if name not in _CALLER_PROFILE_VARIABLES
    }
    child.update(_variables(entry))
    child.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            _NESTING_VARIABLE: entry["grant"]["id"],
        }
    )
    return child


def cmd_exec(args: argparse.Namespace) -> str:
    if os.environ.get(_NESTING_VARIABLE):
        raise CliError(
            f"already inside `jit exec` for grant {clean_text(os.environ[_NESTING_VARIABLE], 80)}: "
            "nesting would mix two grants' credentials; exit that shell first",
            code="nested_exec",
            exit_code=ExitCode.NESTED,
        )
    entry = _session_entry(args, signing_profile(args.aws_profile, os.environ))
    environment = child_environment(os.environ, entry, _work_region(args, os.environ))
    argv = list(args.command_argv)
    if not argv:  # no command: a subshell, with a variable for the prompt
        argv = [os.environ.get("SHELL") or "/bin/sh"]
        environment[_PROMPT_VARIABLE] = f"jit:{args.profile_name}"
        say(
            f"a subshell ({argv[0]}) with grant {entry['grant']['id']}'s credentials: "
            f"exit to leave; ${_PROMPT_VARIABLE} is {environment[_PROMPT_VARIABLE]!r} for PS1"
        )
    program = argv[0]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(program, argv, environment)  # noqa: S606  # runs the user's own command, as `jit exec` is asked to  # nosec B606
    except FileNotFoundError:
        raise CliError(
            f"command not found: {clean_text(program, 200)}",
            code="command_not_found",
            exit_code=ExitCode.COMMAND_NOT_FOUND,
        ) from None
    except OSError as error:
        raise CliError(
            f"cannot run {clean_text(program, 200)}: {error.strerror}",
            code="not_executable",
            exit_code=ExitCode.NOT_EXECUTABLE,
        ) from None
    raise AssertionError("unreachable: execvpe returned")  # pragma: no cover


def cmd_console(args: argparse.Namespace) -> str:
    from jit_cli import console

    endpoint = console.federation_url(os.environ)
    page = console.destination(args.service, args.console_region, args.destination)
    entry = _session_entry(args, signing_profile(args.aws_profile, os.environ))
    url = console.login_url(endpoint, console.signin_token(endpoint, entry["credentials"]), page)
    if not args.open:
        return url
    import webbrowser

    if not webbrowser.open(url):
        return url
    print("jit: opened the AWS console in your browser", file=sys.stderr)
    return ""
