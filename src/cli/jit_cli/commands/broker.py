"""Commands that are calls to the broker's API, given a signing client: whoami, profiles,
request, creds, grants, grant, revoke and audit."""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

from jit_cli import approval, cache, session
from jit_cli.broker import BrokerClient, clean_text
from jit_cli.commands import render, say, wanted
from jit_cli.errors import CliError, ExitCode, Refused
from jit_cli.formats import (
    credential_process_json,
    credential_variables,
    credentials_from,
    fish_exports,
    grant_from,
    human_duration,
    ini_section,
    sh_exports,
)
from jit_cli.progress import GRANT_WAIT
from jit_cli.signing import resolve_api_url, signing_profile

_GRANT_ID_SHAPE = re.compile(r"g-[0-9a-f]{24}")  # the broker's ids; any other word is a profile
_REQUEST_FIELDS = ("id", "profile", "account", "status", "expires_at")
# A request awaiting approval: how many approvals it needs, until when it may be decided.
_APPROVAL_FIELDS = ("approvals_required", "review_deadline", "window_seconds")


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
    if args.reason is None and not args.explain:
        raise CliError(
            "jit request needs --reason (or --explain, to see what the profile requires)",
            code="reason_required",
            exit_code=ExitCode.USAGE,
        )
    body: dict[str, Any] = {"profile": args.profile_name, "nonce": session.nonce()}
    if args.reason is not None:
        body["reason"] = args.reason
    if args.duration is not None:
        body["duration"] = args.duration
    if args.ticket is not None:
        body["ticket"] = args.ticket
    if args.account is not None:
        body["account"] = args.account
    if args.explain:
        return _explain(client, args, body)
    answer = client.call("POST", "/v1/grants", body, wait=GRANT_WAIT)
    grant = grant_from(answer)
    if not approval.is_request(answer):
        return render(args, {field: grant.get(field) for field in _REQUEST_FIELDS})
    at = cache.now(os.environ)
    say(approval.sent_line(grant, at))
    _remember_request(args, grant["id"])
    if args.wait:
        return _wait(client, args, grant)
    return render(args, _request_view(grant))


def _request_view(grant: dict[str, Any]) -> dict[str, Any]:
    return {field: grant.get(field) for field in (*_REQUEST_FIELDS, *_APPROVAL_FIELDS)}


def _remember_request(args: argparse.Namespace, grant_id: str) -> None:
    """Under the key jit exec/env/console use for this profile, so that they take up the
    grant once it is approved instead of asking again."""
    api_url = resolve_api_url(args.api_url, os.environ, args.broker_name)
    environ = dict(os.environ)
    identity = cache.signing_identity(signing_profile(args.aws_profile, environ), environ)
    key = cache.key(api_url, identity, "profile", args.profile_name, args.account)
    cache.note_pending(key, grant_id, environ)


def _wait(client: BrokerClient, args: argparse.Namespace, grant: dict[str, Any]) -> str:
    """Until the request is decided; Ctrl-C stops waiting, the request stands (exit 130)."""
    try:
        decided = approval.wait(client, grant, say)
    except KeyboardInterrupt:
        raise CliError(
            f"stopped waiting: request {grant['id']} still stands and its approvers may still "
            f"decide it (jit grant {grant['id']} --wait waits again)",
            code="interrupted",
            exit_code=ExitCode.INTERRUPTED,
        ) from None
    say(approval.approved_line(decided))
    return render(args, decided)


def _explain(client: BrokerClient, args: argparse.Namespace, body: dict[str, Any]) -> str:
    """POST /v1/grants as a dry run: the broker's verdict, nothing created. A refusal is
    printed (stdout) and exits 4, so scripts can test it."""
    answer = client.call("POST", "/v1/grants", {**body, "dry_run": True})
    denials = answer.get("denials")
    if not isinstance(answer.get("would_grant"), bool) or not isinstance(denials, list):
        raise CliError(
            "the broker's answer to a dry run is not one this CLI understands",
            code="unexpected_response",
            exit_code=ExitCode.UNEXPECTED,
        )
    text = render(args, answer) if wanted(args) == "json" else _verdict(answer, denials)
    if answer["would_grant"]:
        return text
    raise Refused(text)


