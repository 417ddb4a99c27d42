"""The rules a grant request must pass, written once for the real request and its dry run.

Each rule reports a refusal to a ``Refusals``: a real request's raises the first one (the
typed error the API answers with, before anything is written), a dry run's collects every one
(``POST /v1/grants`` with ``"dry_run": true``). The same code judges both, so what a dry run
says is what the request would meet; only a change between the two (another request taking
the slot or the rate, the policy edited) or a failure of AWS can make them differ.

The rules, in the order a real request meets them (``Rule``): entitlement (the profile exists
and the caller may request it), duration, reason, ticket, account, approvals (a request that
could never be approved; needing approval is not a refusal), then what the
ledger holds (the nonce, and the limits: the profile's active grants, the caller's rate, the
caller's and the stack's live grant roles). ``Rule`` and ``Limit`` are the domain's
``DenialRule`` and ``DenialLimit`` (jit_broker.models.domain), named in the API's answers.
A caller who may not request the profile is told that and nothing else (see
``Broker._assess``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jit_broker import naming
from jit_broker.errors import (
    ActiveGrantsHeld,
    BadRequest,
    BrokerError,
    NotEntitled,
    OwnerRoleCapReached,
    RateLimited,
    ReplayedRequest,
    RoleCapReached,
)
from jit_broker.models.domain import DenialLimit as Limit
from jit_broker.models.domain import DenialRule as Rule
from jit_broker.models.domain import GrantMode, LimitCounts

if TYPE_CHECKING:
    from jit_broker.access_policy import Profile
    from jit_broker.identity import Caller
    from jit_broker.models.input import GrantRequest


@dataclass(frozen=True)
class Denial:
    """One rule that refuses the request: ``error`` is what a real request is answered with
    (its code and message, never a secret or another caller's data)."""

    rule: Rule
    error: BrokerError
    limit: Limit | None = None


class Refusals:
    """Where the rules report: ``collect_all`` (a dry run) keeps every denial; otherwise (a
    real request) the first one is raised at once and no later rule is judged."""

    def __init__(self, *, collect_all: bool) -> None:
        self._collect_all = collect_all
        self.denials: list[Denial] = []

    def refuse(self, rule: Rule, error: BrokerError, limit: Limit | None = None) -> None:
        if not self._collect_all:
            raise error
        self.denials.append(Denial(rule, error, limit))


@dataclass(frozen=True)
class Assessment:
    """What the rules found of one request. ``profile`` is None when the caller may not
    request it; ``account`` when it could not be settled; ``window`` is the grant window the
    request would get (its duration, else the profile's, at most an hour)."""

    profile_name: str
    denials: tuple[Denial, ...]
    profile: Profile | None = None
    account: str | None = None
    window: int | None = None
    slot: int | None = None  # the active-grant slot the grant would take

    @property
    def would_grant(self) -> bool:
        return not self.denials

    @property
    def mode(self) -> GrantMode | None:
        return self.profile.mode if self.profile is not None else None

    def admitted(self) -> tuple[Profile, str, int]:
        """The profile, account and window of a request that met no refusal."""
        if self.denials or self.profile is None or self.account is None or self.window is None:
            raise RuntimeError("a refused grant request was about to be granted")
        return self.profile, self.account, self.window


def window_of(profile: Profile, request: GrantRequest) -> int:
    """The grant window a request asks for: its duration, else the profile's longest, at
    most an hour (a longer window is asked for explicitly)."""
    return request.duration or min(profile.max_window, naming.MAX_CHAINED_SESSION_SECONDS)


def check_request(
    name: str, profile: Profile, request: GrantRequest, window: int, refusals: Refusals
) -> None:
    """The rules on what the request says: duration, reason, ticket."""
    if window > profile.max_window:
        refusals.refuse(
            Rule.DURATION,
            BadRequest(
                f"duration {naming.human_seconds(window)} ({window} s) is longer than profile "
                f"{name!r} allows, {naming.human_seconds(profile.max_window)} "
                f"({profile.max_window} s): ask for at most "
                f"{naming.human_seconds(profile.max_window)}"
            ),
        )
    if profile.reason_required and not (request.reason and request.reason.strip()):
        refusals.refuse(
            Rule.REASON, BadRequest(f"profile {name!r} needs a reason: say why you need access")
        )
    if profile.ticket_pattern is not None and not (
        request.ticket and re.fullmatch(profile.ticket_pattern, request.ticket)
    ):
        refusals.refuse(
            Rule.TICKET,
            BadRequest(f"profile {name!r} needs a ticket matching {profile.ticket_pattern}"),
        )


def check_approvals(name: str, profile: Profile, caller: Caller, refusals: Refusals) -> None:
    """Rule.APPROVALS (issue 11). Needing approval is not a refusal: such a request is
    accepted awaiting its approvers (202, status requested; a dry run says how many approvals
    it needs). It is refused only when it could never be approved: the profile names no role
    among its approvers and fewer users than the approvals it needs once the caller (who may
    never approve their own request) is left out."""
    approvers = profile.approvers
    if approvers is None or approvers.roles:
        return
    others = {arn for arn in approvers.users if arn.lower() != caller.person}
    if len(others) < profile.required_approvals:
        refusals.refuse(
            Rule.APPROVALS,
            NotEntitled(
                f"profile {name!r} needs {profile.required_approvals} approval(s) and names "
                f"only {len(others)} approver(s) other than you (nobody approves their own "
                "request): ask its owners to name more approvers"
            ),
        )


def check_limits(
    counts: LimitCounts,
    *,
    name: str,
    profile: Profile,
    rate_limit: int,
    max_roles: int,
    max_roles_per_owner: int,
    refusals: Refusals,
) -> int | None:
    """The nonce and the limits, judged on what the ledger holds now (``counts``) by the
    same bounds its write enforces. Returns the active-grant slot the grant would take
    (None: the profile caps nothing, or every slot is held)."""
    if counts.nonce_used:
        refusals.refuse(Rule.NONCE, ReplayedRequest())
    slot = None
    if profile.max_active_grants is not None:
        free = [k for k in range(profile.max_active_grants) if k not in counts.held_slots]
        slot = free[0] if free else None
        if slot is None:
            refusals.refuse(
                Rule.LIMITS,
                ActiveGrantsHeld(name, profile.max_active_grants),
                Limit.ACTIVE_GRANTS,
            )
    if counts.requests_this_minute >= rate_limit:
        refusals.refuse(Rule.LIMITS, RateLimited(rate_limit), Limit.RATE)
    if profile.mode is GrantMode.PER_GRANT_ROLE:
        if (counts.owner_live_roles or 0) >= max_roles_per_owner:
            refusals.refuse(
                Rule.LIMITS, OwnerRoleCapReached(max_roles_per_owner), Limit.OWNER_ROLES
            )
        if (counts.live_roles or 0) >= max_roles:
            refusals.refuse(Rule.LIMITS, RoleCapReached(max_roles), Limit.ROLES)
    return slot
