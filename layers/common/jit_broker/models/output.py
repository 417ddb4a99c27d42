"""Response bodies."""

from __future__ import annotations

from pydantic import BaseModel

from jit_broker.models.domain import Credentials, Grant


class GrantView(BaseModel):
    id: str
    profile: str
    status: str
    requester: str
    reason: str | None
    ticket: str | None
    created_at: int
    expires_at: int
    role_arn: str | None
    sessions_issued: int
    revoked_at: int | None
    account: str | None  # the account the access is in (None: the broker's own, older grants)
    mode: str

    @classmethod
    def of(cls, grant: Grant) -> GrantView:
        return cls(
            id=grant.grant_id,
            profile=grant.profile,
            status=grant.status.value,
            requester=grant.requester_id,
            reason=grant.reason,
            ticket=grant.ticket,
            created_at=grant.created_at,
            expires_at=grant.expires_at,
            role_arn=grant.role_arn,
            sessions_issued=grant.sessions_issued,
            revoked_at=grant.revoked_at,
            account=grant.target_account,
            mode=grant.mode.value,
        )


class GrantResponse(BaseModel):
    grant: GrantView


class GrantList(BaseModel):
    grants: list[GrantView]


class GrantWithCredentials(BaseModel):
    grant: GrantView
    credentials: Credentials


class ProfileView(BaseModel):
    name: str
    description: str
    max_window: int
    max_session: int
    reason_required: bool
    ticket_pattern: str | None
    accounts: list[str]
    mode: str


class ProfileList(BaseModel):
    profiles: list[ProfileView]


class WhoAmI(BaseModel):
    arn: str
    requester_id: str
    account_id: str
    principal_type: str
    name: str


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
