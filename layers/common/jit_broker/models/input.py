"""Request bodies. Unknown fields are errors; numbers are strict (``"1h"`` is not 3600)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from jit_broker.naming import MAX_WINDOW_SECONDS, MIN_SESSION_SECONDS

PROFILE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
NONCE_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
_CONTROL = {chr(c) for c in range(32)} | {chr(127)}


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

    @field_validator("reason", "ticket")
    @classmethod
    def _clean_text(cls, value: str | None) -> str | None:
        return None if value is None else _no_control_characters(value)


class SessionRequest(StrictBody):
    nonce: Annotated[str, Field(pattern=NONCE_PATTERN)]


class RevokeRequest(StrictBody):
    reason: Annotated[str | None, Field(max_length=1000)] = None

    @field_validator("reason")
    @classmethod
    def _clean_text(cls, value: str | None) -> str | None:
        return None if value is None else _no_control_characters(value)
