"""``jit``: request just-in-time AWS access from the broker and fetch its credentials.

Commands::

    jit whoami                                  who the broker sees (JSON)
    jit profiles                                profiles you may request (JSON list)
    jit request PROFILE --reason R [--duration 30m] [--ticket T]
                                                open a grant; prints id, profile, status, expires_at
    jit creds GRANT_ID [--format json|env]      fresh STS credentials inside the grant's window
                                                (json is the credential_process shape)
    jit grants                                  your grants (JSON list)
    jit grant GRANT_ID                          one grant (JSON)
    jit revoke GRANT_ID                         revoke a grant; prints it (JSON)
    jit local ...                               run the embedded local stack

Global flags (before or after the command): ``--api-url`` (else JIT_API_URL), ``--profile``
(the AWS profile to sign with; else the standard chain), ``--region`` (else the region of an
execute-api URL, AWS_REGION, AWS_DEFAULT_REGION, the profile's region, us-east-1), ``--debug``.

Data goes to stdout, messages to stderr as ``jit: error: <message> (<code>)``; a failed
command prints nothing on stdout. Exit codes:

    0  success
    1  unexpected error (a bug, or a response the CLI does not understand)
    2  usage or bad input (bad arguments, missing --api-url, broker answered 400)
    3  no AWS credentials found to sign the request with
    4  denied (403 from the broker or from API Gateway's IAM authorization)
    5  not found (404)
    6  conflict (409: grant revoked or expired, replayed request)
    7  rate limited (429)
    8  broker unreachable or failing (connection refused, timeout, DNS, 5xx)
  130  interrupted (Ctrl-C)

Start-up stays light: botocore is imported only when a request is signed.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn
from urllib.parse import quote

from jit_cli.broker import BrokerClient, clean_text
from jit_cli.errors import EXIT_CODE_MEANINGS, CliError, ExitCode
from jit_cli.formats import (
    DURATION_HELP,
    credential_env,
    credential_process_json,
    credentials_from,
    grant_from,
    parse_duration,
    to_json,
)
from jit_cli.signing import load_identity, resolve_api_url, resolve_region, sign

log = logging.getLogger("jit_cli")

_GRANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_REQUEST_FIELDS = ("id", "profile", "status", "expires_at")

Command = Callable[[BrokerClient, argparse.Namespace], str]


class _Parser(argparse.ArgumentParser):
    """argparse with errors in jit's format (``jit: error: ... (usage)``), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"jit: error: {message} (usage)\n")


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("jit-broker")
    except PackageNotFoundError:
        return "0+unknown"


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _grant_id(text: str) -> str:
    if not _GRANT_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"invalid grant id {text!r}")
    return text


def _global_flags(suppress: bool) -> _Parser:
    """The global flags; on subcommands they default to SUPPRESS so they do not overwrite."""
    default: Any = argparse.SUPPRESS if suppress else None
    flags = _Parser(add_help=False)
    flags.add_argument("--api-url", default=default, help="broker URL (else JIT_API_URL)")
    flags.add_argument(
        "--profile",
        dest="aws_profile",
        default=default,
        help="AWS profile to sign with (else the standard chain)",
    )
    flags.add_argument(
        "--region",
        default=default,
        help="signing region (else the execute-api URL's region, AWS_REGION, "
        "AWS_DEFAULT_REGION, the profile's region, us-east-1)",
    )
    flags.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="log requests and tracebacks on stderr (never secrets)",
    )
    return flags


def _epilog() -> str:
    lines = [f"  {int(code)}  {meaning}" for code, meaning in EXIT_CODE_MEANINGS.items()]
    return "exit codes:\n" + "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jit",
        description="Just-in-time AWS access: request a grant, then fetch short-lived credentials.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_flags(suppress=False)],
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"jit {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    flags = [_global_flags(suppress=True)]

    def add(name: str, help_text: str, command: Command | None) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, parents=flags, allow_abbrev=False)
        sub.set_defaults(run=command)
        return sub

    add("whoami", "show who the broker sees you as", cmd_whoami)
    add("profiles", "list the profiles you may request", cmd_profiles)
    request = add("request", "request a grant for a profile", cmd_request)
    request.add_argument("profile_name", metavar="PROFILE", help="profile name")
    request.add_argument("--reason", required=True, type=_text, help="why you need access")
    request.add_argument("--duration", type=_duration, help=f"grant window: {DURATION_HELP}")
    request.add_argument("--ticket", type=_text, help="change or incident ticket")
    creds = add("creds", "fresh credentials for a grant", cmd_creds)
    creds.add_argument("grant_id", type=_grant_id, metavar="GRANT_ID")
    creds.add_argument(
        "--format",
        choices=("json", "env"),
        default="json",
        help="json: the credential_process shape (default); env: shell export lines",
    )
    add("grants", "list your grants", cmd_grants)
    grant = add("grant", "show one grant", cmd_grant)
    grant.add_argument("grant_id", type=_grant_id, metavar="GRANT_ID")
    revoke = add("revoke", "revoke a grant", cmd_revoke)
    revoke.add_argument("grant_id", type=_grant_id, metavar="GRANT_ID")
    commands.add_parser(
        "local", help="run the embedded local stack (arguments pass through)", add_help=False
    ).set_defaults(run=None)
    return parser


