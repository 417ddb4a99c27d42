"""The functions' environments as pydantic models, read once (never at import time)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Annotated, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_MANAGED_POLICY_ARN = r"^arn:aws[\w-]*:iam::(aws|\d{12}):policy/.+"


class _StackSettings(BaseModel):
    """What the broker and the auditor both read: the stack's table, boundary, roles, owner
    tag and where the access policy lives. ``ENV`` maps each field to its variable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ENV: ClassVar[dict[str, str]] = {
        "table_name": "JIT_TABLE_NAME",
        "boundary_policy_arn": "JIT_BOUNDARY_POLICY_ARN",
        "broker_role_arn": "JIT_BROKER_ROLE_ARN",
        "auditor_role_arn": "JIT_AUDITOR_ROLE_ARN",
        "owner_tag": "JIT_OWNER_TAG",
        "role_path": "JIT_ROLE_PATH",
        "policy_parameter": "JIT_POLICY_PARAMETER",
        "policy_file": "JIT_POLICY_FILE",
        "allow_clock_override": "JIT_ALLOW_CLOCK_OVERRIDE",
        "member_accounts": "JIT_MEMBER_ACCOUNTS",
        "member_role_name": "JIT_MEMBER_ROLE_NAME",
        "grant_event_bus": "JIT_GRANT_EVENT_BUS",
    }

    table_name: Annotated[str, Field(min_length=3)]
    boundary_policy_arn: Annotated[str, Field(pattern=r"^arn:aws[\w-]*:iam::\d{12}:policy/.+")]
    broker_role_arn: Annotated[str, Field(pattern=r"^arn:aws[\w-]*:iam::\d{12}:role/.+")]
    # The auditor's (cleanup function's) role: like the broker's own, never a caller.
    auditor_role_arn: Annotated[
        str | None, Field(pattern=r"^arn:aws[\w-]*:iam::\d{12}:role/.+")
    ] = None
    owner_tag: Annotated[str, Field(min_length=1, max_length=128)]
    # The stack's own path (template.yaml: /jit/<stack name>/), so stacks sharing an account
    # never touch each other's roles: one or more IAM path segments.
    role_path: Annotated[str, Field(pattern=r"^(/[\w+=,.@-]+)+/$", max_length=512)] = "/jit/"
    policy_parameter: str | None = None
    policy_file: str | None = None
    # Only the local stack sets this: an audit may then evaluate "as of" another time.
    allow_clock_override: bool = False
    # The member accounts (template.yaml's MemberAccountIds, comma-separated) and the name of
    # the execution role the member template makes in each (templates/member-account.yaml).
    member_accounts: tuple[Annotated[str, Field(pattern=r"^\d{12}$")], ...] = ()
    member_role_name: Annotated[str, Field(pattern=r"^[\w+=,.@-]{1,64}$")] | None = None
    # The bus of grant events (template.yaml's GrantEventBus, docs/events.md): the broker
    # sends Issued and Revoked there, the auditor Expired and Cleaned. Unset: none is sent.
    grant_event_bus: Annotated[str | None, Field(min_length=1, max_length=256)] = None

    @field_validator("member_accounts", mode="before")
    @classmethod
    def _accounts_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(a.strip() for a in value.split(",") if a.strip())
        return value

    @property
    def home_account(self) -> str:
        """The hub: the account the stack (and the broker's role) is in."""
        return self.broker_role_arn.split(":")[4]

    @property
    def stack_accounts(self) -> tuple[str, ...]:
        """Every account the stack grants access in: its own, then its members."""
        return (self.home_account, *(a for a in self.member_accounts if a != self.home_account))

    def boundary_arn_in(self, account: str) -> str:
        """The JIT boundary in ``account``: the member template makes it under the same name."""
        parts = self.boundary_policy_arn.split(":", 5)
        parts[4] = account
        return ":".join(parts)

    def member_role_arn(self, account: str) -> str:
        """The member template's execution role in ``account``."""
        partition = self.broker_role_arn.split(":")[1]
        return f"arn:{partition}:iam::{account}:role/{self.member_role_name}"

    @model_validator(mode="after")
    def _members_need_their_role(self) -> Self:
        if self.member_accounts and not self.member_role_name:
            raise ValueError("JIT_MEMBER_ACCOUNTS needs JIT_MEMBER_ROLE_NAME (the execution role)")
        return self

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Self:
        env = dict(os.environ if env is None else env)
        return cls.model_validate({k: env[v] for k, v in cls.ENV.items() if env.get(v)})


