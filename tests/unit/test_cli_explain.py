"""``jit request --explain``: the broker's dry run (POST /v1/grants with dry_run), nothing
created; a refusal lists every rule that stops the caller and exits 4 (issue 11, part 5)."""

from __future__ import annotations

import json
import sys

import pytest

from tests.unit import test_cli
from tests.unit.test_cli import FakeBroker, Reply

fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env
jit = test_cli.jit

YES = {
    "dry_run": True,
    "would_grant": True,
    "profile": "s3-read",
    "account": "123456789012",
    "duration_seconds": 1800,
    "mode": "per-grant-role",
    "denials": [],
}
NO = {
    **YES,
    "would_grant": False,
    "denials": [
        {"rule": "duration", "code": "bad_request", "message": "duration 14400 s is too long"},
        {"rule": "reason", "code": "bad_request", "message": "a reason is required"},
    ],
}


def test_explain_sends_a_dry_run_without_a_reason_and_says_yes(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(200, YES)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)

    result = jit("request", "s3-read", "--duration", "30m", "--explain")

    assert result.code == 0, result.err
    assert result.out.strip() == (
        "s3-read in 123456789012: you would get it (30m, per-grant-role); nothing was created"
    )
    [request] = fake.requests
    body = json.loads(request.body)
    assert body["dry_run"] is True and body["duration"] == 1800 and "reason" not in body


def test_a_refusal_lists_every_rule_and_exits_4(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(200, NO)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)

    result = jit("request", "s3-read", "--duration", "4h", "--explain")

    assert result.code == 4
    assert result.out.splitlines() == [
        "s3-read in 123456789012: you would not get it; nothing was created. What stops you:",
        "  - duration: duration 14400 s is too long",
        "  - reason: a reason is required",
    ]


def test_piped_the_verdict_is_the_brokers_json(jit, fake: FakeBroker) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(200, NO)

    result = jit("request", "s3-read", "--explain")

    assert result.code == 4
    assert json.loads(result.out) == NO


def test_a_request_without_reason_or_explain_is_a_usage_error_and_sends_nothing(
    jit, fake: FakeBroker
) -> None:
    result = jit("request", "s3-read")

    assert result.code == 2
    assert "--reason" in result.err and "--explain" in result.err
    assert fake.requests == []


def test_an_answer_that_is_no_verdict_is_not_taken_for_one(jit, fake: FakeBroker) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(200, {"dry_run": True})

    result = jit("request", "s3-read", "--explain")

    assert result.code == 1 and "unexpected_response" in result.err