def _nonce() -> str:
    return secrets.token_urlsafe(24)


def _grant_path(grant_id: str, action: str = "") -> str:
    return f"/v1/grants/{quote(grant_id, safe='')}{action}"


def cmd_whoami(client: BrokerClient, args: argparse.Namespace) -> str:
    return to_json(client.call("GET", "/v1/whoami"))


def cmd_profiles(client: BrokerClient, args: argparse.Namespace) -> str:
    return to_json(client.call("GET", "/v1/profiles").get("profiles", []))


def cmd_request(client: BrokerClient, args: argparse.Namespace) -> str:
    body: dict[str, Any] = {"profile": args.profile_name, "reason": args.reason, "nonce": _nonce()}
    if args.duration is not None:
        body["duration"] = args.duration
    if args.ticket is not None:
        body["ticket"] = args.ticket
    grant = grant_from(client.call("POST", "/v1/grants", body))
    return to_json({field: grant.get(field) for field in _REQUEST_FIELDS})


def cmd_creds(client: BrokerClient, args: argparse.Namespace) -> str:
    answer = client.call("POST", _grant_path(args.grant_id, "/credentials"), {"nonce": _nonce()})
    creds = credentials_from(answer)
    return credential_env(creds) if args.format == "env" else credential_process_json(creds)


def cmd_grants(client: BrokerClient, args: argparse.Namespace) -> str:
    return to_json(client.call("GET", "/v1/grants").get("grants", []))


def cmd_grant(client: BrokerClient, args: argparse.Namespace) -> str:
    return to_json(grant_from(client.call("GET", _grant_path(args.grant_id))))


def cmd_revoke(client: BrokerClient, args: argparse.Namespace) -> str:
    return to_json(grant_from(client.call("POST", _grant_path(args.grant_id, "/revoke"), {})))


def _client(args: argparse.Namespace) -> BrokerClient:
    """Resolve URL, credentials and region, in that order, into a signing client."""
    api_url = resolve_api_url(args.api_url, os.environ)
    identity = load_identity(args.aws_profile)
    region, region_source = resolve_region(
        args.region, api_url, os.environ, identity.profile_region
    )
    log.debug(
        "signing as %s... (from %s) for %s, region %s (from %s)",
        identity.credentials.access_key[:4],
        identity.source,
        api_url,
        region,
        region_source,
    )

    def signer(method: str, url: str, body: bytes | None, headers: Any) -> dict[str, str]:
        return sign(method, url, body, headers, identity.credentials, region)

    return BrokerClient(api_url, signer, region, user_agent=f"jit-cli/{version()}")


def _run_local(rest: list[str]) -> int:
    try:
        from jit_local.server import main as local_main
    except ModuleNotFoundError as error:
        raise CliError(
            f"the local stack is not available (cannot import {error.name}): "
            "install jit-broker[local]",
            code="local_unavailable",
            exit_code=ExitCode.UNEXPECTED,
        ) from None
    return int(local_main(rest) or 0)


def _configure_debug(enabled: bool) -> logging.Handler | None:
    if not enabled:
        return None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("jit: debug: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    return handler


def _parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "local":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args, rest


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``jit`` command; the exit code (see the module docstring)."""
    try:
        args, rest = _parse(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else int(ExitCode.USAGE)
    handler = _configure_debug(args.debug)
    try:
        if args.command == "local":
            return _run_local(rest)
        output = args.run(_client(args), args)
    except CliError as error:
        print(error.render(), file=sys.stderr)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("jit: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        log.debug("unexpected error", exc_info=True)
        message = clean_text(f"unexpected {type(error).__name__}: {error}")
        print(f"jit: error: {message} (internal)", file=sys.stderr)
        return int(ExitCode.UNEXPECTED)
    finally:
        if handler is not None:
            log.removeHandler(handler)
    print(output)
    return int(ExitCode.OK)


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
