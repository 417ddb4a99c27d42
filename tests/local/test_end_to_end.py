"""End to end on the embedded local stack: CLI → local gateway (SigV4) → broker → moto with
IAM enforcement. The everyday scenario, as a user runs it: `jit local` in the background,
the `jit` CLI signing with JITUser's keys, the AWS SDK using the issued credentials."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from jit_local.background import JIT, BackgroundStack, StackFailed, as_new_key_of, read_exports


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("stack")
    stack = BackgroundStack(folder / "local.env", folder / "stack.log")
    try:
        stack.start()
    except StackFailed as exc:
        pytest.fail(str(exc))
    try:
        yield {"env": stack.env, "env_file": stack.env_file, "stack": stack}
    finally:
        stack.stop()


def jit(
    stack: dict[str, Any], *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*JIT, *args],
        env=env or stack["env"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def s3_with(stack: dict[str, Any], creds: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=stack["env"]["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def denied(call: Any) -> bool:
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"] in (
            "AccessDenied",
            "AccessDeniedException",
            "ExpiredToken",
        )
    return False


def test_env_file_holds_the_contract_variables_with_private_mode(
    local_stack: dict[str, Any],
) -> None:
    env = read_exports(local_stack["env_file"])
    assert set(env) == {
        "JIT_API_URL",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "JIT_ADMIN_ACCESS_KEY_ID",
        "JIT_ADMIN_SECRET_ACCESS_KEY",
        "JIT_MEMBER_ACCOUNTS",
    }
    assert env["JIT_MEMBER_ACCOUNTS"] == "210987654321,345678901234"
    assert env["JIT_API_URL"].startswith("http://127.0.0.1:")
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert local_stack["env_file"].stat().st_mode & 0o777 == 0o600


def test_everyday_scenario(local_stack: dict[str, Any]) -> None:
    # JITUser asks which profiles they may have
    who = jit(local_stack, "whoami")
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["arn"] == "arn:aws:iam::123456789012:user/JITUser"
    profiles = jit(local_stack, "profiles")
    assert [p["name"] for p in json.loads(profiles.stdout)] == ["s3-read"]

    # requests s3-read with a reason
    requested = jit(
        local_stack,
        "request",
        "s3-read",
        "--reason",
        "Investigate failed export",
        "--duration",
        "30m",
    )
    assert requested.returncode == 0, requested.stderr
    grant = json.loads(requested.stdout)
    assert set(grant) == {"id", "profile", "account", "status", "expires_at"}
    assert grant["status"] == "active" and grant["account"] == "123456789012"
    assert "Secret" not in requested.stdout

    creds_out = jit(local_stack, "creds", grant["id"], "--format", "json")
    assert creds_out.returncode == 0, creds_out.stderr
    creds = json.loads(creds_out.stdout)
    assert creds["Version"] == 1 and creds["AccessKeyId"].startswith("ASIA")

    # the credentials read example-bucket and nothing else
    s3 = s3_with(local_stack, creds)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="example-bucket")["Contents"]]
    assert keys == ["README.txt", "reports/2026-11.csv"]
    assert (
        s3.get_object(Bucket="example-bucket", Key="README.txt")["Body"]
        .read()
        .startswith(b"Objects")
    )
    assert denied(lambda: s3.put_object(Bucket="example-bucket", Key="new.txt", Body=b"x"))
    assert denied(lambda: s3.list_objects_v2(Bucket="other-bucket"))
    assert denied(lambda: s3.get_object(Bucket="other-bucket", Key="private.txt"))

    # revoke: the same credentials stop working, and no further sessions
    revoked = jit(local_stack, "revoke", grant["id"])
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["status"] == "revoked"
    assert denied(lambda: s3.list_objects_v2(Bucket="example-bucket"))
    again = jit(local_stack, "creds", grant["id"])
    assert again.returncode == 6 and again.stdout == ""
    assert "revoked" in again.stderr


def test_user_who_is_not_entitled_gets_a_clear_403(local_stack: dict[str, Any]) -> None:
    other = as_new_key_of(local_stack["env"], "OtherUser")
    refused = jit(local_stack, "request", "s3-read", "--reason", "curious", env=other)
    assert refused.returncode == 4 and refused.stdout == ""
    assert "may not request 's3-read'" in refused.stderr and "(not_entitled)" in refused.stderr
    assert json.loads(jit(local_stack, "profiles", env=other).stdout) == []


def test_unsigned_and_badly_signed_requests_get_api_gateways_403(
    local_stack: dict[str, Any],
) -> None:
    import urllib.error
    import urllib.request

    url = local_stack["env"]["JIT_API_URL"] + "/v1/whoami"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=10)
    assert info.value.code == 403
    assert json.loads(info.value.read()) == {"message": "Missing Authentication Token"}
    wrong_secret = {**local_stack["env"], "AWS_SECRET_ACCESS_KEY": "x" * 40}
    bad = jit(local_stack, "whoami", env=wrong_secret)
    assert bad.returncode == 4 and bad.stdout == ""


def test_stack_shuts_down_cleanly_on_sigterm_and_removes_its_env_file(tmp_path: Path) -> None:
    stack = BackgroundStack(tmp_path / "stack.env", tmp_path / "stack.log").start()
    assert stack.env_file.exists()
    assert stack.stop() == 0
    assert not stack.env_file.exists()
    assert "jit local: stopped" in stack.log_tail()


def test_the_demo_plays_every_step_and_exits_zero() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "jit_local.demo"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.count("✔") == 56 and "✘" not in done.stdout
    assert "All steps behaved as described" in done.stdout
