"""``--output json|text``: the same data as stable JSON or as lines a person reads.

Text is a table for lists of objects (columns chosen per command) and aligned
``key  value`` lines for one object; nested values are shown as compact JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from jit_cli.formats import iso_utc, to_json

OUTPUTS = ("json", "text")
_TIME_FIELDS = frozenset({"created_at", "expires_at", "revoked_at", "at", "now"})


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name in _TIME_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        return iso_utc(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain table with an upper-case header; ``(none)`` for no rows."""
    if not rows:
        return "(none)"
    cells = [[_cell(column, row.get(column)) for column in columns] for row in rows]
    header = [column.upper() for column in columns]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(columns))]
    lines = [header, *cells]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def fields(value: Mapping[str, Any]) -> str:
    """``key  value`` lines, keys sorted and aligned."""
    if not value:
        return "(empty)"
    width = max(len(str(name)) for name in value)
    return "\n".join(
        f"{name!s:<{width}}  {_cell(str(name), value[name])}" for name in sorted(value)
    )


def render(value: Any, output: str, columns: Sequence[str] | None = None) -> str:
    """``value`` as JSON (the default) or text."""
    if output != "text":
        return to_json(value)
    if isinstance(value, list):
        rows = [row for row in value if isinstance(row, Mapping)]
        names = columns or sorted({name for row in rows for name in row})
        return table(rows, names)
    if isinstance(value, Mapping):
        return fields(value)
    return str(value)
