"""AWS-like IAM authorization for the embedded moto stack.

moto can enforce IAM (``moto.settings.INITIAL_NO_AUTH_ACTION_COUNT``), but its evaluator
is far more lenient than AWS for the documents the broker writes: it treats every condition
operator except StringEquals as true, supplies no context keys for normal requests, turns an
Allow whose condition fails into a Deny, cannot match a role ARN in a trust policy against
that role's sessions, evaluates CreateRole and DynamoDB against resource ``*``, ignores
sts:SetSourceIdentity / sts:TagSession, permissions boundaries and session policies, and
never expires STS credentials. :func:`install` replaces that evaluator in this process.

Public API: ``install(clock=None)`` (idempotent), ``set_clock(clock)`` / ``get_clock()``
(epoch seconds for aws:CurrentTime, aws:EpochTime and session expiry; default time.time),
``session_context(access_key_id) -> SessionInfo | None``, ``uninstall()`` and
``is_installed()`` for tests; the pure evaluator ``evaluate``, ``conditions_match``,
``wildcard_match``, ``arn_match`` and ``parse_date``; ``session_decision`` (how a role's
policies, its boundary and a session's policies combine) and ``principal_tags`` (a session's
``aws:PrincipalTag`` values from the role's tags and the session's), which the patched
authorization uses as well.

What is patched (moto 5.2.x):

``moto.iam.access_control.IAMRequestBase.check_action_permitted``
    The single place where moto authorizes a signed request (after checking its signature),
    for every service, S3 included. It is replaced by ``_check_action_permitted``, which
    refuses expired session credentials and deactivated access keys; always allows
    sts:GetCallerIdentity; works out the (action, resource) pairs the request needs (one
    for most requests; one per table for DynamoDB batches; one per item, by the item's own
    action, for DynamoDB transactions, as AWS does; up to three for an AssumeRole carrying
    SourceIdentity and Tags); builds the request context (``aws:*``, ``sts:*``, ``iam:*``
    keys); and evaluates the caller's identity-based policies, its permissions boundary,
    its session policies and, for sts:AssumeRole & co, the target role's trust policy:
    an explicit Deny anywhere wins, otherwise every policy type that applies must allow.
    Resources are computed here from the signed request rather than in the handlers'
    ``_determine_resource`` (which are left alone): a handler can hand over only one
    resource string, while a DynamoDB transaction needs one check per item. S3 keeps the
    resource moto computes (``arn:aws:s3:::bucket``, ``arn:aws:s3:::bucket/key``).

``moto.sts.responses.TokenResponse.assume_role``
    Wrapped to validate what AWS validates and moto does not (RoleSessionName and
    SourceIdentity syntax, DurationSeconds within 900..MaxSessionDuration and at most 3600
    for role chaining, the session policy's size and grammar, at most 10 policy ARNs, the
    session tags' number, syntax and case-insensitive uniqueness) and to record, per issued
    access key (no secret), a :class:`SessionInfo`: SourceIdentity (persisted from the
    caller's session when chaining), session tags, session policies, and issue and expiry
    times by the module clock; the ``Expiration`` returned to the caller is rewritten to
    match. Requests signed with that key are then judged with the session's policies (the
    role's permissions intersected with them; an explicit deny in one denies) and with its
    session tags as ``aws:PrincipalTag`` (overriding role tags of the same key, case
    ignored). Transitive session tags are not carried through role chaining (the broker
    passes none). The response is wrapped rather than
    ``STSBackend.assume_role`` because only the response sees SourceIdentity, Tags and
    PolicyArns. Sessions from AssumeRoleWithWebIdentity/SAML are not recorded; their expiry
    falls back to moto's own.

Accounts: moto keeps accounts apart by the credentials' account (a session's is its role's).
Every request's context carries ``aws:ResourceAccount``: the role's account for
sts:AssumeRole, the bucket owner's for S3 (moto finds a bucket of any account by its name),
else the request's account. A request reaching into another account is judged as AWS judges
cross-account access: the caller's own policies AND the resource's policy must allow it (for
sts:AssumeRole the role's trust policy, as for any AssumeRole here; for S3 the bucket policy,
so a bucket of another account without one is denied). ``set_observer(fn)`` is told of
every request allowed (:class:`AllowedCall`: action, account, caller, selected parameters,
never a secret), as CloudTrail records management events.

Errors are those AWS returns: ``AccessDenied`` (HTTP 403, XML) for query-protocol services
such as IAM and STS, ``AccessDeniedException`` (HTTP 400, JSON) for JSON-protocol services
such as DynamoDB, moto's own ``AccessDenied`` for S3. Expired session credentials give
``ExpiredToken`` for IAM/STS and also for S3 (raised as moto's ``S3ClientError``, which S3
serializes as AWS does: HTTP 400, "The provided token has expired."), and
``ExpiredTokenException`` for JSON protocols.

Policy variables follow the IAM User Guide ("IAM policy elements: Variables and tags"):
``${key}`` and ``${key, 'default'}`` in Version 2012-10-17 documents, in Resource (after the
fifth colon) and in the values of string and ARN operators only. A variable whose key has no
value and no default is null: no resource matches it, no string equals it or is like it (so
``StringNotEquals`` holds), and ``...IfExists`` still depends only on the condition key.

The evaluator fails closed on what AWS does not define or would reject: an unknown operator,
an unparsable policy value, a malformed variable, a variable in another operator or before an
ARN's resource portion, a variable naming a multivalued key, and a single-valued operator (no
``ForAllValues``/``ForAnyValue``) on a multivalued key ("Multivalued context keys require a
condition set operator") make an Allow statement not apply and a Deny statement apply, with a
warning naming the cause.

A clock that jumps ahead expires sessions that botocore, which refreshes by the real time,
still believes valid: give ``RefreshableCredentials`` a ``time_fetcher`` on the same clock.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import operator
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NoReturn

from moto.core.exceptions import JsonRESTError, _RESTError
from moto.iam.access_control import AssumedRoleAccessKey, IAMRequestBase, S3IAMRequest
from moto.iam.exceptions import IAMException
from moto.iam.models import IAMBackend, ManagedPolicy, Role, iam_backends
from moto.s3.exceptions import S3ClientError
from moto.s3.models import s3_backends
from moto.sts.exceptions import STSValidationError
from moto.sts.models import sts_backends
from moto.sts.responses import TokenResponse
from moto.utilities.utils import get_partition

if TYPE_CHECKING:
    from jit_local.credentials import CallerKey

__all__ = [
    "AllowedCall",
    "Decision",
    "Principal",
    "SessionInfo",
    "UnsupportedPolicyError",
    "arn_match",
    "conditions_match",
    "evaluate",
    "get_clock",
    "install",
    "is_installed",
    "parse_date",
    "principal_tags",
    "session_context",
    "session_decision",
    "set_clock",
    "set_observer",
    "uninstall",
    "wildcard_match",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Context = Mapping[str, Sequence[str]]
"""Request context: lower-cased condition key -> its values (one for single-valued keys)."""

POLICY_VERSION_WITH_VARIABLES = "2012-10-17"
DEFAULT_MAX_SESSION_SECONDS = 3600
ROLE_CHAINING_MAX_SECONDS = 3600
MIN_SESSION_SECONDS = 900
_STS_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
# AssumeRole's session scope (STS API Reference, AssumeRole and Tag): the plain text of the
# session policy, managed session policy ARNs, session tags and their keys and values.
SESSION_POLICY_MAX_CHARS = 2048
SESSION_POLICY_ARNS_MAX = 10
SESSION_TAGS_MAX = 50
SESSION_TAG_KEY_MAX_CHARS = 128
SESSION_TAG_VALUE_MAX_CHARS = 256
_SESSION_POLICY_TEXT = re.compile(r"[\t\n\r\u0020-\u00ff]+")
_TAG_PUNCTUATION = frozenset("_.:/=+-@")


# --------------------------------------------------------------------------- clock & sessions


@dataclass(frozen=True)
class SessionInfo:
    """What was recorded when an access key was issued by sts:AssumeRole (epoch seconds)."""

    access_key_id: str
    role_arn: str
    session_name: str
    source_identity: str | None
    tags: dict[str, str]
    issued_at: float
    expires_at: float
    session_policy: str | None = None
    session_policy_arns: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class AllowedCall:
    """A request the embedded AWS allowed, as CloudTrail would name it (no secret: the
    parameters are names and ARNs only, :data:`OBSERVED_PARAMETERS`)."""

    action: str  # service:Action
    account: str  # the account the request was made in
    caller_arn: str  # the user, or the session (arn:aws:sts::ACCOUNT:assumed-role/ROLE/NAME)
    caller_principal_arn: str  # the user, or the session's role
    parameters: dict[str, str]
    at: float  # epoch seconds, by the module clock


# The request parameters an AllowedCall carries (query protocols: IAM, STS).
OBSERVED_PARAMETERS = (
    "RoleName",
    "PolicyName",
    "PolicyArn",
    "RoleArn",
    "RoleSessionName",
    "SourceIdentity",
)
Observer = Callable[[AllowedCall], None]

_lock = threading.Lock()
_clock: Clock = time.time
_observer: Observer | None = None
_sessions: dict[str, SessionInfo] = {}
_originals: dict[str, Any] = {}


def set_clock(clock: Clock) -> None:
    """Use ``clock`` (epoch seconds) for aws:CurrentTime, aws:EpochTime and session expiry."""
    global _clock
    _clock = clock


def set_observer(observer: Observer | None) -> None:
    """Tell ``observer`` of every request allowed from now on (None: no one). It runs in the
    request's thread; what it raises is logged, never the request's outcome."""
    global _observer
    _observer = observer


def get_clock() -> Clock:
    """The clock in use (to restore it after a test has replaced it)."""
    return _clock


def session_context(access_key_id: str) -> SessionInfo | None:
    """What was recorded at AssumeRole for this access key, or None if it was not issued so."""
    with _lock:
        return _sessions.get(access_key_id)


def install(clock: Clock | None = None) -> None:
    """Make moto in this process authorize requests the way AWS does. Idempotent."""
    if clock is not None:
        set_clock(clock)
    with _lock:
        if _originals:
            return
        _originals["check_action_permitted"] = IAMRequestBase.check_action_permitted
        _originals["assume_role"] = TokenResponse.assume_role
        IAMRequestBase.check_action_permitted = _check_action_permitted  # type: ignore[method-assign]
        TokenResponse.assume_role = _assume_role_and_record  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore moto's own behaviour and forget recorded sessions (for test teardown)."""
    with _lock:
        if not _originals:
            return
        IAMRequestBase.check_action_permitted = _originals.pop("check_action_permitted")  # type: ignore[method-assign]
        TokenResponse.assume_role = _originals.pop("assume_role")  # type: ignore[method-assign]
        _sessions.clear()
    set_observer(None)


