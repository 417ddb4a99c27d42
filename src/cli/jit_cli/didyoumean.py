"""Did-you-mean: the known name nearest to a mistyped one (``difflib``), for commands and for
the profile of a new grant that the broker does not know."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jit_cli.errors import CliError


def nearest(word: str, names: Iterable[str]) -> str | None:
    """The name closest to ``word`` (difflib ratio at least 0.6), else None."""
    matches = difflib.get_close_matches(word, sorted(set(names)), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_command(word: str, names: Iterable[str]) -> str:
    """``jit: 'grnats' is not a jit command; did you mean 'grants'?``"""
    guess = nearest(word, names)
    hint = f"did you mean '{guess}'?" if guess else "see 'jit --help'"
    return f"jit: '{word}' is not a jit command; {hint}"


def with_profile_hint(
    error: CliError, profile: object, names: Callable[[], Iterable[str]]
) -> CliError:
    """The broker's ``not_found`` for ``profile``: the same error ending with the nearest
    profile from ``names()`` (asked only then); unchanged when ``profile`` is among them,
    nothing is near, or the listing fails."""
    if error.code != "not_found" or not isinstance(profile, str) or not profile:
        return error
    try:
        known = list(names())
    except CliError:
        return error
    guess = None if profile in known else nearest(profile, known)
    if guess is None:
        return error
    message = f"{error.message.rstrip('.')}; did you mean '{guess}'?"
    return CliError(message, code=error.code, exit_code=error.exit_code)


def profile_names(answer: Mapping[str, Any]) -> list[str]:
    """The names in a GET /v1/profiles answer."""
    profiles = answer.get("profiles")
    if not isinstance(profiles, list):
        return []
    return [p["name"] for p in profiles if isinstance(p, dict) and isinstance(p.get("name"), str)]
