"""Ledger records. Times are epoch seconds (UTC) everywhere; never text."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class GrantMode(StrEnum):
    """How a grant's access is held (DESIGN.md, grant modes)."""

    PER_GRANT_ROLE = "per-grant-role"  # a role of its own: exact deny-after-expiry, IAM writes
    SHARED_ROLE = "shared-role"  # the profile's shared role, each session scoped by its policy


class DenialRule(StrEnum):
    """A rule that refuses a grant request, in the order a real request meets them."""

    ENTITLEMENT = "entitlement"  # no such profile, or the caller may not request it
    DURATION = "duration"  # longer than the profile's window
    REASON = "reason"  # the profile needs one
    TICKET = "ticket"  # the profile needs one matching its pattern
    ACCOUNT = "account"  # not one of the profile's accounts (or none named among several)
    # Issue 11: the profile needs more approvals than it names approvers other than the
    # caller: the request could never be approved. Needing approval is not a refusal.
    APPROVALS = "approvals"
    NONCE = "nonce"  # already used by this caller: the request would be a replay
    LIMITS = "limits"  # one of DenialLimit


class DenialLimit(StrEnum):
    ACTIVE_GRANTS = "active_grants"  # the profile's max_active_grants, held by the caller
    RATE = "rate"  # the policy's requests_per_minute, spent by the caller this minute
    OWNER_ROLES = "owner_roles"  # the live grant roles one requester may hold
    ROLES = "roles"  # the live grant roles the whole stack may hold


class GrantStatus(StrEnum):
    # A request for a profile with approvers, awaiting their decision (issue 11): no role,
    # no credentials. Shown to callers as it is stored.
    REQUESTED = "requested"
    APPROVED = "approved"  # enough approvals: its window runs from approval
    DENIED = "denied"  # an approver refused it: final
    EXPIRED_UNREVIEWED = "expired_unreviewed"  # nobody decided within the review window: final
    # Being issued: recorded, its role (or first session) being made. Was "requested" before
    # approvals existed; a grant stays here only for the seconds of one request (or, after a
    # crash, until the auditor reconciles it to failed).
    ISSUING = "issuing"
    ACTIVE = "active"
    FAILED = "failed"
    REVOKED = "revoked"
    EXPIRED = "expired"
    CLEANED = "cleaned"


# Status moves only forward; the ledger's writes are conditional on the status they move from.
# requested → approved / denied / expired_unreviewed; approved → issuing (a per-grant role is
# made) or active (a shared-role grant's first session), or expired (never taken up within its
# window); issuing → active, or failed (the role could not be made and was rolled back);
# active → revoked / expired → cleaned. Denied and expired_unreviewed grants held nothing.
FORWARD: dict[GrantStatus, frozenset[GrantStatus]] = {
    GrantStatus.REQUESTED: frozenset(
        {GrantStatus.APPROVED, GrantStatus.DENIED, GrantStatus.EXPIRED_UNREVIEWED}
    ),
    GrantStatus.APPROVED: frozenset({GrantStatus.ISSUING, GrantStatus.ACTIVE, GrantStatus.EXPIRED}),
    GrantStatus.DENIED: frozenset(),
    GrantStatus.EXPIRED_UNREVIEWED: frozenset(),
    GrantStatus.ISSUING: frozenset({GrantStatus.ACTIVE, GrantStatus.FAILED}),
    GrantStatus.ACTIVE: frozenset({GrantStatus.REVOKED, GrantStatus.EXPIRED}),
    GrantStatus.FAILED: frozenset({GrantStatus.CLEANED}),
    GrantStatus.REVOKED: frozenset({GrantStatus.CLEANED}),
    GrantStatus.EXPIRED: frozenset({GrantStatus.CLEANED}),
    GrantStatus.CLEANED: frozenset(),
}


def can_move(current: GrantStatus, new: GrantStatus) -> bool:
    return new in FORWARD[current]


