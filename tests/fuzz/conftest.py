"""Known findings of the fuzzing, each a strict xfail: the run stays green while the fault
stands, and fails (XPASS) the day it is fixed, so the mark is taken off with the fix."""

from __future__ import annotations

import pytest

KNOWN: dict[str, str] = {
    # none open: revoking a revoked grant (503) and a deeply nested policy document
    # (RecursionError) were found here and are fixed
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        reason = KNOWN.get(item.name)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))
