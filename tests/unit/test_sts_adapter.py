"""AssumeRole parameters and the eventual-consistency retry, with botocore's Stubber."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from jit_broker.adapters.sts import Sts
from jit_broker.errors import AwsUnavailable

ROLE = "arn:aws:iam::123456789012:role/jit/jit-g-000000000000000000000000"
PARAMS = {
    "RoleArn": ROLE,
    "RoleSessionName": "jit-JITUser",
    "SourceIdentity": "JITUser",
    "DurationSeconds": 900,
    "Tags": [{"Key": "jit:grant-id", "Value": "g-000000000000000000000000"}],
}
OK = {
    "Credentials": {
        "AccessKeyId": "ASIAEXAMPLEEXAMPLE00",
        "SecretAccessKey": "secret-secret-secret-secret-secret-secre",
        "SessionToken": "token" * 20,
        "Expiration": datetime(2026, 11, 28, 3, 0, tzinfo=UTC),
    }
}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def make(budget: float = 8.0) -> tuple[Sts, Stubber, Clock]:
    client = boto3.client("sts", region_name="us-east-1")
    clock = Clock()
    return (
        Sts(client, retry_budget_seconds=budget, sleep=clock.sleep, monotonic=lambda: clock.now),
        Stubber(client),
        clock,
    )


def assume(sts: Sts):
    return sts.assume(
        role_arn=ROLE,
        session_name="jit-JITUser",
        source_identity="JITUser",
        duration_seconds=900,
        tags={"jit:grant-id": "g-000000000000000000000000"},
    )


def test_access_denied_twice_then_success_returns_credentials() -> None:
    sts, stub, clock = make()
    stub.add_client_error("assume_role", "AccessDenied", expected_params=PARAMS)
    stub.add_client_error("assume_role", "AccessDenied", expected_params=PARAMS)
    stub.add_response("assume_role", OK, expected_params=PARAMS)
    with stub:
        creds = assume(sts)
    stub.assert_no_pending_responses()
    assert creds.access_key_id == "ASIAEXAMPLEEXAMPLE00"
    assert creds.expiration == int(datetime(2026, 11, 28, 3, 0, tzinfo=UTC).timestamp())
    assert clock.sleeps == [0.25, 0.5]


def test_retries_stop_when_the_budget_is_spent() -> None:
    sts, stub, clock = make(budget=1.0)
    for _ in range(3):
        stub.add_client_error("assume_role", "AccessDenied", expected_params=PARAMS)
    with stub, pytest.raises(AwsUnavailable, match="AccessDenied"):
        assume(sts)
    assert sum(clock.sleeps) <= 1.0


def test_other_errors_are_not_retried() -> None:
    sts, stub, clock = make()
    stub.add_client_error("assume_role", "RegionDisabledException", expected_params=PARAMS)
    with stub, pytest.raises(AwsUnavailable):
        assume(sts)
    assert clock.sleeps == []
