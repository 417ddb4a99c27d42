"""Commands of an approver: approvals (the requests I may decide), approve, deny, and review
(closing the review of a break-glass grant after the fact).

Each decision is POST /v1/grants/{id}/approve or /deny with ``{"comment", "nonce"}`` (a fresh
nonce per call: the broker refuses a replayed one). The broker records the comment with the
decision and refuses an empty one, so ``--comment`` is required for both. Its refusals are
said with their fix: self-approval (exit 4: a second person must approve), a request already
decided by you, lapsed, or no longer awaiting approval (exit 6), not one you may decide (5).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from jit_cli import approval, cache, session
from jit_cli.broker import BrokerClient, clean_text
from jit_cli.commands import render, say, wanted
from jit_cli.errors import CliError, ExitCode
from jit_cli.formats import grant_from

APPROVALS_COLUMNS = (
    "id",
    "profile",
    "account",
    "requester",
    "reason",
    "ticket",
    "approvals",
    "review_deadline",
)


def _row(grant: Mapping[str, Any], at: float) -> dict[str, Any]:
    """A request as a person reads it: ``1/2`` approvals, the deadline with time left."""
    deadline = grant.get("review_deadline")
    closes = "-"
    if isinstance(deadline, int) and not isinstance(deadline, bool):
        left = "closed" if deadline <= at else cache.time_left(deadline - at)
        closes = f"{cache.local_time(deadline, at)} ({left})"
    return {
        **grant,
        "requester": approval.who(grant.get("requester_arn") or grant.get("requester")),
        "approvals": approval.tally(grant),
        "review_deadline": closes,
    }


def cmd_approvals(client: BrokerClient, args: argparse.Namespace) -> str:
    grants = [
        g for g in client.call("GET", "/v1/approvals").get("grants", []) if isinstance(g, dict)
    ]
    if wanted(args) != "text":
        return render(args, grants)
    at = cache.now(os.environ)
    return render(args, [_row(grant, at) for grant in grants], APPROVALS_COLUMNS)


def _refusal(error: CliError, grant_id: str) -> CliError:
    """The broker's refusal of a decision, with what to do about it."""
    fixes = {
        "self_approval_refused": (
            f"you requested {grant_id} yourself (or another of your sessions did): a second "
            "person must approve it; ask another of the profile's approvers",
            ExitCode.DENIED,
        ),
        "already_decided": (
            f"you already decided {grant_id} (one decision per approver): jit grant "
            f"{grant_id} shows where it stands",
            ExitCode.CONFLICT,
        ),
        "review_expired": (
            f"{grant_id} was not reviewed in time: it lapsed (expired_unreviewed) and can no "
            "longer be decided; its requester may ask again",
            ExitCode.CONFLICT,
        ),
        "self_review_refused": (
            f"you used {grant_id} yourself (or another of your sessions did): another of the "
            "profile's approvers must review it",
            ExitCode.DENIED,
        ),
        "review_closed": (
            f"the review of {grant_id} is already closed: jit grant {grant_id} shows who closed "
            "it and when",
            ExitCode.CONFLICT,
        ),
        "not_awaiting_approval": (
            f"{grant_id} no longer awaits approval (decided already, or it never needed "
            f"any): jit grant {grant_id} shows its status",
            ExitCode.CONFLICT,
        ),
    }
    if error.code in fixes:
        message, exit_code = fixes[error.code]
        return CliError(message, code=error.code, exit_code=exit_code)
    if error.exit_code == ExitCode.NOT_FOUND:
        return CliError(
            f"no request {grant_id} awaits your decision (no such grant, or you are not one of "
            "its approvers): jit approvals lists those you may decide",
            code=error.code,
            exit_code=ExitCode.NOT_FOUND,
        )
    return error


def _decide(client: BrokerClient, args: argparse.Namespace, verdict: str) -> str:
    body = {"comment": args.comment, "nonce": session.nonce()}
    try:
        answer = client.call("POST", session.grant_path(args.grant_id, f"/{verdict}"), body)
    except CliError as error:
        raise _refusal(error, args.grant_id) from None
    grant = grant_from(answer)
    say(_outcome(grant, verdict))
    return render(args, grant)


def _outcome(grant: Mapping[str, Any], verdict: str) -> str:
    profile = clean_text(grant.get("profile"), 80)
    requester = approval.who(grant.get("requester_arn") or grant.get("requester"))
    what = f"{grant['id']} ({profile}, requested by {requester})"
    if verdict == "deny":
        return f"denied {what}: final"
    if grant.get("status") == approval.REQUESTED:
        return f"approved {what}: {approval.tally(grant)} approvals, it needs more"
    expires_at = grant.get("expires_at")
    at = cache.now(os.environ)
    until = (
        f"; its window runs until {cache.local_time(expires_at, at)}"
        if isinstance(expires_at, int) and not isinstance(expires_at, bool)
        else ""
    )
    return f"approved {what}: it is approved{until}"


def cmd_approve(client: BrokerClient, args: argparse.Namespace) -> str:
    return _decide(client, args, "approve")


def cmd_deny(client: BrokerClient, args: argparse.Namespace) -> str:
    return _decide(client, args, "deny")


def cmd_review(client: BrokerClient, args: argparse.Namespace) -> str:
    """Close the review of a break-glass grant (POST /v1/grants/{id}/review)."""
    body = {"comment": args.comment, "nonce": session.nonce()}
    try:
        answer = client.call("POST", session.grant_path(args.grant_id, "/review"), body)
    except CliError as error:
        raise _refusal(error, args.grant_id) from None
    grant = grant_from(answer)
    requester = approval.who(grant.get("requester_arn") or grant.get("requester"))
    say(
        f"review of {grant['id']} ({clean_text(grant.get('profile'), 80)}, used by {requester}) closed"
    )
    return render(args, grant)
