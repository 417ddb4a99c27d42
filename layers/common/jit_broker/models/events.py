"""Grant events: the detail of the EventBridge event sent for each transition of a grant
(docs/events.md; the JSON schema of every detail-type is docs/events.schema.json).

An event is a notification, never the record: the ledger is. A detail holds who, what, where
and when of the grant, never a credential: no field can carry a secret key, a session token or
an access key id, and free text (reason, ticket, comment) has anything shaped like an access
key id replaced before it is sent.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from jit_broker.models.domain import Grant, GrantStatus

GRANT_EVENT_SOURCE = "jit-broker.grants"
SCHEMA_VERSION: Literal[1] = 1


class GrantEventType(StrEnum):
    """The detail-types of grant events, in the order a grant can meet them."""

    REQUESTED = "Requested"  # a request that waits for approvers (issue 11: approvals)
    APPROVED = "Approved"  # the approvals it needed are in
    DENIED = "Denied"  # an approver refused it
    ISSUED = "Issued"  # the grant is active: its role and first session exist
    BREAK_GLASS_USED = "BreakGlassUsed"  # a break-glass grant was issued without approval
    REVOKED = "Revoked"  # its owner or an administrator revoked it
    EXPIRED = "Expired"  # its window ended (or an unreviewed request lapsed)
    CLEANED = "Cleaned"  # nothing of it is left in IAM: the auditor closed it


DETAIL_TYPES: tuple[str, ...] = tuple(t.value for t in GrantEventType)

# Every status a detail may name, today's and the approvals' (issue 11, part 2); the schema's
# status enum is this list.
Status = Literal[
    "requested",
    "approved",
    "denied",
    "expired_unreviewed",
    "issuing",
    "active",
    "failed",
    "revoked",
    "expired",
    "cleaned",
]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]

# The detail-type of a move to each status (BreakGlassUsed is named by the caller).
EVENT_OF_STATUS: dict[str, GrantEventType] = {
    "requested": GrantEventType.REQUESTED,
    "approved": GrantEventType.APPROVED,
    "denied": GrantEventType.DENIED,
    "active": GrantEventType.ISSUED,
    "revoked": GrantEventType.REVOKED,
    "expired": GrantEventType.EXPIRED,
    "expired_unreviewed": GrantEventType.EXPIRED,
    "cleaned": GrantEventType.CLEANED,
}

# What an access key id looks like (AKIA long-term, ASIA temporary, and the other unique-id
# prefixes AWS documents): never sent, even when someone typed one into a reason.
_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA|ABIA|ACCA)[A-Z0-9]{12,}\b")
REDACTED = "[redacted]"


class GrantEventDetail(BaseModel):
    """The detail of a grant event (docs/events.schema.json, ``$defs/GrantDetail``). Fields
    that do not apply to a detail-type are left out of the JSON, never sent as null."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    grant_id: str
    profile: str
    account: Annotated[str, Field(pattern=r"^\d{12}$")]  # where the grant's access is
    requester_arn: str  # the exact caller who asked for it
    # None: the record did not exist before (Requested; Issued of a grant created active)
    from_status: Status | None
    to_status: Status
    at: Annotated[int, Field(ge=0)]  # when the transition was recorded, epoch seconds
    expires_at: Annotated[int, Field(ge=0)]  # the grant's window end, epoch seconds
    mode: Literal["per-grant-role", "shared-role"]
    reason: str | None = None
    ticket: str | None = None
    # Approved / Denied: the approver whose decision made the transition, and their comment.
    approver: str | None = None
    comment: str | None = None
    # Revoked: who revoked it (their ARN) and the reason they gave.
    revoked_by: str | None = None
    revoke_reason: str | None = None
    # BreakGlassUsed: every approver of the profile (user and role ARNs, as the access policy
    # names them), all told at once, and when one of them must have closed its review.
    approvers: Annotated[list[str], Field(min_length=1)] | None = None
    review_due: Annotated[int, Field(ge=0)] | None = None

    @field_validator("reason", "ticket", "comment", "revoke_reason")
    @classmethod
    def _no_key_ids(cls, value: str | None) -> str | None:
        return None if value is None else _KEY_ID.sub(REDACTED, value)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True) | {
            "from_status": self.from_status  # null: the record is new
        }


def grant_event(
    grant: Grant,
    to_status: GrantStatus | str,
    *,
    at: int,
    account: str,
    from_status: GrantStatus | str | None = None,
    created: bool = False,
    event: GrantEventType | None = None,
    **extra: Any,
) -> tuple[str, dict[str, Any]]:
    """(detail-type, detail) of ``grant`` moving to ``to_status``, recorded at ``at``, its
    access in ``account``. ``grant`` is the record as it was before the move, so
    ``from_status`` defaults to its status; ``created``: the record did not exist before the
    move (from_status null; always so for Requested). ``event`` names a detail-type the status
    alone does not (BreakGlassUsed). ``extra``: approver, comment, revoked_by, revoke_reason,
    approvers, review_due; any other name is refused (ValueError)."""
    to = str(to_status)
    detail_type = event or EVENT_OF_STATUS.get(to)
    if detail_type is None:
        raise ValueError(f"no grant event for a move to {to!r}")
    before: str | None
    if created or detail_type is GrantEventType.REQUESTED:
        before = None
    else:
        before = str(grant.status if from_status is None else from_status)
    detail = GrantEventDetail(
        grant_id=grant.grant_id,
        profile=grant.profile,
        account=account,
        requester_arn=grant.requester_arn,
        from_status=before,  # type: ignore[arg-type]  # validated against Status
        to_status=to,  # type: ignore[arg-type]
        at=at,
        expires_at=grant.expires_at,
        mode=grant.mode.value,  # type: ignore[arg-type]
        reason=grant.reason,
        ticket=grant.ticket,
        **extra,
    )
    return detail_type.value, detail.to_json()
