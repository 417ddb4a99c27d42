"""The auditor: compares the ledger with IAM and leaves no JIT role older than its grant
allows, removes orphans, reports drift, and reconciles what a crash in the grant path left.

One run (``Auditor.run``), every step idempotent so that runs may overlap or stop anywhere:

1. the ledger's open grants (not cleaned) are read once;
2. ListRoles under the broker's path, page by page (resuming where a run that ran out of time
   stopped). Only roles at exactly ``role_path`` are considered; anything else that looks like
   ours (a ``jit-g-…`` name, a deeper path) is reported and left alone. For each role:
   - with an open grant: the RoleId must equal the ledger's (else reported, left alone);
     a grant past its expiry gets the deny-all and is marked ``expired``; a grant left
     ``requested`` by a crash (role older than the minimum age) gets the deny-all and is
     marked ``failed``; once no session can be alive (expiry + longest session + clock
     skew) the role is removed (owner tag required) and the grant marked ``cleaned`` with the
     role quota given back; live roles are checked for drift (permissions against the
     digest and managed policies the grant's record holds of what the broker wrote; a record
     older than those fields against the current profile, which the finding says);
   - a revoked grant's role (revocation tears it down itself; this finishes one that stopped
     half way): the deny again, then removed at once;
   - without an open grant: removed only with the whole proof that the broker made it (its
     name pattern, the owner tag and a cleaned ledger record holding its RoleId), once older
     than the minimum age; anything else under the path is a finding, never removed;
3. open grants whose role was not seen: the role is gone (or, after a partial sweep, looked
   up), so the grant is brought to ``cleaned`` (a crashed request via ``failed``) when its time
   has come — nothing is assumable and every record is kept.

Removal = deny → inline policies → managed policies → instance profiles → delete
(:meth:`IamAudit.teardown`); a run removes at most ``max_deletions_per_run`` roles and stops
cleanly before its time budget, saving where the sweep resumes. A dry run reports what it
would do and writes nothing (IAM, ledger, events, cursor).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from jit_broker import documents, naming
from jit_broker.adapters.iam_audit import IamAudit, ListedRole, RoleDetails, TeardownBlocked
from jit_broker.errors import BadRequest, BrokerError, GrantNotActive, NotEntitled
from jit_broker.models.audit import AuditReport, AuditRequest, Finding
from jit_broker.models.domain import Grant, GrantStatus

if TYPE_CHECKING:
    from jit_broker.access_policy import AccessPolicy
    from jit_broker.adapters.ledger import Ledger
    from jit_broker.identity import Caller
    from jit_broker.settings import AuditSettings, Settings


class EventSink(Protocol):
    def publish(self, events: list[tuple[str, dict[str, Any]]]) -> int: ...


grant_id_of = naming.grant_id_of_role


def deletable_at(grant: Grant, clock_skew: int) -> int:
    """The first second at which no session of the grant's role can still be alive."""
    return grant.expires_at + naming.MAX_CHAINED_SESSION_SECONDS + clock_skew + 1


def canonical(document: Any) -> Any:
    """A policy document in a form where equal meaning compares equal: keys sorted, a
    one-element list the same as its element, lists of strings in sorted order."""
    if isinstance(document, dict):
        return {k: canonical(v) for k, v in sorted(document.items())}
    if isinstance(document, list):
        items = [canonical(v) for v in document]
        if len(items) == 1:
            return items[0]
        if all(isinstance(v, str) for v in items):
            return sorted(items)
        return items
    return document


@dataclass
class _Run:
    now: int
    dry_run: bool
    deadline: float
    report: AuditReport
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    denied_now: set[str] = field(default_factory=set)
    deletions: int = 0
    deep_checks_left: int = 0
    drift_bucket: tuple[int, int] = (1, 0)


