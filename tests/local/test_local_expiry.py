"""On the local stack the deny-after-expiry the broker writes is evaluated, not dropped: a
role is usable before its grant's expiry and denied after, even by a session that is still
valid (moto alone would deny at once or never)."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from jit_local.server import LocalStack


@pytest.fixture
def shifted() -> Any:
    """A clock the test moves: both the broker and the embedded IAM read it."""
    offset = {"s": 0.0}

    def clock() -> float:
        return time.time() + offset["s"]

    stack = LocalStack(port=0, clock=clock).start()
    try:
        yield stack, offset
    finally:
        stack.stop()


def post(stack: LocalStack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = stack.call("POST", path, body)
    assert status == 201, answer
    return answer


def s3_for(stack: LocalStack, creds: dict[str, Any]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=stack.aws_url,
        region_name="us-east-1",
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        aws_session_token=creds["session_token"],
    )


def test_role_is_usable_before_grant_expiry_and_denied_after(shifted: Any) -> None:
    stack, offset = shifted
    grant = post(
        stack,
        "/v1/grants",
        {
            "profile": "s3-read",
            "duration": 3600,
            "reason": "expiry test",
            "nonce": "expiry-test-000000001",
        },
    )
    expires_at = grant["grant"]["expires_at"]
    start = time.time()
    # 5 minutes before expiry a fresh session still lasts 900 s: it outlives the grant
    offset["s"] = (expires_at - 300) - start
    late = post(
        stack, f"/v1/grants/{grant['grant']['id']}/credentials", {"nonce": "expiry-test-000000002"}
    )
    creds = late["credentials"]
    assert creds["expiration"] > expires_at + 500
    s3 = s3_for(stack, creds)
    offset["s"] = (expires_at - 10) - start
    assert s3.list_objects_v2(Bucket="example-bucket")["KeyCount"] == 2
    offset["s"] = (expires_at + 10) - start
    with pytest.raises(ClientError) as info:
        s3.list_objects_v2(Bucket="example-bucket")
    assert info.value.response["Error"]["Code"] == "AccessDenied"  # the policy, not token expiry
    offset["s"] = (expires_at - 10) - start
    assert s3.list_objects_v2(Bucket="example-bucket")["KeyCount"] == 2