def is_installed() -> bool:
    with _lock:
        return bool(_originals)


def _now() -> float:
    return _clock()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- matching


class UnsupportedPolicyError(Exception):
    """A policy element this evaluator cannot judge; the statement fails closed."""


_LITERAL_STAR = "\ue000"  # ${*} in a policy: a literal "*"
_LITERAL_QMARK = "\ue001"  # ${?} in a policy: a literal "?"
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
# Inside ${...}: a key name, optionally ", 'default'" ("surround the default value with single
# quotes (' '), and separate the variable text and the default value with a comma and space").
_VARIABLE_BODY = re.compile(r"\s*(?P<name>[^,']*?)\s*(?:,\s*'(?P<default>[^']*)'\s*)?")
_SPECIAL_VARIABLES = {"*": _LITERAL_STAR, "?": _LITERAL_QMARK, "$": "$"}
# Multivalued context keys: the global keys the IAM User Guide lists with "Value type:
# Multivalued", and sts:TransitiveTagKeys (ArrayOfString), which this module puts in contexts.
# A key given more than one value in a request context is multivalued as well.
_MULTIVALUED_KEYS = frozenset(
    {
        "aws:calledvia",
        "aws:principalorgpaths",
        "aws:principalservicenameslist",
        "aws:resourceorgpaths",
        "aws:sourceorgpaths",
        "aws:tagkeys",
        "sts:transitivetagkeys",
    }
)


@lru_cache(maxsize=4096)
def _wildcard_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    pieces = {"*": ".*", "?": ".", _LITERAL_STAR: r"\*", _LITERAL_QMARK: r"\?"}
    regex = "".join(pieces.get(char) or re.escape(char) for char in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM glob: ``*`` any run of characters (also ``/`` and ``:``), ``?`` one character."""
    return _wildcard_regex(pattern, ignore_case).fullmatch(value) is not None


def arn_match(pattern: str, arn: str) -> bool:
    """ArnEquals/ArnLike: the six colon-separated parts are matched one by one, with globs."""
    pattern_parts = pattern.split(":", 5)
    arn_parts = arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return False
    return all(wildcard_match(p, a) for p, a in zip(pattern_parts, arn_parts, strict=True))


def parse_date(value: str) -> float | None:
    """An IAM date (ISO 8601, naive means UTC, or epoch seconds) as epoch seconds, else None."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _parse_number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _parse_bool(value: str) -> str | None:
    lowered = value.lower()
    return lowered if lowered in ("true", "false") else None


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _parse_network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _literal(value: str) -> str:
    return value.replace(_LITERAL_STAR, "*").replace(_LITERAL_QMARK, "?")


def _substitute(value: str, variables: Context | None) -> str | None:
    """Replace ``${key}`` and ``${key, 'default'}`` policy variables (Version 2012-10-17 only).

    Returns None for a value holding a variable with no value and no default: the IAM User
    Guide ("Policy variables with no value") says such a value "is effectively null. There is
    no equal or like value." Raises UnsupportedPolicyError for a malformed variable and for
    one naming a multivalued key ("You can't use a multivalued condition key as a variable").
    """
    if variables is None or "${" not in value:
        return value
    null = False

    def replace(match: re.Match[str]) -> str:
        nonlocal null
        body = _VARIABLE_BODY.fullmatch(match.group(1))
        if body is None or not body.group("name"):
            raise UnsupportedPolicyError(f"malformed policy variable {match.group(0)!r}")
        name, default = body.group("name"), body.group("default")
        if default is None and name in _SPECIAL_VARIABLES:
            return _SPECIAL_VARIABLES[name]
        key = name.lower()
        values = variables.get(key) or ()
        if key in _MULTIVALUED_KEYS or len(values) > 1:
            raise UnsupportedPolicyError(f"policy variable ${{{name}}} names a multivalued key")
        if values:
            return values[0]
        if default is not None:
            return default  # "Specifying default values": used when the key has no value
        null = True
        return ""

    text = _VARIABLE.sub(replace, value)
    return None if null else text


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class _Comparison:
    """How one family of operators reads policy and context values and compares them."""

    parse_policy: Callable[[str], Any]
    parse_context: Callable[[str], Any]
    compare: Callable[[Any, Any], bool]  # (context value, policy value)


def _ordered(parse: Callable[[str], Any], compare: Callable[[Any, Any], bool]) -> _Comparison:
    return _Comparison(parse, parse, compare)


_COMPARISONS: dict[str, _Comparison] = {
    "StringEquals": _Comparison(_literal, str, operator.eq),
    "StringEqualsIgnoreCase": _Comparison(
        lambda p: _literal(p).casefold(), str.casefold, operator.eq
    ),
    "StringLike": _Comparison(str, str, lambda value, pattern: wildcard_match(pattern, value)),
    "NumericEquals": _ordered(_parse_number, operator.eq),
    "NumericLessThan": _ordered(_parse_number, operator.lt),
    "NumericLessThanEquals": _ordered(_parse_number, operator.le),
    "NumericGreaterThan": _ordered(_parse_number, operator.gt),
    "NumericGreaterThanEquals": _ordered(_parse_number, operator.ge),
    "DateEquals": _ordered(parse_date, operator.eq),
    "DateLessThan": _ordered(parse_date, operator.lt),
    "DateLessThanEquals": _ordered(parse_date, operator.le),
    "DateGreaterThan": _ordered(parse_date, operator.gt),
    "DateGreaterThanEquals": _ordered(parse_date, operator.ge),
    "Bool": _ordered(_parse_bool, operator.eq),
    "BinaryEquals": _ordered(str, operator.eq),
    "IpAddress": _Comparison(_parse_network, _parse_ip, lambda ip, net: ip in net),
    "ArnEquals": _Comparison(str, str, lambda arn, pattern: arn_match(pattern, arn)),
    "ArnLike": _Comparison(str, str, lambda arn, pattern: arn_match(pattern, arn)),
}
_NEGATIONS = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NotIpAddress": "IpAddress",
}
_QUALIFIERS = ("ForAnyValue", "ForAllValues")
# Base operators whose values may hold policy variables: the string and ARN operators.
_VARIABLE_OPERATORS = frozenset(
    {"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike"}
)


