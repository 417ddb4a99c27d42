"""``make demo``: the everyday scenario on the embedded local stack, step by step.

Starts ``jit local`` in the background, then plays what a developer does with the ``jit`` CLI
and the AWS SDK, printing each command and what came back. Every step checks its outcome:
the demo exits non-zero if the broker did not behave as described.
"""

from __future__ import annotations

import json
import shlex
import subprocess  # runs the project's CLI and the AWS CLI (fixed argv)  # nosec B404
import sys
import tempfile
from pathlib import Path
from typing import Any

from jit_local.background import (
    JIT,
    BackgroundStack,
    StackFailed,
    admin_client,
    as_admin,
    as_new_key_of,
)

BOLD, DIM, GREEN, RED, RESET = (
    ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if sys.stdout.isatty() else ("",) * 5
)


class DemoFailed(Exception):
    pass


def step(number: int, title: str) -> None:
    print(f"\n{BOLD}{number}. {title}{RESET}", flush=True)


def show(text: str) -> None:
    for line in text.rstrip().splitlines():
        print(f"   {DIM}{line}{RESET}")


def expect(ok: bool, what: str) -> None:
    print(f"   {GREEN + '✔' if ok else RED + '✘'} {what}{RESET}", flush=True)
    if not ok:
        raise DemoFailed(what)


def masked(text: str) -> str:
    """Credentials as printed by the demo: the secret and the token shortened."""
    data = json.loads(text)
    for name in ("SecretAccessKey", "SessionToken"):
        data[name] = f"{data[name][:4]}... ({len(data[name])} characters)"
    return json.dumps(data, indent=2)


