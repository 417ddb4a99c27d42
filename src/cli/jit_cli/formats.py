"""Text in and out: durations on the command line, JSON and credentials on stdout."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from jit_cli.errors import CliError, ExitCode

_DURATION = re.compile(
    r"(?P<seconds_only>[0-9]{1,6})"
    r"|(?=[0-9])(?:(?P<d>[0-9]{1,2})d)?(?:(?P<h>[0-9]{1,3})h)?"
    r"(?:(?P<m>[0-9]{1,4})(?:min|m))?(?:(?P<s>[0-9]{1,6})s)?"
)
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
# The broker's limits on a grant window (its naming.MIN_SESSION_SECONDS and
# MAX_WINDOW_SECONDS; the CLI does not import the broker): AWS's shortest session, 15 min,
# and the longest window any profile may allow, 12 h. A profile may allow less (max_window).
SHORTEST_WINDOW_SECONDS = 900
LONGEST_WINDOW_SECONDS = 43200
DURATION_HELP = "15m to 12h (or the profile's max_window): 15m, 90min, 1h30m, 2h, 3600s, 3600"

CREDENTIAL_FIELDS = ("access_key_id", "secret_access_key", "session_token")


def parse_duration(text: str) -> int:
    """Seconds in ``text`` ("900", "900s", "30m", "90min", "1h30m", "1d"); ValueError
    otherwise. The range is checked by :func:`check_duration`."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid duration {text!r}: use {DURATION_HELP}")
    if match["seconds_only"] is not None:
        seconds = int(match["seconds_only"])
    else:
        seconds = sum(int(match[unit] or 0) * size for unit, size in _UNIT_SECONDS.items())
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be more than zero")
    return seconds


def human_duration(seconds: int) -> str:
    """``43200`` as ``12h``, ``5400`` as ``1h30m``, ``900`` as ``15m``, ``45`` as ``45s``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (secs, "s"))]
    return "".join(part for part in parts if not part.startswith("0")) or "0s"


def check_duration(
    text: str,
    seconds: int,
    longest: int = LONGEST_WINDOW_SECONDS,
    longest_what: str = "the longest window",
) -> int:
    """``seconds`` if within [15m, ``longest``]; else ValueError naming the range in human
    units ("duration 1d is longer than the longest window, 12h")."""
    if seconds < SHORTEST_WINDOW_SECONDS:
        raise ValueError(
            f"duration {text} is shorter than the shortest window, "
            f"{human_duration(SHORTEST_WINDOW_SECONDS)}"
        )
    if seconds > longest:
        raise ValueError(
            f"duration {text} is longer than {longest_what}, {human_duration(longest)}"
        )
    return seconds


def to_json(value: Any) -> str:
    """Pretty, stable JSON for stdout."""
    return json.dumps(value, indent=2, sort_keys=True)


def iso_utc(epoch_seconds: int) -> str:
    """``2026-11-28T03:35:40Z`` for an epoch time."""
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unexpected(what: str) -> CliError:
    return CliError(
        f"the broker's answer has no valid {what}",
        code="unexpected_response",
        exit_code=ExitCode.UNEXPECTED,
    )


def credentials_from(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The broker's ``credentials`` object, checked (values are never put in messages)."""
    creds = answer.get("credentials")
    if not isinstance(creds, dict):
        raise _unexpected("credentials")
    for field in CREDENTIAL_FIELDS:
        if not isinstance(creds.get(field), str) or not creds[field]:
            raise _unexpected(f"credentials.{field}")
    expiration = creds.get("expiration")
    if not isinstance(expiration, int) or isinstance(expiration, bool):
        raise _unexpected("credentials.expiration")
    return creds


def grant_from(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The broker's ``grant`` object, checked to have an id."""
    grant = answer.get("grant")
    if not isinstance(grant, dict) or not isinstance(grant.get("id"), str):
        raise _unexpected("grant")
    return grant


def credential_process_json(creds: Mapping[str, Any]) -> str:
    """The exact shape AWS's ``credential_process`` reads."""
    document = {
        "Version": 1,
        "AccessKeyId": creds["access_key_id"],
        "SecretAccessKey": creds["secret_access_key"],
        "SessionToken": creds["session_token"],
        "Expiration": iso_utc(creds["expiration"]),
    }
    return json.dumps(document, indent=2)


def credential_variables(creds: Mapping[str, Any], expiration: int | None = None) -> dict[str, str]:
    """The AWS environment variables for ``creds`` (expiration defaults to the session's)."""
    return {
        "AWS_ACCESS_KEY_ID": creds["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": creds["secret_access_key"],
        "AWS_SESSION_TOKEN": creds["session_token"],
        "AWS_CREDENTIAL_EXPIRATION": iso_utc(
            creds["expiration"] if expiration is None else expiration
        ),
    }


# The credential shapes of ``--format``, the same in every command that prints credentials.
FORMATS = ("sh", "fish", "json", "ini")


def sh_exports(variables: Mapping[str, str]) -> str:
    """POSIX shell ``export NAME=value`` lines, every value shlex-quoted."""
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in variables.items())


def fish_quote(value: str) -> str:
    """A fish single-quoted word: inside '...' fish treats only \\ and \' as escapes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_exports(variables: Mapping[str, str]) -> str:
    """fish ``set -gx NAME 'value'`` lines for ``jit env P --format fish | source``."""
    return "\n".join(f"set -gx {name} {fish_quote(value)}" for name, value in variables.items())


def ini_section(name: str, variables: Mapping[str, str]) -> str:
    """A credentials-file section (``~/.aws/credentials``) named ``name``."""
    for value in variables.values():
        if "\n" in value or "\r" in value:
            raise _unexpected("credentials (a value spans lines)")
    return "\n".join(
        [
            f"[{name}]",
            f"aws_access_key_id = {variables['AWS_ACCESS_KEY_ID']}",
            f"aws_secret_access_key = {variables['AWS_SECRET_ACCESS_KEY']}",
            f"aws_session_token = {variables['AWS_SESSION_TOKEN']}",
            f"# expires {variables['AWS_CREDENTIAL_EXPIRATION']}",
        ]
    )
