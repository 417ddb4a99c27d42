"""Typed failures. Each maps to exactly one HTTP status, in one place (the handler)."""

from __future__ import annotations


class BrokerError(Exception):
    """A failure the caller is told about: ``status`` and a stable machine-readable ``code``."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(BrokerError):
    status = 400
    code = "bad_request"


class NotAuthenticated(BrokerError):
    """The request context carries no usable, verified identity."""

    status = 403
    code = "not_authenticated"


class BrokerSessionRefused(BrokerError):
    """The caller is a session of one of the broker's own roles (a grant's, the broker's,
    the auditor's): such a caller may mint nothing (threat 27)."""

    status = 403
    code = "broker_session_refused"


class NotEntitled(BrokerError):
    status = 403
    code = "not_entitled"


class NotFound(BrokerError):
    status = 404
    code = "not_found"


class Conflict(BrokerError):
    status = 409
    code = "conflict"


class GrantNotActive(Conflict):
    code = "grant_not_active"


class ApprovalPending(Conflict):
    """The grant awaits its approvers: no role and no credentials exist for it yet."""

    code = "approval_pending"


class NotAwaitingApproval(Conflict):
    """A decision on a grant that is no longer (or never was) awaiting approval."""

    code = "not_awaiting_approval"


class ReviewExpired(Conflict):
    """Nobody decided the request within its profile's review window: it is
    expired_unreviewed, and can be neither approved nor denied."""

    code = "review_expired"


class AlreadyDecided(Conflict):
    """This approver (this person, whichever of their sessions) already decided the request."""

    code = "already_decided"

    def __init__(
        self, message: str = "you already decided this request: one decision per approver"
    ) -> None:
        super().__init__(message)


class SelfApprovalRefused(BrokerError):
    """The approver is the requester (the same user, or the same role session name): refused
    by the ledger's conditional write, whatever the code before it checked."""

    status = 403
    code = "self_approval_refused"

    def __init__(
        self,
        message: str = "you may not decide your own request (nor may another session of you): "
        "ask another approver",
    ) -> None:
        super().__init__(message)


class SelfReviewRefused(BrokerError):
    """The reviewer of a break-glass grant is its requester (the same user, or the same role
    session name): refused by the ledger's conditional write, as a self-approval is."""

    status = 403
    code = "self_review_refused"

    def __init__(
        self,
        message: str = "you may not review your own break-glass grant (nor may another session "
        "of you): another of its profile's approvers must",
    ) -> None:
        super().__init__(message)


class ReviewClosed(Conflict):
    """A break-glass grant's review is already closed (or the grant has none to close)."""

    code = "review_closed"


class ReplayedRequest(Conflict):
    """The request's nonce was already used by this caller (a replay, or a resent request)."""

    code = "replayed_request"

    def __init__(
        self, message: str = "this request was already made (same nonce): send a fresh nonce"
    ) -> None:
        super().__init__(message)


class RevocationListFull(BrokerError):
    """A shared role's revocation deny is as long as IAM's policy size allows: revoking
    another grant of it is refused (loudly: nothing changed) until the auditor prunes the
    grants whose sessions have all ended."""

    status = 503
    code = "revocation_list_full"


class AccountUnreachable(BrokerError):
    """A member account's execution role could not be assumed (not deployed, or its trust
    does not name this broker)."""

    status = 503
    code = "account_unreachable"


class TooManyRequests(BrokerError):
    status = 429
    code = "too_many_requests"


# Each limit a grant request may meet: its own type (one code, too_many_requests, as before),
# its message written once for the check before the ledger write and the write's condition.
class RateLimited(TooManyRequests):
    """The caller's credential requests this minute are at the access policy's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"too many credential requests this minute (limit {limit}): try again shortly"
        )


class ActiveGrantsHeld(TooManyRequests):
    """The caller holds as many active grants of the profile as it allows."""

    def __init__(self, profile: str, most: int) -> None:
        super().__init__(
            f"you already hold {most} active grant(s) of {profile!r} (the most it allows): "
            "use or revoke one first"
        )


class OwnerRoleCapReached(TooManyRequests):
    """The caller holds as many live grant roles as one requester may (JIT_MAX_ROLES_PER_OWNER)."""

    def __init__(self, most: int) -> None:
        super().__init__(
            f"you hold {most} live grant roles (the most one requester may): revoke a grant "
            "you no longer need"
        )


class RoleCapReached(TooManyRequests):
    """The stack holds as many live grant roles as it may (JIT_MAX_ROLES)."""

    def __init__(self, most: int) -> None:
        super().__init__(f"the broker is at its cap of {most} live grant roles: try again later")


class LedgerUnavailable(BrokerError):
    """The ledger could not be written: no credentials may leave the broker."""

    status = 503
    code = "ledger_unavailable"


class AwsUnavailable(BrokerError):
    """IAM or STS failed in a way retrying later may fix."""

    status = 503
    code = "aws_unavailable"


class PolicyUnavailable(BrokerError):
    """The access policy cannot be read (no such parameter or file, SSM refused or down)."""

    status = 503
    code = "policy_unavailable"


class PolicyInvalid(Exception):
    """The access policy document does not validate; ``errors`` name the bad fields by path."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("access policy is invalid:\n  " + "\n  ".join(errors))
        self.errors = errors
