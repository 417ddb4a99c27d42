"""Grants: request, issue a session, revoke, list. The broker's domain logic.

Order of a grant (each step only after the one before succeeded):
1. checks that change nothing (jit_broker.admission, the same a dry run makes): profile
   exists, caller entitled, duration, reason, ticket, account, then one ledger read for the
   nonce and the limits (active grants, rate, role quotas) (→ 4xx, no write at all);
2. the ledger records the grant (status issuing) with the nonce, rate counter and role
   quota in one transaction (→ 409 replay, 429 over a limit, 503 ledger down), and with it
   what the role will hold (the digest of its jit-grant document, its managed policies);
3. the per-grant role: trust only the broker's role with SourceIdentity until expiry, the
   permissions boundary, the profile's permissions and a deny after expiry, tags;
4. AssumeRole (retried through IAM's eventual consistency, within the retry budget and in
   time to answer before the invocation's end);
5. the ledger moves the grant to active and records the session (access key id, expiry)
   in one transaction; only then are credentials returned (→ 503 and nothing otherwise).

A further session of a grant: owner only; the nonce, the owner's rate counter and the grant's
status are written in one transaction before STS is called; the session is recorded before
its credentials are returned. Revocation: ledger first, the deny-all, then the role is torn
down at once (the deny is in place, so no session of it can gain anything while it goes) and
its quotas are given back.

Entitlement is judged on ``Caller.requester_id`` (the role ARN of a role session); ownership
of a grant — seeing it, taking sessions of it, revoking it, counting against limits — on
``Caller.owner`` (the exact caller). The broker's own sessions are never callers.

Accounts: a profile's access is in the broker's own account (the hub) or in member accounts.
In a member, roles are written through the member template's execution role (``member_iam``)
and assumed directly by the broker's own role, one hop as at home.

Modes: ``per-grant-role`` (above) or ``shared-role``: one role per (profile, account), made on
first use and rewritten only when the profile's permissions change; a grant is then a ledger
write and one AssumeRole, its sessions scoped by a session policy (the profile's permissions
and a deny after the grant's expiry) and tagged with the grant. Revoking one adds its grant id
to the shared role's deny (the ledger's list, written to IAM whole, so concurrent revocations
cannot lose one another's entry).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jit_broker import admission, documents, naming
from jit_broker.adapters.iam import RoleSpec
from jit_broker.admission import Assessment, Refusals, Rule
from jit_broker.documents import policy_digest
from jit_broker.errors import (
    ApprovalPending,
    AwsUnavailable,
    BadRequest,
    BrokerError,
    GrantNotActive,
    NotEntitled,
    NotFound,
    ReviewClosed,
    ReviewExpired,
    SelfApprovalRefused,
    SelfReviewRefused,
)
from jit_broker.identity import Caller, caller_from_context, refuse_broker_principals
from jit_broker.models.domain import (
    Credentials,
    Decision,
    Grant,
    GrantMode,
    GrantStatus,
    IssuedSession,
    Review,
    SharedRole,
    Verdict,
)
from jit_broker.models.events import GrantEventType
from jit_broker.models.input import (
    DecisionRequest,
    GrantRequest,
    ReviewRequest,
    RevokeRequest,
    SessionRequest,
)
from jit_broker.revocation import write_revoked

# Seconds kept back from the invocation's time left when AssumeRole is retried: the last
# attempt itself, then the activation (or the rollback: the role's teardown and the failed
# grant), then the answer, all before the function's timeout.
ANSWER_RESERVE_SECONDS = 5.0

TimeLeft = Callable[[], float]
"""Seconds until the invocation times out (the Lambda context's remaining time)."""

if TYPE_CHECKING:  # the policy models load with the first policy, not on the import path
    from jit_broker.access_policy import AccessPolicy, Profile
    from jit_broker.adapters.events import GrantEvents
    from jit_broker.adapters.iam import Iam
    from jit_broker.adapters.ledger import Ledger
    from jit_broker.adapters.sts import Sts
    from jit_broker.settings import Settings


@dataclass(frozen=True)
class Issued:
    grant: Grant
    credentials: Credentials


class Broker:
    def __init__(
        self,
        *,
        settings: Settings,
        policy: Callable[[], AccessPolicy],
        ledger: Ledger,
        iam: Iam,
        sts: Sts,
        clock: Callable[[], float] = time.time,
        member_iam: Callable[[str], Iam] | None = None,
        events: GrantEvents | None = None,
    ) -> None:
        """``iam`` writes roles in the broker's own account; ``member_iam(account)`` in a
        member account, through its execution role (raises AccountUnreachable). ``events``
        sends each transition's event once the ledger holds it (None: none is sent)."""
        self._settings = settings
        self._policy = policy
        self._ledger = ledger
        self._iam = iam
        self._sts = sts
        self._clock = clock
        self._member_iam = member_iam
        self._events = events
        # (account, profile) → the shared role as last written (its jit-grant digest, managed
        # policies, ARN): a warm broker makes a shared-role grant without reading it again.
        self._shared: dict[tuple[str, str], SharedRole] = {}

    @property
    def home_account(self) -> str:
        """The account the broker runs in (a profile's access is there unless it lists
        member accounts)."""
        return self._settings.home_account

    def _now(self) -> int:
        return int(self._clock())

    def identify(self, request_context: dict[str, Any] | None) -> Caller:
        """The verified caller of a request; a session of the broker's own roles (a grant's,
        the broker's, the auditor's) is refused here, on every route (threat 27)."""
        caller = caller_from_context(request_context)
        return refuse_broker_principals(caller, self._settings.own_role_names)

    def _admitted(self, caller: Caller) -> AccessPolicy:
        policy = self._policy()
        if not policy.is_account_allowed(caller.account_id):
            raise NotEntitled(f"account {caller.account_id} may not use this broker")
        return policy

    def _iam_in(self, account: str) -> Iam:
        unreachable = self._unreachable(account)
        if unreachable is not None:
            raise unreachable
        if account == self._settings.home_account or self._member_iam is None:
            return self._iam
        return self._member_iam(account)

    def _unreachable(self, account: str) -> BrokerError | None:
        """Why the broker cannot write roles in ``account`` (None: it can)."""
        if account == self._settings.home_account:
            return None
        if self._member_iam is None or account not in self._settings.member_accounts:
            return AwsUnavailable(f"account {account} is not one of this broker's member accounts")
        return None

    def _account_for(
        self, profile_name: str, profile: Profile, request: GrantRequest, refusals: Refusals
    ) -> str | None:
        """Rule.ACCOUNT: the account the grant's access is in (None: refused)."""
        accounts = profile.accounts_in(self._settings.home_account)
        if request.account is None and len(accounts) > 1:
            refusals.refuse(
                Rule.ACCOUNT,
                BadRequest(
                    f"profile {profile_name!r} grants access in several accounts: give one "
                    f"of {', '.join(accounts)} (account, or the CLI's --account)"
                ),
            )
            return None
        account = accounts[0] if request.account is None else request.account
        if account not in accounts:
            refusals.refuse(
                Rule.ACCOUNT,
                BadRequest(
                    f"profile {profile_name!r} does not grant access in account {account}: "
                    f"give one of {', '.join(accounts)}"
                ),
            )
            return None
        unreachable = self._unreachable(account)
        if unreachable is not None:
            refusals.refuse(Rule.ACCOUNT, unreachable)
            return None
        return account

    # --- reads -------------------------------------------------------------------------
    def profiles_for(self, caller: Caller) -> dict[str, Profile]:
        return self._admitted(caller).requestable(caller)

    def window_limit(self, profile: Profile) -> int:
        """The longest window a grant of ``profile`` may have (a break-glass profile's is
        capped by the policy's break_glass_max_window)."""
        return self._policy().window_limit(profile)

    def grants_of(self, caller: Caller, *, active_only: bool = False) -> list[Grant]:
        """The caller's newest grants; ``active_only``: those active now (read from the
        caller's grants of the longest window only)."""
        self._admitted(caller)
        if active_only:
            now = self._now()
            return self._ledger.active_grants_of(
                caller.owner, now=now, created_since=now - naming.MAX_WINDOW_SECONDS
            )
        now = self._now()
        return [g.as_of(now) for g in self._ledger.grants_of(caller.owner)]

    def grant(self, caller: Caller, grant_id: str) -> Grant:
        policy = self._admitted(caller)
        return self._visible_grant(policy, caller, grant_id)

    def _visible_grant(self, policy: AccessPolicy, caller: Caller, grant_id: str) -> Grant:
        not_found = NotFound(f"no grant {grant_id!r} of yours exists")
        if not naming.is_grant_id(grant_id):
            raise not_found
        grant = self._ledger.get_grant(grant_id)
        if grant is None:
            raise not_found
        if grant.owner != caller.owner and not (
            policy.is_administrator(caller) or self._may_decide(policy, caller, grant)
        ):
            raise not_found  # someone else's grant: do not reveal that it exists
        return grant.as_of(self._now())

    # --- a new grant -------------------------------------------------------------------
    def request_grant(
        self, caller: Caller, request: GrantRequest, *, time_left: TimeLeft | None = None
    ) -> Issued | Grant:
        """``time_left``: how long the invocation may still run; AssumeRole's retries stop in
        time to record the grant and answer (None: the configured budget alone). The first
        rule the request breaks is raised before anything is written (``_assess``). For a
        profile with approvers, the request is recorded (status requested) and returned as a
        Grant: no role, no session until approved and taken up (``issue_session``)."""
        if request.dry_run:  # a dry run is explained, never granted
            raise RuntimeError("a dry run reached request_grant: call explain")
        policy = self._admitted(caller)
        now = self._now()
        assessed = self._assess(caller, request, policy, now, Refusals(collect_all=False))
        profile, account, window = assessed.admitted()
        slot = assessed.slot
        if profile.required_approvals:
            return self._open_request(caller, request, policy, profile, account, window, now)

        grant = self._new_grant(
            caller,
            request,
            profile,
            account,
            now,
            status=GrantStatus.ISSUING,
            expires_at=now + window,
            slot=slot,
        )
        if profile.break_glass:  # issued at once; one of its approvers reviews it afterwards
            grant = grant.model_copy(
                update={
                    "break_glass": True,
                    "review_due": now + policy.break_glass_review_within,
                    "requester_person": caller.person,
                }
            )
        if grant.mode is GrantMode.SHARED_ROLE:
            return self._shared_grant(grant, profile, caller, request, policy, now, time_left)
        # The ledger records what the role will hold, so the auditor judges drift against what
        # was written, not against the profile as it reads later.
        spec = self._role_spec(grant, profile)
        grant = grant.model_copy(
            update={
                "policy_sha256": policy_digest(spec.permissions_policy),
                "managed_policy_arns": sorted(spec.managed_policy_arns),
            }
        )
        self._ledger.open_grant(
            grant,
            nonce=request.nonce,
            now=now,
            rate_limit=policy.limits.requests_per_minute,
            max_roles=self._settings.max_roles,
            max_roles_per_owner=self._settings.max_roles_per_owner,
            max_active=profile.max_active_grants,
        )
        return self._make_role(grant, spec, profile, caller, now, time_left)

    def _make_role(
        self,
        grant: Grant,
        spec: RoleSpec,
        profile: Profile,
        caller: Caller,
        now: int,
        time_left: TimeLeft | None,
    ) -> Issued:
        """The role of a grant the ledger holds ``issuing``, its first session, and the grant
        active with that session recorded; rolled back to failed if any of it fails."""
        account = grant.target_account or self._settings.home_account
        try:
            iam = self._iam_in(account)
            role = iam.create_grant_role(spec)
        except BrokerError as exc:
            self._fail(grant, exc)
            raise
        grant = grant.model_copy(update={"role_arn": role.arn, "role_id": role.role_id})
        try:
            credentials, session = self._assume(grant, profile, caller, now, time_left)
        except BrokerError as exc:
            iam.teardown(grant.role_name, tuple(profile.permissions.managed), denied=False)
            self._fail(grant, exc)
            raise
        try:
            self._ledger.activate(grant, session)
        except BrokerError as exc:
            # The session cannot be recorded, so it is never handed out: deny the role so even
            # these discarded credentials are useless, take it down, and give back what the
            # grant held, so the caller's retry is not refused for a grant that never was.
            # Whatever of this fails, the auditor finishes (it reconciles issuing grants).
            with contextlib.suppress(BrokerError):
                if iam.deny_everything(grant.role_name):
                    iam.teardown(grant.role_name, tuple(profile.permissions.managed))
            with contextlib.suppress(BrokerError):
                self._fail(grant, exc)
            raise
        active = grant.model_copy(
            update={"status": GrantStatus.ACTIVE, "sessions_issued": grant.sessions_issued + 1}
        )
        # Issuing is the broker's own step, never an event's: a grant without approvers is
        # told as created active, an approved one as moved from approved.
        taken_up = GrantStatus.APPROVED if grant.approved_at is not None else None
        return self._issued(active, credentials, now, from_status=taken_up, profile=profile)

    def explain(self, caller: Caller, request: GrantRequest) -> Assessment:
        """A dry run of ``request``: every rule it breaks (the same rules, in the same code,
        as a real request's), and the account, window and mode it would get. Nothing is
        written: no IAM or STS call, no ledger write (its nonce stays unused, its rate
        unspent, no slot or quota taken); the ledger is only read."""
        policy = self._admitted(caller)
        return self._assess(caller, request, policy, self._now(), Refusals(collect_all=True))

    def _assess(
        self,
        caller: Caller,
        request: GrantRequest,
        policy: AccessPolicy,
        now: int,
        refusals: Refusals,
    ) -> Assessment:
        """Judge ``request`` by every rule (jit_broker.admission), reporting to ``refusals``:
        a real request stops at the first, a dry run hears them all.

        What a caller who may not request the profile learns, from a dry run as from a real
        request (404 not_found / 403 not_entitled, the same message): that it does not exist
        or is not theirs to request, and the names of the profiles they may request. Nothing
        of the profile itself: no later rule is judged (their messages would tell its window,
        accounts, ticket pattern, limits), and the dry run's account, duration and mode stay
        empty. A caller from an account the policy does not admit gets 403 before any rule
        (``_admitted``), on this route as on every other."""
        name = request.profile
        profile = policy.profiles.get(name)
        if profile is None:
            refusals.refuse(
                Rule.ENTITLEMENT,
                NotFound(
                    f"there is no profile {name!r}; " + _may_request(policy.requestable(caller))
                ),
            )
            return Assessment(name, tuple(refusals.denials))
        if not policy.is_entitled(profile, caller):
            refusals.refuse(
                Rule.ENTITLEMENT,
                NotEntitled(
                    f"{caller.requester_id} may not request {name!r}; "
                    + _may_request(policy.requestable(caller))
                ),
            )
            return Assessment(name, tuple(refusals.denials))
        longest = policy.window_limit(profile)
        window = admission.window_of(profile, request, longest)
        admission.check_request(name, profile, request, window, refusals, max_window=longest)
        account = self._account_for(name, profile, request, refusals)
        admission.check_approvals(name, profile, caller, refusals)
        counts = self._ledger.limit_counts(
            caller.owner,
            name,
            nonce=request.nonce,
            now=now,
            max_active=profile.max_active_grants,
            roles=profile.mode is GrantMode.PER_GRANT_ROLE,
        )
        slot = admission.check_limits(
            counts,
            name=name,
            profile=profile,
            rate_limit=policy.limits.requests_per_minute,
            max_roles=self._settings.max_roles,
            max_roles_per_owner=self._settings.max_roles_per_owner,
            refusals=refusals,
        )
        return Assessment(
            name,
            tuple(refusals.denials),
            profile=profile,
            account=account,
            window=window,
            slot=slot,
            review_within=policy.break_glass_review_within if profile.break_glass else None,
        )

    def _shared_grant(
        self,
        grant: Grant,
        profile: Profile,
        caller: Caller,
        request: GrantRequest,
        policy: AccessPolicy,
        now: int,
        time_left: TimeLeft | None,
    ) -> Issued:
        """A shared-role grant: no role is made for it, so one ledger transaction records it
        and its first session after the one AssumeRole (nonce, rate, slot and both records
        together; no role quota), before the credentials leave. A used nonce, a spent rate or
        a held slot was refused by the read before (``_assess``), so a replay or a flood does
        not reach STS; if the transaction refuses (a request at the same moment), the session
        is discarded unseen (its session policy ends it at the grant's expiry all the same).
        The profile's shared role is made or brought up to date only when it is not already."""
        shared = self._shared_role(grant.target_account or "", grant.profile, profile)
        grant = grant.model_copy(
            update={
                "role_arn": shared.role_arn,
                "role_id": shared.role_id,
                "policy_sha256": shared.policy_sha256,
                "managed_policy_arns": shared.managed_policy_arns,
            }
        )
        credentials, session = self._assume(grant, profile, caller, now, time_left)
        grant = grant.model_copy(update={"status": GrantStatus.ACTIVE, "sessions_issued": 1})
        self._ledger.open_grant(
            grant,
            nonce=request.nonce,
            now=now,
            rate_limit=policy.limits.requests_per_minute,
            max_roles=self._settings.max_roles,
            max_roles_per_owner=self._settings.max_roles_per_owner,
            max_active=profile.max_active_grants,
            first_session=session,
        )
        # recorded active
        return self._issued(grant, credentials, now, from_status=None, profile=profile)

    @staticmethod
    def _shared_grant_policy(profile: Profile) -> dict[str, Any]:
        statements = _statements(profile)
        if not statements:  # managed policies only: the role's inline policy allows nothing
            return {"Version": documents.VERSION, "Statement": [_NOTHING]}
        return {"Version": documents.VERSION, "Statement": statements}

    def _shared_role(self, account: str, profile_name: str, profile: Profile) -> SharedRole:
        """The profile's shared role in ``account`` as the profile says now: from this
        broker's memory when it wrote (or read) it so; else from the ledger; written to IAM
        only when missing or different (the first grant, or the profile changed)."""
        document = self._shared_grant_policy(profile)
        want = (policy_digest(document), sorted(profile.permissions.managed))
        key = (account, profile_name)
        known = self._shared.get(key)
        if known is None or (known.policy_sha256, known.managed_policy_arns) != want:
            known = self._ledger.shared_role(account, profile_name)
        if (
            known is None
            or not known.role_arn
            or (known.policy_sha256, known.managed_policy_arns) != want
        ):
            spec = RoleSpec(
                name=naming.shared_role_name(profile_name),
                path=self._settings.role_path,
                trust_policy=documents.shared_trust_policy(self._settings.broker_role_arn),
                permissions_policy=document,
                managed_policy_arns=tuple(profile.permissions.managed),
                boundary_arn=self._settings.boundary_arn_in(account),
                tags={
                    documents.TAG_OWNER: self._settings.owner_tag,
                    documents.TAG_PROFILE: profile_name,
                    documents.TAG_MODE: GrantMode.SHARED_ROLE.value,
                },
                description=f"JIT shared role of profile {profile_name}",
            )
            previous = tuple(known.managed_policy_arns) if known else ()
            role = self._iam_in(account).ensure_shared_role(spec, previous)
            known = SharedRole(
                account=account,
                profile=profile_name,
                role_arn=role.arn,
                role_id=role.role_id,
                policy_sha256=want[0],
                managed_policy_arns=want[1],
                revoked=known.revoked if known else [],
                rev=known.rev if known else 0,
            )
            self._ledger.record_shared_role(known)
        self._shared[key] = known
        return known

    # --- a further session inside a grant ----------------------------------------------
    def issue_session(
        self,
        caller: Caller,
        grant_id: str,
        request: SessionRequest,
        *,
        time_left: TimeLeft | None = None,
    ) -> Issued:
        policy = self._admitted(caller)
        grant = self._visible_grant(policy, caller, grant_id)
        if grant.owner != caller.owner:
            raise NotEntitled("only the grant's owner may take sessions of it")
        now = self._now()
        if grant.status in (GrantStatus.REQUESTED, GrantStatus.APPROVED):
            return self._take_up(policy, caller, grant, request, now, time_left)
        if grant.status != GrantStatus.ACTIVE:
            raise GrantNotActive(f"grant {grant_id} is {grant.status.value}: request a new grant")
        if now >= grant.expires_at:
            raise GrantNotActive(
                f"grant {grant_id} expired at {grant.expires_at}: request a new grant"
            )
        profile = policy.profiles.get(grant.profile)
        if profile is None or not policy.is_entitled(profile, caller):
            raise NotEntitled(f"{caller.requester_id} may no longer use {grant.profile!r}")
        # The nonce and the rate limit are spent before STS is called: a replay or a flood
        # never reaches STS, and no session exists that the ledger does not expect.
        self._ledger.admit_session(
            grant_id,
            owner=caller.owner,
            nonce=request.nonce,
            now=now,
            rate_limit=policy.limits.requests_per_minute,
        )
        if grant.mode is GrantMode.SHARED_ROLE:
            self._shared_role(grant.target_account or "", grant.profile, profile)
        credentials, session = self._assume(grant, profile, caller, now, time_left)
        self._ledger.record_session(grant_id, session)
        return Issued(
            grant.model_copy(update={"sessions_issued": grant.sessions_issued + 1}), credentials
        )

    # --- revoke ------------------------------------------------------------------------
    def revoke(self, caller: Caller, grant_id: str, request: RevokeRequest) -> Grant:
        """Ledger first (no further sessions), then a deny-all on the role, then the role is
        torn down at once and its quotas given back. Re-running it on a revoked grant
        completes a revocation that stopped half way; what it cannot finish the auditor does.

        Tearing down at once does not weaken threat 20 (no role removed while its sessions
        may live): that rule keeps an expiring grant's sessions from losing access early, but
        a revoked grant's sessions are meant to lose it. The deny-all is in place before the
        first policy is removed and is removed last (iam.Iam.teardown), so at no step does a
        session hold more than before; once the role is gone AWS refuses its sessions."""
        policy = self._admitted(caller)
        grant = self._visible_grant(policy, caller, grant_id)
        now = self._now()
        if grant.mode is GrantMode.SHARED_ROLE:
            return self._revoke_shared(policy, caller, grant, now, request.reason)
        if grant.status == GrantStatus.ACTIVE:
            self._ledger.move(
                grant_id,
                GrantStatus.ACTIVE,
                GrantStatus.REVOKED,
                revoked_at=now,
                revoked_by=caller.arn,
            )
            grant = self._revoked(grant, caller, now, request.reason)
        elif grant.status != GrantStatus.REVOKED:
            raise GrantNotActive(f"grant {grant_id} is {grant.status.value}: nothing to revoke")
        if grant.role_removed_at is not None:
            return grant  # revoked and its role already gone: nothing left to do
        iam = self._iam_in(grant.target_account or self._settings.home_account)
        iam.deny_everything(grant.role_name)
        self._ledger.release_slot(grant)
        if iam.teardown(grant.role_name, tuple(grant.managed_policy_arns or ())):
            with contextlib.suppress(GrantNotActive):  # the auditor marked it cleaned meanwhile
                self._ledger.role_removed(grant, now=now)
            grant = grant.model_copy(update={"role_removed_at": now})
        return grant

    def _revoke_shared(
        self, policy: AccessPolicy, caller: Caller, grant: Grant, now: int, reason: str | None
    ) -> Grant:
        """Revoked in the ledger with the grant added to its shared role's list, in one
        transaction (refused, changing nothing, when the list is as long as IAM allows), then
        the list written to the role's deny. From then on every session tagged with the grant
        is refused. Re-running it on a revoked grant writes the deny again."""
        if grant.status not in (GrantStatus.ACTIVE, GrantStatus.REVOKED):
            raise GrantNotActive(
                f"grant {grant.grant_id} is {grant.status.value}: nothing to revoke"
            )
        profile = policy.profiles.get(grant.profile)
        grant_chars = (
            len(documents.compact(self._shared_grant_policy(profile)))
            if profile is not None
            else documents.SESSION_POLICY_MAX_CHARS
        )
        self._ledger.revoke_shared(
            grant,
            now=now,
            by=caller.arn,
            most_listed=documents.revoked_list_capacity(grant_chars),
        )
        if grant.status is GrantStatus.ACTIVE:
            grant = self._revoked(grant, caller, now, reason)
        self._ledger.release_slot(grant)
        self.write_revoked(grant.target_account or "", grant.profile)
        return grant

    def write_revoked(self, account: str, profile: str) -> None:
        """The shared role's deny made to list exactly the ledger's revoked grants
        (jit_broker.revocation: written again while another revocation, or the auditor's
        pruning, changed the list meanwhile)."""
        write_revoked(self._iam_in(account), self._ledger, account, profile)

    # --- approvals (issue 11) -----------------------------------------------------------
    @staticmethod
    def _new_grant(
        caller: Caller,
        request: GrantRequest,
        profile: Profile,
        account: str,
        now: int,
        **fields: Any,
    ) -> Grant:
        """A new grant of ``request`` by ``caller``, under a fresh id and the role name its
        mode gives it; ``fields``: its status, end and what its path adds."""
        grant_id = naming.new_grant_id()
        return Grant(
            grant_id=grant_id,
            profile=request.profile,
            requester_id=caller.requester_id,
            requester_arn=caller.arn,
            owner=caller.owner,
            account_id=caller.account_id,
            source_identity=caller.source_identity,
            reason=request.reason,
            ticket=request.ticket,
            created_at=now,
            role_name=(
                naming.shared_role_name(request.profile)
                if profile.mode is GrantMode.SHARED_ROLE
                else naming.role_name_for(grant_id)
            ),
            target_account=account,
            mode=profile.mode,
            **fields,
        )

    def _open_request(
        self,
        caller: Caller,
        request: GrantRequest,
        policy: AccessPolicy,
        profile: Profile,
        account: str,
        window: int,
        now: int,
    ) -> Grant:
        """A request for a profile with approvers: recorded awaiting them (status requested,
        its review deadline now plus the profile's review window) with its nonce and rate
        counter; nothing else. Its window starts when it is approved."""
        deadline = now + profile.review_window
        grant = self._new_grant(
            caller,
            request,
            profile,
            account,
            now,
            status=GrantStatus.REQUESTED,
            expires_at=deadline,
            approvals_required=profile.required_approvals,
            approvals_count=0,
            review_deadline=deadline,
            window_seconds=window,
            requester_person=caller.person,
        )
        self._ledger.open_request(
            grant, nonce=request.nonce, now=now, rate_limit=policy.limits.requests_per_minute
        )
        if self._events is not None:
            self._events.transition(grant, GrantStatus.REQUESTED, at=now, created=True)
        return grant

    @staticmethod
    def _may_decide(policy: AccessPolicy, caller: Caller, grant: Grant) -> bool:
        profile = policy.profiles.get(grant.profile)
        return profile is not None and policy.may_approve(profile, caller)

    def approvals_for(self, caller: Caller) -> list[Grant]:
        """The requests ``caller`` may decide now: of the profiles they approve, those
        awaiting approval whose deadline is ahead, not their own (not requested by the same
        person) and not yet decided by them; soonest deadline first. One bounded Query per
        profile they approve (its review partition), then the grants read by key."""
        policy = self._admitted(caller)
        now = self._now()
        ids = [
            gid for name in policy.approvable(caller) for gid in self._ledger.reviews(name, now=now)
        ]
        found = [
            grant
            for grant in self._ledger.get_grants(ids)
            if grant.status is GrantStatus.REQUESTED
            and not grant.lapsed(now)
            and grant.requester_person != caller.person
            and all(d.by.lower() != caller.person for d in grant.decisions or ())
            and self._may_decide(policy, caller, grant)
        ]
        return sorted(found, key=lambda g: (g.review_deadline or 0, g.grant_id))

    def decide(
        self, caller: Caller, grant_id: str, request: DecisionRequest, verdict: Verdict
    ) -> Grant:
        """An approver's approval or denial of a request (jit_broker.adapters.ledger.decide:
        self-approval, a second decision by the same person, a decision after the deadline
        are refused by the ledger's conditional write). A request past its deadline is moved
        to expired_unreviewed here and refused (409 review_expired)."""
        policy = self._admitted(caller)
        not_found = NotFound(f"no request {grant_id!r} awaits your decision")
        if not naming.is_grant_id(grant_id):
            raise not_found
        grant = self._ledger.get_grant(grant_id)
        if grant is None:
            raise not_found
        if grant.requester_person == caller.person or grant.owner == caller.owner:
            raise SelfApprovalRefused()  # the ledger's condition refuses it as well
        if not self._may_decide(policy, caller, grant):
            raise not_found  # not an approver of it: do not reveal that it exists
        now = self._now()
        if grant.lapsed(now):
            self._lapse(grant, now)
            raise ReviewExpired(
                f"grant {grant_id} was not reviewed in time (deadline {grant.review_deadline}): "
                "it is expired_unreviewed; its requester may ask again"
            )
        decision = Decision(
            verdict=verdict, by=caller.arn, by_id=caller.unique_id, at=now, comment=request.comment
        )
        try:
            after = self._ledger.decide(
                grant_id,
                decision,
                person=caller.person,
                owner=caller.owner,
                nonce=request.nonce,
                now=now,
            )
        except ReviewExpired:
            self._lapse(grant, now)
            raise
        if self._events is not None and after.status is not GrantStatus.REQUESTED:
            self._events.transition(  # the grant as approved: its window's end is told
                after,
                after.status,
                at=now,
                from_status=GrantStatus.REQUESTED,
                approver=caller.arn,
                comment=request.comment,
            )
        return after

    def _lapse(self, grant: Grant, now: int) -> None:
        """A request past its review deadline recorded expired_unreviewed (if it still is
        requested: the auditor or another reader may have done it)."""
        with contextlib.suppress(GrantNotActive):
            self._ledger.expire_unreviewed(grant, now=now)
            if self._events is not None:
                self._events.transition(grant, GrantStatus.EXPIRED_UNREVIEWED, at=now)

    # --- break-glass reviews (issue 11, part 3) -----------------------------------------
    def review(self, caller: Caller, grant_id: str, request: ReviewRequest) -> Grant:
        """Close a break-glass grant's review: by one of its profile's approvers, never its
        requester (the same user, or any session under the same role session name: refused
        by the ledger's conditional write as well, jit_broker.adapters.ledger.close_review),
        once; recorded with who (ARN and unique id), when and their comment. Whatever the
        grant's status (active, revoked, expired, cleaned): the review is of what was done."""
        policy = self._admitted(caller)
        not_found = NotFound(f"no break-glass grant {grant_id!r} awaits your review")
        if not naming.is_grant_id(grant_id):
            raise not_found
        grant = self._ledger.get_grant(grant_id)
        if grant is None or not grant.break_glass:
            raise not_found
        if grant.requester_person == caller.person or grant.owner == caller.owner:
            raise SelfReviewRefused()  # the ledger's condition refuses it as well
        if not self._may_decide(policy, caller, grant):
            raise not_found  # not an approver of it: do not reveal that it exists
        if grant.review is not None:
            raise ReviewClosed(
                f"grant {grant_id}'s review was closed by {grant.review.by} at {grant.review.at}"
            )
        review = Review(
            by=caller.arn, by_id=caller.unique_id, at=self._now(), comment=request.comment
        )
        return self._ledger.close_review(
            grant,
            review,
            person=caller.person,
            owner=caller.owner,
            nonce=request.nonce,
            now=review.at,
        ).as_of(review.at)

    def _take_up(
        self,
        policy: AccessPolicy,
        caller: Caller,
        grant: Grant,
        request: SessionRequest,
        now: int,
        time_left: TimeLeft | None,
    ) -> Issued:
        """The requester's first credentials of an approved grant: the limits judged now (a
        slot, the rate, the role quotas, as a grant without approvers meets them on request),
        then as such a grant is issued: its role and first session (approved → issuing →
        active), or a shared-role session (approved → active). Before approval: 409."""
        if grant.status is GrantStatus.REQUESTED:
            if grant.lapsed(now):
                self._lapse(grant, now)
                raise ReviewExpired(f"grant {grant.grant_id} was not reviewed in time: ask again")
            raise ApprovalPending(
                f"grant {grant.grant_id} awaits approval ({grant.approvals_count or 0} of "
                f"{grant.approvals_required} given): no credentials before it is approved"
            )
        if now >= grant.expires_at:
            raise GrantNotActive(
                f"grant {grant.grant_id}'s window (from its approval) ended at "
                f"{grant.expires_at}: request a new grant"
            )
        profile = policy.profiles.get(grant.profile)
        if profile is None or not policy.is_entitled(profile, caller):
            raise NotEntitled(f"{caller.requester_id} may no longer use {grant.profile!r}")
        counts = self._ledger.limit_counts(
            caller.owner,
            grant.profile,
            nonce=request.nonce,
            now=now,
            max_active=profile.max_active_grants,
            roles=grant.mode is GrantMode.PER_GRANT_ROLE,
        )
        slot = admission.check_limits(
            counts,
            name=grant.profile,
            profile=profile,
            rate_limit=policy.limits.requests_per_minute,
            max_roles=self._settings.max_roles,
            max_roles_per_owner=self._settings.max_roles_per_owner,
            refusals=Refusals(collect_all=False),
        )

        def take_up(taken: Grant, session: IssuedSession | None = None) -> None:
            self._ledger.take_up(
                taken,
                nonce=request.nonce,
                now=now,
                rate_limit=policy.limits.requests_per_minute,
                max_roles=self._settings.max_roles,
                max_roles_per_owner=self._settings.max_roles_per_owner,
                max_active=profile.max_active_grants,
                first_session=session,
            )

        grant = grant.model_copy(update={"slot": slot})
        if grant.mode is GrantMode.SHARED_ROLE:
            shared = self._shared_role(grant.target_account or "", grant.profile, profile)
            grant = grant.model_copy(
                update={
                    "role_arn": shared.role_arn,
                    "role_id": shared.role_id,
                    "policy_sha256": shared.policy_sha256,
                    "managed_policy_arns": shared.managed_policy_arns,
                }
            )
            credentials, session = self._assume(grant, profile, caller, now, time_left)
            active = grant.model_copy(update={"status": GrantStatus.ACTIVE, "sessions_issued": 1})
            take_up(active, session)
            return self._issued(active, credentials, now, from_status=GrantStatus.APPROVED)
        spec = self._role_spec(grant, profile)
        grant = grant.model_copy(
            update={
                "status": GrantStatus.ISSUING,
                "policy_sha256": policy_digest(spec.permissions_policy),
                "managed_policy_arns": sorted(spec.managed_policy_arns),
            }
        )
        take_up(grant)
        return self._make_role(grant, spec, profile, caller, now, time_left)

    # --- events: one place per transition, once the ledger holds it -------------------
    def _issued(
        self,
        grant: Grant,
        credentials: Credentials,
        now: int,
        *,
        from_status: GrantStatus | None,
        profile: Profile | None = None,
    ) -> Issued:
        """The ledger holds ``grant`` active (either mode): its Issued event, then the answer.
        ``from_status``: the status the ledger moved it from (None: it was recorded active).
        A break-glass grant's BreakGlassUsed follows, naming ``profile``'s approvers (every
        one of them is told at once) and when its review is due. A failed PutEvents is
        logged and counted, never the caller's failure."""
        if self._events is not None:
            self._events.transition(
                grant,
                GrantStatus.ACTIVE,
                at=now,
                from_status=from_status,
                created=from_status is None,
            )
            if grant.break_glass and profile is not None and profile.approvers is not None:
                self._events.transition(
                    grant,
                    GrantStatus.ACTIVE,
                    at=now,
                    from_status=from_status,
                    created=from_status is None,
                    event=GrantEventType.BREAK_GLASS_USED,
                    approvers=[*profile.approvers.users, *profile.approvers.roles],
                    review_due=grant.review_due,
                )
        return Issued(grant, credentials)

    def _revoked(self, grant: Grant, caller: Caller, now: int, reason: str | None) -> Grant:
        """The ledger moved the active ``grant`` to revoked (either mode): its Revoked event
        (who, and the reason they gave), and the grant as it now reads."""
        if self._events is not None:
            self._events.transition(
                grant, GrantStatus.REVOKED, at=now, revoked_by=caller.arn, revoke_reason=reason
            )
        return grant.model_copy(
            update={"status": GrantStatus.REVOKED, "revoked_at": now, "revoked_by": caller.arn}
        )

    # --- helpers -----------------------------------------------------------------------
    def _fail(self, grant: Grant, exc: BrokerError) -> None:
        """A grant whose role could not be made (and was rolled back): failed, with its role
        quotas and slot given back in the same transaction. If the ledger cannot record that,
        the slot is still freed on its own, so the caller's retry is not refused for a grant
        that never was; the auditor reconciles the rest (it fails issuing grants)."""
        try:
            self._ledger.fail(grant, failure=exc.code)
        except BrokerError:
            self._ledger.release_slot(grant)
            raise

    def _role_spec(self, grant: Grant, profile: Profile) -> RoleSpec:
        statements = _statements(profile)
        return RoleSpec(
            name=grant.role_name,
            path=self._settings.role_path,
            trust_policy=documents.trust_policy(self._settings.broker_role_arn, grant.expires_at),
            permissions_policy=documents.grant_policy(statements, grant.expires_at),
            managed_policy_arns=tuple(profile.permissions.managed),
            boundary_arn=self._settings.boundary_arn_in(
                grant.target_account or self._settings.home_account
            ),
            tags={
                documents.TAG_GRANT: grant.grant_id,
                documents.TAG_REQUESTER: naming.tag_value(grant.requester_id),
                documents.TAG_EXPIRES: str(grant.expires_at),
                documents.TAG_OWNER: self._settings.owner_tag,
                documents.TAG_PROFILE: grant.profile,
            },
            description=f"JIT grant {grant.grant_id} ({grant.profile})",
        )

    def _assume(
        self,
        grant: Grant,
        profile: Profile,
        caller: Caller,
        now: int,
        time_left: TimeLeft | None = None,
    ) -> tuple[Credentials, IssuedSession]:
        """One session for ``caller`` (the caller of this request: its SourceIdentity and
        tags name them, never a value stored with the grant)."""
        if grant.role_arn is None:  # activation recorded it: a grant without one is a bug
            raise RuntimeError(f"grant {grant.grant_id} has no role to assume")
        duration = naming.session_seconds(grant.expires_at - now, profile.max_session)
        source_identity = caller.source_identity
        session_name = naming.sts_name(f"jit-{source_identity}")
        credentials = self._sts.assume(
            role_arn=grant.role_arn,
            session_name=session_name,
            source_identity=source_identity,
            duration_seconds=duration,
            tags={
                documents.TAG_GRANT: grant.grant_id,
                documents.TAG_PROFILE: grant.profile,
                documents.TAG_REQUESTER: naming.tag_value(caller.arn),
            },
            time_left=None if time_left is None else time_left() - ANSWER_RESERVE_SECONDS,
            **self._session_scope(grant, profile),
        )
        session = IssuedSession(
            grant_id=grant.grant_id,
            access_key_id=credentials.access_key_id,
            issued_at=now,
            expires_at=credentials.expiration,
            source_identity=source_identity,
            session_name=session_name,
        )
        return credentials, session

    @staticmethod
    def _session_scope(grant: Grant, profile: Profile) -> dict[str, Any]:
        """A shared-role session's scope: the profile's permissions and the deny after its
        grant's expiry, as the session policy. A per-grant role's sessions need none."""
        if grant.mode is not GrantMode.SHARED_ROLE:
            return {}
        statements = _statements(profile)
        return {
            "session_policy": documents.compact(
                documents.session_policy(statements, grant.expires_at)
            ),
            "policy_arns": tuple(profile.permissions.managed),
        }


def _statements(profile: Profile) -> list[dict[str, Any]]:
    """The statements of the profile's inline policy (none when it has only managed ones)."""
    return profile.permissions.inline.statements() if profile.permissions.inline else []


# The inline policy of a shared role whose profile has only managed policies.
_NOTHING = {"Sid": "NoInlinePermissions", "Effect": "Deny", "NotAction": "*", "Resource": "*"}


def _may_request(profiles: dict[str, Profile]) -> str:
    if not profiles:
        return "you may not request any profile"
    return "you may request: " + ", ".join(profiles)
