"""Commands that are calls to the broker's API, given a signing client: whoami, profiles,
request, creds, grants, grant, revoke and audit."""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

from jit_cli import cache, session
from jit_cli.broker import BrokerClient, clean_text
from jit_cli.commands import render, say
from jit_cli.errors import CliError, ExitCode
from jit_cli.formats import (
    credential_process_json,
    credential_variables,
    credentials_from,
    fish_exports,
    grant_from,
    ini_section,
    sh_exports,
)
from jit_cli.progress import GRANT_WAIT

_GRANT_ID_SHAPE = re.compile(r"g-[0-9a-f]{24}")  # the broker's ids; any other word is a profile
_REQUEST_FIELDS = ("id", "profile", "account", "status", "expires_at")


def cmd_whoami(client: BrokerClient, args: argparse.Namespace) -> str:
    return render(args, client.call("GET", "/v1/whoami"))


def cmd_profiles(client: BrokerClient, args: argparse.Namespace) -> str:
    profiles = client.call("GET", "/v1/profiles").get("profiles", [])
    columns = (
        "name",
        "accounts",
        "mode",
        "max_window",
        "max_session",
        "reason_required",
        "description",
    )
    return render(args, profiles, columns)


def cmd_request(client: BrokerClient, args: argparse.Namespace) -> str:
    body: dict[str, Any] = {
        "profile": args.profile_name,
        "reason": args.reason,
        "nonce": session.nonce(),
    }
    if args.duration is not None:
        body["duration"] = args.duration
    if args.ticket is not None:
        body["ticket"] = args.ticket
    if args.account is not None:
        body["account"] = args.account
    grant = grant_from(client.call("POST", "/v1/grants", body, wait=GRANT_WAIT))
    return render(args, {field: grant.get(field) for field in _REQUEST_FIELDS})


def cmd_creds(client: BrokerClient, args: argparse.Namespace) -> str:
    answer = client.call(
        "POST", session.grant_path(args.grant_id, "/credentials"), {"nonce": session.nonce()}
    )
    creds = credentials_from(answer)
    if args.format == "json":
        return credential_process_json(creds)
    variables = credential_variables(creds)
    if args.format == "ini":
        return ini_section(args.section or f"jit-{args.grant_id}", variables)
    return fish_exports(variables) if args.format == "fish" else sh_exports(variables)


def cmd_grants(client: BrokerClient, args: argparse.Namespace) -> str:
    grants = client.call("GET", session.ACTIVE_GRANTS_PATH if args.active else "/v1/grants").get(
        "grants", []
    )
    if args.active:  # a broker without the active view answers with every grant
        grants = [g for g in grants if isinstance(g, dict) and g.get("status") == "active"]
    return render(args, grants, ("id", "profile", "account", "status", "expires_at", "reason"))


def cmd_grant(client: BrokerClient, args: argparse.Namespace) -> str:
    return render(args, grant_from(client.call("GET", session.grant_path(args.grant_id))))


def _revoke_one(client: BrokerClient, grant_id: str, reason: str | None) -> dict[str, Any]:
    body = {} if reason is None else {"reason": reason}
    grant = grant_from(client.call("POST", session.grant_path(grant_id, "/revoke"), body))
    cache.forget_grant(grant_id, dict(os.environ))
    return grant


def cmd_revoke(client: BrokerClient, args: argparse.Namespace) -> str:
    """A grant id revokes that grant; a profile, your active grants of it; --all, all of them."""
    if args.all == (args.target is not None):
        raise CliError(
            "revoke what? jit revoke GRANT_ID, jit revoke PROFILE or jit revoke --all",
            code="usage",
            exit_code=ExitCode.USAGE,
        )
    if args.target is not None and _GRANT_ID_SHAPE.fullmatch(args.target):
        return render(args, _revoke_one(client, args.target, args.reason))
    grants = [
        grant
        for grant in client.call("GET", session.ACTIVE_GRANTS_PATH).get("grants", [])
        if isinstance(grant, dict)
        and grant.get("status") == "active"
        and isinstance(grant.get("id"), str)
        and (args.all or grant.get("profile") == args.target)
    ]
    if not grants and not args.all:
        raise CliError(
            f"you have no active grant of profile {clean_text(args.target, 80)!r} "
            "(jit status lists yours)",
            code="no_active_grant",
            exit_code=ExitCode.NOT_FOUND,
        )
    revoked = []
    for grant in grants:
        revoked.append(_revoke_one(client, grant["id"], args.reason))
        say(f"revoked grant {grant['id']} ({clean_text(str(grant.get('profile')), 80)})")
    if not revoked:
        say("you have no active grants: nothing to revoke")
    return render(args, revoked, ("id", "profile", "account", "status", "revoked_at"))


def cmd_audit(client: BrokerClient, args: argparse.Namespace) -> str:
    body: dict[str, Any] = {"dry_run": bool(args.dry_run)}
    if args.at is not None:
        body["at"] = args.at
    report = client.call("POST", "/v1/audit", body).get("report")
    if not isinstance(report, dict):
        raise CliError(
            "the broker's answer has no valid report",
            code="unexpected_response",
            exit_code=ExitCode.UNEXPECTED,
        )
    return render(args, report)
