"""The invocation's time left reaches the AssumeRole retries: the handler passes the Lambda
context's remaining time to the broker, which stops retrying in time to roll the grant back
and answer before the function times out, whatever the retry budget. moto for IAM and the
ledger; STS stubbed (Stubber) and a fake monotonic clock, which the fake context follows."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from jit_broker import runtime
from jit_broker.adapters.iam import Iam
from jit_broker.adapters.ledger import Ledger
from jit_broker.adapters.policy_source import load_policy
from jit_broker.adapters.sts import Sts
from jit_broker.grants import ANSWER_RESERVE_SECONDS, Broker
from jit_broker.settings import Settings
from tests.conftest import FakeMonotonic, api_event, grant_body

BUDGET_SECONDS = 18.0


@dataclass
class ShortContext:
    """A Lambda context whose remaining time runs down with the fake clock."""

    clock: FakeMonotonic
    remaining_ms: int
    function_name: str = "jit-broker"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:jit-broker"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    asked: list[int] = field(default_factory=list)

    def get_remaining_time_in_millis(self) -> int:
        left = self.remaining_ms - int(self.clock.now * 1000)
        self.asked.append(left)
        return left


@pytest.fixture
def stubbed(stack: Any) -> Any:
    """The handler's broker on moto, with STS stubbed and time on the fake clock."""
    clock = FakeMonotonic()
    settings = Settings.from_env(stack.seeded.broker_env(str(stack.policy_file)))
    stub = Stubber(stack.sts)
    broker = Broker(
        settings=settings,
        policy=lambda: load_policy(path=str(stack.policy_file)),
        ledger=Ledger(stack.dynamodb, settings.table_name),
        iam=Iam(stack.iam),
        sts=Sts(
            stack.sts,
            retry_budget_seconds=BUDGET_SECONDS,
            sleep=clock.sleep,
            monotonic=clock.monotonic,
        ),
    )
    runtime.set_broker(broker)
    with stub:
        yield stub, clock
    runtime.set_broker(None)


def request_grant(handler: Any, context: ShortContext) -> tuple[int, Any]:
    response = handler.lambda_handler(api_event("POST", "/v1/grants", grant_body()), context)
    return response["statusCode"], json.loads(response["body"])


def test_little_time_left_stops_the_retries_early_and_the_grant_is_rolled_back(
    stack: Any, handler: Any, stubbed: Any
) -> None:
    stub, clock = stubbed
    for _ in range(40):
        stub.add_client_error("assume_role", "AccessDenied", expected_params=None)
    context = ShortContext(clock, remaining_ms=9_000)  # 9 s left: 4 s to retry, 5 kept back

    status, body = request_grant(handler, context)

    assert status == 503 and body["error"]["code"] == "aws_unavailable"
    assert clock.sleeps == [0.25, 0.5, 1.0, 2.0]  # 3.75 s: another 2 s would pass 4 s
    assert len(stack.calls.named("AssumeRole")) == 5
    assert clock.now <= 9 - ANSWER_RESERVE_SECONDS
    assert context.asked  # the broker asked the context, not a figure of its own
    assert stack.jit_roles() == []
    (item,) = stack.grant_items()
    assert item["status"]["S"] == "failed"


def test_with_time_enough_the_retry_budget_is_what_bounds_the_retries(
    stack: Any, handler: Any, stubbed: Any
) -> None:
    stub, clock = stubbed
    for _ in range(40):
        stub.add_client_error("assume_role", "AccessDenied", expected_params=None)
    context = ShortContext(clock, remaining_ms=25_000)  # 20 s usable: the 18 s budget rules

    status, _ = request_grant(handler, context)

    assert status == 503
    assert BUDGET_SECONDS - 2 <= sum(clock.sleeps) <= BUDGET_SECONDS


def test_a_role_usable_in_time_is_granted_with_the_context_consulted(
    stack: Any, handler: Any, stubbed: Any
) -> None:
    stub, clock = stubbed
    stub.add_client_error("assume_role", "AccessDenied", expected_params=None)
    stub.add_response(
        "assume_role",
        {
            "Credentials": {
                "AccessKeyId": "ASIAEXAMPLEEXAMPLE00",
                "SecretAccessKey": "secret-secret-secret-secret-secret-secre",
                "SessionToken": "token" * 20,
                "Expiration": datetime.fromtimestamp(time.time() + 1800, UTC),
            },
            "AssumedRoleUser": {
                "AssumedRoleId": "AROAEXAMPLE:jit-JITUser",
                "Arn": "arn:aws:sts::123456789012:assumed-role/jit-g/jit-JITUser",
            },
            "SourceIdentity": "JITUser",
        },
        expected_params=None,
    )
    context = ShortContext(clock, remaining_ms=9_000)

    status, body = request_grant(handler, context)

    assert status == 201, body
    assert clock.sleeps == [0.25]
    assert context.asked