def _verdict(answer: dict[str, Any], denials: list[Any]) -> str:
    what = str(answer.get("profile") or "the profile")
    if answer.get("account"):
        what += f" in {answer['account']}"
    if answer["would_grant"]:
        window = answer.get("duration_seconds")
        detail = ", ".join(
            part
            for part in (
                human_duration(window) if isinstance(window, int) else "",
                str(answer.get("mode") or ""),
                _approvals_needed(answer),
            )
            if part
        )
        return (
            f"{what}: you would get it ({detail}); nothing was created"
            if detail
            else (f"{what}: you would get it; nothing was created")
        )
    lines = [f"{what}: you would not get it; nothing was created. What stops you:"]
    for denial in denials:
        if isinstance(denial, dict):
            lines.append(f"  - {denial.get('rule', '?')}: {denial.get('message', '')}")
    return "\n".join(lines)


def _approvals_needed(answer: dict[str, Any]) -> str:
    """``once 2 approvers approve it (review window 1h)``; nothing without approvers."""
    required = answer.get("approvals_required")
    if not isinstance(required, int) or isinstance(required, bool) or required <= 0:
        return ""
    who = "one approver approves" if required == 1 else f"{required} approvers approve"
    window = answer.get("review_window")
    within = f" within {human_duration(window)}" if isinstance(window, int) else ""
    return f"once {who} it{within}"


def cmd_creds(client: BrokerClient, args: argparse.Namespace) -> str:
    try:
        answer = client.call(
            "POST", session.grant_path(args.grant_id, "/credentials"), {"nonce": session.nonce()}
        )
    except CliError as error:
        if error.code != "approval_pending":
            raise
        raise _pending(client, args.grant_id, error) from None
    creds = credentials_from(answer)
    if args.format == "json":
        return credential_process_json(creds)
    variables = credential_variables(creds)
    if args.format == "ini":
        return ini_section(args.section or f"jit-{args.grant_id}", variables)
    return fish_exports(variables) if args.format == "fish" else sh_exports(variables)


def _pending(client: BrokerClient, grant_id: str, error: CliError) -> CliError:
    """409 approval_pending said with who must approve and how to wait for them."""
    try:
        grant: dict[str, Any] | None = grant_from(client.call("GET", session.grant_path(grant_id)))
    except CliError:
        grant = None
    if grant is None:
        what = f"grant {grant_id} awaits approval ({error.message})"
    else:
        at = cache.now(os.environ)
        detail = ", ".join(
            part
            for part in (f"{approval.tally(grant)} approvals", approval.closes(grant, at))
            if part
        )
        what = (
            f"grant {grant_id} awaits the approvers of "
            f"{clean_text(grant.get('profile'), 80)} ({detail})"
        )
    return CliError(
        f"{what}: no credentials before one of them approves it (another person than you); "
        f"jit grant {grant_id} --wait waits for the decision, then run this again",
        code=error.code,
        exit_code=error.exit_code,
    )


def _with_approvals(grant: Any) -> Any:
    """For text: ``approvals`` as ``1/2`` (a grant without approvers: ``-``)."""
    if not isinstance(grant, dict):
        return grant
    return {**grant, "approvals": approval.tally(grant)}


def cmd_grants(client: BrokerClient, args: argparse.Namespace) -> str:
    grants = client.call("GET", session.ACTIVE_GRANTS_PATH if args.active else "/v1/grants").get(
        "grants", []
    )
    if args.active:  # a broker without the active view answers with every grant
        grants = [g for g in grants if isinstance(g, dict) and g.get("status") == "active"]
    if wanted(args) != "text":
        return render(args, grants)
    columns = ("id", "profile", "account", "status", "expires_at", "approvals", "reason")
    return render(args, [_with_approvals(g) for g in grants], columns)


def cmd_grant(client: BrokerClient, args: argparse.Namespace) -> str:
    grant = grant_from(client.call("GET", session.grant_path(args.grant_id)))
    if getattr(args, "wait", False) and grant.get("status") == approval.REQUESTED:
        return _wait(client, args, grant)
    return render(args, grant)


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
