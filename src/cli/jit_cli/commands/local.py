"""Commands answered on this machine, with the broker optional or absent: status, cache,
completion, and the ``jit local`` launcher of the embedded local stack."""

from __future__ import annotations

import argparse
import os
from typing import Any

from jit_cli import cache, client, guard, session
from jit_cli.commands import render, say, wanted
from jit_cli.errors import CliError, ExitCode
from jit_cli.signing import resolve_api_url, signing_profile

# Failures after which `jit status` still answers from the cache: the broker (or the AWS
# endpoint that loads the signing keys) unreachable, no keys, or keys that are a grant's.
_STATUS_FALLBACK = frozenset(
    {ExitCode.UNAVAILABLE, ExitCode.AWS_UNAVAILABLE, ExitCode.NO_CREDENTIALS}
)


def cmd_status(args: argparse.Namespace) -> str:
    """Who you sign as, your active grants (the broker), the cached sessions (the cache)."""
    from jit_cli import status

    api_url = resolve_api_url(args.api_url, os.environ, args.broker_name)
    profile = signing_profile(args.aws_profile, os.environ)
    document: dict[str, Any] = {
        "api_url": api_url,
        "signs_with": status.signs_with(profile, os.environ),
        "broker_asked": True,
        "broker_answered": False,
        "whoami": None,
        "grants": None,
    }
    try:
        broker = client.connect(api_url, profile, args.region, bool(args.aws_profile))()
        document["whoami"] = broker.call("GET", "/v1/whoami")
        grants = broker.call("GET", session.ACTIVE_GRANTS_PATH).get("grants", [])
        document["broker_answered"] = True
        document["requests"] = _requests(broker)
    except CliError as error:
        if error.exit_code not in _STATUS_FALLBACK and error.code != guard.CODE:
            raise
        say(f"{error.message} ({error.code}): showing the cached sessions only")
        document["error"] = {"code": error.code, "message": error.message}
    at = cache.now(os.environ)
    if document["broker_answered"]:
        document["grants"] = status.active_grants(grants, at)
        if document.get("requests") is not None:
            document["requests"] = status.requests(document["requests"], at)
    document["sessions"] = status.sessions(os.environ, at)
    return status.human(document, at) if wanted(args) == "text" else render(args, document)


def _requests(broker: client.BrokerClient) -> list[Any] | None:
    """The caller's newest grants, of which status keeps those awaiting approval or taking
    up; None (unknown) when the broker will not list them."""
    try:
        return list(broker.call("GET", "/v1/grants").get("grants", []))
    except CliError as error:
        if error.exit_code in _STATUS_FALLBACK or error.code == guard.CODE:
            raise
        say(f"your requests awaiting approval are unknown: {error.message} ({error.code})")
        return None


def cmd_cache(args: argparse.Namespace) -> str:
    removed = cache.clear(dict(os.environ))
    return render(args, {"removed": removed, "directory": cache.directory(dict(os.environ))})


def cmd_completion(args: argparse.Namespace) -> str:
    from jit_cli import completion
    from jit_cli.parser import build_parser  # the parser names this command: imported late

    return completion.script(args.shell, build_parser()).rstrip("\n")


def run_local(rest: list[str]) -> int:
    """``jit local ARGS``: the embedded local stack's own command line, when installed."""
    try:
        from jit_local.server import main as local_main
    except ModuleNotFoundError:  # a CLI-only install (or a local stack missing a dependency)
        raise CliError(
            "jit local needs the local stack: in the repository run `make demo`, "
            "or install the jit-local package",
            code="local_unavailable",
            exit_code=ExitCode.USAGE,
        ) from None
    return int(local_main(rest) or 0)
