"""Secrets (secret key, session token, signatures) never reach a log line or an error body."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.conftest import grant_body


def test_secret_key_and_token_appear_in_no_log_line_and_no_error_body(
    stack: Any, call: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []
    status, _, first = call("POST", "/v1/grants", grant_body())
    assert status == 201
    gid = first["grant"]["id"]
    secrets = {first["credentials"]["secret_access_key"], first["credentials"]["session_token"]}
    status, _, again = call(
        "POST", f"/v1/grants/{gid}/credentials", {"nonce": "leak-test-0000000001"}
    )
    assert status == 201
    secrets |= {again["credentials"]["secret_access_key"], again["credentials"]["session_token"]}
    # error paths: replay, bad input, revoke, after revoke
    for method, path, body in [
        ("POST", f"/v1/grants/{gid}/credentials", {"nonce": "leak-test-0000000001"}),
        ("POST", "/v1/grants", grant_body(duration="1h")),
        ("POST", f"/v1/grants/{gid}/revoke", {}),
        ("POST", f"/v1/grants/{gid}/credentials", {"nonce": "leak-test-0000000002"}),
        ("GET", f"/v1/grants/{gid}", None),
    ]:
        status, _, answer = call(method, path, body)
        outputs.append(json.dumps(answer))
    captured = capsys.readouterr()
    outputs += captured.out.splitlines() + captured.err.splitlines()
    outputs += [r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records]
    assert len(outputs) > 8  # the grant, session and refusals were all logged
    assert any('"grant issued"' in line for line in outputs)
    for line in outputs:
        for secret in secrets:
            assert secret not in line
    signature_marker = "Signature=0000"
    assert not any(signature_marker in line for line in outputs), (
        "the event (with its signed headers) was logged"
    )
