"""One account's part of an audit run (the hub's, or a member's through its execution role):
its roles listed and judged, its open grants brought forward, within its own share of the
run's time and deletions, resuming from its own cursor, with its own report and findings.

Every step is idempotent, so runs may overlap or stop anywhere:

1. ListRoles under the broker's path, page by page (an execution role that cannot be assumed,
   or a listing that fails, is an ``account_unreachable`` finding: nothing else is done there);
2. the account's open shared-role grants (they hold no role of their own): crashed ones failed,
   expired ones marked so, then cleaned once no session can act; revoked ones stay on their
   shared role's deny until none of their sessions can be alive, then are taken off the
   ledger's list, the deny rewritten from it, and cleaned;
3. each listed role, in name order from where a stopped sweep left off (then the rest). Only
   roles at exactly ``role_path`` are considered; anything else that looks like ours is
   reported and left alone.
   - a grant role (``jit-g-…``) with an open grant of this account: the RoleId must equal the
     ledger's (else reported, left alone); a grant past its expiry gets the deny-all and is
     marked ``expired``; a grant left ``issuing`` by a crash (role older than the minimum
     age) gets the deny-all and is marked ``failed``; once no session can be alive (expiry +
     longest session + clock skew) the role is removed (owner tag required) and the grant
     marked ``cleaned``; a revoked grant's role (revocation stopped half way) is denied and
     removed at once; live roles are checked for drift;
   - a shared role (``jit-s-…``): ours only with the owner tag, a ``jit:profile`` tag naming
     it and a ledger record holding its RoleId. It is never removed; its deny is rewritten
     when IAM's copy differs from the ledger's list, grants listed that no open grant holds
     any more are pruned once their sessions are over, and one whose profile no longer grants
     shared-role access here is reported;
   - any other role: removed only with the whole proof that the broker made it (a grant role's
     name, the owner tag and a cleaned ledger record of this account holding its RoleId), once
     older than the minimum age; anything else under the path is a finding, never removed;
4. open grant-role grants whose role was not seen: the role is gone (or, after a partial
   sweep, looked up), so the grant is brought to ``cleaned`` when its time has come.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jit_broker import documents, naming
from jit_broker.adapters.iam_audit import TeardownBlocked
from jit_broker.audit import drift
from jit_broker.errors import AccountUnreachable, AwsUnavailable, BrokerError, GrantNotActive
from jit_broker.models.audit import AccountReport, Finding
from jit_broker.models.domain import Grant, GrantMode, GrantStatus
from jit_broker.models.events import grant_event
from jit_broker.revocation import write_revoked

if TYPE_CHECKING:
    from jit_broker.access_policy import AccessPolicy
    from jit_broker.adapters.iam_audit import IamAudit, ListedRole
    from jit_broker.adapters.ledger import Ledger
    from jit_broker.models.domain import SharedRole
    from jit_broker.settings import AuditSettings

grant_id_of = naming.grant_id_of_role


def deletable_at(grant: Grant, clock_skew: int) -> int:
    """The first second at which no session of the grant's role can still be alive."""
    return grant.expires_at + naming.MAX_CHAINED_SESSION_SECONDS + clock_skew + 1


def shared_sessions_over_at(grant: Grant, clock_skew: int) -> int:
    """The first second at which no session of a shared-role grant can still act: the session
    policy denies everything after the grant's expiry, and a revoked grant gets no session
    after its revocation, each lasting at most an hour (role chaining)."""
    end = grant.expires_at
    if grant.revoked_at is not None:
        end = min(end, grant.revoked_at + naming.MAX_CHAINED_SESSION_SECONDS)
    return end + clock_skew + 1


