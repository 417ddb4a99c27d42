"""One audit run over every account of the stack: the hub's and each member's (template.yaml's
MemberAccountIds; every account a profile may name is one of these, or the access policy does
not load), each swept by :class:`AccountSweep` with its own share of the run's time and
deletions, its own resume cursor and its own report. An account that cannot be reached is a
finding and the ``AccountsUnreachable`` metric, never a reason to stop the others.

The ledger's open grants are read once and each goes to the sweep of the account it is in
(``target_account``; records older than member accounts: the hub). A grant in an account the
stack no longer lists is reported (``account_not_swept``), never acted on. A dry run reports
what it would do and writes nothing (IAM, ledger, events, cursors).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from jit_broker.audit.account import AccountSweep, Run
from jit_broker.audit.reviews import BREAK_GLASS_REVIEW_OPEN, close_unused, open_break_glass_reviews
from jit_broker.errors import AccountUnreachable
from jit_broker.models.audit import AuditReport, Finding

if TYPE_CHECKING:
    from jit_broker.access_policy import AccessPolicy
    from jit_broker.adapters.iam_audit import IamAudit
    from jit_broker.adapters.ledger import Ledger
    from jit_broker.models.domain import Grant
    from jit_broker.settings import AuditSettings


class EventSink(Protocol):
    def publish(self, events: list[tuple[str, dict[str, Any]]]) -> int: ...


def share(total: int, parts: int) -> int:
    """Each of ``parts`` accounts' share of a per-run ``total`` (at least one of anything
    allowed at all, so that no account is starved)."""
    return max(1, total // parts) if total else 0


class Auditor:
    """The scheduled auditor. ``iam`` is the hub's; ``member_iam(account)`` a member's,
    through its execution role (raises AccountUnreachable). ``clock`` and ``monotonic`` are
    injected so tests freeze time and budgets. ``events`` takes the audit bus's events;
    ``grant_events`` (adapters.events.GrantEvents: logs and counts what it cannot send,
    never raises) the Expired and Cleaned events of the run's grants (None: none sent)."""

    def __init__(
        self,
        *,
        settings: AuditSettings,
        ledger: Ledger,
        iam: IamAudit,
        events: EventSink,
        policy: Callable[[], AccessPolicy | None] = lambda: None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        logger: Any = None,
        metrics: Any = None,
        member_iam: Callable[[str], IamAudit] | None = None,
        grant_events: EventSink | None = None,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._iam = iam
        self._events = events
        self._policy = policy
        self._clock = clock
        self._monotonic = monotonic
        self._logger = logger
        self._metrics = metrics
        self._member_iam = member_iam
        self._grant_events = grant_events

    @property
    def allows_clock_override(self) -> bool:
        return self._settings.allow_clock_override

    @property
    def accounts(self) -> tuple[str, ...]:
        """The accounts a run sweeps, the hub first."""
        return self._settings.stack_accounts

    def _iam_in(self, account: str) -> IamAudit:
        if account == self._settings.home_account:
            return self._iam
        if self._member_iam is None:
            raise AccountUnreachable(f"account {account}: no execution role is configured")
        return self._member_iam(account)

    # --- the run -----------------------------------------------------------------------
    def run(
        self, *, dry_run: bool = False, at: int | None = None, budget_ms: int = 60_000
    ) -> AuditReport:
        """One audit. ``at`` evaluates as if the clock read that epoch second (callers check
        that overrides are allowed); ``budget_ms`` is the time left (the Lambda's remaining
        time): the run stops ``safety_margin_ms`` before it. Each account gets an equal share
        of the time the accounts before it left over."""
        now = int(self._clock()) if at is None else at
        usable = max(0, budget_ms - self._settings.safety_margin_ms) / 1000
        deadline = self._monotonic() + usable
        run = Run(now=now, dry_run=dry_run, policy=self._policy_once())
        opened = self._ledger.open_grants()
        grants, closed = close_unused(self._ledger, opened, run, self._settings.home_account)
        overdue = open_break_glass_reviews(self._ledger, run, self._settings.home_account)
        accounts = self.accounts
        of_account: dict[str, list[Grant]] = {account: [] for account in accounts}
        report = AuditReport(dry_run=dry_run, now=now, grants_open=len(opened))
        for grant in grants:
            account = grant.target_account or self._settings.home_account
            if account in of_account:
                of_account[account].append(grant)
            else:
                report.findings.append(self._not_swept(run, grant, account))
        for i, account in enumerate(accounts):
            start = self._monotonic()
            sweep = AccountSweep(
                settings=self._settings,
                ledger=self._ledger,
                connect=functools.partial(self._iam_in, account),
                run=run,
                account=account,
                grants=of_account[account],
                deadline=start + max(0.0, deadline - start) / (len(accounts) - i),
                monotonic=self._monotonic,
                max_deletions=share(self._settings.max_deletions_per_run, len(accounts)),
                deep_checks=share(self._settings.deep_drift_checks_per_run, len(accounts)),
            )
            report.accounts.append(sweep.sweep())
        _total(report)
        report.findings += overdue
        report.break_glass_reviews_open = [f.grant_id or "" for f in overdue]
        report.unreviewed = closed.unreviewed
        report.expired += closed.expired
        report.cleaned += closed.cleaned
        if not dry_run:
            failed = self._events.publish(run.events)
            if self._grant_events is not None:  # grants expired and cleaned by this run
                failed += self._grant_events.publish(run.grant_events)
            if failed:
                report.findings.append(
                    Finding(kind="events_not_sent", detail=f"{failed} event(s) refused")
                )
        self._emit(report)
        return report

    def _policy_once(self) -> Callable[[], AccessPolicy | None]:
        """The access policy, read on first use in a run (None when it cannot be read)."""
        read: list[AccessPolicy | None] = []

        def policy() -> AccessPolicy | None:
            if not read:
                try:
                    read.append(self._policy())
                except Exception:  # unreadable: judged on what is known
                    read.append(None)
            return read[0]

        return policy

    @staticmethod
    def _not_swept(run: Run, grant: Grant, account: str) -> Finding:
        finding = Finding(
            kind="account_not_swept",
            account=account,
            role_name=grant.role_name,
            grant_id=grant.grant_id,
            detail="the grant's account is not one of this stack's (MemberAccountIds): "
            "its access there is not audited",
        )
        detail = {
            "account": account,
            "grant_id": grant.grant_id,
            "role_name": grant.role_name,
            "at": run.now,
            "dry_run": run.dry_run,
            "kind": finding.kind,
            "detail": finding.detail,
        }
        run.events.append(("JIT audit finding", detail))
        return finding

    def _emit(self, report: AuditReport) -> None:
        counts = {
            "AuditRolesChecked": report.roles_checked,
            "AuditGrantsExpired": len(report.expired),
            "AuditRolesRemoved": len(report.removed),
            "AuditGrantsCleaned": len(report.cleaned),
            "AuditGrantsReconciled": len(report.failed),
            "AuditGrantsUnlisted": len(report.unlisted),
            "AuditDrift": sum(1 for f in report.findings if f.kind.startswith("drift_")),
            "AuditFindings": len(report.findings),
            "AuditUnexpectedRoles": sum(
                1 for f in report.findings if f.kind in ("unexpected_role", "not_owned")
            ),
            "AuditRemovalsDeferred": len(report.deferred),
            "AuditBreakGlassReviewsOpen": sum(
                1 for f in report.findings if f.kind == BREAK_GLASS_REVIEW_OPEN
            ),
            "AuditIncomplete": 0 if report.complete else 1,
            "AccountsUnreachable": sum(
                1 for a in report.accounts if a.stopped == "account_unreachable"
            ),
        }
        if self._metrics is not None:
            from aws_lambda_powertools.metrics import MetricUnit

            for name, value in counts.items():
                self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        if self._logger is not None:
            self._logger.info(
                "audit run",
                extra={"audit": report.model_dump(mode="json", exclude={"findings", "accounts"})}
                | {"findings": [f.model_dump() for f in report.findings]}
                | {
                    "accounts": [
                        {"account": a.account, "complete": a.complete, "stopped": a.stopped}
                        for a in report.accounts
                    ]
                },
            )


_SUMMED = ("roles_listed", "roles_checked", "list_calls", "tag_reads", "drift_checks")
_JOINED = (
    "expired",
    "denied",
    "removed",
    "cleaned",
    "failed",
    "quarantined",
    "deferred",
    "unlisted",
)


def _total(report: AuditReport) -> None:
    """The run's counts and lists: its accounts' together (the accounts' findings before the
    run's own); stopped for time if any account was, else unreachable if any was."""
    own = list(report.findings)
    report.findings = [f for a in report.accounts for f in a.findings] + own
    for name in _SUMMED:
        setattr(report, name, sum(getattr(a, name) for a in report.accounts))
    for name in _JOINED:
        setattr(report, name, [x for a in report.accounts for x in getattr(a, name)])
    report.complete = all(a.complete for a in report.accounts)
    reasons = {a.stopped for a in report.accounts}
    report.stopped = next((r for r in ("time_budget", "account_unreachable") if r in reasons), None)
