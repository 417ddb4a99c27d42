"""AWS's rules for names, tags and durations, in one place.

RoleSessionName and SourceIdentity: 2..64 characters of ``[\\w+=,.@-]``; SourceIdentity may
not start with ``aws:``. Role names: up to 64 of the same set. Session tag values: up to 256
characters of letters, digits, spaces and ``_.:/=+-@``. Every AssumeRole the broker makes is
role chaining (it runs as a Lambda role session), so a session lasts 900..3600 seconds.
"""

from __future__ import annotations

import hashlib
import re
import secrets

MIN_SESSION_SECONDS = 900
MAX_CHAINED_SESSION_SECONDS = 3600
MAX_WINDOW_SECONDS = 43200  # the longest grant window any profile may allow (12 h)

_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]", re.ASCII)
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9 _.:/=+\-@]")
_GRANT_ID = re.compile(r"^g-[0-9a-f]{24}$")


def new_grant_id() -> str:
    """A fresh, never-reused grant id (96 random bits)."""
    return "g-" + secrets.token_hex(12)


def is_grant_id(value: str) -> bool:
    return bool(_GRANT_ID.fullmatch(value))


_GRANT_ROLE_NAME = re.compile(r"^jit-(g-[0-9a-f]{24})$")


def role_name_for(grant_id: str) -> str:
    """The name of a grant's role: the only role names the broker ever creates."""
    return f"jit-{grant_id}"


def grant_id_of_role(role_name: str) -> str | None:
    """The grant id in a broker-made role name, or None for any other name."""
    match = _GRANT_ROLE_NAME.fullmatch(role_name)
    return match.group(1) if match else None


def is_grant_role_name(role_name: str) -> bool:
    return grant_id_of_role(role_name) is not None


_SHARED_ROLE_NAME = re.compile(r"^jit-s-[a-z0-9][a-z0-9-]{0,57}$")


def shared_role_name(profile: str) -> str:
    """The name of a profile's shared role (mode shared-role), the same in every account:
    ``jit-s-<profile>``, or for names too long for IAM's 64, the first 49 characters and a
    hash of the whole name."""
    name = f"jit-s-{profile}"
    if len(name) <= 64:
        return name
    return f"jit-s-{profile[:49]}-{_digest(profile, 8)}"


def is_shared_role_name(role_name: str) -> bool:
    return bool(_SHARED_ROLE_NAME.fullmatch(role_name))


def _digest(value: str, length: int) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def sts_name(value: str, *, max_length: int = 64) -> str:
    """Make ``value`` a valid RoleSessionName/SourceIdentity: 2..64 of ``[\\w+=,.@-]``.

    Characters outside the set become ``-``; a value that had to be shortened or changed
    keeps a hash of the original as a suffix, so different inputs stay distinguishable.
    Never starts with ``aws:`` (the colon is not in the set, and the prefix is checked).
    """
    cleaned = _NAME_UNSAFE.sub("-", value)
    changed = cleaned != value
    if cleaned.lower().startswith("aws"):
        cleaned = "u-" + cleaned
        changed = True
    if len(cleaned) < 2:
        cleaned = (cleaned + "--")[:2]
        changed = True
    if len(cleaned) > max_length or (changed and len(cleaned) + 9 > max_length):
        cleaned = cleaned[: max_length - 9]
        changed = True
    if changed:
        cleaned = f"{cleaned}.{_digest(value, 8)}"
    return cleaned[:max_length]


def tag_value(value: str, *, max_length: int = 256) -> str:
    """Make ``value`` a valid IAM/STS tag value (changed values keep a hash suffix)."""
    cleaned = _TAG_UNSAFE.sub("-", value)
    if cleaned == value and len(cleaned) <= max_length:
        return cleaned
    return f"{cleaned[: max_length - 9]}.{_digest(value, 8)}"


def human_seconds(seconds: int) -> str:
    """``5400`` as ``1h30m``, ``900`` as ``15m``: a window in the words the CLI takes."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (secs, "s"))]
    return "".join(part for part in parts if not part.startswith("0")) or "0s"


def session_seconds(window_left: int, profile_max_session: int) -> int:
    """DurationSeconds for AssumeRole: min(window left, profile session, 3600), never below 900.

    A session may outlive the window by up to 900 s only when less than 900 s are left; the
    role's deny-after-expiry policy cuts it off at the grant's expiry all the same.
    """
    return max(
        MIN_SESSION_SECONDS,
        min(window_left, profile_max_session, MAX_CHAINED_SESSION_SECONDS),
    )