class Auditor:
    """The scheduled auditor. Clients come in through the adapters; ``clock`` and
    ``monotonic`` are injected so tests freeze time and budgets."""

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

    @property
    def allows_clock_override(self) -> bool:
        return self._settings.allow_clock_override

    # --- the run -----------------------------------------------------------------------
    def run(
        self, *, dry_run: bool = False, at: int | None = None, budget_ms: int = 60_000
    ) -> AuditReport:
        """One audit. ``at`` evaluates as if the clock read that epoch second (callers check
        that overrides are allowed); ``budget_ms`` is the time left (the Lambda's remaining
        time): the run stops ``safety_margin_ms`` before it."""
        now = int(self._clock()) if at is None else at
        usable = max(0, budget_ms - self._settings.safety_margin_ms) / 1000
        run = _Run(
            now=now,
            dry_run=dry_run,
            deadline=self._monotonic() + usable,
            report=AuditReport(dry_run=dry_run, now=now),
        )
        grants = {g.grant_id: g for g in self._ledger.open_grants()}
        run.report.grants_open = len(grants)
        live = sum(1 for g in grants.values() if g.status == GrantStatus.ACTIVE)
        per_run = self._settings.deep_drift_checks_per_run
        run.deep_checks_left = per_run
        if per_run:
            buckets = max(1, -(-live // per_run))
            run.drift_bucket = (buckets, (now // 60) % buckets)
        listing = self._list(run)
        if listing is not None:
            resume_after = self._ledger.audit_cursor()
            if self._process(run, grants, listing, resume_after):
                self._unseen(run, grants)
                if resume_after is not None and not dry_run:
                    self._ledger.save_audit_cursor(None, now)
        if not dry_run:
            failed = self._events.publish(run.events)
            if failed:
                run.report.findings.append(
                    Finding(kind="events_not_sent", detail=f"{failed} event(s) refused")
                )
        self._emit(run.report)
        return run.report

    def _out_of_time(self, run: _Run) -> bool:
        return self._monotonic() >= run.deadline

    def _stopped(self, run: _Run) -> None:
        run.report.complete = False
        run.report.stopped = "time_budget"

    def _list(self, run: _Run) -> list[ListedRole] | None:
        """Every role under the broker's path prefix, page by page (None: out of time).
        Listing first and acting afterwards keeps removals from shifting IAM's markers."""
        roles: list[ListedRole] = []
        pages = self._iam.role_pages(self._settings.role_path, page_size=self._settings.page_size)
        for page in pages:
            run.report.list_calls += 1
            roles.extend(page.roles)
            if page.next_marker and self._out_of_time(run):
                self._stopped(run)
                return None
        run.report.roles_listed = len(roles)
        return roles

    def _process(
        self,
        run: _Run,
        grants: dict[str, Grant],
        roles: list[ListedRole],
        resume_after: str | None,
    ) -> bool:
        """Each role, in name order starting after where a stopped run left off (then the
        rest), so every role gets its turn even when runs keep running out of time. False
        when the budget ran out (where to resume is saved)."""
        ordered = sorted(roles, key=lambda r: r.name)
        if resume_after is not None:
            later = [r for r in ordered if r.name > resume_after]
            ordered = later + [r for r in ordered if r.name <= resume_after]
        last: str | None = None
        for role in ordered:
            if self._out_of_time(run):
                self._stopped(run)
                if not run.dry_run and last is not None:
                    self._ledger.save_audit_cursor(last, run.now)
                return False
            self._one_role(run, grants, role)
            last = role.name
        return True

    def _one_role(self, run: _Run, grants: dict[str, Grant], role: ListedRole) -> None:
        gid = grant_id_of(role.name)
        if role.path != self._settings.role_path:
            if gid or role.path.startswith(self._settings.role_path.rstrip("/")):
                self._finding(run, "outside_broker_path", role, gid, f"path {role.path}")
            return
        run.report.roles_checked += 1
        grant = grants.get(gid) if gid else None
        if grant is not None:
            run.seen.add(grant.grant_id)
        try:
            if grant is None:
                self._orphan(run, role, gid)
            else:
                self._ledgered(run, grant, role)
        except BrokerError as exc:  # one role's trouble never ends the run
            self._finding(run, "action_failed", role, gid, exc.message)

    # --- roles with an open grant ------------------------------------------------------
    def _ledgered(self, run: _Run, grant: Grant, role: ListedRole) -> None:
        if grant.role_id and grant.role_id != role.role_id:
            self._finding(run, "role_id_mismatch", role, grant.grant_id, "left alone")
            if grant.status == GrantStatus.ACTIVE and run.now >= grant.expires_at:
                self._expire(run, grant, None)  # the ledger's fact; the role is not touched
            return
        if grant.status == GrantStatus.REQUESTED:
            if role.created_at + self._settings.min_role_age_seconds > run.now:
                return  # being created right now
            if not self._owned_by_tags(run, role, grant.grant_id):
                return
            grant = self._reconcile(run, grant, role)
        elif grant.status == GrantStatus.ACTIVE and run.now >= grant.expires_at:
            grant = self._expire(run, grant, role.name)
        elif grant.status == GrantStatus.ACTIVE:
            self._check_drift(run, grant, role)
            return
        elif grant.status == GrantStatus.REVOKED:
            # A revocation that stopped half way: the deny again, then the role goes at once
            # (as revocation itself does: nothing waits for a revoked grant's sessions).
            self._deny(run, role.name)
            self._remove_grant_role(run, grant, role)
            return
        if run.now >= deletable_at(grant, self._settings.clock_skew_seconds):
            self._remove_grant_role(run, grant, role)

    def _reconcile(self, run: _Run, grant: Grant, role: ListedRole | None) -> Grant:
        """A crash left the grant ``requested``: deny its role (if any), record it failed."""
        if role is not None:
            self._deny(run, role.name)
        run.report.failed.append(grant.grant_id)
        self._event(run, "JIT grant reconciled", grant.grant_id, role.name if role else None)
        if not run.dry_run:
            with contextlib.suppress(GrantNotActive):  # the broker or another run moved it
                self._ledger.reconcile_failed(
                    grant,
                    now=run.now,
                    role_arn=role.arn if role else None,
                    role_id=role.role_id if role else None,
                )
                self._ledger.release_slot(grant)
        return grant.model_copy(update={"status": GrantStatus.FAILED})

    def _expire(self, run: _Run, grant: Grant, role_name: str | None) -> Grant:
        """Past its expiry: the deny-all first, then the ledger says expired."""
        if role_name is not None:
            self._deny(run, role_name)
        run.report.expired.append(grant.grant_id)
        if not run.dry_run:
            # Revoked meanwhile: the deny is what revocation puts too; the next run cleans it.
            with contextlib.suppress(GrantNotActive):
                self._ledger.move(grant.grant_id, GrantStatus.ACTIVE, GrantStatus.EXPIRED)
        return grant.model_copy(update={"status": GrantStatus.EXPIRED})

    def _deny(self, run: _Run, role_name: str) -> None:
        run.report.denied.append(role_name)
        run.denied_now.add(role_name)
        if not run.dry_run:
            self._iam.deny(role_name)

    def _remove_grant_role(self, run: _Run, grant: Grant, role: ListedRole) -> None:
        if not self._owned_by_tags(run, role, grant.grant_id):
            return
        if not self._remove(run, role, deny_first=role.name not in run.denied_now):
            return
        self._clean(run, grant)

    def _clean(self, run: _Run, grant: Grant) -> None:
        run.report.cleaned.append(grant.grant_id)
        if run.dry_run:
            return
        try:
            released = self._ledger.mark_cleaned(
                grant,
                now=run.now,
                # a failed grant gave its quotas back on failing, a revoked one on its removal
                release_quota=grant.status != GrantStatus.FAILED and grant.role_removed_at is None,
            )
        except GrantNotActive:
            return
        self._ledger.release_slot(grant)  # free already by time, unless evaluated "as of"
        if not released:
            self._finding(run, "role_quota_already_zero", None, grant.grant_id, "")

    # --- roles without an open grant ---------------------------------------------------
    def _orphan(self, run: _Run, role: ListedRole, gid: str | None) -> None:
        """A role under the path with no open grant. Removed only with the full proof that
        the broker made it (threat 31): the broker's name pattern, the owner tag and a
        ledger record holding this very RoleId. Anything else is a finding, never removed."""
        if role.created_at + self._settings.min_role_age_seconds > run.now:
            return  # maybe being created right now: never touched
        if gid is None:
            self._finding(
                run, "unexpected_role", role, None, "under the broker's path, not a grant role"
            )
            return
        tags = self._tags(run, role)
        if tags is None:
            return
        if tags.get(documents.TAG_OWNER) != self._settings.owner_tag:
            self._finding(
                run, "not_owned", role, gid, "under the broker's path without its owner tag"
            )
            return
        record = self._ledger.get_grant(gid)
        if record is not None and record.status != GrantStatus.CLEANED:
            return  # a grant opened after this run read the ledger: next run
        if record is None or record.role_id != role.role_id:
            why = "no ledger record" if record is None else "the ledger holds another RoleId"
            self._finding(run, "unexpected_role", role, gid, f"{why}: left alone")
            return
        self._remove(run, role, deny_first=True)

    # --- grants whose role was not seen ------------------------------------------------
    def _unseen(self, run: _Run, grants: dict[str, Grant]) -> None:
        """Open grants whose role the (complete) listing did not hold: the role is gone."""
        skew = self._settings.clock_skew_seconds
        for grant in grants.values():
            if grant.grant_id in run.seen:
                continue
            due = (
                (
                    grant.status == GrantStatus.REQUESTED
                    and grant.created_at + self._settings.min_role_age_seconds <= run.now
                )
                or grant.status in (GrantStatus.FAILED, GrantStatus.REVOKED)
                or (grant.status == GrantStatus.ACTIVE and run.now >= grant.expires_at)
                or run.now >= deletable_at(grant, skew)
            )
            if not due:
                if grant.status == GrantStatus.ACTIVE:
                    self._finding(run, "role_missing", None, grant.grant_id, grant.role_name)
                continue
            if self._out_of_time(run):
                run.report.complete = False
                run.report.stopped = "time_budget"
                return
            try:
                self._role_gone(run, grant)
            except BrokerError as exc:
                self._finding(run, "action_failed", None, grant.grant_id, exc.message)

    def _role_gone(self, run: _Run, grant: Grant) -> None:
        if grant.status == GrantStatus.REQUESTED:
            grant = self._reconcile(run, grant, None)
        elif grant.status == GrantStatus.ACTIVE and run.now >= grant.expires_at:
            grant = self._expire(run, grant, None)
        if grant.status in (GrantStatus.FAILED, GrantStatus.REVOKED) or run.now >= deletable_at(
            grant, self._settings.clock_skew_seconds
        ):
            self._clean(run, grant)

    # --- removal and ownership ---------------------------------------------------------
    def _tags(self, run: _Run, role: ListedRole) -> dict[str, str] | None:
        run.report.tag_reads += 1
        return self._iam.role_tags(role.name)

    def _owned_by_tags(self, run: _Run, role: ListedRole, gid: str) -> bool:
        tags = self._tags(run, role)
        if tags is None:
            return False
        if tags.get(documents.TAG_OWNER) != self._settings.owner_tag:
            self._finding(run, "not_owned", role, gid, "the owner tag is missing or not ours")
            return False
        return True

    def _remove(self, run: _Run, role: ListedRole, *, deny_first: bool) -> bool:
        """Take the role apart (within the per-run cap). True once it is gone."""
        gid = grant_id_of(role.name)
        if run.deletions >= self._settings.max_deletions_per_run:
            run.report.deferred.append(role.name)
            return False
        run.deletions += 1
        run.report.removed.append(role.name)
        self._event(run, "JIT role removed", gid, role.name, role_id=role.role_id)
        if run.dry_run:
            return True
        try:
            self._iam.teardown(role.name, deny_first=deny_first)
        except (TeardownBlocked, BrokerError) as exc:
            run.report.removed.remove(role.name)
            run.events.pop()
            self._finding(run, "teardown_incomplete", role, gid, str(exc))
            return False
        return True

    # --- drift -------------------------------------------------------------------------
    def _check_drift(self, run: _Run, grant: Grant, role: ListedRole) -> None:
        drifts: list[tuple[str, str]] = []  # (kind, detail)
        expected_trust = documents.trust_policy(self._settings.broker_role_arn, grant.expires_at)
        if canonical(role.trust_policy) != canonical(expected_trust):
            drifts.append(("trust_policy", AS_WRITTEN))
        buckets, current = run.drift_bucket
        if run.deep_checks_left > 0 and _bucket(role.role_id, buckets) == current:
            run.deep_checks_left -= 1
            run.report.drift_checks += 1
            details = self._iam.details(role.name)
            if details is not None:
                drifts.extend(self._deep_drift(grant, details))
        for kind, detail in drifts:
            self._finding(run, f"drift_{kind}", role, grant.grant_id, detail)
        if drifts and self._settings.drift_quarantine:
            run.report.quarantined.append(role.name)
            if not run.dry_run:
                self._iam.deny(role.name)

    def _deep_drift(self, grant: Grant, details: RoleDetails) -> list[tuple[str, str]]:
        drifts = []
        if details.boundary_arn != self._settings.boundary_policy_arn:
            drifts.append(("boundary", AS_WRITTEN))
        expected_tags = {
            documents.TAG_GRANT: grant.grant_id,
            documents.TAG_REQUESTER: naming.tag_value(grant.requester_id),
            documents.TAG_EXPIRES: str(grant.expires_at),
            documents.TAG_OWNER: self._settings.owner_tag,
            documents.TAG_PROFILE: grant.profile,
        }
        if details.tags != expected_tags:
            drifts.append(("tags", AS_WRITTEN))
        if grant.policy_sha256 is not None and grant.managed_policy_arns is not None:
            if not _permissions_as_recorded(grant, details):
                drifts.append(("permissions", AS_WRITTEN))
        elif not self._permissions_as_current_profile(grant, details):
            drifts.append(("permissions", AS_CURRENT_PROFILE))
        return drifts

    def _permissions_as_current_profile(self, grant: Grant, details: RoleDetails) -> bool:
        """For a grant recorded before the broker kept what it wrote: the role's permissions
        against the profile as the access policy reads now (an edit since reads as drift)."""
        if set(details.inline) != {documents.GRANT_POLICY_NAME}:
            return False
        written = details.inline[documents.GRANT_POLICY_NAME]
        statements = written.get("Statement") or []
        tail = documents.deny_after_expiry(grant.expires_at)
        if not statements or canonical(statements[-1]) != canonical(tail):
            return False
        try:
            policy = self._policy()
        except Exception:  # the access policy unreadable: judge on what is known
            policy = None
        profile = policy.profiles.get(grant.profile) if policy is not None else None
        if policy is None:
            return True
        if profile is None:
            return False
        inline = profile.permissions.inline.statements() if profile.permissions.inline else []
        expected = documents.grant_policy(inline, grant.expires_at)
        return canonical(written) == canonical(expected) and sorted(details.managed) == sorted(
            profile.permissions.managed
        )

    # --- reporting ---------------------------------------------------------------------
    def _finding(
        self, run: _Run, kind: str, role: ListedRole | None, gid: str | None, detail: str
    ) -> None:
        finding = Finding(
            kind=kind, role_name=role.name if role else None, grant_id=gid, detail=detail
        )
        run.report.findings.append(finding)
        self._event(run, "JIT audit finding", gid, finding.role_name, kind=kind, detail=detail)

    def _event(
        self, run: _Run, detail_type: str, gid: str | None, role_name: str | None, **extra: str
    ) -> None:
        run.events.append(
            (
                detail_type,
                {"grant_id": gid, "role_name": role_name, "at": run.now, "dry_run": run.dry_run}
                | extra,
            )
        )

    def _emit(self, report: AuditReport) -> None:
        counts = {
            "AuditRolesChecked": report.roles_checked,
            "AuditGrantsExpired": len(report.expired),
            "AuditRolesRemoved": len(report.removed),
            "AuditGrantsCleaned": len(report.cleaned),
            "AuditGrantsReconciled": len(report.failed),
            "AuditDrift": sum(1 for f in report.findings if f.kind.startswith("drift_")),
            "AuditFindings": len(report.findings),
            "AuditUnexpectedRoles": sum(
                1 for f in report.findings if f.kind in ("unexpected_role", "not_owned")
            ),
            "AuditRemovalsDeferred": len(report.deferred),
            "AuditIncomplete": 0 if report.complete else 1,
        }
        if self._metrics is not None:
            from aws_lambda_powertools.metrics import MetricUnit

            for name, value in counts.items():
                self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        if self._logger is not None:
            self._logger.info(
                "audit run",
                extra={"audit": report.model_dump(mode="json", exclude={"findings"})}
                | {"findings": [f.model_dump() for f in report.findings]},
            )


AS_WRITTEN = "differs from what the broker wrote"
AS_CURRENT_PROFILE = (
    "differs from the profile's current permissions: the grant's record predates recording "
    "what the broker wrote, so it is judged against the access policy as it reads now"
)


def _permissions_as_recorded(grant: Grant, details: RoleDetails) -> bool:
    """The role holds exactly the inline policy and managed policies its grant recorded."""
    if set(details.inline) != {documents.GRANT_POLICY_NAME}:
        return False
    written = details.inline[documents.GRANT_POLICY_NAME]
    return (
        documents.policy_digest(written) == grant.policy_sha256
        and sorted(details.managed) == grant.managed_policy_arns
    )


def _bucket(role_id: str, buckets: int) -> int:
    import zlib

    return zlib.crc32(role_id.encode()) % buckets


# --- POST /v1/audit ------------------------------------------------------------------------
AuditRunner = Callable[[AuditRequest, str], AuditReport]


class AuditGate:
    """Who may run the auditor through the API, and with what: administrators named in the
    access policy only; ``at`` only where clock overrides are allowed (the local stack)."""

    def __init__(
        self,
        *,
        settings: Settings,
        policy: Callable[[], AccessPolicy],
        runner: AuditRunner | None,
    ) -> None:
        self._settings = settings
        self._policy = policy
        self._runner = runner

    def run(self, caller: Caller, request: AuditRequest) -> AuditReport:
        policy = self._policy()
        if not policy.is_account_allowed(caller.account_id) or not policy.is_administrator(caller):
            raise NotEntitled("only administrators named in the access policy may run the auditor")
        if request.at is not None and not self._settings.allow_clock_override:
            raise BadRequest(
                "at: evaluating the audit at another time is allowed only on the local stack "
                "(JIT_ALLOW_CLOCK_OVERRIDE); omit it to audit as of now"
            )
        if self._runner is None:
            from jit_broker.errors import AwsUnavailable

            raise AwsUnavailable("the auditor is not configured for this broker")
        return self._runner(request, caller.arn)


class LambdaAuditRunner:
    """Runs the auditor by invoking the cleanup function (RequestResponse): the broker needs
    only lambda:InvokeFunction on that one function, never the auditor's IAM rights."""

    # Inside API Gateway's 29 s and the broker's 25 s timeout; the next run picks up the rest.
    BUDGET_MS = 15_000

    def __init__(self, client: Any, function_name: str) -> None:
        self._lambda = client
        self._function = function_name

    def __call__(self, request: AuditRequest, requested_by: str) -> AuditReport:
        from botocore.exceptions import BotoCoreError, ClientError

        from jit_broker.errors import AwsUnavailable

        payload = {
            "dry_run": request.dry_run,
            "budget_ms": self.BUDGET_MS,
            "requested_by": requested_by,
        }
        if request.at is not None:
            payload["at"] = request.at
        try:
            out = self._lambda.invoke(
                FunctionName=self._function,
                InvocationType="RequestResponse",
                Payload=json.dumps(payload).encode(),
            )
            body = json.loads(out["Payload"].read() or b"null")
        except (ClientError, BotoCoreError, ValueError) as exc:
            raise AwsUnavailable("the auditor could not be run right now") from exc
        if out.get("FunctionError") or not isinstance(body, dict) or "report" not in body:
            raise AwsUnavailable("the auditor failed: see its logs")
        return AuditReport.model_validate(body["report"])


def run_from_event(auditor: Auditor, event: Any, remaining_ms: int) -> AuditReport:
    """The cleanup function's one domain call: parse the event, refuse ``at`` unless clock
    overrides are allowed here too (so no invoker can make it delete live roles early), and
    run within the smaller of the Lambda's remaining time and the event's budget."""
    from pydantic import ValidationError

    from jit_broker.models.audit import AuditEvent

    try:
        parsed = AuditEvent.model_validate(event if isinstance(event, dict) else {})
    except ValidationError as exc:
        raise BadRequest(f"invalid audit event: {exc.errors()[0].get('msg', 'invalid')}") from exc
    if parsed.at is not None and not auditor.allows_clock_override:
        raise BadRequest("at: clock overrides are not allowed for this auditor")
    budget = min(remaining_ms, parsed.budget_ms or remaining_ms)
    return auditor.run(dry_run=parsed.dry_run, at=parsed.at, budget_ms=budget)
