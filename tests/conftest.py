"""Shared fixtures: a fake AWS environment, the broker wired to moto with a spy on every
client call (moto checks little, so tests assert the exact parameters the broker sends)."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

# Powertools reads its service name when jit_broker.observability is first imported, which
# may be at collection: the same name the autouse fixture sets, whatever imports first.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "jit-broker")

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
EXAMPLE_POLICY = ROOT / "src" / "local" / "jit_local" / "access-policy.example.yaml"
ACCOUNT = "123456789012"
JIT_USER = f"arn:aws:iam::{ACCOUNT}:user/JITUser"
OTHER_USER = f"arn:aws:iam::{ACCOUNT}:user/OtherUser"
# The least environment the broker's settings accept (tests of single settings add to it).
BROKER_ENV = {
    "JIT_TABLE_NAME": "jit-grants",
    "JIT_BOUNDARY_POLICY_ARN": f"arn:aws:iam::{ACCOUNT}:policy/jit-boundary",
    "JIT_BROKER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/jit-broker-role",
    "JIT_OWNER_TAG": "jit-broker",
    "JIT_POLICY_FILE": "/dev/null",
}


@pytest.fixture(autouse=True)
def _fake_aws_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS or read the developer's profile (but tests/e2e, which run
    only against a deployed stack with the caller's real credentials)."""
    if request.node.get_closest_marker("e2e"):
        return
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "JIT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "jit-broker")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "JitBroker")


# ------------------------------------------------------------------ the one clock seam
FROZEN_AT = 1_795_000_000  # 2026-11-18T08:26:40Z: where a frozen test clock stands


@dataclass
class TestClock:
    """The clock of a test: ``time.time``/``datetime.now`` as the code under test, boto3 and
    moto all read them (moto stamps CreateDate with them), held still until moved."""

    traveller: Any

    def now(self) -> int:
        return int(time.time())

    def move_to(self, epoch: float) -> None:
        self.traveller.move_to(epoch)

    def advance(self, seconds: float) -> None:
        self.traveller.shift(seconds)


@pytest.fixture
def frozen_clock(request: pytest.FixtureRequest) -> Iterator[TestClock]:
    """Freeze the wall clock for the code under test and in-process moto alike, at
    ``FROZEN_AT`` or at the epoch of the test's ``@pytest.mark.frozen_at(epoch)``.

    Tests that compare the auditor's "now" with what moto recorded (a role's CreateDate) take
    this fixture, so they pass whatever day the suite runs on. time.monotonic is left alone
    (timeouts and backoff keep working)."""
    import time_machine

    marker = request.node.get_closest_marker("frozen_at")
    at = marker.args[0] if marker else FROZEN_AT
    with time_machine.travel(at, tick=False) as traveller:
        yield TestClock(traveller)


class CallLog:
    """Every API call a client makes, with the parameters exactly as the broker passed them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def attach(self, client: Any) -> Any:
        client.meta.events.register("provide-client-params.*.*", self._record)
        return client

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, copy.deepcopy(params)))

    def named(self, operation: str) -> list[dict[str, Any]]:
        return [p for name, p in self.calls if name == operation]

    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]

    def clear(self) -> None:
        self.calls.clear()


@dataclass
class Stack:
    iam: Any
    sts: Any
    dynamodb: Any
    s3: Any
    calls: CallLog
    seeded: Any
    policy_file: Path
    broker: Any
    env: dict[str, str] = field(default_factory=dict)

    def table_items(self) -> list[dict[str, Any]]:
        return self.dynamodb.scan(TableName=self.seeded.table_name)["Items"]

    def grant_items(self) -> list[dict[str, Any]]:
        return [i for i in self.table_items() if i["sk"]["S"] == "GRANT"]

    def jit_roles(self) -> list[dict[str, Any]]:
        return self.iam.list_roles(PathPrefix="/jit/")["Roles"]


class FakeMonotonic:
    """A monotonic clock that only moves when slept on: backoff without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def build_broker(
    stack_clients: dict[str, Any], seeded: Any, policy_file: Path, **overrides: Any
) -> Any:
    from jit_broker.adapters.iam import Iam
    from jit_broker.adapters.ledger import Ledger
    from jit_broker.adapters.policy_source import load_policy
    from jit_broker.adapters.sts import Sts
    from jit_broker.grants import Broker
    from jit_broker.settings import Settings

    clock = FakeMonotonic()
    settings = Settings.from_env(seeded.broker_env(str(policy_file)) | overrides.pop("env", {}))
    return Broker(
        settings=settings,
        policy=lambda: load_policy(path=str(policy_file), stack_accounts=settings.stack_accounts),
        ledger=Ledger(stack_clients["dynamodb"], settings.table_name),
        iam=Iam(stack_clients["iam"]),
        sts=Sts(
            stack_clients["sts"],
            retry_budget_seconds=8.0,
            sleep=clock.sleep,
            monotonic=clock.monotonic,
        ),
        **overrides,
    )


