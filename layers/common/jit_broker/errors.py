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


class ReplayedRequest(Conflict):
    code = "replayed_request"


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
