"""`jit configure` + credential_process on the embedded local stack, consumed by the real AWS
CLI (awscli from PyPI, in the venv) and by boto3; a fresh session inside the same grant when
the cached one is within 5 minutes of its end (the CLI's clock shifted by JIT_CLOCK_OFFSET)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from jit_local.background import JIT, BackgroundStack, StackFailed

AWS = str(Path(sys.executable).parent / "aws")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("cli-stack")
    background = BackgroundStack(folder / "local.env", folder / "stack.log")
    try:
        background.start()
    except StackFailed as exc:
        pytest.fail(str(exc))
    try:
        yield background
    finally:
        background.stop()


@pytest.fixture(scope="module")
def configured(stack: BackgroundStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """JITUser's keys as the AWS profile `jituser` (not in the environment), then
    `jit configure s3-read --aws-profile jituser`."""
    home = tmp_path_factory.mktemp("home")
    config = home / "aws-config"
    config.write_text(
        "[profile jituser]\n"
        f"aws_access_key_id = {stack.env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {stack.env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    (home / "aws-credentials").write_text("")
    env = {
        key: value
        for key, value in stack.env.items()
        if key not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    env.update(
        HOME=str(home),
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_CONFIG_HOME=str(home / "config"),
    )
    done = run([*JIT, "configure", "s3-read", "--aws-profile", "jituser", "--reason", "e2e"], env)
    assert done.returncode == 0, done.stderr
    return env


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def grants(env: dict[str, str]) -> list[dict[str, Any]]:
    signer = {**env, "AWS_PROFILE": "jituser"}
    done = run([*JIT, "grants"], signer)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_real_aws_cli_lists_example_bucket_through_the_jit_profile(
    configured: dict[str, str],
) -> None:
    done = run(
        [
            AWS,
            "s3",
            "ls",
            "s3://example-bucket/",
            "--profile",
            "jit-s3-read",
            "--endpoint-url",
            configured["AWS_ENDPOINT_URL"],
        ],
        configured,
    )

    assert done.returncode == 0, done.stderr
    assert "README.txt" in done.stdout and "reports/" in done.stdout


def test_the_real_aws_cli_is_still_denied_what_the_profile_does_not_allow(
    configured: dict[str, str],
) -> None:
    done = run(
        [
            AWS,
            "s3",
            "ls",
            "s3://other-bucket/",
            "--profile",
            "jit-s3-read",
            "--endpoint-url",
            configured["AWS_ENDPOINT_URL"],
        ],
        configured,
    )

    assert done.returncode != 0
    assert "AccessDenied" in done.stderr


def test_boto3_lists_example_bucket_through_the_jit_profile(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in configured.items():
        if name.startswith(("AWS_", "XDG_", "HOME")):
            monkeypatch.setenv(name, value)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    s3 = boto3.Session(profile_name="jit-s3-read").client(
        "s3", endpoint_url=configured["AWS_ENDPOINT_URL"], region_name="us-east-1"
    )

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="example-bucket")["Contents"]]
    assert keys == ["README.txt", "reports/2026-11.csv"]
    assert s3.meta.config.region_name == "us-east-1"


def test_near_expiry_the_next_call_gets_a_fresh_session_in_the_same_grant(
    configured: dict[str, str],
) -> None:
    argv = [
        *JIT,
        "credential-process",
        "s3-read",
        "--api-url",
        configured["JIT_API_URL"],
        "--aws-profile",
        "jituser",
        "--reason",
        "e2e",
    ]
    first = run(argv, {**configured, "AWS_PROFILE": "jit-s3-read"})
    assert first.returncode == 0, first.stderr
    before = grants(configured)

    late = run(argv, {**configured, "JIT_CLOCK_OFFSET": "3400"})

    assert late.returncode == 0, late.stderr
    assert json.loads(late.stdout)["AccessKeyId"] != json.loads(first.stdout)["AccessKeyId"]
    after = grants(configured)
    assert [g["id"] for g in after] == [g["id"] for g in before]
    assert after[0]["sessions_issued"] == before[0]["sessions_issued"] + 1
    s3 = boto3.client(
        "s3",
        endpoint_url=configured["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=json.loads(late.stdout)["AccessKeyId"],
        aws_secret_access_key=json.loads(late.stdout)["SecretAccessKey"],
        aws_session_token=json.loads(late.stdout)["SessionToken"],
    )
    assert s3.list_objects_v2(Bucket="example-bucket")["KeyCount"] == 2


def test_exec_runs_the_real_aws_cli_with_the_grants_credentials(
    configured: dict[str, str],
) -> None:
    env = {**configured, "AWS_PROFILE": "jituser"}

    done = run(
        [
            *JIT,
            "exec",
            "s3-read",
            "--reason",
            "e2e",
            "--",
            AWS,
            "s3",
            "ls",
            "s3://example-bucket/",
            "--endpoint-url",
            configured["AWS_ENDPOINT_URL"],
        ],
        env,
    )

    assert done.returncode == 0, done.stderr
    assert "README.txt" in done.stdout


def test_request_explain_asks_the_real_broker_and_creates_nothing(
    configured: dict[str, str],
) -> None:
    env = {**configured, "AWS_PROFILE": "jituser"}
    before = grants(configured)

    refused = run([*JIT, "request", "s3-read", "--duration", "4h", "--explain"], env)
    allowed = run(
        [*JIT, "request", "s3-read", "--duration", "15m", "--reason", "r", "--explain"], env
    )

    assert refused.returncode == 4, refused.stderr
    verdict = json.loads(refused.stdout)  # piped: the broker's own JSON
    assert verdict["would_grant"] is False
    assert {d["rule"] for d in verdict["denials"]} >= {"duration", "reason"}
    answer = json.loads(allowed.stdout)
    # A valid request would be granted, unless another test's grant holds the profile's slot.
    assert answer["would_grant"] or {d["rule"] for d in answer["denials"]} == {"limits"}
    assert allowed.returncode == (0 if answer["would_grant"] else 4)
    assert grants(configured) == before
