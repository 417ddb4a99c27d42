"""Response bodies."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from jit_broker.models.domain import (
    Credentials,
    Decision,
    DenialLimit,
    DenialRule,
    Grant,
    GrantMode,
    Review,
)


class DecisionView(BaseModel):
    """One approver's decision on a request: who (ARN and unique id), when, why."""

    verdict: Literal["approve", "deny"]
    by: str
    by_id: str
    at: int
    comment: str

    @classmethod
    def of(cls, decision: Decision) -> DecisionView:
        return cls.model_validate(decision.model_dump(mode="json"))


class ReviewView(BaseModel):
    """The review that closed a break-glass grant: which approver, when, what they found."""

    by: str
    by_id: str
    at: int
    comment: str

    @classmethod
    def of(cls, review: Review) -> ReviewView:
        return cls.model_validate(review.model_dump(mode="json"))


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
    requester_arn: Annotated[
        str, Field(description="The exact caller who requested it (a role session's names it).")
    ] = ""
    approvals_required: Annotated[
        int | None,
        Field(description="Approvals the grant needs (null: a profile without approvers)."),
    ] = None
    approvals: Annotated[
        list[DecisionView], Field(description="Every decision of its approvers, in order.")
    ] = []
    review_deadline: Annotated[
        int | None,
        Field(
            description="A request (status requested) lapses to expired_unreviewed at this "
            "epoch second unless decided; while requested, expires_at is the same."
        ),
    ] = None
    window_seconds: Annotated[
        int | None, Field(description="The window asked for; it starts at approval.")
    ] = None
    approved_at: int | None = None
    break_glass: Annotated[
        bool,
        Field(
            description="Issued at once without approval (a break-glass profile): one of its "
            "approvers must close its review (POST /v1/grants/{grant_id}/review)."
        ),
    ] = False
    review_due: Annotated[
        int | None,
        Field(
            description="Break-glass: the review must be closed by this epoch second, else "
            "the auditor reports it (break_glass_review_open)."
        ),
    ] = None
    review: Annotated[
        ReviewView | None,
        Field(description="Break-glass: the review that closed it (null: still open)."),
    ] = None

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
            requester_arn=grant.requester_arn,
            approvals_required=grant.approvals_required,
            approvals=[DecisionView.of(d) for d in grant.decisions or ()],
            review_deadline=grant.review_deadline,
            window_seconds=grant.window_seconds,
            approved_at=grant.approved_at,
            break_glass=bool(grant.break_glass),
            review_due=grant.review_due,
            review=ReviewView.of(grant.review) if grant.review is not None else None,
        )


class GrantResponse(BaseModel):
    grant: GrantView


class GrantList(BaseModel):
    grants: list[GrantView]


class ApprovalList(BaseModel):
    """GET /v1/approvals: the requests you may decide now (status requested, deadline ahead,
    not your own, not yet decided by you), soonest deadline first."""

    grants: list[GrantView]


class GrantWithCredentials(BaseModel):
    grant: GrantView
    credentials: Credentials


class DenialView(BaseModel):
    """One rule that refuses the request, as a real request would be refused by it."""

    rule: Annotated[
        DenialRule,
        Field(
            description="entitlement: no such profile, or not yours to request; duration: "
            "longer than the profile allows; reason / ticket: the profile needs one (a ticket "
            "matching its pattern); account: not one of the profile's accounts, or none named "
            "among several; approvals: the profile needs more approvals than there are "
            "approvers other than you, so your request could never be approved; nonce: "
            "already used, send a fresh one; limits: see limit."
        ),
    ]
    limit: Annotated[
        DenialLimit | None,
        Field(
            description="For rule limits: active_grants (the profile's max active grants), "
            "rate (your credential requests this minute), owner_roles (the live grant roles "
            "one requester may hold), roles (the stack's live grant roles); else null."
        ),
    ] = None
    code: Annotated[
        str, Field(description="The error code a real request gets for it (error.code).")
    ]
    message: Annotated[str, Field(description="What is wrong and what to do about it.")]


class GrantDryRun(BaseModel):
    """The answer to a dry run (POST /v1/grants with dry_run true): nothing was granted or
    written. would_grant is true when no rule refuses the request now; a real request can
    still meet a change made meanwhile (another request taking the slot or the rate, the
    policy edited) or a failure of AWS.

    For a profile that does not exist or that the caller may not request, only the
    entitlement denial is given (what a real request's 404/403 says) and account,
    duration_seconds and mode are null: nothing of the profile is told."""

    dry_run: Literal[True]
    would_grant: bool
    profile: Annotated[str, Field(description="The profile asked for.")]
    account: Annotated[
        str | None,
        Field(description="The account the access would be in (null: not settled)."),
    ]
    duration_seconds: Annotated[
        int | None,
        Field(
            description="The grant window the request would get: its duration, else the "
            "profile's longest, at most 3600 (null: not told)."
        ),
    ]
    mode: Annotated[GrantMode | None, Field(description="The profile's grant mode.")]
    approvals_required: Annotated[
        int | None,
        Field(
            description="How many approvals the grant would need: 0, it is granted at once "
            "(201); otherwise the request would be accepted (202, status requested) and "
            "granted only once that many of the profile's approvers approve it. Needing "
            "approval is not a denial: would_grant stays true when nothing else refuses it. "
            "null: not told (a profile the caller may not request)."
        ),
    ] = None
    review_window: Annotated[
        int | None,
        Field(description="With approvals: seconds an unreviewed request stays open."),
    ] = None
    break_glass: Annotated[
        bool | None,
        Field(
            description="true: a break-glass profile: granted at once without approval "
            "(approvals_required 0), with a mandatory reason, a capped window "
            "(duration_seconds), every approver told at once and a review one of them must "
            "close within review_within seconds. null: not told."
        ),
    ] = None
    review_within: Annotated[
        int | None,
        Field(
            description="Break-glass: seconds after issue by which one of the profile's "
            "approvers must close the grant's review (POST /v1/grants/{grant_id}/review)."
        ),
    ] = None
    denials: Annotated[
        list[DenialView], Field(description="Every rule that refuses it; empty: none.")
    ]


class ProfileView(BaseModel):
    name: str
    description: str
    max_window: int
    max_session: int
    reason_required: bool
    ticket_pattern: str | None
    accounts: list[str]
    mode: str
    break_glass: Annotated[
        bool,
        Field(
            description="Granted at once without approval, with a mandatory reason and a "
            "capped window (max_window is already the cap); its approvers review it afterwards."
        ),
    ] = False


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