@dataclass(frozen=True)
class _Clause:
    """One key under one operator, policy values already parsed."""

    key: str
    base: str
    negated: bool
    if_exists: bool
    qualifier: str | None
    expected: tuple[Any, ...]

    def holds(self, context: Context) -> bool:
        actual = context.get(self.key)
        present = bool(actual)
        if self.base == "Null":
            return any((want == "true") == (not present) for want in self.expected)
        if not actual:
            if self.if_exists or self.qualifier == "ForAllValues":
                return True
            return self.negated and self.qualifier is None
        if self.qualifier is None and len(actual) > 1:
            # "Multivalued context keys require a condition set operator." AWS documents no
            # outcome for a single-valued operator on several values: fail closed.
            raise UnsupportedPolicyError(
                f"{self.key} has several values and needs ForAllValues or ForAnyValue"
            )
        outcomes = [self._value_matches(value) != self.negated for value in actual]
        if self.qualifier == "ForAllValues":
            return all(outcomes)
        return any(outcomes)  # ForAnyValue, or the single value of a single-valued key

    def _value_matches(self, raw: str) -> bool:
        comparison = _COMPARISONS[self.base]
        value = comparison.parse_context(raw)
        return value is not None and any(comparison.compare(value, e) for e in self.expected)


def _operator_parts(name: str) -> tuple[str, bool, bool, str | None]:
    """(base operator, negated, IfExists, qualifier) or UnsupportedPolicyError."""
    qualifier, _, rest = name.rpartition(":")
    if qualifier and qualifier not in _QUALIFIERS:
        raise UnsupportedPolicyError(f"unknown condition operator {name!r}")
    if_exists = rest.endswith("IfExists") and rest != "Null"
    base = rest.removesuffix("IfExists") if if_exists else rest
    if base == "Null" and not (if_exists or qualifier):
        return "Null", False, False, None
    if base in _NEGATIONS:
        return _NEGATIONS[base], True, if_exists, qualifier or None
    if base in _COMPARISONS:
        return base, False, if_exists, qualifier or None
    raise UnsupportedPolicyError(f"unknown condition operator {name!r}")


def _as_strings(values: Any) -> list[str]:
    items = values if isinstance(values, list) else [values]
    return [json.dumps(v) if isinstance(v, bool) else str(v) for v in items]


def _compile_conditions(block: Any, variables: Context | None) -> list[_Clause]:
    if not isinstance(block, dict):
        raise UnsupportedPolicyError("Condition is not an object")
    clauses = []
    for operator_name, keys in block.items():
        base, negated, if_exists, qualifier = _operator_parts(operator_name)
        if not isinstance(keys, dict):
            raise UnsupportedPolicyError(f"{operator_name} does not map keys to values")
        for key, values in keys.items():
            if qualifier is None and base != "Null" and key.lower() in _MULTIVALUED_KEYS:
                raise UnsupportedPolicyError(
                    f"{operator_name} on multivalued key {key} needs ForAllValues or ForAnyValue"
                )
            parse = _parse_bool if base == "Null" else _COMPARISONS[base].parse_policy
            expected = []
            for text in _as_strings(values):
                resolved = _policy_value(operator_name, base, text, variables)
                if resolved is None:
                    continue  # a null value: nothing equals it or is like it
                parsed = parse(resolved)
                if parsed is None:
                    raise UnsupportedPolicyError(f"{operator_name} cannot read value {text!r}")
                expected.append(parsed)
            clauses.append(
                _Clause(key.lower(), base, negated, if_exists, qualifier, tuple(expected))
            )
    return clauses


def _policy_value(
    operator_name: str, base: str, text: str, variables: Context | None
) -> str | None:
    """A condition value with its variables replaced (None: null), or UnsupportedPolicyError.

    "You can use a policy variable for Condition values in any condition that involves the
    string operators or the ARN operators. [...] You can't use a policy variable with other
    operators, such as Numeric, Date, Boolean, Binary, IP Address, or Null operators." (The
    Condition operators page marks Boolean "Supported"; the stricter reading fails closed.)
    """
    if base in _VARIABLE_OPERATORS:
        return _substitute(text, variables)
    if variables is not None and "${" in text:
        raise UnsupportedPolicyError(f"{operator_name} does not take policy variables ({text!r})")
    return text


def conditions_match(
    block: Mapping[str, Any], context: Mapping[str, str | Sequence[str]], *, variables: bool = True
) -> bool:
    """Whether a statement's Condition block holds (operators ANDed, keys ANDed, values ORed).

    Raises UnsupportedPolicyError for an operator or value it cannot judge.
    """
    normalized = _normalize_context(context)
    clauses = _compile_conditions(dict(block), normalized if variables else None)
    verdicts = [clause.holds(normalized) for clause in clauses]
    return all(verdicts)


def _normalize_context(context: Mapping[str, str | Sequence[str]]) -> dict[str, list[str]]:
    return {
        key.lower(): [value] if isinstance(value, str) else list(value)
        for key, value in context.items()
    }


# --------------------------------------------------------------------------- statements


class Decision(Enum):
    ALLOW = "allow"
    DENY = "deny"
    NEUTRAL = "neutral"  # no statement applies: an implicit deny


@dataclass(frozen=True)
class Principal:
    """The caller as trust policies see it."""

    arn: str  # user ARN, or arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION
    principal_arn: str  # user ARN, or the role's ARN (with its path)
    account: str