class Verdict(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class Decision(BaseModel):
    """One approver's decision on a request, as the ledger records it (who, when, why)."""

    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    by: str  # the approver's ARN, as API Gateway verified it
    by_id: str  # their unique id (requestContext identity.caller)
    at: int
    comment: str


class Review(BaseModel):
    """The review that closes a break-glass grant (issue 11, part 3): which approver, when,
    and what they found. Never by the grant's requester (the ledger's condition)."""

    model_config = ConfigDict(extra="forbid")

    by: str  # the approver's ARN, as API Gateway verified it
    by_id: str  # their unique id (requestContext identity.caller)
    at: int
    comment: str


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grant_id: str
    profile: str
    requester_id: str  # what entitlement was judged on: the user ARN, or the role ARN
    requester_arn: str  # the exact caller's ARN (a role session's names the session)
    owner: str  # identity.Caller.owner: whose grant it is (ARN and unique id)
    account_id: str
    source_identity: str
    reason: str | None = None
    ticket: str | None = None
    status: GrantStatus
    created_at: int
    expires_at: int
    role_name: str
    # The account the grant's access is in (its role's); None on records older than member
    # accounts: the hub's (the broker's own account).
    target_account: str | None = None
    mode: GrantMode = GrantMode.PER_GRANT_ROLE
    role_arn: str | None = None
    role_id: str | None = None
    sessions_issued: int = 0
    slot: int | None = None  # which of the profile's active-grant slots it holds
    revoked_at: int | None = None
    revoked_by: str | None = None
    role_removed_at: int | None = None  # a revoked grant's role was torn down at once
    failure: str | None = None
    failed_at: int | None = None  # set when the auditor reconciled a crashed request
    cleaned_at: int | None = None  # the grant's role is gone (the auditor removed it)
    # What the broker writes on the grant's role, recorded with the grant before the role is
    # made, so drift is judged against it and not against a profile edited since. None: a
    # record older than these fields (the auditor then falls back to the current profile).
    policy_sha256: str | None = None  # jit-grant document: documents.policy_digest
    managed_policy_arns: list[str] | None = None  # sorted; [] when the profile has none
    # Approvals (issue 11); all None for a profile without approvers. While the grant is
    # requested, expires_at is its review deadline; on approval it becomes approved_at plus
    # window_seconds (its window starts at approval).
    approvals_required: int | None = None
    approvals_count: int | None = None  # approvals recorded so far (the ledger's condition)
    review_deadline: int | None = None
    window_seconds: int | None = None
    requester_person: str | None = None  # identity.Caller.person: never one of its approvers
    approved_at: int | None = None
    denied_at: int | None = None
    decisions: list[Decision] | None = None
    # Break-glass (issue 11, part 3): issued at once without approval; one of the profile's
    # approvers (never its requester) must close its review, by review_due or the auditor
    # reports it. None on other grants. requester_person is recorded for these too.
    break_glass: bool | None = None
    review_due: int | None = None
    review: Review | None = None

    def lapsed(self, now: int) -> bool:
        """A request nobody decided in time: expired_unreviewed from its deadline on, whether
        or not the ledger says so yet."""
        return (
            self.status is GrantStatus.REQUESTED
            and self.review_deadline is not None
            and now >= self.review_deadline
        )

    def as_of(self, now: int) -> Grant:
        """The grant as it stands at ``now``: a lapsed request reads expired_unreviewed."""
        if self.lapsed(now):
            return self.model_copy(update={"status": GrantStatus.EXPIRED_UNREVIEWED})
        return self


class IssuedSession(BaseModel):
    """What the ledger keeps of a session: never the secret key or the token."""

    model_config = ConfigDict(extra="forbid")

    grant_id: str
    access_key_id: str
    issued_at: int
    expires_at: int
    source_identity: str
    session_name: str


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: int


class SharedRole(BaseModel):
    """The ledger's record of a profile's shared role in one account (mode shared-role):
    what its jit-grant policy and managed policies were written as, and the grants its
    revocation deny must list (``rev`` counts the list's changes)."""

    model_config = ConfigDict(extra="forbid")

    account: str
    profile: str
    role_arn: str | None = None
    role_id: str | None = None
    policy_sha256: str | None = None
    managed_policy_arns: list[str] = []
    revoked: list[str] = []  # sorted grant ids
    rev: int = 0


class LimitCounts(BaseModel):
    """What the ledger holds now against a caller's next grant: read before anything is
    written (and by a dry run instead of writing), judged by jit_broker.admission with the
    same limits the ledger's write then enforces atomically."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nonce_used: bool  # the request's nonce is already recorded for this caller
    requests_this_minute: int  # the caller's credential requests (grants and sessions)
    held_slots: frozenset[int] = frozenset()  # the profile's active-grant slots held now
    live_roles: int | None = None  # the stack's live grant roles (None: not read)
    owner_live_roles: int | None = None  # the caller's live grant roles (None: not read)
