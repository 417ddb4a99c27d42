"""The auditor's part in approvals (issue 11): grants that never held anything, closed in the
ledger before the accounts are swept.

- a request nobody decided within its review window (status requested, its deadline past)
  → expired_unreviewed (the ledger's write is conditional on the deadline having passed);
- an approved grant its requester never took up within its window (from approval)
  → expired, then cleaned at once: no role or session was ever made for it (a grant is
  moved to issuing before its role is made), so nothing can be alive and no quota is held.

Reads and decisions treat a lapsed request as expired_unreviewed already; this makes the
ledger say so and takes the grant out of the auditor's partition. A dry run writes nothing.

Break-glass (issue 11, part 3): a break-glass grant whose review no approver closed by its
review_due (the access policy's break_glass_review_within after issue) is a finding,
``break_glass_review_open``, on every run from then until it is closed (the grant's own
status does not matter: the review is of what was done). A grant that failed never gave
access and is not reported.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jit_broker.errors import BrokerError, GrantNotActive
from jit_broker.models.audit import Finding
from jit_broker.models.domain import GrantStatus
from jit_broker.models.events import grant_event

if TYPE_CHECKING:
    from jit_broker.adapters.ledger import Ledger
    from jit_broker.audit.account import Run
    from jit_broker.models.domain import Grant


@dataclass
class Closed:
    unreviewed: list[str] = field(default_factory=list)  # → expired_unreviewed
    expired: list[str] = field(default_factory=list)  # approved, never taken up → expired
    cleaned: list[str] = field(default_factory=list)  # ...and cleaned
    failed: list[str] = field(default_factory=list)  # the ledger refused: left for next run


def close_unused(
    ledger: Ledger, grants: list[Grant], run: Run, home: str
) -> tuple[list[Grant], Closed]:
    """Close the lapsed requests and unused approved grants among ``grants``; returns the
    grants left for the accounts' sweeps (none awaiting approval or approved and unused:
    they hold nothing in IAM) and what was closed."""
    closed = Closed()
    rest: list[Grant] = []
    for grant in grants:
        if grant.status is GrantStatus.REQUESTED:
            if grant.lapsed(run.now):
                _close(closed, functools.partial(_unreviewed, ledger, grant, run, home), grant)
            continue
        if grant.status is GrantStatus.APPROVED:
            if run.now >= grant.expires_at:
                _close(closed, functools.partial(_unused, ledger, grant, run, home), grant)
            continue
        rest.append(grant)
    return rest, closed


def _close(closed: Closed, close: Callable[[], list[str]], grant: Grant) -> None:
    try:
        done = close()
    except GrantNotActive:
        return  # decided or taken up meanwhile: the next run sees it as it is
    except BrokerError:
        closed.failed.append(grant.grant_id)
        return
    for name in done:
        getattr(closed, name).append(grant.grant_id)


def _unreviewed(ledger: Ledger, grant: Grant, run: Run, home: str) -> list[str]:
    if not run.dry_run:
        ledger.expire_unreviewed(grant, now=run.now)
        run.grant_events.append(_event(grant, GrantStatus.EXPIRED_UNREVIEWED, run, home))
    return ["unreviewed"]


def _unused(ledger: Ledger, grant: Grant, run: Run, home: str) -> list[str]:
    if not run.dry_run:
        ledger.move(grant.grant_id, GrantStatus.APPROVED, GrantStatus.EXPIRED)
        run.grant_events.append(_event(grant, GrantStatus.EXPIRED, run, home))
        expired = grant.model_copy(update={"status": GrantStatus.EXPIRED})
        with contextlib.suppress(GrantNotActive):
            ledger.mark_cleaned(expired, now=run.now, release_quota=False)
            run.grant_events.append(_event(expired, GrantStatus.CLEANED, run, home))
    return ["expired", "cleaned"]


def _event(grant: Grant, to: GrantStatus, run: Run, home: str) -> tuple[str, dict[str, object]]:
    return grant_event(grant, to, at=run.now, account=grant.target_account or home)


BREAK_GLASS_REVIEW_OPEN = "break_glass_review_open"


def open_break_glass_reviews(ledger: Ledger, run: Run, home: str) -> list[Finding]:
    """A finding for each break-glass grant whose review is still open past its review_due
    (the ledger's review partition, then the grants by key), oldest due first; each is also
    an audit event (as the sweeps' findings are). If the ledger cannot be read, one finding
    says so (break_glass_reviews_unread) and the run goes on: the sweeps matter more."""
    try:
        ids = ledger.open_break_glass_reviews(due_by=run.now)
        due = {g.grant_id: g for g in ledger.get_grants(ids)}
    except BrokerError as exc:
        return [
            Finding(
                kind="break_glass_reviews_unread",
                detail=f"open break-glass reviews could not be read ({exc.code}): the next "
                "run reports them",
            )
        ]
    findings: list[Finding] = []
    for grant_id in ids:
        grant = due.get(grant_id)
        if grant is None or grant.review is not None or grant.status is GrantStatus.FAILED:
            continue
        account = grant.target_account or home
        finding = Finding(
            kind=BREAK_GLASS_REVIEW_OPEN,
            account=account,
            role_name=grant.role_name,
            grant_id=grant.grant_id,
            detail=f"break-glass grant of profile {grant.profile!r} to {grant.requester_arn} "
            f"(issued at {grant.created_at}) was due for review at {grant.review_due} and no "
            "approver has closed it: one of the profile's approvers must review it (POST "
            f"/v1/grants/{grant.grant_id}/review)",
        )
        findings.append(finding)
        run.events.append(
            (
                "JIT audit finding",
                {
                    "account": account,
                    "grant_id": grant.grant_id,
                    "role_name": grant.role_name,
                    "at": run.now,
                    "dry_run": run.dry_run,
                    "kind": finding.kind,
                    "detail": finding.detail,
                    "review_due": grant.review_due,
                },
            )
        )
    return findings