_ACCOUNT_ROOT = re.compile(r"arn:[\w-]+:iam::(\d{12}):root")


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _principal_listed(element: Any, principal: Principal) -> bool:
    if element == "*":
        return True
    if not isinstance(element, dict):
        return False
    for entry in _listed(element.get("AWS")):
        if not isinstance(entry, str):
            continue
        root = _ACCOUNT_ROOT.fullmatch(entry)
        if entry == "*" or entry in (principal.arn, principal.principal_arn):
            return True
        if entry == principal.account or (root and root.group(1) == principal.account):
            return True
    return False


def _action_applies(statement: Mapping[str, Any], action: str) -> bool:
    if "Action" in statement:
        return any(
            wildcard_match(p, action, ignore_case=True) for p in _listed(statement["Action"])
        )
    if "NotAction" in statement:
        patterns = _listed(statement["NotAction"])
        return not any(wildcard_match(p, action, ignore_case=True) for p in patterns)
    return False


def _resource_pattern(pattern: Any, variables: Context | None) -> str | None:
    """A Resource/NotResource pattern with its variables replaced; None matches no resource.

    "You can use a policy variable in the Resource element, but only in the resource portion
    of the ARN. This portion of the ARN appears after the fifth colon (:)." And "the resource
    that includes a policy variable with no value will not match any resource."
    """
    if not isinstance(pattern, str):
        raise UnsupportedPolicyError(f"resource pattern {pattern!r} is not a string")
    if variables is not None and (start := pattern.find("${")) >= 0:
        colons = [i for i, char in enumerate(pattern) if char == ":"]
        if len(colons) < 5 or start < colons[4]:
            raise UnsupportedPolicyError(
                f"resource {pattern!r} has a policy variable before the resource portion"
            )
    return _substitute(pattern, variables)


def _resource_applies(
    statement: Mapping[str, Any], resource: str, variables: Context | None, *, required: bool
) -> bool:
    def matches(patterns: Any) -> bool:
        resolved = [_resource_pattern(p, variables) for p in _listed(patterns)]
        return any(p is not None and wildcard_match(p, resource) for p in resolved)

    if "Resource" in statement:
        return matches(statement["Resource"])
    if "NotResource" in statement:
        return not matches(statement["NotResource"])
    return not required


def _statement_decision(
    statement: Mapping[str, Any],
    action: str,
    resource: str,
    context: Context,
    variables: Context | None,
    principal: Principal | None,
) -> Decision:
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny") or not _action_applies(statement, action):
        return Decision.NEUTRAL
    outcome = Decision.DENY if effect == "Deny" else Decision.ALLOW
    try:
        if principal is not None:
            if "Principal" in statement:
                if not _principal_listed(statement["Principal"], principal):
                    return Decision.NEUTRAL
            elif "NotPrincipal" not in statement or _principal_listed(
                statement["NotPrincipal"], principal
            ):
                return Decision.NEUTRAL
        if not _resource_applies(statement, resource, variables, required=principal is None):
            return Decision.NEUTRAL
        clauses = _compile_conditions(statement.get("Condition") or {}, variables)
        # Every clause is judged before any verdict: one that cannot be judged fails the
        # statement closed whatever the others say.
        verdicts = [clause.holds(context) for clause in clauses]
        if not all(verdicts):
            return Decision.NEUTRAL
    except UnsupportedPolicyError as exc:
        log.warning(
            "IAM statement %r: %s; failing closed (%s statement %s)",
            statement.get("Sid", ""),
            exc,
            effect,
            "applies" if outcome is Decision.DENY else "does not apply",
        )
        return Decision.DENY if outcome is Decision.DENY else Decision.NEUTRAL
    return outcome


def evaluate(
    documents: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str | Sequence[str]],
    principal: Principal | None = None,
) -> Decision:
    """Combine policy documents of one type: any applicable Deny wins, else any Allow.

    With ``principal`` the documents are resource-based (trust) policies: a statement then
    applies only to the principals it names, and may omit Resource.
    """
    normalized = _normalize_context(context)
    decision = Decision.NEUTRAL
    for document in documents:
        variables = normalized if document.get("Version") == POLICY_VERSION_WITH_VARIABLES else None
        for statement in _listed(document.get("Statement")):
            if not isinstance(statement, dict):
                continue
            result = _statement_decision(
                statement, action, resource, normalized, variables, principal
            )
            if result is Decision.DENY:
                return Decision.DENY
            if result is Decision.ALLOW:
                decision = Decision.ALLOW
    return decision


_DENY_ALL: dict[str, Any] = {
    "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*", "Principal": "*"}]
}


def _load_document(text: str | None, origin: str) -> dict[str, Any]:
    """A stored policy document; one that cannot be read denies everything."""
    try:
        document = json.loads(text or "")
    except ValueError:
        document = None
    if not isinstance(document, dict):
        log.warning("unreadable policy document (%s): denying everything", origin)
        return _DENY_ALL
    return document


# --------------------------------------------------------------------------- callers


@dataclass(frozen=True)
class _Caller:
    principal: Principal
    kind: str  # "User" or "AssumedRole"
    user_id: str
    username: str | None
    tags: dict[str, str]
    identity_policies: list[dict[str, Any]]
    boundary: dict[str, Any] | None
    session_policies: list[dict[str, Any]] | None
    session: SessionInfo | None
    expires_at: float | None


def _managed_document(policy: ManagedPolicy) -> dict[str, Any]:
    default = next((v for v in policy.versions if v.is_default), None)
    return _load_document(default.document if default else None, policy.arn)


def _policy_by_arn(iam: IAMBackend, arn: str) -> dict[str, Any] | None:
    try:
        return _managed_document(iam.get_policy(arn))
    except IAMException:
        return None


def _role_policies(role: Role) -> list[dict[str, Any]]:
    inline = [_load_document(doc, f"{role.arn} {name}") for name, doc in role.policies.items()]
    return inline + [_managed_document(p) for p in role.managed_policies.values()]


def _find_role(iam: IAMBackend, arn: str) -> Role | None:
    try:
        return iam.get_role_by_arn(arn)
    except IAMException:
        return None


def _boundary(iam: IAMBackend, role: Role | None) -> dict[str, Any] | None:
    """The role's permissions boundary document; a missing boundary policy allows nothing."""
    if role is None or not role.permissions_boundary_arn:
        return None
    return _policy_by_arn(iam, role.permissions_boundary_arn) or {"Statement": []}


def _session_caller(request: IAMRequestBase, key_id: str) -> _Caller:
    partition = get_partition(request._region)
    caller = _session_principal(request.backend, request.account_id, partition, key_id)
    if caller is None:
        _raise_invalid_key(request)
    return caller


def principal_tags(role_tags: Mapping[str, str], session_tags: Mapping[str, str]) -> dict[str, str]:
    """The ``aws:PrincipalTag`` values of a role session: the role's tags, each overridden by a
    session tag of the same key compared without case ("Tag key-value pairs are not case
    sensitive [...] the session tag passed in the request takes precedence over the role tag");
    a session tag keeps the spelling it was passed with."""
    overridden = {key.lower() for key in session_tags}
    kept = {key: value for key, value in role_tags.items() if key.lower() not in overridden}
    return kept | dict(session_tags)


