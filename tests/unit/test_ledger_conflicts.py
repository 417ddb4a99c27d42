"""A transaction that DynamoDB cancels for a conflict with another one (a burst of grants
all updating the shared role quota) is retried; a failed condition never is."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from jit_broker.adapters.ledger import Ledger
from jit_broker.errors import LedgerUnavailable, TooManyRequests
from jit_broker.models.domain import Grant, GrantStatus

OWNER = "arn:aws:iam::123456789012:user/JITUser|AIDAEXAMPLE"


def grant() -> Grant:
    return Grant(
        grant_id="g-" + "0" * 24,
        profile="s3-read",
        requester_id="arn:aws:iam::123456789012:user/JITUser",
        requester_arn="arn:aws:iam::123456789012:user/JITUser",
        owner=OWNER,
        account_id="123456789012",
        source_identity="JITUser",
        status=GrantStatus.ISSUING,
        created_at=1_000,
        expires_at=2_800,
        role_name="jit-g-" + "0" * 24,
    )


def cancelled(*codes: str) -> dict[str, Any]:
    return {
        "service_error_code": "TransactionCanceledException",
        "service_message": "Transaction cancelled",
        "http_status_code": 400,
        "service_error_meta": {},
        "response_meta": {},
    } | {"modeled_fields": {"CancellationReasons": [{"Code": c} for c in codes]}}


def open_grant(ledger: Ledger) -> None:
    ledger.open_grant(
        grant(), nonce="n" * 16, now=1_000, rate_limit=10, max_roles=5, max_roles_per_owner=2
    )


@pytest.fixture
def stubbed() -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    with Stubber(client) as stub:
        sleeps: list[float] = []
        yield stub, Ledger(client, "jit-grants", sleep=sleeps.append), sleeps
        stub.assert_no_pending_responses()


def test_a_conflict_with_a_concurrent_transaction_is_retried_then_succeeds(stubbed: Any) -> None:
    stub, ledger, sleeps = stubbed
    conflict = ("None", "None", "None", "TransactionConflict", "None")
    stub.add_client_error("transact_write_items", **cancelled(*conflict))
    stub.add_client_error("transact_write_items", **cancelled(*conflict))
    stub.add_response("transact_write_items", {})
    open_grant(ledger)
    assert len(sleeps) == 2 and all(0 < s < 1 for s in sleeps)


def test_a_conflict_that_persists_ends_as_ledger_unavailable(stubbed: Any) -> None:
    stub, ledger, sleeps = stubbed
    for _ in range(Ledger.CONFLICT_ATTEMPTS):
        stub.add_client_error("transact_write_items", **cancelled("TransactionConflict"))
    with pytest.raises(LedgerUnavailable):
        open_grant(ledger)
    assert len(sleeps) == Ledger.CONFLICT_ATTEMPTS - 1


def test_a_failed_condition_is_never_retried(stubbed: Any) -> None:
    stub, ledger, sleeps = stubbed
    stub.add_client_error(
        "transact_write_items",
        **cancelled("None", "None", "None", "ConditionalCheckFailed", "TransactionConflict"),
    )
    with pytest.raises(TooManyRequests, match="cap of 5 live grant roles"):
        open_grant(ledger)
    assert sleeps == []
