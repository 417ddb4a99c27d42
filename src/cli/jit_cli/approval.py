"""Grants that need approval (a profile with approvers): the words for a request awaiting its
approvers, and the wait for their decision.

A request for such a profile is answered 202: the grant is ``requested``, with no role and no
credentials, until ``approvals_required`` of the profile's approvers approve it (``approved``:
its window runs from then, its requester takes the credentials with POST
/v1/grants/{id}/credentials) or one denies it (``denied``); nobody deciding by its
``review_deadline`` makes it ``expired_unreviewed``.

:func:`wait` polls GET /v1/grants/{id} with a growing pause, never past the review deadline
(and a minute's grace for the broker to say it lapsed). The pause and the clock are this
module's :data:`sleep` and :data:`clock`, so tests replace them instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard
from urllib.parse import quote

from jit_cli import cache
from jit_cli.broker import BrokerClient, clean_text
from jit_cli.errors import CliError, ExitCode
from jit_cli.formats import grant_from
from jit_cli.progress import progress

REQUESTED = "requested"
APPROVED = "approved"
DENIED = "denied"
LAPSED = "expired_unreviewed"
# A grant that went on from approved: taken up already (here or by another command).
TAKEN_UP = frozenset({"issuing", "active"})

FIRST_PAUSE_SECONDS = 2.0
LONGEST_PAUSE_SECONDS = 30.0
GROWTH = 1.5
GRACE_SECONDS = 60  # after the deadline, the broker reads the request as lapsed
LONGEST_REVIEW_SECONDS = 86400  # a profile's longest review window (a request with no deadline)

sleep: Callable[[float], None] = time.sleep
clock: Callable[[], float] = cache.now

Say = Callable[[str], None]


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def who(arn: object) -> str:
    """A person's short name: the last part of an ARN (user name, role session name)."""
    text = clean_text(arn, 200)
    return text.rsplit("/", 1)[-1] or text


def is_request(answer: Mapping[str, Any]) -> bool:
    """A POST /v1/grants answer that is a request awaiting approval (202: no credentials)."""
    grant = answer.get("grant")
    return (
        "credentials" not in answer
        and isinstance(grant, dict)
        and grant.get("status") in (REQUESTED, APPROVED)
    )


def approvals_given(grant: Mapping[str, Any]) -> int:
    return sum(
        1
        for decision in grant.get("approvals") or []
        if isinstance(decision, dict) and decision.get("verdict") == "approve"
    )


def tally(grant: Mapping[str, Any]) -> str:
    """``1/2``: approvals given of those required; ``-`` for a grant without approvers."""
    required = grant.get("approvals_required")
    if not _is_int(required) or not required:
        return "-"
    return f"{approvals_given(grant)}/{required}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def closes(grant: Mapping[str, Any], at: float) -> str:
    """``review closes at 19:50`` (or nothing when the broker gave no deadline)."""
    deadline = grant.get("review_deadline")
    if not _is_int(deadline):
        return ""
    return f"review closes at {cache.local_time(deadline, at)}"


def sent_line(grant: Mapping[str, Any], at: float) -> str:
    """The 202 told: ``request g-… sent to the approvers of P (needs 2 approvals, review
    closes at 19:50)``."""
    required = grant.get("approvals_required")
    parts = [_plural(required, "approval") if _is_int(required) else ""]
    parts[0] = f"needs {parts[0]}" if parts[0] else ""
    parts.append(closes(grant, at))
    detail = ", ".join(part for part in parts if part)
    profile = clean_text(grant.get("profile"), 80)
    line = f"request {grant['id']} sent to the approvers of {profile}"
    return f"{line} ({detail})" if detail else line


def decided_by(grant: Mapping[str, Any], verdict: str) -> list[Mapping[str, Any]]:
    return [
        decision
        for decision in grant.get("approvals") or []
        if isinstance(decision, dict) and decision.get("verdict") == verdict
    ]