def _session_principal(
    iam: IAMBackend, account_id: str, partition: str, key_id: str
) -> _Caller | None:
    """The role session of an STS access key (None: no such session)."""
    assumed = sts_backends[account_id][partition].get_assumed_role_from_access_key(key_id)
    if assumed is None:
        return None
    info = session_context(key_id)
    role = _find_role(iam, assumed.role_arn)
    role_tags = {tag["Key"]: tag["Value"] for tag in (role.tags if role else [])}
    session_policies: list[dict[str, Any]] | None = None
    if info and (info.session_policy or info.session_policy_arns):
        session_policies = [
            _policy_by_arn(iam, arn) or {"Statement": []} for arn in info.session_policy_arns
        ]
        if info.session_policy:
            session_policies.append(_load_document(info.session_policy, "session policy"))
    expires_at = info.expires_at if info else assumed.expiration.replace(tzinfo=UTC).timestamp()
    return _Caller(
        principal=Principal(
            assumed.arn, role.arn if role else assumed.role_arn, assumed.account_id
        ),
        kind="AssumedRole",
        user_id=f"{role.id if role else 'AROA'}:{assumed.session_name}",
        username=None,
        tags=principal_tags(role_tags, info.tags if info else {}),
        identity_policies=_role_policies(role) if role else [],
        boundary=_boundary(iam, role),
        session_policies=session_policies,
        session=info,
        expires_at=expires_at,
    )


def _user_caller(request: IAMRequestBase, key_id: str) -> _Caller:
    caller = _user_principal(request.backend, key_id)
    if caller is None:
        _raise_invalid_key(request)
    return caller


def _user_principal(iam: IAMBackend, key_id: str) -> _Caller | None:
    """The IAM user of an active access key (None: no such user or key, or inactive)."""
    user = iam.get_user_from_access_key_id(key_id)
    key = next((k for k in user.access_keys if k.access_key_id == key_id), None) if user else None
    if user is None or key is None or key.status != "Active":
        return None
    policies = [_load_document(doc, f"{user.arn} {name}") for name, doc in user.policies.items()]
    policies += [_managed_document(p) for p in user.managed_policies.values()]
    for group in iam.get_groups_for_user(user.name):
        policies += [_load_document(doc, f"{group.arn} {n}") for n, doc in group.policies.items()]
        policies += [_managed_document(p) for p in group.managed_policies.values()]
    return _Caller(
        principal=Principal(user.arn, user.arn, user.account_id),
        kind="User",
        user_id=user.id,
        username=user.name,
        tags={tag["Key"]: tag["Value"] for tag in iam.list_user_tags(user.name)},
        identity_policies=policies,
        boundary=None,  # moto does not store user permissions boundaries
        session_policies=None,
        session=None,
        expires_at=None,
    )


def _access_key_id(request: IAMRequestBase) -> str:
    credential = request._get_string_between("Credential=", ",", request._headers["Authorization"])
    return credential.split("/")[0]


def _resolve_caller(request: IAMRequestBase) -> _Caller:
    key_id = _access_key_id(request)
    if isinstance(request._access_key, AssumedRoleAccessKey):
        return _session_caller(request, key_id)
    return _user_caller(request, key_id)


# --------------------------------------------------------------------------- request description


@dataclass(frozen=True)
class _Check:
    action: str
    resource: str
    trust_role: Role | None = None  # for sts:AssumeRole & co: the role whose trust policy decides
    needs_trust: bool = False
    # A resource in another account than the caller's: its resource-based policy (an empty
    # one when it has none) must allow the caller too.
    resource_policy: dict[str, Any] | None = None


@dataclass
class _Request:
    checks: list[_Check]
    context: dict[str, list[str]]