@dataclass
class Run:
    """What the accounts' sweeps of one run share: its time, whether it is a dry run, the
    events to publish (the audit bus's, and the grant bus's: grants expired and cleaned) and
    the access policy (read at most once a run)."""

    now: int
    dry_run: bool
    policy: Callable[[], AccessPolicy | None]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    grant_events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class AccountSweep:
    """The sweep of ``account``. ``connect`` gives its IAM (raises AccountUnreachable);
    ``grants`` are the run's open grants of this account."""

    _iam: IamAudit

    def __init__(
        self,
        *,
        settings: AuditSettings,
        ledger: Ledger,
        connect: Callable[[], IamAudit],
        run: Run,
        account: str,
        grants: list[Grant],
        deadline: float,
        monotonic: Callable[[], float],
        max_deletions: int,
        deep_checks: int,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._connect = connect
        self._run = run
        self.account = account
        # The hub keeps the cursor it always had; a member its own.
        self._cursor = None if account == settings.home_account else account
        self._boundary = settings.boundary_arn_in(account)
        self._deadline = deadline
        self._monotonic = monotonic
        self._deletions_left = max_deletions
        self._deep_checks_left = deep_checks
        self.report = AccountReport(account=account, grants_open=len(grants))
        self._grants = {g.grant_id: g for g in grants if g.mode is GrantMode.PER_GRANT_ROLE}
        self._shared = [g for g in grants if g.mode is GrantMode.SHARED_ROLE]
        self._seen: set[str] = set()
        self._denied_now: set[str] = set()
        self._drift_bucket = (1, 0)
        if deep_checks:
            live = sum(1 for g in self._grants.values() if g.status == GrantStatus.ACTIVE)
            buckets = max(1, -(-live // deep_checks))
            self._drift_bucket = (buckets, (run.now // 60) % buckets)

    # --- the sweep ---------------------------------------------------------------------
    def sweep(self) -> AccountReport:
        try:
            self._iam = self._connect()
            listing = self._list()
        except (AccountUnreachable, AwsUnavailable) as exc:
            self._unreachable(exc.message)
            return self.report
        if listing is None:
            return self.report
        self._shared_grants()
        resume_after = self._ledger.audit_cursor(self._cursor)
        if self._process(listing, resume_after):
            self._unseen()
            if resume_after is not None and not self._run.dry_run:
                self._ledger.save_audit_cursor(None, self._run.now, self._cursor)
        return self.report

    def _unreachable(self, detail: str) -> None:
        self.report.complete = False
        self.report.stopped = "account_unreachable"
        self._finding("account_unreachable", None, None, detail)

    def _out_of_time(self) -> bool:
        return self._monotonic() >= self._deadline

    def _stopped(self) -> None:
        self.report.complete = False
        self.report.stopped = "time_budget"

    def _list(self) -> list[ListedRole] | None:
        """Every role under the broker's path prefix, page by page (None: out of time).
        Listing first and acting afterwards keeps removals from shifting IAM's markers."""
        roles: list[ListedRole] = []
        pages = self._iam.role_pages(self._settings.role_path, page_size=self._settings.page_size)
        for page in pages:
            self.report.list_calls += 1
            roles.extend(page.roles)
            if page.next_marker and self._out_of_time():
                self._stopped()
                return None
        self.report.roles_listed = len(roles)
        return roles

    def _process(self, roles: list[ListedRole], resume_after: str | None) -> bool:
        """Each role, in name order starting after where a stopped sweep left off (then the
        rest), so every role gets its turn even when sweeps keep running out of time. False
        when the budget ran out (where to resume is saved)."""
        ordered = sorted(roles, key=lambda r: r.name)
        if resume_after is not None:
            later = [r for r in ordered if r.name > resume_after]
            ordered = later + [r for r in ordered if r.name <= resume_after]
        last: str | None = None
        for role in ordered:
            if self._out_of_time():
                self._stopped()
                if not self._run.dry_run and last is not None:
                    self._ledger.save_audit_cursor(last, self._run.now, self._cursor)
                return False
            self._one_role(role)
            last = role.name
        return True

    def _one_role(self, role: ListedRole) -> None:
        gid = grant_id_of(role.name)
        if role.path != self._settings.role_path:
            if gid or role.path.startswith(self._settings.role_path.rstrip("/")):
                self._finding("outside_broker_path", role, gid, f"path {role.path}")
            return
        self.report.roles_checked += 1
        grant = self._grants.get(gid) if gid else None
        if grant is not None:
            self._seen.add(grant.grant_id)
        try:
            if naming.is_shared_role_name(role.name):
                self._shared_role(role)
            elif grant is None:
                self._orphan(role, gid)
            else:
                self._ledgered(grant, role)
        except BrokerError as exc:  # one role's trouble never ends the run
            self._finding("action_failed", role, gid, exc.message)

    # --- roles with an open grant ------------------------------------------------------
    def _ledgered(self, grant: Grant, role: ListedRole) -> None:
        now = self._run.now
        if grant.role_id and grant.role_id != role.role_id:
            self._finding("role_id_mismatch", role, grant.grant_id, "left alone")
            if grant.status == GrantStatus.ACTIVE and now >= grant.expires_at:
                self._expire(grant, None)  # the ledger's fact; the role is not touched
            return
        if grant.status == GrantStatus.ISSUING:
            if role.created_at + self._settings.min_role_age_seconds > now:
                return  # being created right now
            if not self._owned_by_tags(role, grant.grant_id):
                return
            grant = self._reconcile(grant, role)
        elif grant.status == GrantStatus.ACTIVE and now >= grant.expires_at:
            grant = self._expire(grant, role.name)
        elif grant.status == GrantStatus.ACTIVE:
            self._check_drift(grant, role)
            return
        elif grant.status == GrantStatus.REVOKED:
            # A revocation that stopped half way: the deny again, then the role goes at once
            # (as revocation itself does: nothing waits for a revoked grant's sessions).
            self._deny(role.name)
            self._remove_grant_role(grant, role)
            return
        if now >= deletable_at(grant, self._settings.clock_skew_seconds):
            self._remove_grant_role(grant, role)

    def _reconcile(self, grant: Grant, role: ListedRole | None) -> Grant:
        """A crash left the grant ``issuing``: deny its role (if any), record it failed."""
        if role is not None:
            self._deny(role.name)
        self.report.failed.append(grant.grant_id)
        self._event("JIT grant reconciled", grant.grant_id, role.name if role else None)
        if not self._run.dry_run:
            with contextlib.suppress(GrantNotActive):  # the broker or another run moved it
                self._ledger.reconcile_failed(
                    grant,
                    now=self._run.now,
                    role_arn=role.arn if role else None,
                    role_id=role.role_id if role else None,
                )
                self._ledger.release_slot(grant)
        return grant.model_copy(update={"status": GrantStatus.FAILED})

    def _expire(self, grant: Grant, role_name: str | None) -> Grant:
        """Past its expiry: the deny-all first (a grant role's), then the ledger says expired."""
        if role_name is not None:
            self._deny(role_name)
        self.report.expired.append(grant.grant_id)
        if not self._run.dry_run:
            # Revoked meanwhile: the deny is what revocation puts too; the next run cleans it.
            with contextlib.suppress(GrantNotActive):
                self._ledger.move(grant.grant_id, GrantStatus.ACTIVE, GrantStatus.EXPIRED)
                self._transition(grant, GrantStatus.EXPIRED)
        return grant.model_copy(update={"status": GrantStatus.EXPIRED})

    def _deny(self, role_name: str) -> None:
        self.report.denied.append(role_name)
        self._denied_now.add(role_name)
        if not self._run.dry_run:
            self._iam.deny(role_name)

    def _remove_grant_role(self, grant: Grant, role: ListedRole) -> None:
        if not self._owned_by_tags(role, grant.grant_id):
            return
        if not self._remove(role, deny_first=role.name not in self._denied_now):
            return
        self._clean(grant)

    def _clean(self, grant: Grant) -> None:
        self.report.cleaned.append(grant.grant_id)
        if self._run.dry_run:
            return
        try:
            released = self._ledger.mark_cleaned(
                grant,
                now=self._run.now,
                # a failed grant gave its quotas back on failing, a revoked one on its removal
                release_quota=grant.status != GrantStatus.FAILED and grant.role_removed_at is None,
            )
        except GrantNotActive:
            return
        self._transition(grant, GrantStatus.CLEANED)
        self._ledger.release_slot(grant)  # free already by time, unless evaluated "as of"
        if not released:
            self._finding("role_quota_already_zero", None, grant.grant_id, "")

    # --- roles without an open grant ---------------------------------------------------
    def _orphan(self, role: ListedRole, gid: str | None) -> None:
        """A role under the path with no open grant here. Removed only with the full proof
        that the broker made it (threat 31): the broker's name pattern, the owner tag and a
        ledger record of this account holding this very RoleId. Anything else is a finding,
        never removed."""
        if role.created_at + self._settings.min_role_age_seconds > self._run.now:
            return  # maybe being created right now: never touched
        if gid is None:
            self._finding(
                "unexpected_role", role, None, "under the broker's path, not a grant role"
            )
            return
        tags = self._tags(role)
        if tags is None:
            return
        if tags.get(documents.TAG_OWNER) != self._settings.owner_tag:
            self._finding("not_owned", role, gid, "under the broker's path without its owner tag")
            return
        record = self._ledger.get_grant(gid)
        if record is not None and self._account_of(record) != self.account:
            where = self._account_of(record)
            self._finding("unexpected_role", role, gid, f"the ledger's grant is in {where}")
            return
        if record is not None and record.status != GrantStatus.CLEANED:
            return  # a grant opened after this run read the ledger: next run
        if record is None or record.role_id != role.role_id:
            why = "no ledger record" if record is None else "the ledger holds another RoleId"
            self._finding("unexpected_role", role, gid, f"{why}: left alone")
            return
        self._remove(role, deny_first=True)

    def _account_of(self, grant: Grant) -> str:
        return grant.target_account or self._settings.home_account

    # --- grants whose role was not seen ------------------------------------------------
    def _unseen(self) -> None:
        """Open grant-role grants whose role the (complete) listing did not hold: it is gone."""
        skew = self._settings.clock_skew_seconds
        now = self._run.now
        for grant in self._grants.values():
            if grant.grant_id in self._seen:
                continue
            due = (
                (
                    grant.status == GrantStatus.ISSUING
                    and grant.created_at + self._settings.min_role_age_seconds <= now
                )
                or grant.status in (GrantStatus.FAILED, GrantStatus.REVOKED)
                or (grant.status == GrantStatus.ACTIVE and now >= grant.expires_at)
                or now >= deletable_at(grant, skew)
            )
            if not due:
                if grant.status == GrantStatus.ACTIVE:
                    self._finding("role_missing", None, grant.grant_id, grant.role_name)
                continue
            if self._out_of_time():
                self._stopped()
                return
            try:
                self._role_gone(grant)
            except BrokerError as exc:
                self._finding("action_failed", None, grant.grant_id, exc.message)

    def _role_gone(self, grant: Grant) -> None:
        if grant.status == GrantStatus.ISSUING:
            grant = self._reconcile(grant, None)
        elif grant.status == GrantStatus.ACTIVE and self._run.now >= grant.expires_at:
            grant = self._expire(grant, None)
        if grant.status in (
            GrantStatus.FAILED,
            GrantStatus.REVOKED,
        ) or self._run.now >= deletable_at(grant, self._settings.clock_skew_seconds):
            self._clean(grant)

    # --- shared-role grants and shared roles -------------------------------------------
    def _shared_grants(self) -> None:
        """The account's open shared-role grants. Nothing of theirs is in IAM but their
        shared role's deny, which only ever lists revoked ones: expiring or cleaning one
        is a ledger write; a revoked one is unlisted (per shared role, together) once none
        of its sessions can act, and cleaned after its role's deny was rewritten."""
        skew = self._settings.clock_skew_seconds
        now = self._run.now
        unlist: dict[str, list[Grant]] = {}
        for grant in self._shared:
            if self._out_of_time():
                self._stopped()
                return
            try:
                if grant.status == GrantStatus.ISSUING:
                    if grant.created_at + self._settings.min_role_age_seconds > now:
                        continue
                    grant = self._reconcile(grant, None)
                elif grant.status == GrantStatus.ACTIVE and now >= grant.expires_at:
                    grant = self._expire(grant, None)
                over = now >= shared_sessions_over_at(grant, skew)
                if grant.status == GrantStatus.REVOKED and over:
                    unlist.setdefault(grant.profile, []).append(grant)
                elif grant.status == GrantStatus.FAILED or (
                    grant.status == GrantStatus.EXPIRED and over
                ):
                    self._clean(grant)
            except BrokerError as exc:
                self._finding("action_failed", None, grant.grant_id, exc.message)
        for profile, grants in unlist.items():
            try:
                self._unlist(profile, [g.grant_id for g in grants])
            except BrokerError as exc:
                role = naming.shared_role_name(profile)
                for grant in grants:
                    self._finding("action_failed", None, grant.grant_id, f"{role}: {exc.message}")
                continue
            for grant in grants:
                try:  # off the list already: the next run cleans it (one grant's trouble)
                    self._clean(grant)
                except BrokerError as exc:
                    self._finding("action_failed", None, grant.grant_id, exc.message)

    def _unlist(self, profile: str, grant_ids: list[str]) -> SharedRole | None:
        """These revoked grants' sessions are all over: off the ledger's list, then the
        shared role's deny written from the list (the record written; None in a dry run or
        without a record)."""
        role_name = naming.shared_role_name(profile)
        for gid in sorted(grant_ids):
            self.report.unlisted.append(gid)
            self._event("JIT revoked grant unlisted", gid, role_name)
        if self._run.dry_run:
            return None
        self._ledger.unlist_revoked(self.account, profile, sorted(grant_ids))
        return write_revoked(self._iam, self._ledger, self.account, profile)

    def _shared_role(self, role: ListedRole) -> None:
        """A ``jit-s-…`` role: ours only with the whole proof (path, owner tag, a profile tag
        naming it, the ledger's record of it holding its RoleId); never removed. One without
        the proof is reported once older than the minimum age (it may be being made now)."""
        tags = self._tags(role)
        if tags is None:
            return
        profile = tags.get(documents.TAG_PROFILE, "")
        record = None
        if tags.get(documents.TAG_OWNER) != self._settings.owner_tag:
            kind, why = "not_owned", "under the broker's path without its owner tag"
        elif not profile or naming.shared_role_name(profile) != role.name:
            kind, why = "unexpected_role", "no jit:profile tag naming this role"
        else:
            record = self._ledger.shared_role(self.account, profile)
            kind, why = (
                "unexpected_role",
                (
                    "no ledger record: left alone"
                    if record is None
                    else "the ledger holds another RoleId: left alone"
                ),
            )
        if record is None or record.role_id != role.role_id:
            if role.created_at + self._settings.min_role_age_seconds <= self._run.now:
                self._finding(kind, role, None, why)
            return
        record = self._prune_stale(record) or record
        self._check_deny(role, record)
        self._check_profile(role, profile)

    def _prune_stale(self, record: SharedRole) -> SharedRole | None:
        """Grants on the role's list that no open grant of it holds (revoked again while the
        auditor unlisted it, or a cleanup that stopped half way), unlisted once their
        sessions are over: the list never keeps what nothing will take off."""
        open_here = {g.grant_id for g in self._shared if g.profile == record.profile}
        skew = self._settings.clock_skew_seconds
        stale = []
        for gid in record.revoked:
            if gid in open_here:
                continue
            grant = self._ledger.get_grant(gid)
            if grant is None or self._run.now >= shared_sessions_over_at(grant, skew):
                stale.append(gid)
        return self._unlist(record.profile, stale) if stale else None

    def _check_deny(self, role: ListedRole, record: SharedRole) -> None:
        """IAM's copy of the role's deny against the ledger's list: rewritten from the list
        when it differs (a revocation that stopped before writing it, or a hand edit)."""
        self.report.drift_checks += 1
        detail = drift.revoked_deny_drift(self._iam.revoked_deny(role.name), record.revoked)
        if detail is None:
            return
        self._finding("drift_revoked_deny", role, None, detail)
        if not self._run.dry_run:
            write_revoked(self._iam, self._ledger, self.account, record.profile)

    def _check_profile(self, role: ListedRole, profile_name: str) -> None:
        """A shared role whose profile no longer grants shared-role access in this account
        is reported (its grants, if any, run their course; the auditor never removes it)."""
        policy = self._run.policy()
        if policy is None:
            return
        profile = policy.profiles.get(profile_name)
        if (
            profile is not None
            and profile.mode is GrantMode.SHARED_ROLE
            and self.account in profile.accounts_in(self._settings.home_account)
        ):
            return
        self._finding(
            "shared_role_unused",
            role,
            None,
            f"profile {profile_name!r} no longer grants shared-role access in this account: "
            "the auditor never removes a shared role; remove it by hand once its grants are over",
        )

    # --- removal and ownership ---------------------------------------------------------
    def _tags(self, role: ListedRole) -> dict[str, str] | None:
        self.report.tag_reads += 1
        return self._iam.role_tags(role.name)

    def _owned_by_tags(self, role: ListedRole, gid: str) -> bool:
        tags = self._tags(role)
        if tags is None:
            return False
        if tags.get(documents.TAG_OWNER) != self._settings.owner_tag:
            self._finding("not_owned", role, gid, "the owner tag is missing or not ours")
            return False
        return True

    def _remove(self, role: ListedRole, *, deny_first: bool) -> bool:
        """Take the grant role apart (within the account's share of the per-run cap). True
        once it is gone."""
        gid = grant_id_of(role.name)
        if self._deletions_left <= 0:
            self.report.deferred.append(role.name)
            return False
        self._deletions_left -= 1
        self.report.removed.append(role.name)
        self._event("JIT role removed", gid, role.name, role_id=role.role_id)
        if self._run.dry_run:
            return True
        try:
            self._iam.teardown(role.name, deny_first=deny_first)
        except (TeardownBlocked, BrokerError) as exc:
            self.report.removed.remove(role.name)
            self._run.events.pop()
            self._finding("teardown_incomplete", role, gid, str(exc))
            return False
        return True

    # --- drift of a live grant role ----------------------------------------------------
    def _check_drift(self, grant: Grant, role: ListedRole) -> None:
        drifts: list[tuple[str, str]] = []  # (kind, detail)
        if drift.trust_drifted(role, self._settings.broker_role_arn, grant.expires_at):
            drifts.append(("trust_policy", drift.AS_WRITTEN))
        buckets, current = self._drift_bucket
        if self._deep_checks_left > 0 and drift.bucket(role.role_id, buckets) == current:
            self._deep_checks_left -= 1
            self.report.drift_checks += 1
            details = self._iam.details(role.name)
            if details is not None:
                drifts.extend(
                    drift.deep_drift(
                        grant,
                        details,
                        boundary_arn=self._boundary,
                        owner_tag=self._settings.owner_tag,
                        policy=self._run.policy,
                    )
                )
        for kind, detail in drifts:
            self._finding(f"drift_{kind}", role, grant.grant_id, detail)
        if drifts and self._settings.drift_quarantine:
            self.report.quarantined.append(role.name)
            if not self._run.dry_run:
                self._iam.deny(role.name)

    # --- reporting ---------------------------------------------------------------------
    def _transition(self, grant: Grant, to_status: GrantStatus) -> None:
        """The grant event of a move the ledger just recorded (``grant`` as it was before),
        sent with the run's others at its end (jit_broker.adapters.events.GrantEvents)."""
        self._run.grant_events.append(
            grant_event(grant, to_status, at=self._run.now, account=self.account)
        )

    def _finding(self, kind: str, role: ListedRole | None, gid: str | None, detail: str) -> None:
        finding = Finding(
            kind=kind,
            account=self.account,
            role_name=role.name if role else None,
            grant_id=gid,
            detail=detail,
        )
        self.report.findings.append(finding)
        self._event("JIT audit finding", gid, finding.role_name, kind=kind, detail=detail)

    def _event(
        self, detail_type: str, gid: str | None, role_name: str | None, **extra: str
    ) -> None:
        self._run.events.append(
            (
                detail_type,
                {
                    "account": self.account,
                    "grant_id": gid,
                    "role_name": role_name,
                    "at": self._run.now,
                    "dry_run": self._run.dry_run,
                }
                | extra,
            )
        )
