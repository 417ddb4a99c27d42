"""End to end against a deployed stack in real AWS (the only tests that need AWS).

Run them with a stack deployed by `sam deploy` and credentials of a caller the access policy
entitles to a profile:

    JIT_E2E_API_URL=https://<api-id>.execute-api.<region>.amazonaws.com/dev \\
    JIT_E2E_PROFILE=s3-read AWS_PROFILE=<your profile> .venv/bin/pytest tests/e2e -v

Without JIT_E2E_API_URL they are skipped, and say so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

API_URL = os.environ.get("JIT_E2E_API_URL", "")
PROFILE = os.environ.get("JIT_E2E_PROFILE", "s3-read")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not API_URL,
        reason="needs a deployed stack: set JIT_E2E_API_URL (and AWS credentials of an entitled caller)",
    ),
]


def jit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jit_cli.main", "--api-url", API_URL, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_deployed_broker_issues_verifies_and_revokes_a_grant() -> None:
    import boto3

    who = jit("whoami")
    assert who.returncode == 0, who.stderr
    assert PROFILE in [p["name"] for p in json.loads(jit("profiles").stdout)]

    requested = jit(
        "request",
        PROFILE,
        "--reason",
        "end-to-end test of the deployed broker",
        "--duration",
        "15m",
    )
    assert requested.returncode == 0, requested.stderr
    grant = json.loads(requested.stdout)
    creds = json.loads(jit("creds", grant["id"], "--format", "json").stdout)
    sts = boto3.client(
        "sts",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    identity = sts.get_caller_identity()
    assert f":assumed-role/jit-{grant['id']}/" in identity["Arn"]

    revoked = jit("revoke", grant["id"])
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["status"] == "revoked"
    again = jit("creds", grant["id"])
    assert again.returncode == 6 and again.stdout == ""
