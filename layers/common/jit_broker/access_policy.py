"""The written access policy: which profiles exist and who may request them.

A YAML document validated by pydantic. Unknown fields are errors, and an invalid document is
reported with the path of every bad field (``profiles.s3-read.max_session: ...``). Matching is
exact: profile names, user ARNs, role ARNs and account ids are compared whole, never as
patterns.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jit_broker import documents
from jit_broker.errors import PolicyInvalid
from jit_broker.identity import Caller
from jit_broker.models.domain import GrantMode
from jit_broker.models.input import PROFILE_NAME_PATTERN
from jit_broker.naming import MAX_CHAINED_SESSION_SECONDS, MAX_WINDOW_SECONDS, MIN_SESSION_SECONDS

ROLE_POLICY_MAX_CHARS = documents.ROLE_POLICIES_MAX_CHARS
SESSION_POLICY_MAX_CHARS = documents.SESSION_POLICY_MAX_CHARS
_USER_ARN = r"^arn:aws[\w-]*:iam::\d{12}:user/(?:[\w+=,.@/-]*/)?[\w+=,.@-]{1,64}$"
_ROLE_ARN = r"^arn:aws[\w-]*:iam::\d{12}:role/(?:[\w+=,.@/-]*/)?[\w+=,.@-]{1,64}$"
_MANAGED_ARN = r"^arn:aws[\w-]*:iam::(aws|\d{12}):policy/(?:[\w+=,.@/-]*/)?[\w+=,.@-]{1,128}$"
_ACCOUNT = r"^\d{12}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Statement(_Strict):
    """An identity-policy statement (no Principal: these go on the grant's role)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    Sid: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9]{1,64}$")] = None
    Effect: str
    Action: str | list[str] | None = None
    NotAction: str | list[str] | None = None
    Resource: str | list[str] | None = None
    NotResource: str | list[str] | None = None
    Condition: dict[str, dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _shape(self) -> Statement:
        if self.Effect not in ("Allow", "Deny"):
            raise ValueError("Effect must be Allow or Deny")
        if (self.Action is None) == (self.NotAction is None):
            raise ValueError("give exactly one of Action or NotAction")
        if (self.Resource is None) == (self.NotResource is None):
            raise ValueError("give exactly one of Resource or NotResource")
        return self


_Statement = Statement  # inside PolicyDocument, "Statement" names its field


class PolicyDocument(_Strict):
    Version: str = "2012-10-17"
    Statement: Annotated[list[Statement], Field(min_length=1)]

    @field_validator("Version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value != "2012-10-17":
            raise ValueError("Version must be 2012-10-17")
        return value

    @field_validator("Statement")
    @classmethod
    def _sids(cls, statements: list[_Statement]) -> list[_Statement]:
        """IAM needs a statement's Sid to be unique in its policy, and the broker writes its
        own statements into the grant's role: a profile may take neither."""
        counts = Counter(s.Sid for s in statements if s.Sid is not None)
        problems = [f"Sid {sid!r} is used by {n} statements" for sid, n in counts.items() if n > 1]
        problems += [
            f"Sid {sid!r} is the broker's own (it names a statement the broker writes)"
            for sid in counts
            if sid in broker_sids()
        ]
        if problems:
            raise ValueError("; ".join(problems) + ": give each statement its own Sid")
        return statements

    def statements(self) -> list[dict[str, Any]]:
        return [s.model_dump(exclude_none=True) for s in self.Statement]


@cache
def broker_sids() -> frozenset[str]:
    """The Sids of every statement the broker writes (documents.py), read from the documents
    themselves so that a statement added there is reserved here too."""
    written = (
        documents.grant_policy([], 0),
        documents.deny_all(),
        documents.trust_policy("arn:aws:iam::000000000000:role/broker", 0),
    )
    return frozenset(s["Sid"] for d in written for s in d["Statement"] if "Sid" in s)


class Permissions(_Strict):
    inline: PolicyDocument | None = None
    managed: list[Annotated[str, Field(pattern=_MANAGED_ARN)]] = []

    @model_validator(mode="after")
    def _some(self) -> Permissions:
        if self.inline is None and not self.managed:
            raise ValueError("give an inline policy document, managed policy ARNs, or both")
        if len(self.managed) > 10:
            raise ValueError("at most 10 managed policies may be attached to a role")
        return self


class Requesters(_Strict):
    users: list[Annotated[str, Field(pattern=_USER_ARN)]] = []
    roles: list[Annotated[str, Field(pattern=_ROLE_ARN)]] = []
    accounts: list[Annotated[str, Field(pattern=_ACCOUNT)]] = []


class Approvers(_Strict):
    """Who may approve a profile's requests (issue 11): IAM users by exact ARN, roles by exact
    ARN (any session of the role; the role's path does not count, as for requesters)."""

    users: Annotated[list[Annotated[str, Field(pattern=_USER_ARN)]], Field(max_length=100)] = []
    roles: Annotated[list[Annotated[str, Field(pattern=_ROLE_ARN)]], Field(max_length=100)] = []

    def distinct(self) -> int:
        """How many distinct approvers are named (a role counts once, however many people
        may take its sessions)."""
        return len(set(self.users)) + len({_without_path(arn) for arn in self.roles})


DEFAULT_REVIEW_WINDOW = 3600  # an unreviewed request stays open an hour...
MAX_REVIEW_WINDOW = 86400  # ...or as the profile says, at most a day
MIN_REVIEW_WINDOW = 300

# Break-glass (issue 11, part 3): a break-glass grant's window is at most the policy's
# break_glass_max_window (default an hour, 15 min to 4 h) or its profile's max_window if that
# is shorter; its review must be closed within break_glass_review_within (default a day, an
# hour to a week), else the auditor reports it (break_glass_review_open). Its reason is
# mandatory (admission.BREAK_GLASS_MIN_REASON characters at least).
DEFAULT_BREAK_GLASS_MAX_WINDOW = 3600
MAX_BREAK_GLASS_WINDOW = 14400
DEFAULT_BREAK_GLASS_REVIEW_WITHIN = 86400
MIN_BREAK_GLASS_REVIEW_WITHIN = 3600
MAX_BREAK_GLASS_REVIEW_WITHIN = 7 * 86400


class Profile(_Strict):
    description: Annotated[str, Field(min_length=1, max_length=500)]
    permissions: Permissions
    requesters: Requesters
    max_window: Annotated[int, Field(ge=MIN_SESSION_SECONDS, le=MAX_WINDOW_SECONDS)] = 3600
    max_session: Annotated[int, Field(ge=MIN_SESSION_SECONDS, le=MAX_CHAINED_SESSION_SECONDS)] = (
        MAX_CHAINED_SESSION_SECONDS
    )
    reason_required: bool = True
    ticket_pattern: str | None = None
    max_active_grants: Annotated[int | None, Field(ge=1, le=100)] = 1
    # The accounts the profile's access is in (the hub and member accounts); None: the
    # broker's own account. A request names one of them when there are several.
    accounts: Annotated[
        list[Annotated[str, Field(pattern=_ACCOUNT)]] | None, Field(min_length=1, max_length=100)
    ] = None
    mode: GrantMode = GrantMode.PER_GRANT_ROLE
    # Approvals (issue 11): a request waits, status requested, until approvals_required of
    # these approvers (default 1) approve it (→ approved) or one denies it, for at most
    # review_window seconds (→ expired_unreviewed).
    approvers: Approvers | None = None
    approvals_required: Annotated[int | None, Field(ge=1, le=10)] = None
    review_window: Annotated[int, Field(ge=MIN_REVIEW_WINDOW, le=MAX_REVIEW_WINDOW)] = (
        DEFAULT_REVIEW_WINDOW
    )
    # Break-glass (issue 11, part 3): granted at once without approval, but with a mandatory
    # reason, a window capped by the policy's break_glass_max_window, every approver told at
    # once (event BreakGlassUsed) and a review one of them must close afterwards.
    break_glass: bool = False

    @model_validator(mode="after")
    def _break_glass(self) -> Profile:
        if not self.break_glass:
            return self
        if self.approvers is None:
            raise ValueError(
                "break_glass needs approvers: they are told at once when it is used and one "
                "of them must review each grant afterwards; name them"
            )
        if (
            "approvals_required" in self.model_fields_set
            or "review_window" in self.model_fields_set
        ):
            raise ValueError(
                "break_glass is granted without approval: approvals_required and review_window "
                "do not apply (the policy's break_glass_review_within sets when the review is due)"
            )
        return self

    @model_validator(mode="after")
    def _quorum(self) -> Profile:
        named = self.approvers.distinct() if self.approvers is not None else 0
        if self.approvers is not None and named == 0:
            raise ValueError("approvers names no user and no role: name at least one, or remove it")
        if self.approvers is None and (
            "approvals_required" in self.model_fields_set
            or "review_window" in self.model_fields_set
        ):
            raise ValueError("approvals_required and review_window need approvers: name them")
        if self.approvals_required is not None and self.approvals_required > named:
            raise ValueError(
                f"approvals_required is {self.approvals_required} but only {named} distinct "
                "approver(s) are named: name more approvers or require fewer approvals"
            )
        return self

    @property
    def required_approvals(self) -> int:
        """How many distinct approvers must approve a request (0: none, granted at once;
        always so for break-glass, whose approvers review it afterwards)."""
        if self.approvers is None or self.break_glass:
            return 0
        return self.approvals_required or 1

    @field_validator("accounts")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("an account is listed twice: list each once")
        return value

    @model_validator(mode="after")
    def _shared_role_fits(self) -> Profile:
        """A shared-role session carries the profile's permissions as its session policy,
        with the deny after the grant's expiry: STS takes at most 2048 characters of it."""
        if self.mode is GrantMode.SHARED_ROLE:
            statements = self.permissions.inline.statements() if self.permissions.inline else []
            size = len(_compact(documents.session_policy(statements, 0)))
            if size > SESSION_POLICY_MAX_CHARS:
                raise ValueError(
                    f"mode shared-role: the session policy would be {size} characters (the "
                    f"profile's inline policy and the broker's deny after expiry); STS allows "
                    f"{SESSION_POLICY_MAX_CHARS}: shorten the policy or use mode per-grant-role"
                )
        return self

    def accounts_in(self, home_account: str) -> list[str]:
        """The accounts this profile grants access in (the broker's own when none listed)."""
        return list(self.accounts) if self.accounts else [home_account]

    @field_validator("ticket_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(
                    f"ticket_pattern is not a valid regular expression: {exc}"
                ) from exc
        return value


class Limits(_Strict):
    requests_per_minute: Annotated[int, Field(ge=1, le=1000)] = 10


class AccessPolicy(_Strict):
    version: Annotated[int, Field(ge=1, le=1)] = 1
    accounts: Annotated[list[Annotated[str, Field(pattern=_ACCOUNT)]], Field(min_length=1)]
    administrators: list[Annotated[str, Field(pattern=rf"{_USER_ARN}|{_ROLE_ARN}")]] = []
    managed_policy_allow_list: list[Annotated[str, Field(pattern=_MANAGED_ARN)]] = []
    limits: Limits = Limits()
    # Break-glass profiles (issue 11, part 3): their longest window, and how long after a
    # grant its review may stay open before the auditor reports it.
    break_glass_max_window: Annotated[
        int, Field(ge=MIN_SESSION_SECONDS, le=MAX_BREAK_GLASS_WINDOW)
    ] = DEFAULT_BREAK_GLASS_MAX_WINDOW
    break_glass_review_within: Annotated[
        int, Field(ge=MIN_BREAK_GLASS_REVIEW_WITHIN, le=MAX_BREAK_GLASS_REVIEW_WITHIN)
    ] = DEFAULT_BREAK_GLASS_REVIEW_WITHIN
    profiles: dict[Annotated[str, Field(pattern=PROFILE_NAME_PATTERN)], Profile]

    @model_validator(mode="after")
    def _cross_checks(self) -> AccessPolicy:
        for name, profile in self.profiles.items():
            outside = set(profile.permissions.managed) - set(self.managed_policy_allow_list)
            if outside:
                raise ValueError(
                    f"profile {name}: managed policies not in managed_policy_allow_list: "
                    + ", ".join(sorted(outside))
                )
            if profile.max_session > profile.max_window:
                raise ValueError(f"profile {name}: max_session is longer than max_window")
            if profile.permissions.inline is not None:
                size = len(_compact(profile.permissions.inline.statements()))
                if size > ROLE_POLICY_MAX_CHARS - 400:  # room for the deny-after-expiry
                    raise ValueError(
                        f"profile {name}: inline policy is {size} characters; IAM allows "
                        f"{ROLE_POLICY_MAX_CHARS} per role including the broker's own statements"
                    )
        return self

    def window_limit(self, profile: Profile) -> int:
        """The longest window a grant of ``profile`` may have: its max_window, and for a
        break-glass profile at most the policy's break_glass_max_window."""
        if profile.break_glass:
            return min(profile.max_window, self.break_glass_max_window)
        return profile.max_window

    def is_account_allowed(self, account_id: str) -> bool:
        return account_id in self.accounts

    def is_entitled(self, profile: Profile, caller: Caller) -> bool:
        if not self.is_account_allowed(caller.account_id):
            return False
        who = profile.requesters
        if caller.principal_type == "user" and caller.requester_id in who.users:
            return True
        if caller.principal_type == "assumed-role" and caller.requester_id in {
            _without_path(arn) for arn in who.roles
        }:
            return True
        return caller.account_id in who.accounts

    def may_approve(self, profile: Profile, caller: Caller) -> bool:
        """Whether ``caller`` is one of the profile's approvers: a user by exact ARN, a role
        session by its role's ARN (any session of it; never by the session name)."""
        who = profile.approvers
        if who is None or not self.is_account_allowed(caller.account_id):
            return False
        if caller.principal_type == "user":
            return caller.requester_id in who.users
        if caller.principal_type == "assumed-role":
            return caller.requester_id in {_without_path(arn) for arn in who.roles}
        return False

    def approvable(self, caller: Caller) -> list[str]:
        """The names of the profiles whose requests ``caller`` may decide, sorted."""
        return [n for n, p in sorted(self.profiles.items()) if self.may_approve(p, caller)]

    def requestable(self, caller: Caller) -> dict[str, Profile]:
        return {n: p for n, p in sorted(self.profiles.items()) if self.is_entitled(p, caller)}

    def is_administrator(self, caller: Caller) -> bool:
        admins = {_without_path(a) if ":role/" in a else a for a in self.administrators}
        return self.is_account_allowed(caller.account_id) and caller.requester_id in admins


def _without_path(role_arn: str) -> str:
    """Assumed-role ARNs carry no role path, so role ARNs compare by account and name."""
    prefix, _, rest = role_arn.partition(":role/")
    return f"{prefix}:role/{rest.rsplit('/', 1)[-1]}"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc if part not in ("function-after", "union"))


def refuse_beyond_stack(policy: AccessPolicy, stack_managed_policies: Collection[str]) -> None:
    """Raise PolicyInvalid naming each managed policy the access policy allows but the stack
    does not let the broker attach (its role may attach only those; template.yaml's
    ManagedPolicyAllowList, in the broker's JIT_MANAGED_POLICY_ALLOW_LIST)."""
    allowed = set(stack_managed_policies)
    outside = [
        (i, arn) for i, arn in enumerate(policy.managed_policy_allow_list) if arn not in allowed
    ]
    if outside:
        raise PolicyInvalid(
            [
                f"managed_policy_allow_list.{i}: {arn} is not allowed by this stack: add it to "
                "the stack's ManagedPolicyAllowList parameter (and deploy), or remove it from "
                "the access policy"
                for i, arn in outside
            ]
        )


def refuse_accounts_beyond_stack(policy: AccessPolicy, stack_accounts: Collection[str]) -> None:
    """Raise PolicyInvalid naming each profile account the stack cannot reach: the broker's
    own account and the member accounts of its MemberAccountIds parameter
    (JIT_MEMBER_ACCOUNTS), where the member template gives it an execution role."""
    allowed = set(stack_accounts)
    problems = [
        f"profiles.{name}.accounts.{i}: {account} is not one of this stack's accounts: add it "
        "to the stack's MemberAccountIds parameter and deploy the member template there, or "
        "remove it from the profile"
        for name, profile in policy.profiles.items()
        for i, account in enumerate(profile.accounts or ())
        if account not in allowed
    ]
    if problems:
        raise PolicyInvalid(problems)


def parse_policy(
    text: str, *, stack_managed_policies: Collection[str] | None = None
) -> AccessPolicy:
    """Parse and validate a YAML (or JSON) access policy; raise PolicyInvalid with field paths.

    ``stack_managed_policies``: the managed policies the stack lets the broker attach; the
    policy's allow list must be among them (None: not checked here, for tools that only read
    the document)."""
    policy = _parse(text)
    if stack_managed_policies is not None:
        refuse_beyond_stack(policy, stack_managed_policies)
    return policy


def _parse(text: str) -> AccessPolicy:
    import yaml  # only when a policy is (re)loaded, not on the import path

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyInvalid([f"not valid YAML: {exc}"]) from exc
    except RecursionError as exc:  # the YAML parser recurses once per level of nesting
        raise PolicyInvalid(["nested too deeply: an access policy is a few levels deep"]) from exc
    if not isinstance(data, dict):
        raise PolicyInvalid(["the document must be a mapping with 'accounts' and 'profiles'"])
    try:
        return AccessPolicy.model_validate(data)
    except ValidationError as exc:
        raise PolicyInvalid(
            [f"{_path(e['loc']) or '(document)'}: {e['msg']}" for e in exc.errors()]
        ) from exc