def approved_line(grant: Mapping[str, Any]) -> str:
    names = ", ".join(who(d.get("by")) for d in decided_by(grant, "approve")) or "its approvers"
    profile = clean_text(grant.get("profile"), 80)
    return (
        f"approved by {names}: take credentials with jit creds {grant['id']} "
        f"or jit exec/env {profile}"
    )


def denied_error(grant: Mapping[str, Any]) -> CliError:
    denials = decided_by(grant, "deny")
    if denials:
        last = denials[-1]
        why = f"denied by {who(last.get('by'))}: {clean_text(last.get('comment'), 300)!r}"
    else:
        why = "denied"
    return CliError(
        f"request {grant['id']} for {clean_text(grant.get('profile'), 80)} was {why}",
        code="request_denied",
        exit_code=ExitCode.DENIED,
    )


def lapsed_error(grant: Mapping[str, Any], at: float) -> CliError:
    deadline = grant.get("review_deadline")
    by = f" by {cache.local_time(deadline, at)}" if _is_int(deadline) else " in time"
    profile = clean_text(grant.get("profile"), 80)
    return CliError(
        f"nobody decided request {grant['id']} for {profile}{by}: it lapsed "
        f"(expired_unreviewed); ask again with jit request {profile} --reason ...",
        code="review_expired",
        exit_code=ExitCode.CONFLICT,
    )


def waiting_error(grant: Mapping[str, Any], profile: str, *, remembered: bool) -> CliError:
    """A session command met a request awaiting approval: one sentence and exit 6. When the
    cache remembers the request (``remembered``), running the command again takes it up."""
    again = (
        "run this again once it is approved"
        if remembered
        else f"once it is approved, jit creds {grant['id']} gives its credentials"
    )
    given = tally(grant)
    so_far = f" ({given} approvals)" if given != "-" else ""
    return CliError(
        f"{clean_text(profile, 80)} needs approval: request {grant['id']} is waiting for its "
        f"approvers{so_far}; {again} (jit grant {grant['id']} --wait waits for the decision)",
        code="approval_pending",
        exit_code=ExitCode.CONFLICT,
    )


def _deadline(grant: Mapping[str, Any], started: float) -> float:
    deadline = grant.get("review_deadline")
    if _is_int(deadline):
        return float(deadline) + GRACE_SECONDS
    created = grant.get("created_at")
    base = float(created) if _is_int(created) else started
    return base + LONGEST_REVIEW_SECONDS + GRACE_SECONDS


def wait(client: BrokerClient, grant: dict[str, Any], say: Say) -> dict[str, Any]:
    """Poll ``grant`` until it is decided: the approved (or already taken-up) grant; a
    :class:`CliError` for a denial (exit 4), a lapse (exit 6) or another end (exit 6).
    Bounded by the review deadline; KeyboardInterrupt passes through (the request stands)."""
    started = clock()
    until = _deadline(grant, started)
    pause = FIRST_PAUSE_SECONDS
    seen = approvals_given(grant)
    while grant.get("status") == REQUESTED:
        at = clock()
        if at >= until:
            raise lapsed_error(grant, at)
        message = f"waiting for the approvers of {clean_text(grant.get('profile'), 80)}"
        with progress(f"{message} ({tally(grant)}, {closes(grant, at)})", delay=0):
            sleep(min(pause, max(until - at, 0.0)))
        pause = min(pause * GROWTH, LONGEST_PAUSE_SECONDS)
        grant = grant_from(client.call("GET", f"/v1/grants/{quote(grant['id'], safe='')}"))
        given = approvals_given(grant)
        if given > seen and grant.get("status") == REQUESTED:
            latest = decided_by(grant, "approve")[-1]
            say(f"approved by {who(latest.get('by'))} ({tally(grant)})")
        seen = given
    status = grant.get("status")
    if status == APPROVED or status in TAKEN_UP:
        return grant
    if status == DENIED:
        raise denied_error(grant)
    if status == LAPSED:
        raise lapsed_error(grant, clock())
    raise CliError(
        f"request {grant['id']} is {clean_text(status, 40)}: it will not be approved",
        code="not_awaiting_approval",
        exit_code=ExitCode.CONFLICT,
    )
