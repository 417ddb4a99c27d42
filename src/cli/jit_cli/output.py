"""``--output json|text``: the same data as stable JSON or as lines a person reads.

Without ``--output``, a terminal gets text and a pipe or a file gets JSON (:func:`chosen`), so
scripts keep parsing what they always parsed while people read tables.

Text is a table for lists of objects (columns chosen per command) and aligned ``key  value``
lines for one object; nested values are shown as compact JSON. Times are local (``19:50``, with
the date when it is not today's), an active grant's end says the time left (``19:50 (42 min
left)``), and windows read ``1h30m``. JSON keeps epoch seconds and seconds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from jit_cli.cache import local_time, now, time_left
from jit_cli.formats import human_duration, to_json

OUTPUTS = ("json", "text")
_TIME_FIELDS = frozenset(
    {"created_at", "expires_at", "revoked_at", "at", "now", "approved_at", "review_deadline"}
)
_DURATION_FIELDS = frozenset(
    {"max_window", "max_session", "duration_seconds", "window_seconds", "review_window"}
)
# The ends that say the time left, and the statuses in which they are still ahead: a grant's
# end while it runs (or, approved, until it is taken up); a request's review deadline (while
# requested, its expires_at is the same).
_ENDS = {"expires_at": ("active", "approved", "requested"), "review_deadline": ("requested",)}


def chosen(flag: str | None, stream: TextIO) -> str:
    """``--output`` as given; else text on a terminal and JSON otherwise."""
    if flag:
        return flag
    isatty = getattr(stream, "isatty", None)
    return "text" if callable(isatty) and isatty() else "json"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _time(name: str, value: int, at: float, row: Mapping[str, Any]) -> str:
    when = local_time(value, at)
    if row.get("status", "active") not in _ENDS.get(name, ()):
        return when
    return f"{when} (ended)" if value <= at else f"{when} ({time_left(value - at)})"


def _cell(name: str, value: Any, at: float, row: Mapping[str, Any]) -> str:
    if value is None:
        return "-"
    if name in _TIME_FIELDS and _is_int(value):
        return _time(name, value, at, row)
    if name in _DURATION_FIELDS and _is_int(value):
        return human_duration(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return ",".join(value)  # a profile's accounts: 111111111111,222222222222
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], at: float) -> str:
    """A plain table with an upper-case header; ``(none)`` for no rows."""
    if not rows:
        return "(none)"
    cells = [[_cell(column, row.get(column), at, row) for column in columns] for row in rows]
    header = [column.upper() for column in columns]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(columns))]
    lines = [header, *cells]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def fields(value: Mapping[str, Any], at: float) -> str:
    """``key  value`` lines, keys sorted and aligned."""
    if not value:
        return "(empty)"
    width = max(len(str(name)) for name in value)
    return "\n".join(
        f"{name!s:<{width}}  {_cell(str(name), value[name], at, value)}" for name in sorted(value)
    )


def render(
    value: Any, output: str, columns: Sequence[str] | None = None, at: float | None = None
) -> str:
    """``value`` as JSON or text (times relative to ``at``, the CLI's clock by default)."""
    if output != "text":
        return to_json(value)
    moment = now(os.environ) if at is None else at
    if isinstance(value, list):
        rows = [row for row in value if isinstance(row, Mapping)]
        names = columns or sorted({name for row in rows for name in row})
        return table(rows, names, moment)
    if isinstance(value, Mapping):
        return fields(value, moment)
    return str(value)
