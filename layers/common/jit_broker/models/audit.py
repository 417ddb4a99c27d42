"""The auditor's input (the API body, the cleanup function's event) and its run report."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

# `at` must be a plausible epoch second: after 2001-09-09 and before the year 2100.
_MIN_AT = 1_000_000_000
_MAX_AT = 4_102_444_800


class AuditRequest(BaseModel):
    """POST /v1/audit body. ``at`` (evaluate as if the clock read this epoch second) is
    accepted only where the broker's settings allow clock overrides (the local stack)."""

    model_config = ConfigDict(extra="forbid")

    dry_run: Annotated[
        StrictBool, Field(description="Report what would be done and change nothing.")
    ] = False
    at: Annotated[
        StrictInt | None,
        Field(ge=_MIN_AT, le=_MAX_AT, description="Evaluate as of this epoch second (local only)."),
    ] = None


class AuditEvent(BaseModel):
    """What the cleanup function is invoked with: EventBridge's scheduled event (its fields
    are ignored), ``{"dry_run": true}``, or the broker's invocation for POST /v1/audit."""

    model_config = ConfigDict(extra="ignore")

    dry_run: StrictBool = False
    at: Annotated[StrictInt | None, Field(ge=_MIN_AT, le=_MAX_AT)] = None
    budget_ms: Annotated[StrictInt | None, Field(ge=1000, le=900_000)] = None
    requested_by: Annotated[str | None, Field(max_length=2048)] = None


class Finding(BaseModel):
    """Something the auditor saw and did not (or could not) put right by removing a role."""

    kind: str
    account: str | None = None  # the account it is in (None: about the run as a whole)
    role_name: str | None = None
    grant_id: str | None = None
    detail: str = ""


class _Tally(BaseModel):
    """What a sweep checked, did (or, in a dry run, would do) and found wrong."""

    complete: bool = True
    # why the sweep stopped before the end: "time_budget" or "account_unreachable"
    stopped: str | None = None
    roles_listed: int = 0
    roles_checked: int = 0  # under exactly the broker's path
    list_calls: int = 0
    tag_reads: int = 0
    drift_checks: int = 0
    grants_open: int = 0
    expired: list[str] = []  # grant ids marked expired
    denied: list[str] = []  # role names given the deny-all
    removed: list[str] = []  # role names deleted
    cleaned: list[str] = []  # grant ids marked cleaned
    failed: list[str] = []  # requested grants reconciled to failed after a crash
    quarantined: list[str] = []  # drifted roles given the deny-all
    deferred: list[str] = []  # removals left for the next run (the per-run cap)
    unlisted: list[str] = []  # revoked shared-role grants taken off their role's deny
    findings: list[Finding] = []


class AccountReport(_Tally):
    """One account's sweep (the hub's or a member's): its own budget, cursor and findings."""

    account: str


class AuditReport(_Tally):
    """One run over every account of the stack. The counts and lists are the accounts'
    together (and the run's own findings, which name no account or one it could not sweep);
    ``accounts`` holds each account's own."""

    dry_run: bool
    now: int
    accounts: list[AccountReport] = []
    # requests nobody decided within their review window, now expired_unreviewed
    unreviewed: list[str] = []
    # break-glass grants whose review is still open past its due time (each also a finding,
    # break_glass_review_open)
    break_glass_reviews_open: list[str] = []


class AuditResponse(BaseModel):
    report: AuditReport
