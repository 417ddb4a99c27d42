"""The local gateway's worker processes (jit_local.workers): invocations run in separate
processes at once, one per worker at a time; a handler's exception crosses as its type name
only; a worker past its deadline or dead is replaced; the gateway keeps its 502/504."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from jit_local.credentials import CallerKey
from jit_local.gateway import LocalGateway, LocalLambdaContext
from jit_local.server import LocalStack
from jit_local.workers import (
    BrokerWiring,
    InvocationFailed,
    InvocationTimedOut,
    WorkerConfig,
    WorkerPool,
    WorkerStartFailed,
)

SECRET_WORDS = "the-handler-quoted-a-secret"
HANDLER = f'''
import json, os, pathlib, time, uuid

def lambda_handler(event, context):
    path = event["path"]
    if path == "/pid":
        return {{"statusCode": 200, "body": str(os.getpid())}}
    if path == "/env":
        return {{"statusCode": 200, "body": os.environ["JIT_TEST_VALUE"]}}
    if path == "/raise":
        raise ValueError("{SECRET_WORDS}")
    if path == "/sleep":
        time.sleep(60)
    if path == "/exit":
        os._exit(3)
    if path == "/meet":  # wait (bounded) until another invocation has arrived as well
        ask = json.loads(event["body"])
        folder = pathlib.Path(ask["folder"])
        (folder / f"{{os.getpid()}}-{{uuid.uuid4().hex}}").touch()
        for _ in range(int(ask["patience"] * 20)):
            if len(list(folder.iterdir())) >= 2:
                return {{"statusCode": 200, "body": "met"}}
            time.sleep(0.05)
        return {{"statusCode": 200, "body": "alone"}}
    return {{"statusCode": 404, "body": "{{}}"}}
'''

USER = CallerKey(
    access_key_id="AKIAWORKERTEST000001",
    secret_access_key="worker-test-secret",
    session_token=None,
    account_id="123456789012",
    user_arn="arn:aws:iam::123456789012:user/WorkerTest",
    caller="AIDAWORKERTEST",
    user="AIDAWORKERTEST",
    expires_at=None,
)


def config(folder: Path, source: str = HANDLER) -> WorkerConfig:
    handler = folder / "handler.py"
    handler.write_text(source)
    return WorkerConfig(handler_file=handler, env={"JIT_TEST_VALUE": "from-the-config"})


@pytest.fixture
def pool_of(tmp_path: Path) -> Iterator[Any]:
    started: list[WorkerPool] = []

    def make(size: int) -> WorkerPool:
        pool = WorkerPool(size, config(tmp_path)).start()
        started.append(pool)
        return pool

    yield make
    for pool in started:
        pool.stop()


def invoke(
    pool: WorkerPool, path: str, body: Any = None, *, seconds: float = 60.0
) -> dict[str, Any]:
    event = {"path": path, "body": None if body is None else json.dumps(body)}
    context = LocalLambdaContext(
        aws_request_id="req",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:jit-broker",
        deadline=time.monotonic() + seconds,
    )
    return pool(event, context)


def gone(pid: int) -> bool:
    """The process has ended (bounded wait: it is being terminated)."""
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_two_invocations_run_at_once_in_two_worker_processes(pool_of: Any, tmp_path: Path):
    pool = pool_of(2)
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    answers: list[str] = []

    def meet() -> None:
        answers.append(invoke(pool, "/meet", {"folder": str(meeting), "patience": 20})["body"])

    callers = [threading.Thread(target=meet) for _ in range(2)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(30)

    assert answers == ["met", "met"]
    pids = {p.name.split("-")[0] for p in meeting.iterdir()}
    assert len(pids) == 2 and str(os.getpid()) not in pids  # two processes, neither this one


def test_a_worker_runs_one_invocation_at_a_time(pool_of: Any, tmp_path: Path):
    pool = pool_of(1)
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    answers: list[str] = []

    def meet() -> None:
        answers.append(invoke(pool, "/meet", {"folder": str(meeting), "patience": 1})["body"])

    first = threading.Thread(target=meet)
    first.start()
    for _ in range(200):  # the first invocation has arrived in the worker
        if any(meeting.iterdir()):
            break
        time.sleep(0.05)
    second = threading.Thread(target=meet)
    second.start()
    first.join(30)
    second.join(30)

    assert answers == ["alone", "met"]  # the second ran only after the first had answered


def test_worker_gets_the_functions_environment(pool_of: Any):
    assert invoke(pool_of(1), "/env")["body"] == "from-the-config"


def test_handler_exception_crosses_as_its_type_name_only_and_the_worker_stays(
    pool_of: Any, caplog: pytest.LogCaptureFixture
):
    pool = pool_of(1)
    before = invoke(pool, "/pid")["body"]

    with pytest.raises(InvocationFailed) as raised:
        invoke(pool, "/raise")

    assert str(raised.value) == "ValueError"
    assert SECRET_WORDS not in caplog.text
    assert invoke(pool, "/pid")["body"] == before


def test_invocation_past_its_deadline_times_out_and_its_worker_is_replaced(pool_of: Any):
    pool = pool_of(1)
    stuck = int(invoke(pool, "/pid")["body"])

    with pytest.raises(InvocationTimedOut):
        invoke(pool, "/sleep", seconds=1.0)

    fresh = int(invoke(pool, "/pid")["body"])  # waits for the replacement
    assert fresh != stuck
    assert gone(stuck)


def test_a_worker_that_dies_is_replaced(pool_of: Any):
    pool = pool_of(1)
    dead = int(invoke(pool, "/pid")["body"])

    with pytest.raises(InvocationFailed):
        invoke(pool, "/exit")

    assert int(invoke(pool, "/pid")["body"]) != dead


def test_stop_ends_every_worker(tmp_path: Path):
    pool = WorkerPool(2, config(tmp_path)).start()
    pids = set()
    for _ in range(20):  # bounded: both idle workers answer in turn
        pids.add(int(invoke(pool, "/pid")["body"]))
        if len(pids) == 2:
            break

    pool.stop()

    assert len(pids) == 2
    assert all(gone(pid) for pid in pids)


def test_a_handler_that_cannot_load_fails_the_start(tmp_path: Path):
    broken = config(tmp_path, "import a_module_that_does_not_exist\n")
    with pytest.raises(WorkerStartFailed, match="ModuleNotFoundError"):
        WorkerPool(1, broken).start()


def test_pool_size_and_stack_workers_are_bounded(tmp_path: Path):
    with pytest.raises(ValueError):
        WorkerPool(0, config(tmp_path))
    with pytest.raises(ValueError):
        LocalStack(workers=65).start()  # refused before anything starts


def test_worker_wiring_does_not_show_the_administrators_secret():
    wiring = BrokerWiring(
        aws_url="http://127.0.0.1:1",
        region="us-east-1",
        admin_key=("AKIAEXAMPLE", "not-to-be-shown"),
        broker_role_arn="arn:aws:iam::123456789012:role/broker",
        policy_file="policy.yaml",
    )
    assert "not-to-be-shown" not in repr(wiring)


# --------------------------------------------------------------------------- through the gateway


def send(url: str) -> tuple[int, Any]:
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(
        Credentials(USER.access_key_id, USER.secret_access_key), "execute-api", "us-east-1"
    ).add_auth(request)
    sent = urllib.request.Request(url, headers=dict(request.headers.items()), method="GET")
    try:
        with urllib.request.urlopen(sent, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_gateway_answers_502_and_504_from_workers_as_in_process(tmp_path: Path):
    keys = {USER.access_key_id: USER}
    with (
        WorkerPool(2, config(tmp_path)) as pool,
        LocalGateway(pool, keys.get, concurrent=True, timeout_seconds=2.0) as gateway,
    ):
        assert send(gateway.url + "/pid")[0] == 200
        assert send(gateway.url + "/raise") == (502, {"message": "Internal server error"})
        assert send(gateway.url + "/sleep") == (504, {"message": "Endpoint request timed out"})
