"""Request bodies. Unknown fields are errors; numbers are strict (``"1h"`` is not 3600).

``parse_json_body`` reads a body's bytes as strict JSON before any model sees it."""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from jit_broker.errors import BadRequest
from jit_broker.naming import MAX_WINDOW_SECONDS, MIN_SESSION_SECONDS

PROFILE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
NONCE_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
ACCOUNT_PATTERN = r"^\d{12}$"
_CONTROL = {chr(c) for c in range(32)} | {chr(127)}
MAX_JSON_DEPTH = 16  # bodies are flat objects; this bounds what reaches the models
MAX_NUMBER_CHARS = 24  # a number literal's length (any epoch or duration fits in 20)
FIELD_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a key shown in a message; others are not
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_control_characters(value: str) -> str:
    if any(ch in _CONTROL for ch in value):
        raise ValueError("must not contain control characters (newlines, tabs, escapes)")
    return value


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class GrantRequest(StrictBody):
    profile: Annotated[str, Field(pattern=PROFILE_NAME_PATTERN, description="Profile name.")]
    duration: Annotated[
        StrictInt | None,
        Field(
            ge=MIN_SESSION_SECONDS,
            le=MAX_WINDOW_SECONDS,
            description="Grant window in seconds (defaults to the profile's, at most 1 h).",
        ),
    ] = None
    reason: Annotated[str | None, Field(max_length=1000, description="Why access is needed.")] = (
        None
    )
    ticket: Annotated[str | None, Field(max_length=128)] = None
    nonce: Annotated[
        str, Field(pattern=NONCE_PATTERN, description="Fresh random value per request.")
    ]
    account: Annotated[
        str | None,
        Field(
            pattern=ACCOUNT_PATTERN,
            description="The account to be granted access in (one of the profile's accounts; "
            "defaults to its only one).",
        ),
    ] = None
    dry_run: Annotated[
        StrictBool,
        Field(
            description="true: grant nothing, answer 200 with whether this request would be "
            "granted and every rule that refuses it (GrantDryRun). The nonce is checked, "
            "not used: the same request may then be sent for real.",
        ),
    ] = False

    @field_validator("reason", "ticket")
    @classmethod
    def _clean_text(cls, value: str | None) -> str | None:
        return None if value is None else _no_control_characters(value)


class SessionRequest(StrictBody):
    nonce: Annotated[str, Field(pattern=NONCE_PATTERN)]


class DecisionRequest(StrictBody):
    """POST /v1/grants/{id}/approve or /deny: the approver's comment (recorded with the
    decision) and a fresh nonce (a replayed decision is refused, 409)."""

    comment: Annotated[
        str,
        Field(min_length=1, max_length=1000, description="Why: recorded with the decision."),
    ]
    nonce: Annotated[
        str, Field(pattern=NONCE_PATTERN, description="Fresh random value per request.")
    ]

    @field_validator("comment")
    @classmethod
    def _clean_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must say something: why you approve or deny")
        return _no_control_characters(value)


class ReviewRequest(StrictBody):
    """POST /v1/grants/{id}/review: an approver closes a break-glass grant's review with what
    they found (recorded with who and when) and a fresh nonce (a replay is refused, 409)."""

    comment: Annotated[
        str,
        Field(
            min_length=1,
            max_length=1000,
            description="What the review found: recorded with the grant.",
        ),
    ]
    nonce: Annotated[
        str, Field(pattern=NONCE_PATTERN, description="Fresh random value per request.")
    ]

    @field_validator("comment")
    @classmethod
    def _clean_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must say something: what the review found")
        return _no_control_characters(value)


class RevokeRequest(StrictBody):
    reason: Annotated[str | None, Field(max_length=1000)] = None

    @field_validator("reason")
    @classmethod
    def _clean_text(cls, value: str | None) -> str | None:
        return None if value is None else _no_control_characters(value)


def parse_json_body(data: bytes) -> Any:
    """The body as JSON, strictly: UTF-8 only, each key once per object, no NaN or
    Infinity, number literals of at most MAX_NUMBER_CHARS characters, containers nested at
    most MAX_JSON_DEPTH deep. Raises BadRequest with a message that says what to fix and
    never quotes the body (an unknown key is named only if it looks like a field name)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body: is not valid UTF-8") from None
    if "\ufffd" in text:
        # API Gateway hands the function bytes that are not UTF-8 as U+FFFD.
        raise BadRequest("body: is not valid UTF-8 (it holds U+FFFD, a replaced byte)")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
            parse_constant=_no_constant,
        )
    except RecursionError:
        raise BadRequest(f"body: is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError:
        raise BadRequest("body: is not valid JSON") from None
    _check_nesting_and_strings(value)
    return value


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            where = f"body.{key}" if FIELD_NAME.fullmatch(key) else "body"
            raise BadRequest(f"{where}: a key is given twice in one object; give it once")
        seen[key] = value
    return seen


def _bounded_int(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise BadRequest(f"body: numbers may have at most {MAX_NUMBER_CHARS} characters")
    return int(literal)


def _bounded_float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise BadRequest(f"body: numbers may have at most {MAX_NUMBER_CHARS} characters")
    value = float(literal)
    if not math.isfinite(value):
        raise BadRequest("body: numbers must be finite")
    return value


def _no_constant(name: str) -> Any:
    raise BadRequest("body: NaN and Infinity are not JSON numbers")


def _check_nesting_and_strings(value: Any) -> None:
    """Depth of nesting (iteratively: no recursion on the caller's data) and strings that
    are valid Unicode (a JSON escape may name a lone surrogate, which no store accepts)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest(f"body: is nested deeper than {MAX_JSON_DEPTH} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(item, str) and _LONE_SURROGATE.search(item):
            raise BadRequest("body: strings must not hold lone surrogates (\\ud800-\\udfff)")
