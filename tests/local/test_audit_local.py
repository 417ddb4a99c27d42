"""The auditor on the embedded local stack, as the cleanup role (template.yaml's CleanupRole,
enforced by moto + iam_eval): POST /v1/audit as the embedded administrator removes an expired
grant's role once no session can be alive, and the timer runs it on its own."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from jit_local.server import ADMIN, LocalStack

SESSION_AND_SKEW = 3600 + 300


@pytest.fixture(scope="module")
def local_stack() -> Any:
    """One stack for the module (moto's backends are per process); the clock is shiftable."""
    offset = {"s": 0.0}
    local = LocalStack(port=0, clock=lambda: time.time() + offset["s"], audit_interval=0).start()
    try:
        yield local, offset
    finally:
        local.stop()


@pytest.fixture
def stack(local_stack: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The module's stack, its clock back at now; the functions' environment as the stack set
    it (the test fixtures take AWS_ENDPOINT_URL away, and the auditor makes its member
    accounts' clients when it first sweeps them)."""
    local_stack[1]["s"] = 0.0
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_stack[0].aws_url)
    return local_stack


def post(stack: LocalStack, path: str, body: dict[str, Any], who: str) -> tuple[int, Any]:
    return stack.call("POST", path, body, user=who)


def request_grant(stack: LocalStack) -> dict[str, Any]:
    status, body = post(
        stack,
        "/v1/grants",
        {
            "profile": "s3-read",
            "duration": 900,
            "reason": "audit test",
            "nonce": f"audit-{uuid.uuid4().hex}",
        },
        "JITUser",
    )
    assert status == 201, body
    return dict(body["grant"])


def role_names(stack: LocalStack) -> list[str]:
    iam = stack.client("iam", stack.keys[ADMIN])
    return [r["RoleName"] for r in iam.list_roles(PathPrefix="/jit/")["Roles"]]


def test_admin_audit_at_after_expiry_removes_the_role_as_the_cleanup_role(stack: Any) -> None:
    local, _ = stack
    grant = request_grant(local)
    role = f"jit-{grant['id']}"
    at = grant["expires_at"] + SESSION_AND_SKEW + 1

    status, body = post(local, "/v1/audit", {"dry_run": True, "at": at}, ADMIN)
    assert status == 200, body
    assert role in body["report"]["removed"] and role in role_names(local)

    status, body = post(local, "/v1/audit", {"at": at}, ADMIN)
    assert status == 200, body
    report = body["report"]
    assert role in report["removed"]
    assert grant["id"] in report["cleaned"]
    assert report["findings"] == []  # incl. no events_not_sent: PutEvents as the cleanup role
    assert role not in role_names(local)


def test_audit_just_before_the_deletion_boundary_only_denies_and_keeps_the_role(stack: Any) -> None:
    local, _ = stack
    grant = request_grant(local)
    role = f"jit-{grant['id']}"
    status, body = post(
        local, "/v1/audit", {"at": grant["expires_at"] + SESSION_AND_SKEW - 1}, ADMIN
    )
    assert status == 200, body
    assert grant["id"] in body["report"]["expired"]
    assert role in body["report"]["denied"]
    assert role not in body["report"]["removed"]
    assert role in role_names(local)


def test_audit_by_a_non_administrator_is_refused_with_403(stack: Any) -> None:
    local, _ = stack
    status, body = post(local, "/v1/audit", {"dry_run": True}, "JITUser")
    assert status == 403
    assert body["error"]["code"] == "not_entitled"


def test_timer_runs_the_auditor_on_the_stack_clock(stack: Any) -> None:
    local, offset = stack
    offset["s"] = 1000  # past the earlier tests' grants: their active-grant slot is free again
    grant = request_grant(local)
    role = f"jit-{grant['id']}"
    offset["s"] = grant["expires_at"] + SESSION_AND_SKEW + 1 - time.time()
    local.audit_interval = 0.05
    thread = threading.Thread(target=local._audit_timer, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while role in role_names(local) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        local._audit_stop.set()
        thread.join(timeout=30)
        local._audit_stop.clear()
    assert role not in role_names(local)