class Settings(_StackSettings):
    """The broker function's environment."""

    ENV: ClassVar[dict[str, str]] = {
        **_StackSettings.ENV,
        "max_roles": "JIT_MAX_ROLES",
        "max_roles_per_owner": "JIT_MAX_ROLES_PER_OWNER",
        "audit_function": "JIT_AUDIT_FUNCTION",
        "managed_policy_allow_list": "JIT_MANAGED_POLICY_ALLOW_LIST",
        "assume_retry_budget_seconds": "JIT_ASSUME_RETRY_BUDGET_SECONDS",
    }

    max_roles: Annotated[int, Field(ge=1, le=5000)] = 500
    # Live grant roles one owner (one person) may hold at once, so no one fills max_roles
    # for everyone else (threat 29).
    max_roles_per_owner: Annotated[int, Field(ge=1, le=5000)] = 20
    # How long AssumeRole is retried while IAM makes a new role assumable (seconds). With
    # the function's 25 s timeout: ~1 s before it (policy, ledger, CreateRole), the budget,
    # then the activation write; the broker also stops retrying in time to answer before
    # the invocation's own end (grants.ANSWER_RESERVE_SECONDS).
    assume_retry_budget_seconds: Annotated[float, Field(ge=0, le=20)] = 18.0
    # The managed policies the stack lets the broker attach (template.yaml's
    # ManagedPolicyAllowList, comma-separated): the access policy's allow list must be
    # among them, or it does not load. Unset: none.
    managed_policy_allow_list: tuple[Annotated[str, Field(pattern=_MANAGED_POLICY_ARN)], ...] = ()
    # POST /v1/audit invokes this function (the auditor); unset: the audit route answers 503.
    audit_function: Annotated[str | None, Field(min_length=1, max_length=140)] = None

    @field_validator("managed_policy_allow_list", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(arn.strip() for arn in value.split(",") if arn.strip())
        return value

    @property
    def own_role_names(self) -> frozenset[str]:
        """The names of the stack's own roles (the broker's, the auditor's): never callers."""
        arns = (self.broker_role_arn, self.auditor_role_arn)
        return frozenset(arn.rsplit("/", 1)[-1] for arn in arns if arn)

    @model_validator(mode="after")
    def _one_policy_source(self) -> Settings:
        if bool(self.policy_parameter) == bool(self.policy_file):
            raise ValueError("set exactly one of JIT_POLICY_PARAMETER or JIT_POLICY_FILE")
        return self


class AuditSettings(_StackSettings):
    """The auditor's (cleanup function's) environment."""

    ENV: ClassVar[dict[str, str]] = {
        **_StackSettings.ENV,
        "event_bus_name": "JIT_AUDIT_EVENT_BUS",
        "drift_quarantine": "JIT_DRIFT_QUARANTINE",
        "min_role_age_seconds": "JIT_AUDIT_MIN_ROLE_AGE",
        "clock_skew_seconds": "JIT_AUDIT_CLOCK_SKEW",
        "max_deletions_per_run": "JIT_AUDIT_MAX_DELETIONS",
        "deep_drift_checks_per_run": "JIT_AUDIT_DRIFT_CHECKS",
        "page_size": "JIT_AUDIT_PAGE_SIZE",
    }

    event_bus_name: Annotated[str | None, Field(min_length=1, max_length=256)] = None
    drift_quarantine: bool = False
    # A role younger than this is never removed (one being created right now, IAM's
    # eventual consistency): well above the broker's 25 s timeout.
    min_role_age_seconds: Annotated[int, Field(ge=60, le=86400)] = 600
    clock_skew_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    max_deletions_per_run: Annotated[int, Field(ge=1, le=10000)] = 200
    deep_drift_checks_per_run: Annotated[int, Field(ge=0, le=10000)] = 25
    page_size: Annotated[int, Field(ge=1, le=1000)] = 1000
    # Stop this long before the Lambda timeout (and before the run's own budget runs out).
    safety_margin_ms: Annotated[int, Field(ge=0, le=60000)] = 5000

    @model_validator(mode="after")
    def _at_most_one_policy_source(self) -> AuditSettings:
        if self.policy_parameter and self.policy_file:
            raise ValueError("set at most one of JIT_POLICY_PARAMETER or JIT_POLICY_FILE")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
