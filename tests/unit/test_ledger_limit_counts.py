"""The ledger's read of what a grant request's limits are judged on (Ledger.limit_counts):
the exact items asked for, consistently; what each counts; keys DynamoDB leaves unprocessed
asked again (a bounded number of times); more keys than one BatchGetItem takes split."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from jit_broker.adapters.ledger import Ledger
from jit_broker.errors import LedgerUnavailable

TABLE = "jit-grants"
OWNER = "arn:aws:iam::123456789012:user/JITUser|AIDAEXAMPLE"
NONCE = "n" * 16
NOW = 1_800_000_000


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


NONCE_KEY = key(f"NONCE#{OWNER}#{NONCE}", "NONCE")
RATE_KEY = key(f"RATE#{OWNER}#{NOW // 60}", "RATE")
ROLES_KEY = key("QUOTA#roles", "QUOTA")
OWNER_ROLES_KEY = key(f"QUOTA#owner#{OWNER}", "QUOTA")


def slot_key(k: int) -> dict[str, Any]:
    return key(f"SLOT#{OWNER}#s3-read#{k}", "SLOT")


def asked(keys: list[dict[str, Any]]) -> dict[str, Any]:
    return {"RequestItems": {TABLE: {"Keys": keys, "ConsistentRead": True}}}


def answer(items: list[dict[str, Any]], unprocessed: list[dict[str, Any]] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"Responses": {TABLE: items}}
    if unprocessed:
        out["UnprocessedKeys"] = {TABLE: {"Keys": list(unprocessed)}}
    return out


@pytest.fixture
def stubbed() -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    with Stubber(client) as stub:
        sleeps: list[float] = []
        yield stub, Ledger(client, TABLE, sleep=sleeps.append), sleeps
        stub.assert_no_pending_responses()


def counts(ledger: Ledger, *, max_active: int | None = 2, roles: bool = True) -> Any:
    return ledger.limit_counts(
        OWNER, "s3-read", nonce=NONCE, now=NOW, max_active=max_active, roles=roles
    )


def test_one_consistent_read_of_the_nonce_rate_quotas_and_slots_counts_each(stubbed: Any) -> None:
    stub, ledger, _ = stubbed
    keys = [NONCE_KEY, RATE_KEY, ROLES_KEY, OWNER_ROLES_KEY, slot_key(0), slot_key(1)]
    stub.add_response(
        "batch_get_item",
        answer(
            [
                NONCE_KEY | {"ttl": {"N": str(NOW - 1)}},  # expired, not yet deleted: used
                RATE_KEY | {"hits": {"N": "4"}},
                ROLES_KEY | {"live_roles": {"N": "17"}},
                OWNER_ROLES_KEY | {"live_roles": {"N": "3"}},
                slot_key(0) | {"expires_at": {"N": str(NOW + 1)}},  # held
                slot_key(1) | {"expires_at": {"N": str(NOW)}},  # expired now: free
            ]
        ),
        asked(keys),
    )
    found = counts(ledger)
    assert found.nonce_used is True
    assert (found.requests_this_minute, found.live_roles, found.owner_live_roles) == (4, 17, 3)
    assert found.held_slots == {0}


def test_a_shared_role_grant_reads_no_role_quota_and_an_uncapped_profile_no_slot(
    stubbed: Any,
) -> None:
    stub, ledger, _ = stubbed
    stub.add_response("batch_get_item", answer([]), asked([NONCE_KEY, RATE_KEY]))
    found = counts(ledger, max_active=None, roles=False)
    assert (found.nonce_used, found.requests_this_minute, found.held_slots) == (False, 0, set())
    assert (found.live_roles, found.owner_live_roles) == (None, None)


def test_unprocessed_keys_are_asked_again_until_answered(stubbed: Any) -> None:
    stub, ledger, sleeps = stubbed
    stub.add_response(
        "batch_get_item",
        answer([], unprocessed=[NONCE_KEY, RATE_KEY]),
        asked([NONCE_KEY, RATE_KEY]),
    )
    stub.add_response(
        "batch_get_item", answer([RATE_KEY | {"hits": {"N": "9"}}]), asked([NONCE_KEY, RATE_KEY])
    )
    found = counts(ledger, max_active=None, roles=False)
    assert found.requests_this_minute == 9 and len(sleeps) == 1


def test_keys_left_unprocessed_every_time_make_the_ledger_unavailable(stubbed: Any) -> None:
    """An answer judged on part of the items could be wrong: none is given."""
    stub, ledger, sleeps = stubbed
    stub.add_response(
        "batch_get_item", answer([], unprocessed=[RATE_KEY]), asked([NONCE_KEY, RATE_KEY])
    )
    for _ in range(Ledger.UNPROCESSED_ATTEMPTS - 1):
        stub.add_response("batch_get_item", answer([], unprocessed=[RATE_KEY]), asked([RATE_KEY]))
    with pytest.raises(LedgerUnavailable):
        counts(ledger, max_active=None, roles=False)
    assert len(sleeps) == Ledger.UNPROCESSED_ATTEMPTS - 1


def test_more_keys_than_one_batch_takes_are_read_in_batches_of_100(stubbed: Any) -> None:
    stub, ledger, _ = stubbed
    keys = [NONCE_KEY, RATE_KEY, ROLES_KEY, OWNER_ROLES_KEY, *(slot_key(k) for k in range(100))]
    stub.add_response("batch_get_item", answer([]), asked(keys[:100]))
    stub.add_response(
        "batch_get_item",
        answer([slot_key(99) | {"expires_at": {"N": str(NOW + 60)}}]),
        asked(keys[100:]),
    )
    assert counts(ledger, max_active=100).held_slots == {99}
