"""Known findings of the fuzzing, each a strict xfail: the run stays green while the fault
stands, and fails (XPASS) the day it is fixed, so the mark is taken off with the fix."""

from __future__ import annotations

import pytest

KNOWN = {
    "test_no_request_gets_a_5xx_an_unshaped_error_or_leaves_anything_behind"
    "[POST /v1/grants/{grant_id}/revoke]": (
        "revoking a grant already revoked (its role removed) answers 503 aws_unavailable: "
        "Broker.revoke puts the deny-all on the removed role again and IAM refuses it "
        "(AccessDenied, the broker's policy needs the role's owner tag); jit_broker.grants"
    ),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        reason = KNOWN.get(item.name)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))
