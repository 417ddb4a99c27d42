"""End to end against a deployed stack in real AWS (the only tests that need AWS): the demo's
scenario (`make demo` plays it on the embedded local stack) on a stack deployed by `sam deploy`.

Run them with `make e2e` (docs/deploy.md, "Checking a deployment"), with credentials of a caller
the access policy entitles to a read-only profile of one bucket:

    JIT_E2E_API_URL=https://<api-id>.execute-api.<region>.amazonaws.com/dev \\
    JIT_E2E_PROFILE=s3-read JIT_E2E_BUCKET=example-bucket AWS_PROFILE=<your profile> make e2e

Optional: JIT_E2E_OTHER_BUCKET (a bucket the profile does not cover: listing it is denied) and
JIT_E2E_OTHER_AWS_PROFILE (an AWS profile of a caller the policy does not entitle: refused).
Without JIT_E2E_API_URL every test here is skipped, and says so.

Every grant a test makes is revoked when it ends, passed or failed, so no JIT role is left.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

API_URL = os.environ.get("JIT_E2E_API_URL", "")
PROFILE = os.environ.get("JIT_E2E_PROFILE", "s3-read")
BUCKET = os.environ.get("JIT_E2E_BUCKET", "example-bucket")
OTHER_BUCKET = os.environ.get("JIT_E2E_OTHER_BUCKET", "")
OTHER_AWS_PROFILE = os.environ.get("JIT_E2E_OTHER_AWS_PROFILE", "")
# IAM is eventually consistent: a revoked grant's deny-all (and the removal of its role) reaches
# every IAM endpoint within seconds, not at once. Bounded: past this the test fails.
REVOCATION_PROPAGATION_SECONDS = 60
# `jit request` waits for IAM to make the new role assumable (AssumeRetryBudgetSeconds, at
# most 20 s) inside API Gateway's 29 s.
CLI_TIMEOUT_SECONDS = 60

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not API_URL,
        reason="needs a deployed stack: set JIT_E2E_API_URL (the stack's ApiUrl output) and "
        "AWS credentials of an entitled caller (AWS_PROFILE); see docs/deploy.md",
    ),
]

CREDENTIAL_KEYS = {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
_SIGNING_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)


def jit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The `jit` CLI against the deployed stack, signing as the caller (or as ``env`` says)."""
    return subprocess.run(
        [sys.executable, "-m", "jit_cli.main", "--api-url", API_URL, *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
        env=env,
    )


def region() -> str:
    """The stack's region: the execute-api URL's, else the caller's configured one."""
    found = re.match(r"^https://[^.]+\.execute-api\.([a-z0-9-]+)\.", API_URL)
    if found:
        return found.group(1)
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def error_code(call: Callable[[], object]) -> str | None:
    """None when ``call`` succeeds, else the AWS error code it failed with."""
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as exc:
        return str(exc.response.get("Error", {}).get("Code", "unknown"))
    return None


def client_as(service: str, creds: dict[str, str]) -> Any:
    import boto3

    return boto3.client(
        service,
        region_name=region(),
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def env_signing_as(creds: dict[str, str]) -> dict[str, str]:
    """The environment with the grant's session as the only signing identity."""
    env = {k: v for k, v in os.environ.items() if k not in _SIGNING_VARIABLES}
    env["AWS_ACCESS_KEY_ID"] = creds["AccessKeyId"]
    env["AWS_SECRET_ACCESS_KEY"] = creds["SecretAccessKey"]
    env["AWS_SESSION_TOKEN"] = creds["SessionToken"]
    return env


def eventually_denied(call: Callable[[], object]) -> str | None:
    """Repeat ``call`` until it is denied (bounded): the last error code, None if it never
    failed."""
    deadline = time.monotonic() + REVOCATION_PROPAGATION_SECONDS
    code = error_code(call)
    while code != "AccessDenied" and time.monotonic() < deadline:
        time.sleep(2)
        code = error_code(call)
    return code


@pytest.fixture
def grants() -> Iterator[list[str]]:
    """Grant ids a test made; each is revoked at the end whatever happened (revoking a revoked
    grant is harmless), so a failed test leaves no JIT role behind."""
    made: list[str] = []
    yield made
    for grant_id in made:
        jit("revoke", grant_id)


def test_deployed_broker_plays_the_demo_scenario_and_revocation_stops_the_credentials(
    grants: list[str],
) -> None:
    # The broker knows the caller from the SigV4 signature; the caller may request PROFILE.
    who = jit("whoami")
    assert who.returncode == 0, who.stderr
    profiles = jit("profiles")
    assert profiles.returncode == 0, profiles.stderr
    assert PROFILE in [p["name"] for p in json.loads(profiles.stdout)]

    # A grant with a reason, then a session of it in the credential_process shape.
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
    grants.append(grant["id"])
    assert grant["status"] == "active"
    issued = jit("creds", grant["id"], "--format", "json")
    assert issued.returncode == 0, issued.stderr
    creds = json.loads(issued.stdout)
    assert set(creds) == CREDENTIAL_KEYS

    # The session is one of the grant's own role, named after the grant.
    identity = client_as("sts", creds).get_caller_identity()
    assert f":assumed-role/jit-{grant['id']}/" in identity["Arn"]

    # Read the bucket; writing to it (or listing another bucket) is denied.
    s3 = client_as("s3", creds)
    assert error_code(lambda: s3.list_objects_v2(Bucket=BUCKET, MaxKeys=5)) is None
    probe = f"jit-e2e-probe/{grant['id']}.txt"
    written = error_code(lambda: s3.put_object(Bucket=BUCKET, Key=probe, Body=b"x"))
    if written is None:  # the profile is not read-only: take the probe back, then fail
        error_code(lambda: s3.delete_object(Bucket=BUCKET, Key=probe))
    assert written == "AccessDenied", f"{PROFILE} may write to {BUCKET}: not a read-only profile"
    if OTHER_BUCKET:
        assert error_code(lambda: s3.list_objects_v2(Bucket=OTHER_BUCKET)) == "AccessDenied"

    # A grant's session never calls the broker (API resource policy, boundary, broker).
    as_grant = jit("whoami", env=env_signing_as(creds))
    assert as_grant.returncode == 4, as_grant.stderr

    # Revoked: the ledger says so, the same credentials stop working, no further sessions.
    revoked = jit("revoke", grant["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["status"] == "revoked"
    assert eventually_denied(lambda: s3.list_objects_v2(Bucket=BUCKET, MaxKeys=5)) == (
        "AccessDenied"
    )
    again = jit("creds", grant["id"])
    assert again.returncode == 6 and again.stdout == ""
    listed = jit("grants")
    assert listed.returncode == 0, listed.stderr
    statuses = {g["id"]: g["status"] for g in json.loads(listed.stdout)}
    assert statuses[grant["id"]] == "revoked"


@pytest.mark.skipif(
    not OTHER_AWS_PROFILE,
    reason="needs JIT_E2E_OTHER_AWS_PROFILE: an AWS profile of a caller the access policy "
    "does not entitle",
)
def test_deployed_broker_refuses_a_caller_the_policy_does_not_entitle(
    grants: list[str],
) -> None:
    refused = jit(
        "--aws-profile", OTHER_AWS_PROFILE, "request", PROFILE, "--reason", "end-to-end refusal"
    )
    if refused.returncode == 0:
        grants.append(json.loads(refused.stdout)["id"])
    assert refused.returncode == 4, refused.stderr
    assert refused.stdout == ""