def jit(
    env: dict[str, str], *args: str, who: str = "JITUser", secret: bool = False
) -> subprocess.CompletedProcess[str]:
    print(f"   $ jit {' '.join(shlex.quote(a) for a in args)}    {DIM}# as {who}{RESET}")
    done = subprocess.run(  # fixed argv of our CLI and the AWS CLI  # nosec B603
        [*JIT, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if done.stdout.strip():
        show(masked(done.stdout) if secret and done.returncode == 0 else done.stdout)
    if done.returncode != 0:
        show(
            done.stderr.strip().splitlines()[-1]
            if done.stderr.strip()
            else f"exit {done.returncode}"
        )
    return done


def aws_call(label: str, call: Any) -> tuple[bool, str]:
    from botocore.exceptions import ClientError

    try:
        result = call()
    except ClientError as exc:
        outcome = f"{exc.response['Error']['Code']}"
        print(f"   {label}: {outcome}")
        return False, outcome
    print(f"   {label}: {result}")
    return True, str(result)


def scenario(env: dict[str, str]) -> None:
    import boto3

    endpoint = env["AWS_ENDPOINT_URL"]
    step(2, "JITUser, signing with their own keys, asks which profiles they may have")
    who = jit(env, "whoami")
    expect(
        who.returncode == 0 and json.loads(who.stdout)["name"] == "JITUser",
        "the broker knows the caller from the SigV4 signature alone",
    )
    profiles = jit(env, "profiles")
    expect(
        [p["name"] for p in json.loads(profiles.stdout)] == ["s3-read"],
        "JITUser may request s3-read",
    )

    step(3, "JITUser requests s3-read with a reason, then takes temporary credentials")
    requested = jit(
        env,
        "request",
        "s3-read",
        "--reason",
        "Investigate the failed export job",
        "--duration",
        "30m",
    )
    expect(
        requested.returncode == 0,
        "grant issued (a per-grant IAM role under /jit/ was created for it)",
    )
    grant_id = json.loads(requested.stdout)["id"]
    creds_run = jit(env, "creds", grant_id, "--format", "json", secret=True)
    creds = json.loads(creds_run.stdout)
    expect(
        set(creds) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"},
        "credentials in the credential_process shape (AccessKeyId, SecretAccessKey, SessionToken, Expiration)",
    )

    step(4, "With those credentials: read example-bucket; writing or another bucket is denied")
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=env["AWS_REGION"],
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    ok, _ = aws_call(
        "list example-bucket",
        lambda: [o["Key"] for o in s3.list_objects_v2(Bucket="example-bucket")["Contents"]],
    )
    expect(ok, "listing example-bucket works")
    ok, _ = aws_call(
        "read README.txt",
        lambda: (
            s3.get_object(Bucket="example-bucket", Key="README.txt")["Body"].read().decode().strip()
        ),
    )
    expect(ok, "reading an object works")
    ok, code = aws_call(
        "write new.txt",
        lambda: s3.put_object(Bucket="example-bucket", Key="new.txt", Body=b"x") and "written",
    )
    expect(not ok and code == "AccessDenied", "writing to example-bucket is denied")
    ok, code = aws_call(
        "list other-bucket", lambda: s3.list_objects_v2(Bucket="other-bucket")["KeyCount"]
    )
    expect(not ok and code == "AccessDenied", "listing another bucket is denied")

    as_grant = {
        **{k: v for k, v in env.items() if k not in ("AWS_PROFILE", "JIT_PROFILE")},
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
    }
    chained = jit(as_grant, "request", "s3-read", "--reason", "chaining", who="the grant itself")
    expect(
        chained.returncode == 4,
        "the grant's own credentials may not call the broker: nothing minted from a grant",
    )

    step(5, "OtherUser, who is not entitled, is refused")
    admin_iam = admin_client(env, "iam")
    other = as_new_key_of(env, "OtherUser")
    refused = jit(other, "request", "s3-read", "--reason", "just curious", who="OtherUser")
    expect(
        refused.returncode == 4 and "not_entitled" in refused.stderr,
        "403 not_entitled, and nothing was created",
    )

    step(6, "JITUser revokes the grant: the same credentials stop working, no further sessions")
    revoked = jit(env, "revoke", grant_id)
    expect(
        revoked.returncode == 0 and json.loads(revoked.stdout)["status"] == "revoked",
        "grant revoked (ledger first, then a deny-all on its role, then the role torn down)",
    )
    left = [r["RoleName"] for r in admin_iam.list_roles(PathPrefix="/jit/")["Roles"]]
    expect(f"jit-{grant_id}" not in left, "its role is already gone from IAM")
    ok, code = aws_call(
        "list example-bucket again", lambda: s3.list_objects_v2(Bucket="example-bucket")["KeyCount"]
    )
    expect(not ok and code == "AccessDenied", "the issued credentials are denied from now on")
    again = jit(env, "creds", grant_id)
    expect(again.returncode == 6 and again.stdout == "", "no further sessions for a revoked grant")

    auditor_removes_expired_role(env, admin_iam)


def auditor_removes_expired_role(env: dict[str, str], admin_iam: Any) -> None:
    step(7, "The auditor removes a grant's role once no session of it can be alive")
    requested = jit(
        env, "request", "s3-read", "--reason", "Check the export once more", "--duration", "15m"
    )
    expect(requested.returncode == 0, "a new grant of s3-read (15 minutes)")
    grant = json.loads(requested.stdout)
    role = f"jit-{grant['id']}"
    roles = [r["RoleName"] for r in admin_iam.list_roles(PathPrefix="/jit/")["Roles"]]
    expect(role in roles, f"its role {role} exists under /jit/")
    # expiry + the longest session (3600 s) + clock skew (300 s): the first second it may go
    at = int(grant["expires_at"]) + 3600 + 300 + 1
    done = jit(as_admin(env), "audit", "--at", str(at), who="JITAdmin")
    ok = done.returncode == 0
    answer = json.loads(done.stdout) if ok else {}
    report = answer.get("report", answer)
    expect(
        ok and role in report.get("removed", []) and grant["id"] in report.get("cleaned", []),
        "the audit, evaluated as of expiry + session + skew + 1 s, removed the role and "
        "marked the grant cleaned",
    )
    roles = [r["RoleName"] for r in admin_iam.list_roles(PathPrefix="/jit/")["Roles"]]
    expect(role not in roles, f"{role} is gone from IAM")


def main() -> int:
    print(f"{BOLD}JIT access broker — the everyday scenario on the embedded local stack{RESET}")
    with tempfile.TemporaryDirectory(prefix="jit-demo-") as tmp:
        env_file = Path(tmp) / "local.env"
        step(1, "Start the stack: embedded AWS (moto, IAM enforced) + local API gateway (SigV4)")
        print(f"   $ jit local --port 0 --env-file {env_file} &")
        stack = BackgroundStack(env_file, Path(tmp) / "stack.log")
        try:
            with stack:
                env = stack.env
                print(f"   API {env['JIT_API_URL']}, embedded AWS {env['AWS_ENDPOINT_URL']}")
                print("   access policy: src/jit_local/access-policy.example.yaml")
                scenario(env)
        except (DemoFailed, StackFailed) as exc:
            print(f"\n{RED}demo failed: {exc}{RESET}", file=sys.stderr)
            return 1
    print(f"\n{GREEN}{BOLD}All steps behaved as described.{RESET} The stack has stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