def _first(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def _members(params: Mapping[str, Any], prefix: str, suffix: str = "") -> list[str]:
    """Query-protocol lists: ``Prefix.member.1[.suffix]``, ``Prefix.member.2[.suffix]``, ..."""
    values: list[str] = []
    while (value := _first(params, f"{prefix}.member.{len(values) + 1}{suffix}")) is not None:
        values.append(value)
    return values


def _tags(params: Mapping[str, Any], prefix: str = "Tags") -> dict[str, str]:
    keys = _members(params, prefix, ".Key")
    return {
        key: _first(params, f"{prefix}.member.{i}.Value") or "" for i, key in enumerate(keys, 1)
    }


def _tag_context(kind: str, tags: Mapping[str, str]) -> dict[str, list[str]]:
    return {f"{kind}/{key}".lower(): [value] for key, value in tags.items()}


def _request_tag_context(tags: Mapping[str, str]) -> dict[str, list[str]]:
    context = _tag_context("aws:RequestTag", tags)
    if tags:
        context["aws:tagkeys"] = list(tags)
    return context


def _base_context(caller: _Caller, region: str, now: float) -> dict[str, list[str]]:
    principal = caller.principal
    context = {
        "aws:currenttime": [_iso(now)],
        "aws:epochtime": [str(int(now))],
        "aws:principalarn": [principal.principal_arn],
        "aws:principalaccount": [principal.account],
        "aws:principaltype": [caller.kind],
        "aws:principalisawsservice": ["false"],
        "aws:viaawsservice": ["false"],
        "aws:userid": [caller.user_id],
        "aws:requestedregion": [region],
    }
    if caller.username:
        context["aws:username"] = [caller.username]
    if caller.session:
        context["aws:tokenissuetime"] = [_iso(caller.session.issued_at)]
        if caller.session.source_identity:
            context["aws:sourceidentity"] = [caller.session.source_identity]
    context.update(_tag_context("aws:PrincipalTag", caller.tags))
    return context


def _effective_source_identity(params: Mapping[str, Any], caller: _Caller) -> str | None:
    """The SourceIdentity of the new session: requested, or persisted from the caller's."""
    requested = _first(params, "SourceIdentity")
    return requested or (caller.session.source_identity if caller.session else None)


def _describe_assume_role(params: Mapping[str, Any], caller: _Caller, partition: str) -> _Request:
    role_arn = _first(params, "RoleArn") or "*"
    role = _role_from_arn(role_arn, caller.principal.account, partition)
    source_identity = _effective_source_identity(params, caller)
    tags = _tags(params)
    actions = ["sts:AssumeRole"]
    if source_identity:
        actions.append("sts:SetSourceIdentity")
    if tags:
        actions.append("sts:TagSession")
    context = _request_tag_context(tags)
    if session_name := _first(params, "RoleSessionName"):
        context["sts:rolesessionname"] = [session_name]
    if source_identity:
        context["sts:sourceidentity"] = [source_identity]
    if external_id := _first(params, "ExternalId"):
        context["sts:externalid"] = [external_id]
    if transitive := _members(params, "TransitiveTagKeys"):
        context["sts:transitivetagkeys"] = transitive
    context["aws:resourceaccount"] = [_arn_account(role_arn) or caller.principal.account]
    if role is not None:
        context.update(_tag_context("aws:ResourceTag", _role_tags(role)))
        context.update(_tag_context("iam:ResourceTag", _role_tags(role)))
    checks = [_Check(action, role_arn, role, needs_trust=True) for action in actions]
    return _Request(checks, context)


def _arn_account(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None


def _role_tags(role: Role) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in role.tags}


# iam:PermissionsBoundary is the requested boundary for these ...
_BOUNDARY_FROM_REQUEST = {"CreateRole", "PutRolePermissionsBoundary"}
# ... and the role's current boundary for these (the Service Authorization Reference lists the
# key for no other role action; supplying it elsewhere would allow more than AWS does).
_BOUNDARY_FROM_ROLE = {
    "AttachRolePolicy",
    "DetachRolePolicy",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "DeleteRolePermissionsBoundary",
}
_IAM_CREATES = {
    "CreateRole": ("role", "RoleName"),
    "CreateUser": ("user", "UserName"),
    "CreateGroup": ("group", "GroupName"),
    "CreatePolicy": ("policy", "PolicyName"),
    "CreateInstanceProfile": ("instance-profile", "InstanceProfileName"),
}


def _iam_entity_arn(iam: IAMBackend, kind: str, name: str, account: str, partition: str) -> str:
    lookups: dict[str, Callable[[str], Any]] = {
        "role": iam.get_role,
        "user": iam.get_user,
        "group": iam.get_group,
        "instance-profile": iam.get_instance_profile,
    }
    try:
        return str(lookups[kind](name).arn)
    except IAMException:
        # Unknown entity: its path is unknown too; AWS cannot match it against a path either.
        return f"arn:{partition}:iam::{account}:{kind}/{name}"


def _iam_resource(
    action: str, params: Mapping[str, Any], iam: IAMBackend, account: str, partition: str
) -> str:
    if action in _IAM_CREATES:
        kind, name_param = _IAM_CREATES[action]
        path = _first(params, "Path") or "/"
        return f"arn:{partition}:iam::{account}:{kind}{path}{_first(params, name_param) or ''}"
    for kind, name_param in (
        ("instance-profile", "InstanceProfileName"),
        ("role", "RoleName"),
        ("user", "UserName"),
        ("group", "GroupName"),
    ):
        if name := _first(params, name_param):
            return _iam_entity_arn(iam, kind, name, account, partition)
    return _first(params, "PolicyArn") or "*"


def _describe_iam(
    action: str, params: Mapping[str, Any], iam: IAMBackend, account: str, partition: str
) -> _Request:
    resource = _iam_resource(action, params, iam, account, partition)
    context: dict[str, list[str]] = {}
    role_name = _first(params, "RoleName")
    role = None
    if role_name and action not in _IAM_CREATES:
        try:
            role = iam.get_role(role_name)
        except IAMException:
            role = None
    if action in _BOUNDARY_FROM_REQUEST and (boundary := _first(params, "PermissionsBoundary")):
        context["iam:permissionsboundary"] = [boundary]
    if action in _BOUNDARY_FROM_ROLE and role is not None and role.permissions_boundary_arn:
        context["iam:permissionsboundary"] = [role.permissions_boundary_arn]
    if action in ("AttachRolePolicy", "DetachRolePolicy") and (arn := _first(params, "PolicyArn")):
        context["iam:policyarn"] = [arn]
    if action in ("CreateRole", "TagRole", "CreateUser", "TagUser"):
        context.update(_request_tag_context(_tags(params)))
    if action in ("UntagRole", "UntagUser") and (keys := _members(params, "TagKeys")):
        context["aws:tagkeys"] = keys
    if role is not None:
        context.update(_tag_context("aws:ResourceTag", _role_tags(role)))
        context.update(_tag_context("iam:ResourceTag", _role_tags(role)))
    return _Request([_Check(f"iam:{action}", resource)], context)


_TRANSACT_ITEM_ACTIONS = {
    "TransactWriteItems": {
        "Put": "PutItem",
        "Update": "UpdateItem",
        "Delete": "DeleteItem",
        "ConditionCheck": "ConditionCheckItem",
    },
    "TransactGetItems": {"Get": "GetItem"},
}


def _describe_dynamodb(action: str, body: Mapping[str, Any], region: str, account: str) -> _Request:
    partition = get_partition(region)

    def table_arn(name: str) -> str:
        if name.startswith("arn:"):
            return name
        return f"arn:{partition}:dynamodb:{region}:{account}:table/{name}"

    context: dict[str, list[str]] = {}
    checks: list[_Check] = []
    if action in _TRANSACT_ITEM_ACTIONS:
        # AWS authorizes each item by its own action (dynamodb:PutItem, ...) on its table.
        context["dynamodb:enclosingoperation"] = [action]
        item_actions = _TRANSACT_ITEM_ACTIONS[action]
        for item in _listed(body.get("TransactItems")):
            for kind, operation in item.items() if isinstance(item, dict) else []:
                table = operation.get("TableName") if isinstance(operation, dict) else None
                if kind in item_actions and table:
                    checks.append(_Check(f"dynamodb:{item_actions[kind]}", table_arn(table)))
                else:
                    checks.append(_Check(f"dynamodb:{action}", "*"))
    elif action in ("BatchWriteItem", "BatchGetItem"):
        tables = dict(body.get("RequestItems") or {})
        checks = [_Check(f"dynamodb:{action}", table_arn(t)) for t in tables]
    elif isinstance(table := body.get("TableName"), str):
        resource = table_arn(table)
        if action in ("Query", "Scan") and (index := body.get("IndexName")):
            resource = f"{resource}/index/{index}"
        checks = [_Check(f"dynamodb:{action}", resource)]
    elif isinstance(resource_arn := body.get("ResourceArn"), str):
        checks = [_Check(f"dynamodb:{action}", resource_arn)]
    return _Request(checks or [_Check(f"dynamodb:{action}", "*")], context)


def _describe_events(action: str, body: Mapping[str, Any], region: str, account: str) -> _Request:
    """EventBridge authorizes PutEvents on each entry's event bus (moto says ``*``)."""
    if action != "PutEvents":
        return _Request([_Check(f"events:{action}", "*")], {})
    partition = get_partition(region)
    buses = {
        str(entry.get("EventBusName") or "default")
        for entry in _listed(body.get("Entries"))
        if isinstance(entry, dict)
    } or {"default"}
    checks = [
        _Check(
            "events:PutEvents",
            bus
            if bus.startswith("arn:")
            else f"arn:{partition}:events:{region}:{account}:event-bus/{bus}",
        )
        for bus in sorted(buses)
    ]
    return _Request(checks, {})


def _describe_s3(action: str, resource: str, caller: _Caller, partition: str) -> _Request:
    """S3 keeps the resource moto computes. Bucket names are global and moto serves a bucket
    of any account to any caller: one owned by another account than the caller's also needs
    its bucket policy to allow the caller (none: denied), as in AWS."""
    bucket = resource.removeprefix(f"arn:{partition}:s3:::").split("/", 1)[0]
    owner = s3_backends.bucket_accounts.get(bucket) if bucket not in ("", "*") else None
    if owner is None:
        return _Request([_Check(action, resource)], {})
    owner_partition, account = owner
    context = {"aws:resourceaccount": [account]}
    if account == caller.principal.account:
        return _Request([_Check(action, resource)], context)
    found = s3_backends[account][owner_partition].buckets.get(bucket)
    text = found.policy if found is not None else None
    document = (
        _load_document(text.decode() if isinstance(text, bytes) else text, f"bucket {bucket}")
        if text
        else {"Statement": []}
    )
    return _Request([_Check(action, resource, resource_policy=document)], context)


def _json_body(request: IAMRequestBase) -> dict[str, Any]:
    try:
        body = json.loads(request._body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _describe_request(
    request: IAMRequestBase, moto_resource: str, caller: _Caller, now: float
) -> _Request:
    service = request._service
    action = request._action.split(":", 1)[1]
    account = request.account_id
    partition = get_partition(request._region)
    params = request._data
    if service == "sts" and action == "AssumeRole":
        described = _describe_assume_role(params, caller, partition)
    elif service == "iam":
        described = _describe_iam(action, params, request.backend, account, partition)
    elif service == "dynamodb":
        described = _describe_dynamodb(action, _json_body(request), request._region, account)
    elif service == "events":
        described = _describe_events(action, _json_body(request), request._region, account)
    elif service == "s3":
        described = _describe_s3(request._action, moto_resource, caller, partition)
    else:
        described = _Request([_Check(request._action, moto_resource)], {})
    described.context = (
        _base_context(caller, request._region, now)
        | {"aws:resourceaccount": [account]}  # the request's own, unless the service said
        | described.context
    )
    return described


# --------------------------------------------------------------------------- decision


def _decisions_by_type(
    identity_policies: Sequence[Mapping[str, Any]],
    boundary: Mapping[str, Any] | None,
    session_policies: Sequence[Mapping[str, Any]] | None,
    action: str,
    resource: str,
    context: Mapping[str, str | Sequence[str]],
) -> list[tuple[str, Decision]]:
    """How each kind of policy that applies judges (action, resource), named for messages."""
    policy_sets = [("identity-based policy", identity_policies)]
    if boundary is not None:
        policy_sets.append(("permissions boundary", [boundary]))
    if session_policies is not None:
        policy_sets.append(("session policy", session_policies))
    return [
        (name, evaluate(documents, action, resource, context)) for name, documents in policy_sets
    ]


def _combine(decisions: Iterable[Decision]) -> Decision:
    """An explicit deny in any kind wins; otherwise every kind that applies must allow."""
    listed = list(decisions)
    if Decision.DENY in listed:
        return Decision.DENY
    return Decision.ALLOW if all(d is Decision.ALLOW for d in listed) else Decision.NEUTRAL


def session_decision(
    identity_policies: Sequence[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str | Sequence[str]],
    *,
    boundary: Mapping[str, Any] | None = None,
    session_policies: Sequence[Mapping[str, Any]] | None = None,
) -> Decision:
    """AWS's decision for a principal in its own account, as pure evaluation: DENY (an explicit
    deny in any of its policies), ALLOW or NEUTRAL (an implicit deny).

    For a role session the effective permissions are the intersection of the role's
    identity-based policies, its permissions boundary (if it has one) and the session policies
    passed at AssumeRole (inline ``Policy`` and ``PolicyArns``): each kind that applies must
    allow. ``session_policies=None`` is a session opened without any (no restriction); an empty
    list allows nothing. Build ``aws:PrincipalTag/...`` keys with :func:`principal_tags`.
    """
    return _combine(
        decision
        for _, decision in _decisions_by_type(
            identity_policies, boundary, session_policies, action, resource, context
        )
    )


def _policy_decisions(
    caller: _Caller, check: _Check, context: Context
) -> list[tuple[str, Decision]]:
    """How each kind of policy that applies to the caller judges (action, resource)."""
    return _decisions_by_type(
        caller.identity_policies,
        caller.boundary,
        caller.session_policies,
        check.action,
        check.resource,
        context,
    )


def identity_decision(
    key: CallerKey, action: str, resource: str, request_keys: Mapping[str, str], region: str
) -> Decision:
    """How the caller's own policies (identity-based, its boundary, its session's policies)
    judge ``action`` on ``resource``, for a verified key of the embedded IAM: DENY (an explicit deny), ALLOW (every kind that applies allows) or
    NEUTRAL. What API Gateway asks IAM for execute-api:Invoke."""
    iam = iam_backends[key.account_id][get_partition(region)]
    if key.session_token is None:
        caller = _user_principal(iam, key.access_key_id)
    else:
        caller = _session_principal(iam, key.account_id, get_partition(region), key.access_key_id)
    if caller is None:  # gone since the signature was verified: nothing allows it
        return Decision.NEUTRAL
    context = _base_context(caller, region, _clock()) | {
        name.lower(): [value] for name, value in request_keys.items()
    }
    return _combine(d for _, d in _policy_decisions(caller, _Check(action, resource), context))


def _denial_reason(caller: _Caller, check: _Check, context: Context) -> str | None:
    """Why AWS would deny this (action, resource), or None if it is allowed."""
    decisions = _policy_decisions(caller, check, context)
    if check.needs_trust:
        decisions.append(("role trust policy", _trust_decision(caller, check, context)))
    if check.resource_policy is not None:
        decisions.append(
            (
                "resource-based policy",
                evaluate(
                    [check.resource_policy], check.action, check.resource, context, caller.principal
                ),
            )
        )
    for name, decision in decisions:
        if decision is Decision.DENY:
            return f"with an explicit deny in a {name}"
    for name, decision in decisions:
        if decision is not Decision.ALLOW:
            return f"because no {name} allows the {check.action} action"
    return None


def _trust_decision(caller: _Caller, check: _Check, context: Context) -> Decision:
    if check.trust_role is None:
        return Decision.NEUTRAL  # no such role: nothing trusts the caller
    role = check.trust_role
    trust = _load_document(role.assume_role_policy_document, f"trust policy of {role.arn}")
    return evaluate([trust], check.action, check.resource, context, caller.principal)


def _source_identity_conflict(params: Mapping[str, Any], caller: _Caller) -> bool:
    requested = _first(params, "SourceIdentity")
    persisted = caller.session.source_identity if caller.session else None
    return bool(requested and persisted and requested != persisted)


def _check_action_permitted(self: IAMRequestBase, resource: str) -> None:
    """Replacement for moto's ``IAMRequestBase.check_action_permitted``."""
    caller = _resolve_caller(self)
    now = _now()
    if caller.expires_at is not None and now >= caller.expires_at:
        _raise_expired(self)
    if self._action == "sts:GetCallerIdentity":
        return  # always allowed, as in AWS, even with an explicit deny
    request = _describe_request(self, resource, caller, now)
    if self._action == "sts:AssumeRole" and _source_identity_conflict(self._data, caller):
        conflict = "because a session's source identity cannot be changed by role chaining"
        _raise_denied(self, caller, request.checks[0], conflict)
    for check in request.checks:
        reason = _denial_reason(caller, check, request.context)
        if reason is not None:
            _raise_denied(self, caller, check, reason)
    observer = _observer
    if observer is not None:
        _tell(observer, self, caller, now)


def _tell(observer: Observer, request: IAMRequestBase, caller: _Caller, now: float) -> None:
    params = request._data if isinstance(request._data, Mapping) else {}
    call = AllowedCall(
        action=request._action,
        account=request.account_id,
        caller_arn=caller.principal.arn,
        caller_principal_arn=caller.principal.principal_arn,
        parameters={name: value for name in OBSERVED_PARAMETERS if (value := _first(params, name))},
        at=now,
    )
    try:
        observer(call)
    except Exception:  # an observer's failure is not the request's
        log.exception("the observer of allowed requests failed")


# --------------------------------------------------------------------------- errors


class _QueryError(_RESTError):
    """An error in the query/XML protocols (IAM, STS, ...).

    moto calls ``_RESTError`` internal, but it is the only XML error class that takes any
    code (its public subclasses fix theirs); moto is pinned (5.2.5).
    """

    def __init__(self, error_type: str, message: str, status: int) -> None:
        super().__init__(error_type, message)
        self.code = status


class _JsonError(JsonRESTError):
    """An error in the JSON protocols (DynamoDB, SSM, ...)."""

    def __init__(self, error_type: str, message: str, status: int) -> None:
        super().__init__(error_type, message)
        self.code = status


def _is_json_protocol(request: IAMRequestBase) -> bool:
    return "json" in str(request._headers.get("Content-Type", "")).lower()


def _raise_invalid_key(request: IAMRequestBase) -> NoReturn:
    request._raise_invalid_access_key("InvalidId")  # raises moto's per-service error
    raise AssertionError("unreachable")


def _raise_expired(request: IAMRequestBase) -> NoReturn:
    message = "The security token included in the request is expired"
    if isinstance(request, S3IAMRequest):
        raise S3ClientError("ExpiredToken", "The provided token has expired.")
    if _is_json_protocol(request):
        raise _JsonError("ExpiredTokenException", message, 400)
    raise _QueryError("ExpiredToken", message, 403)


def _raise_denied(request: IAMRequestBase, caller: _Caller, check: _Check, reason: str) -> NoReturn:
    log.info("denied %s on %s to %s %s", check.action, check.resource, caller.principal.arn, reason)
    if isinstance(request, S3IAMRequest):
        request._raise_access_denied()
    message = (
        f"User: {caller.principal.arn} is not authorized to perform: {check.action} "
        f"on resource: {check.resource} {reason}"
    )
    if _is_json_protocol(request):
        raise _JsonError("AccessDeniedException", message, 400)
    raise _QueryError("AccessDenied", message, 403)


# --------------------------------------------------------------------------- sts:AssumeRole


def _role_from_arn(role_arn: str, default_account: str, partition: str) -> Role | None:
    parts = role_arn.split(":")
    account = parts[4] if len(parts) > 5 and parts[4] else default_account
    return _find_role(iam_backends[account][partition], role_arn)


def _validate_assume_role(response: TokenResponse, chained: bool) -> int:
    """What AWS validates and moto does not; returns DurationSeconds."""
    session_name = response._get_param("RoleSessionName") or ""
    source_identity = response._get_param("SourceIdentity")
    duration = response._get_int_param("DurationSeconds", DEFAULT_MAX_SESSION_SECONDS)
    if not _STS_NAME.fullmatch(session_name):
        raise STSValidationError(
            f"RoleSessionName {session_name!r} must be 2-64 characters of [\\w+=,.@-]"
        )
    if source_identity is not None and (
        not _STS_NAME.fullmatch(source_identity) or source_identity.lower().startswith("aws:")
    ):
        raise STSValidationError(
            f"SourceIdentity {source_identity!r} must be 2-64 characters of [\\w+=,.@-] "
            "and must not start with 'aws:'"
        )
    if chained and duration > ROLE_CHAINING_MAX_SECONDS:
        raise STSValidationError(
            "The requested DurationSeconds exceeds the 1 hour session limit "
            "for roles assumed by role chaining."
        )
    role = _role_from_arn(
        response._get_param("RoleArn") or "", response.current_account, response.partition
    )
    max_duration = DEFAULT_MAX_SESSION_SECONDS
    if role is not None and role.max_session_duration:
        max_duration = int(role.max_session_duration)
    if not MIN_SESSION_SECONDS <= duration <= max_duration:
        raise STSValidationError(
            f"The requested DurationSeconds ({duration}) must be between {MIN_SESSION_SECONDS} "
            f"and the MaxSessionDuration set for this role ({max_duration})."
        )
    return duration


def _tag_text_valid(text: str) -> bool:
    """The Tag shape's pattern ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]``, character by character."""
    return all(unicodedata.category(char)[0] in "LZN" or char in _TAG_PUNCTUATION for char in text)


def _validate_session_scope(params: Mapping[str, Any]) -> None:
    """What AWS refuses in an AssumeRole's session policies and session tags, and moto accepts.

    The inline ``Policy``: its characters (tab, line feed, carriage return, U+0020-U+00FF),
    JSON naming statements that allow or deny (else MalformedPolicyDocument), and at most
    2,048 characters of plain text. AWS's binding limit is the packed size of the policy, the
    policy ARNs and the tags together, which it does not publish: past the plain-text limit
    the local stack answers as AWS does for an oversized session (PackedPolicyTooLarge, its
    percentage taken of the plain-text limit), and it cannot reproduce a packed refusal below
    that limit. At most 10 ``PolicyArns``; at most 50 ``Tags``, keys of 1-128 and
    values of 0-256 characters of the Tag pattern, and no two keys equal without case ("you
    cannot have separate Department and department tag keys").
    """
    text = _first(params, "Policy")
    if text is not None:
        if not _SESSION_POLICY_TEXT.fullmatch(text):
            raise STSValidationError(
                "The session policy may hold only tab, line feed, carriage return and the "
                "characters U+0020 through U+00FF"
            )
        if len(text) > SESSION_POLICY_MAX_CHARS:
            share = -(-len(text) * 100 // SESSION_POLICY_MAX_CHARS)
            raise _QueryError(
                "PackedPolicyTooLarge",
                f"Packed policy consumes {share}% of allotted space, please use smaller policy.",
                400,
            )
        if not _well_formed_policy(text):
            raise _QueryError(
                "MalformedPolicyDocument", "The session policy is not a valid policy document", 400
            )
    if len(_members(params, "PolicyArns", ".arn")) > SESSION_POLICY_ARNS_MAX:
        raise STSValidationError(
            f"At most {SESSION_POLICY_ARNS_MAX} managed session policy ARNs may be passed"
        )
    keys = _members(params, "Tags", ".Key")
    if len(keys) > SESSION_TAGS_MAX:
        raise STSValidationError(
            "1 validation error detected: Value at 'tags' failed to satisfy constraint: "
            f"Member must have length less than or equal to {SESSION_TAGS_MAX}"
        )
    for index, key in enumerate(keys, 1):
        value = _first(params, f"Tags.member.{index}.Value") or ""
        if not 1 <= len(key) <= SESSION_TAG_KEY_MAX_CHARS or not _tag_text_valid(key):
            raise STSValidationError(
                f"Session tag key {key!r} must be 1-{SESSION_TAG_KEY_MAX_CHARS} characters of "
                "letters, digits, spaces and _.:/=+-@"
            )
        if len(value) > SESSION_TAG_VALUE_MAX_CHARS or not _tag_text_valid(value):
            raise STSValidationError(
                f"The value of session tag {key!r} must be at most "
                f"{SESSION_TAG_VALUE_MAX_CHARS} characters of letters, digits, spaces and "
                "_.:/=+-@"
            )
    if len({key.lower() for key in keys}) != len(keys):
        raise STSValidationError(
            "Duplicate tag keys found. Please note that Tag keys are case insensitive."
        )


def _well_formed_policy(text: str) -> bool:
    """A JSON object whose Statement is one statement or a list of them, each an object with
    Effect Allow or Deny: the least AWS's policy grammar asks of a session policy."""
    try:
        document = json.loads(text)
    except ValueError:
        return False
    if not isinstance(document, dict) or "Statement" not in document:
        return False
    statements = _listed(document["Statement"])
    return bool(statements) and all(
        isinstance(statement, dict) and statement.get("Effect") in ("Allow", "Deny")
        for statement in statements
    )


def _assume_role_and_record(self: TokenResponse) -> Any:
    """Wrapper of ``TokenResponse.assume_role``: validate, issue, record the session."""
    caller_key = self.get_access_key()
    chained = self.backend.get_assumed_role_from_access_key(caller_key) is not None
    caller_session = session_context(caller_key)
    duration = _validate_assume_role(self, chained)
    _validate_session_scope(self.querystring)
    result = _originals["assume_role"](self)
    assumed = result.result["Credentials"]
    issued_at = _now()
    expires_at = issued_at + duration
    assumed.expiration = datetime.fromtimestamp(expires_at, UTC).replace(tzinfo=None)
    params = self.querystring
    info = SessionInfo(
        access_key_id=assumed.access_key_id,
        role_arn=assumed.role_arn,
        session_name=assumed.session_name,
        source_identity=_first(params, "SourceIdentity")
        or (caller_session.source_identity if caller_session else None),
        tags=_tags(params),
        issued_at=issued_at,
        expires_at=expires_at,
        session_policy=_first(params, "Policy"),
        session_policy_arns=tuple(_members(params, "PolicyArns", ".arn")),
    )
    with _lock:
        _sessions[info.access_key_id] = info
    return result
