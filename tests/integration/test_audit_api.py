"""POST /v1/audit through the broker handler: administrators only, ``at`` only where clock
overrides are allowed, and in AWS the broker reaches the auditor by invoking the cleanup
function (exact Invoke parameters asserted with a Stubber)."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from jit_broker import runtime
from jit_broker.audit import AuditGate, LambdaAuditRunner
from jit_broker.models.audit import AuditReport, AuditRequest
from jit_broker.settings import Settings
from tests.conftest import FROZEN_AT
from tests.integration.cleanup_support import make_auditor, make_grant

ADMIN = "arn:aws:iam::123456789012:user/JITAdmin"
# moto stamps roles with the wall clock and the auditor compares its "now" with them: every
# test here runs on the one frozen test clock, so the day the suite runs on does not matter.
NOW = FROZEN_AT
pytestmark = pytest.mark.usefixtures("frozen_clock")


@pytest.fixture
def gate(stack: Any) -> Any:
    """The broker's gate with an in-process runner on the stack's auditor (as locally)."""
    runs: list[AuditRequest] = []
    auditor = make_auditor(stack, allow_clock_override=True)

    def runner(request: AuditRequest, requested_by: str) -> AuditReport:
        runs.append(request)
        return auditor.run(dry_run=request.dry_run, at=request.at)

    def install(allow_override: bool) -> None:
        env = stack.seeded.broker_env(str(stack.policy_file))
        if allow_override:
            env["JIT_ALLOW_CLOCK_OVERRIDE"] = "true"
        from jit_broker.adapters.policy_source import load_policy

        runtime.set_audit_gate(
            AuditGate(
                settings=Settings.from_env(env),
                policy=lambda: load_policy(path=str(stack.policy_file)),
                runner=runner,
            )
        )

    install(False)
    try:
        yield install, runs
    finally:
        runtime.set_audit_gate(None)


def test_administrator_runs_the_audit_and_gets_its_report(stack, call, gate):
    _, runs = gate
    status, _, body = call("POST", "/v1/audit", {"dry_run": True}, user_arn=ADMIN)
    assert status == 200
    assert body["report"]["dry_run"] is True and body["report"]["complete"] is True
    assert [r.dry_run for r in runs] == [True]


def test_non_administrator_is_refused_with_403_and_nothing_runs(stack, call, gate):
    _, runs = gate
    status, _, body = call("POST", "/v1/audit", {"dry_run": True})
    assert status == 403 and body["error"]["code"] == "not_entitled"
    assert runs == []


def test_at_is_refused_with_400_unless_clock_overrides_are_allowed(stack, call, gate):
    install, runs = gate
    status, _, body = call("POST", "/v1/audit", {"at": NOW}, user_arn=ADMIN)
    assert status == 400
    assert "only on the local stack" in body["error"]["message"]
    assert runs == []
    install(True)
    grant = make_grant(stack, expires_at=NOW)
    status, _, body = call("POST", "/v1/audit", {"at": NOW + 3901}, user_arn=ADMIN)
    assert status == 200 and body["report"]["removed"] == [grant.role_name]


@pytest.mark.parametrize("body", [{"dry_run": "yes"}, {"at": "tomorrow"}, {"extra": 1}])
def test_bad_audit_bodies_are_400(stack, call, gate, body):
    status, _, answer = call("POST", "/v1/audit", body, user_arn=ADMIN)
    assert status == 400 and answer["error"]["code"] == "bad_request"


def _payload(value: Any) -> StreamingBody:
    raw = json.dumps(value).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_lambda_runner_invokes_the_cleanup_function_request_response():
    client = boto3.client("lambda", region_name="us-east-1")
    report = AuditReport(dry_run=True, now=NOW).model_dump(mode="json")
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {"StatusCode": 200, "Payload": _payload({"report": report})},
            {
                "FunctionName": "jit-stack-auditor",
                "InvocationType": "RequestResponse",
                "Payload": json.dumps(
                    {"dry_run": True, "budget_ms": 15000, "requested_by": ADMIN}
                ).encode(),
            },
        )
        got = LambdaAuditRunner(client, "jit-stack-auditor")(AuditRequest(dry_run=True), ADMIN)
    assert got == AuditReport(dry_run=True, now=NOW)


def test_lambda_runner_turns_a_function_error_into_503():
    from jit_broker.errors import AwsUnavailable

    client = boto3.client("lambda", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": _payload({"x": 1})},
        )
        with pytest.raises(AwsUnavailable) as caught:
            LambdaAuditRunner(client, "f")(AuditRequest(), ADMIN)
    assert caught.value.status == 503
