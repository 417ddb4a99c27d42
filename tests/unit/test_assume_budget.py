"""The AssumeRole retry budget (IAM propagation): configurable, within the Lambda timeout, and
cut short by the invocation's own time left. Stubber for STS, a fake monotonic clock."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from pydantic import ValidationError

from jit_broker.adapters.sts import Sts
from jit_broker.errors import AwsUnavailable
from jit_broker.grants import ANSWER_RESERVE_SECONDS
from jit_broker.settings import Settings
from tests.conftest import BROKER_ENV, FakeMonotonic
from tests.unit.test_sts_adapter import OK, PARAMS, ROLE
from tests.unit.test_template import load_template

API_GATEWAY_TIMEOUT_SECONDS = 29


def broker_timeout_seconds() -> int:
    """The broker function's Timeout in template.yaml (its own, else the Globals')."""
    template = load_template()
    own = template["Resources"]["BrokerFunction"]["Properties"].get("Timeout")
    return int(own or template["Globals"]["Function"]["Timeout"])


def make(budget: float) -> tuple[Sts, Stubber, FakeMonotonic]:
    client = boto3.client("sts", region_name="us-east-1")
    clock = FakeMonotonic()
    sts = Sts(client, retry_budget_seconds=budget, sleep=clock.sleep, monotonic=clock.monotonic)
    return sts, Stubber(client), clock


def assume(sts: Sts, time_left: float | None = None):
    return sts.assume(
        role_arn=ROLE,
        session_name="jit-JITUser",
        source_identity="JITUser",
        duration_seconds=900,
        tags={"jit:grant-id": "g-000000000000000000000000"},
        time_left=time_left,
    )


def denied_forever(stub: Stubber, times: int = 40) -> None:
    for _ in range(times):
        stub.add_client_error("assume_role", "AccessDenied", expected_params=PARAMS)


# ---------------------------------------------------------------- settings


def test_budget_defaults_to_18_seconds_and_is_read_from_the_environment() -> None:
    assert Settings.from_env(BROKER_ENV).assume_retry_budget_seconds == 18
    settings = Settings.from_env(BROKER_ENV | {"JIT_ASSUME_RETRY_BUDGET_SECONDS": "12.5"})
    assert settings.assume_retry_budget_seconds == 12.5


@pytest.mark.parametrize("value", ["-1", "20.5", "60", "soon"])
def test_budget_outside_0_to_20_seconds_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="assume_retry_budget_seconds"):
        Settings.from_env(BROKER_ENV | {"JIT_ASSUME_RETRY_BUDGET_SECONDS": value})


def test_the_default_budget_fits_in_the_lambda_timeout_with_the_steps_around_it() -> None:
    """The default budget, what must follow the last attempt (ANSWER_RESERVE_SECONDS) and
    ~2 s for what comes before AssumeRole (policy, ledger, CreateRole) fit in the function's
    timeout, which ends before API Gateway's. A larger budget is cut by the time left."""
    default = Settings.model_fields["assume_retry_budget_seconds"].default
    before_assume = 2.0
    timeout = broker_timeout_seconds()
    assert default + ANSWER_RESERVE_SECONDS + before_assume <= timeout
    assert timeout < API_GATEWAY_TIMEOUT_SECONDS


def test_the_runtime_builds_sts_with_the_configured_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from jit_broker import runtime, settings

    for name, value in (BROKER_ENV | {"JIT_ASSUME_RETRY_BUDGET_SECONDS": "3"}).items():
        monkeypatch.setenv(name, value)
    settings.get_settings.cache_clear()
    try:
        sts = runtime.build_broker()._sts
    finally:
        settings.get_settings.cache_clear()
    assert sts._budget == 3


# ---------------------------------------------------------------- the adapter


def test_the_budget_bounds_the_retries_when_time_is_plenty() -> None:
    sts, stub, clock = make(budget=18)
    denied_forever(stub)
    with stub, pytest.raises(AwsUnavailable, match="AccessDenied"):
        assume(sts, time_left=60)
    assert clock.sleeps[:4] == [0.25, 0.5, 1.0, 2.0] and set(clock.sleeps[4:]) == {2.0}
    assert 16 <= sum(clock.sleeps) <= 18


def test_time_left_shorter_than_the_budget_stops_the_retries_sooner() -> None:
    sts, stub, clock = make(budget=18)
    denied_forever(stub)
    with stub, pytest.raises(AwsUnavailable):
        assume(sts, time_left=4)
    assert clock.sleeps == [0.25, 0.5, 1.0, 2.0]  # another 2 s would pass the 4 s
    assert clock.now <= 4


def test_with_no_time_left_assume_role_is_tried_once_and_not_retried() -> None:
    sts, stub, clock = make(budget=18)
    denied_forever(stub, times=1)
    with stub, pytest.raises(AwsUnavailable):
        assume(sts, time_left=-3)
    stub.assert_no_pending_responses()
    assert clock.sleeps == []


def test_a_role_usable_within_the_time_left_gives_credentials() -> None:
    sts, stub, clock = make(budget=18)
    denied_forever(stub, times=3)
    stub.add_response("assume_role", OK, expected_params=PARAMS)
    with stub:
        creds = assume(sts, time_left=5)
    stub.assert_no_pending_responses()
    assert creds.access_key_id == "ASIAEXAMPLEEXAMPLE00"
    assert clock.sleeps == [0.25, 0.5, 1.0]


def test_member_sessions_are_renewed_by_the_brokers_clock() -> None:
    """The execution role's cached session is judged by the clock the broker is given (the
    one clock seam), so a shifted clock renews it before AWS would refuse it."""
    from datetime import UTC, datetime

    from jit_broker.adapters.members import RENEW_BEFORE_SECONDS, MemberClients

    now = [1_800_000_000.0]
    issued: list[str] = []

    class Sts:
        def assume_role(self, **kw: object) -> dict[str, object]:
            issued.append(str(kw["RoleArn"]))
            return {
                "Credentials": {
                    "AccessKeyId": "AKIA",
                    "SecretAccessKey": "s",
                    "SessionToken": "t",
                    "Expiration": datetime.fromtimestamp(now[0] + 900, UTC),
                }
            }

    class Session:
        def __init__(self, **_: object) -> None: ...

        def client(self, service: str, config: object = None) -> object:
            return object()

    members = MemberClients(
        sts=Sts(),
        session_factory=Session,
        role_arn_of=lambda a: f"arn:aws:iam::{a}:role/x",
        session_name="jit-broker",
        clock=lambda: now[0],
    )
    first = members.client("210987654321")
    assert members.client("210987654321") is first and len(issued) == 1
    now[0] += 900 - RENEW_BEFORE_SECONDS  # within the renewal margin of its end
    assert members.client("210987654321") is not first and len(issued) == 2
