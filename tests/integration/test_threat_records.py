"""What the ledger keeps and what STS refusals become, asserted exactly (threats 6, 13, 26):
the nonce's time to live outlasts SigV4's replay window, an oversized session is a 400 with
nothing issued, and every session record joins CloudTrail (its access key id and the
SourceIdentity STS was given)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from jit_broker.adapters.ledger import NONCE_TTL_SECONDS
from jit_broker.adapters.sts import Sts
from jit_broker.errors import BadRequest
from tests.conftest import FROZEN_AT, grant_body

pytestmark = pytest.mark.usefixtures("frozen_clock")


def test_threat6_the_nonce_outlives_the_sigv4_replay_window(stack: Any, call: Any) -> None:
    body = grant_body()
    assert call("POST", "/v1/grants", body)[0] == 201
    puts = [
        item["Put"]
        for transaction in stack.calls.named("TransactWriteItems")
        for item in transaction["TransactItems"]
        if "Put" in item
    ]
    (nonce,) = [p for p in puts if p["Item"]["pk"]["S"].startswith("NONCE#")]
    assert nonce["Item"]["pk"]["S"].endswith("#" + body["nonce"])
    assert nonce["ConditionExpression"] == "attribute_not_exists(pk)"
    # SigV4 accepts a request up to 5 minutes either side of its date: 10 minutes in all
    assert NONCE_TTL_SECONDS > 2 * 300
    assert nonce["Item"]["ttl"] == {"N": str(FROZEN_AT + NONCE_TTL_SECONDS)}


def test_threat13_a_session_sts_finds_too_large_is_a_400() -> None:
    client = boto3.client("sts", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error(
            "assume_role", service_error_code="PackedPolicyTooLarge", http_status_code=400
        )
        with pytest.raises(BadRequest) as refused:
            Sts(client, retry_budget_seconds=0).assume(
                role_arn="arn:aws:iam::123456789012:role/jit/x/jit-g-" + "0" * 24,
                session_name="jit-JITUser",
                source_identity="JITUser",
                duration_seconds=900,
                tags={"jit:grant-id": "g-" + "0" * 24},
            )
        stub.assert_no_pending_responses()
    assert refused.value.status == 400 and "too large" in refused.value.message


def test_threat26_every_session_record_joins_cloudtrail(stack: Any, call: Any) -> None:
    status, _, first = call("POST", "/v1/grants", grant_body())
    assert status == 201
    gid = first["grant"]["id"]
    status, _, second = call("POST", f"/v1/grants/{gid}/credentials", {"nonce": "n-" + "1" * 20})
    assert status == 201
    assumed = stack.calls.named("AssumeRole")
    sessions = sorted(
        (i for i in stack.table_items() if i["sk"]["S"].startswith("SESSION#")),
        key=lambda i: i["sk"]["S"],
    )
    issued = [first["credentials"]["access_key_id"], second["credentials"]["access_key_id"]]
    assert sorted(s["access_key_id"]["S"] for s in sessions) == sorted(issued)
    assert [s["source_identity"]["S"] for s in sessions] == [a["SourceIdentity"] for a in assumed]
    assert [s["session_name"]["S"] for s in sessions] == [a["RoleSessionName"] for a in assumed]
    for record in sessions:  # never the secret or the token
        assert not {"secret_access_key", "session_token"} & set(record)
