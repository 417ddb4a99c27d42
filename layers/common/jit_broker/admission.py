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


# A break-glass request's reason (issue 11, part 3): always required, at least this long once
# trimmed, whatever the profile's reason_required says.
BREAK_GLASS_MIN_REASON = 20


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
    request would get (its duration, else the profile's, at most an hour; a break-glass
    profile's at most the policy's break_glass_max_window)."""

    profile_name: str
    denials: tuple[Denial, ...]
    profile: Profile | None = None
    account: str | None = None
    window: int | None = None
    slot: int | None = None  # the active-grant slot the grant would take
    # A break-glass profile's: seconds after issue by which one of its approvers must close
    # the grant's review (None: not break-glass, or not told).
    review_within: int | None = None

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


def window_of(profile: Profile, request: GrantRequest, max_window: int | None = None) -> int:
    """The grant window a request asks for: its duration, else the profile's longest
    (``max_window``: AccessPolicy.window_limit, a break-glass profile's cap; default its
    max_window), at most an hour (a longer window is asked for explicitly)."""
    longest = profile.max_window if max_window is None else max_window
    return request.duration or min(longest, naming.MAX_CHAINED_SESSION_SECONDS)


def check_request(
    name: str,
    profile: Profile,
    request: GrantRequest,
    window: int,
    refusals: Refusals,
    *,
    max_window: int | None = None,
) -> None:
    """The rules on what the request says: duration (at most ``max_window``, default the
    profile's), reason (a break-glass profile's always, at least BREAK_GLASS_MIN_REASON
    characters), ticket."""
    longest = profile.max_window if max_window is None else max_window
    if window > longest:
        which = "break-glass profile" if longest < profile.max_window else "profile"
        refusals.refuse(
            Rule.DURATION,
            BadRequest(
                f"duration {naming.human_seconds(window)} ({window} s) is longer than {which} "
                f"{name!r} allows, {naming.human_seconds(longest)} "
                f"({longest} s): ask for at most "
                f"{naming.human_seconds(longest)}"
            ),
        )
    if profile.break_glass:
        _check_break_glass_reason(name, request, refusals)
    elif profile.reason_required and not (request.reason and request.reason.strip()):
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


def _check_break_glass_reason(name: str, request: GrantRequest, refusals: Refusals) -> None:
    """Rule.REASON for a break-glass profile: always required (whatever reason_required
    says), at least BREAK_GLASS_MIN_REASON characters once trimmed: its approvers read it
    when they are told and when they review the grant."""
    given = (request.reason or "").strip()
    if len(given) < BREAK_GLASS_MIN_REASON:
        refusals.refuse(
            Rule.REASON,
            BadRequest(
                f"profile {name!r} is break-glass: it needs a reason of at least "
                f"{BREAK_GLASS_MIN_REASON} characters (you gave {len(given)}): say what is "
                "broken and why it cannot wait for an approval; its approvers are told at once "
                "and review it afterwards"
            ),
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
