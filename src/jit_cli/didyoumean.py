"""Did-you-mean: the known name nearest to a mistyped one (``difflib``), in one sentence."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(word: str, names: Iterable[str]) -> str | None:
    """The name closest to ``word`` (difflib ratio at least 0.6), else None."""
    matches = difflib.get_close_matches(word, sorted(set(names)), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_command(word: str, names: Iterable[str]) -> str:
    """``jit: 'grnats' is not a jit command; did you mean 'grants'?``"""
    guess = nearest(word, names)
    hint = f"did you mean '{guess}'?" if guess else "see 'jit --help'"
    return f"jit: '{word}' is not a jit command; {hint}"
