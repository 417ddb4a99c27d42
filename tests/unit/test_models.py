"""Request models and status transitions."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from jit_broker.models.domain import FORWARD, GrantStatus, can_move
from jit_broker.models.input import GrantRequest

NONCE = "n-0123456789abcdef"


def test_grant_request_accepts_a_plain_request() -> None:
    r = GrantRequest.model_validate(
        {"profile": "s3-read", "duration": 900, "reason": "why", "nonce": NONCE}
    )
    assert r.duration == 900 and r.ticket is None


@pytest.mark.parametrize("duration", [899, 43201, -1, "1h", "900", 900.0, True])
def test_grant_request_refuses_bad_durations(duration: object) -> None:
    with pytest.raises(ValidationError):
        GrantRequest.model_validate(
            {"profile": "s3-read", "duration": duration, "reason": "r", "nonce": NONCE}
        )


def test_grant_request_forbids_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        GrantRequest.model_validate({"profile": "s3-read", "nonce": NONCE, "requester": "x"})


def test_status_moves_only_forward() -> None:
    order = [GrantStatus.ISSUING, GrantStatus.ACTIVE, GrantStatus.REVOKED, GrantStatus.CLEANED]
    for earlier, later in itertools.pairwise(order):
        assert can_move(earlier, later) and not can_move(later, earlier)
    assert not can_move(GrantStatus.CLEANED, GrantStatus.ACTIVE)
    assert not can_move(GrantStatus.EXPIRED, GrantStatus.ACTIVE)
    assert set(FORWARD) == set(GrantStatus)


def test_ledger_refuses_a_backward_status_update() -> None:
    from jit_broker.adapters.ledger import Ledger

    with pytest.raises(ValueError, match="may not move"):
        Ledger(client=None, table_name="t").move(
            "g-000000000000000000000000", GrantStatus.REVOKED, GrantStatus.ACTIVE
        )