@contextmanager
def moto_stack(folder: Path) -> Iterator[Stack]:
    """moto in-process with the broker's table, boundary and roles, the example access policy
    copied into ``folder``, and the handler's broker wired to spied clients."""
    from moto import mock_aws

    from jit_broker import runtime
    from jit_local.seed import seed_broker_resources

    with mock_aws():
        calls = CallLog()
        clients = {
            name: calls.attach(boto3.client(name, region_name="us-east-1"))
            for name in ("iam", "sts", "dynamodb", "s3")
        }
        seeded = seed_broker_resources(clients["iam"], clients["dynamodb"])
        policy_file = folder / "access-policy.yaml"
        shutil.copy(EXAMPLE_POLICY, policy_file)
        broker = build_broker(clients, seeded, policy_file)
        runtime.set_broker(broker)
        try:
            yield Stack(
                clients["iam"],
                clients["sts"],
                clients["dynamodb"],
                clients["s3"],
                calls,
                seeded,
                policy_file,
                broker,
            )
        finally:
            runtime.set_broker(None)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """moto in-process with the broker's table, boundary and role; the handler's broker is
    this one (clients spied on, the seeding's calls cleared)."""
    with moto_stack(tmp_path) as running:
        running.calls.clear()
        yield running


@pytest.fixture(scope="session")
def handler() -> Any:
    path = ROOT / "functions" / "broker" / "app.py"
    spec = importlib.util.spec_from_file_location("broker_app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class LambdaContext:
    function_name: str = "jit-broker"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:jit-broker"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


def unique_id_of(arn: str) -> str:
    """The unique id API Gateway reports as identity.caller for ``arn`` (stable per ARN in
    tests; a re-created principal is given another with ``unique_id=``)."""
    import hashlib

    def digest(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()[:17].upper()

    if ":assumed-role/" in arn:
        role, session = arn.rsplit("/", 1)
        return f"AROA{digest(role)}:{session}"
    return f"AIDA{digest(arn)}"


def owner_of(arn: str) -> str:
    """identity.Caller.owner of ``arn`` as api_event presents it."""
    return f"{arn}|{unique_id_of(arn)}"


def api_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    user_arn: str = JIT_USER,
    base: str = "whoami.json",
    headers: dict[str, str] | None = None,
    unique_id: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (from events/) for ``method path`` by ``user_arn``."""
    event = json.loads((EVENTS / base).read_text())
    event["httpMethod"] = method
    event["path"] = path
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["requestContext"]["httpMethod"] = method
    event["requestContext"]["path"] = f"/{event['requestContext'].get('stage', 'dev')}{path}"
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    identity = event["requestContext"]["identity"]
    if user_arn is not None:
        identity["userArn"] = user_arn
        identity["accountId"] = user_arn.split(":")[4]
        identity["caller"] = identity["user"] = unique_id or unique_id_of(user_arn)
    merged = {"content-type": "application/json", **(headers or {})}
    event["headers"] = {**(event.get("headers") or {}), **merged}
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    if body is None:
        event["body"] = None
    else:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


@pytest.fixture
def call(handler: Any) -> Any:
    """call(method, path, body=None, **kw) -> (status, headers, json body)."""

    def _call(
        method: str, path: str, body: Any = None, **kw: Any
    ) -> tuple[int, dict[str, str], Any]:
        response = handler.lambda_handler(api_event(method, path, body, **kw), LambdaContext())
        text = response.get("body") or "null"
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        for k, v in (response.get("multiValueHeaders") or {}).items():
            headers.setdefault(k.lower(), v[0] if isinstance(v, list) else v)
        return response["statusCode"], headers, json.loads(text)

    return _call


def grant_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "profile": "s3-read",
        "duration": 1800,
        "reason": "Investigate failed export job",
        "nonce": "n-" + uuid.uuid4().hex,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}
