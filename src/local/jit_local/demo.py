"""``make demo``: the everyday scenario on the embedded local stack, step by step.

Starts ``jit local`` in the background, then plays what a developer does with the ``jit`` CLI
and the AWS SDK, printing each command and what came back. Every step checks its outcome:
the demo exits non-zero if the broker did not behave as described.

The embedded AWS holds the hub and two member accounts. The last steps grant in member account
A (its credentials touch nothing of member B) and make fast grants (mode shared-role), counting
what each cost in IAM writes from the stack's CloudTrail-like record of the requests it allowed
(``jit local --trail-file``).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess  # runs the project's CLI and the AWS CLI (fixed argv)  # nosec B404
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from jit_local.background import (
    JIT,
    BackgroundStack,
    StackFailed,
    admin_client,
    admin_client_in,
    as_admin,
    as_new_key_of,
    read_trail,
)
from jit_local.seed import ACCOUNT_ID, BROKER_ROLE_NAME, CLEANUP_ROLE_NAME, MEMBER_ROLE_NAME

# The AWS CLI of the demo's own venv (the `demo` dependency group installs it beside jit).
AWS = str(Path(sys.executable).parent / "aws")

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


def command(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """A command a user types (``jit`` is this venv's CLI, ``aws`` its AWS CLI), shown with
    its output and its stderr lines."""
    print(f"   $ {' '.join(shlex.quote(a) for a in argv)}")
    program = [*JIT] if argv[0] == "jit" else [AWS] if argv[0] == "aws" else [argv[0]]
    done = subprocess.run(  # fixed argv of our CLI and the AWS CLI  # nosec B603
        [*program, *argv[1:]], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    show("\n".join(done.stdout.strip().splitlines()[:6]) or f"(exit {done.returncode})")
    for line in done.stderr.strip().splitlines()[-3:]:
        show(f"stderr: {line}")
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


def session_client(env: dict[str, str], service: str, creds: dict[str, str]) -> Any:
    """A client signing with a grant's credentials (as `jit creds --format json` prints them)."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def by_auditor(event: dict[str, Any]) -> bool:
    """A call of the auditor, whose timer runs beside the demo: its own role's sessions, and
    its sessions of the members' execution role (runtime.build_auditor names them
    jit-auditor)."""
    identity = event["userIdentity"]
    return identity["sessionIssuer"] == f"arn:aws:iam::{ACCOUNT_ID}:role/{CLEANUP_ROLE_NAME}" or (
        identity["arn"].endswith(f"/{MEMBER_ROLE_NAME}/jit-auditor")
    )


class Trail:
    """The stack's record of the IAM and STS requests it allowed, read between two marks,
    without the auditor's."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = 0

    def mark(self) -> None:
        self.seen = len(read_trail(self.path))

    def since_mark(self) -> list[dict[str, Any]]:
        return [e for e in read_trail(self.path)[self.seen :] if not by_auditor(e)]


def is_iam_write(event: dict[str, Any]) -> bool:
    return event["eventSource"] == "iam.amazonaws.com" and not event["readOnly"]


def iam_writes(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if is_iam_write(e)]


def show_calls(events: list[dict[str, Any]]) -> None:
    """IAM writes and STS calls, counted by account and name."""
    counted = Counter(
        (e["recipientAccountId"], e["eventSource"].split(".")[0], e["eventName"])
        for e in events
        if is_iam_write(e) or e["eventSource"] == "sts.amazonaws.com"
    )
    if not counted:
        show("no IAM write, no STS call")
    for (account, service, name), count in sorted(counted.items()):
        show(f"{count} x {service}:{name} in account {account}")


def scenario(env: dict[str, str], trail: Trail) -> None:
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

    step(3, "JITUser's everyday path: configure an AWS profile once, then the AWS CLI and jit exec")
    configured = jit(
        env,
        "configure",
        "s3-read",
        "--reason",
        "Investigate the failed export job",
        "--duration",
        "30m",
    )
    expect(
        configured.returncode == 0
        and "[profile jit-s3-read]" in Path(env["AWS_CONFIG_FILE"]).read_text(),
        "the broker confirmed s3-read and its reason; the AWS profile jit-s3-read runs jit",
    )
    listed = command(env, AWS, "s3", "ls", "s3://example-bucket/", "--profile", "jit-s3-read")
    expect(
        listed.returncode == 0 and "README.txt" in listed.stdout,
        "the AWS CLI lists example-bucket with --profile jit-s3-read: jit made the grant",
    )
    ran = command(
        env,
        "jit",
        "exec",
        "s3-read",
        "--",
        "aws",
        "s3",
        "cp",
        "s3://example-bucket/README.txt",
        "-",
    )
    expect(
        ran.returncode == 0 and "using grant g-" in ran.stderr,
        "jit exec runs the AWS CLI in the same grant and says so on stderr (no second grant)",
    )
    # As a person reads it (a terminal's default): local times and the time left.
    lines = jit(env, "grants", "--active", "--output", "text").stdout.splitlines()
    rows = [line.split() for line in lines[1:]]
    expect(
        lines[0].split()[:2] == ["ID", "PROFILE"]
        and [row[1] for row in rows] == ["s3-read"]
        and "min left)" in lines[1],
        "one active grant of s3-read, for both the AWS profile and jit exec, with its time left",
    )
    grant_id = rows[0][0]
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
    # The CLI recognises a grant's own keys and stops before sending (exit 2); were they sent,
    # the broker refuses them on every route (403 broker_session_refused, exit 4).
    expect(
        chained.returncode in (2, 4)
        and (
            "signing_as_grant" in chained.stderr
            or "broker_session_refused" in chained.stderr
            or "unset" in chained.stderr
        ),
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
    team = as_new_key_of(env, "TeamUser")
    grant_in_member_account(team, trail)
    fast_grants(team, trail)
    approver = as_new_key_of(env, "ApproverUser")
    approved_by_someone_else(team, approver, admin_iam)
    break_glass(team, approver)
    explain(env)


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


def grant_in_member_account(team: dict[str, str], trail: Trail) -> None:
    member_a, member_b = team["JIT_MEMBER_ACCOUNTS"].split(",")
    step(8, f"TeamUser asks for team-data-read in member account A ({member_a})")
    profiles = jit(team, "profiles", who="TeamUser")
    listed = {p["name"]: p for p in json.loads(profiles.stdout)} if profiles.returncode == 0 else {}
    expect(
        set(listed) >= {"team-data-read", "s3-read-fast", "s3-write-approved", "s3-break-glass"},
        "TeamUser may request team-data-read (member accounts A and B), s3-read-fast, "
        "s3-write-approved and s3-break-glass",
    )
    refused = jit(team, "request", "team-data-read", "--reason", "Which one?", who="TeamUser")
    expect(
        refused.returncode != 0 and member_a in refused.stderr and member_b in refused.stderr,
        "a profile of two accounts is granted in one named account: the broker names them",
    )
    trail.mark()
    requested = jit(
        team,
        "request",
        "team-data-read",
        "--account",
        member_a,
        "--reason",
        "Check the team's export in account A",
        "--duration",
        "30m",
        who="TeamUser",
    )
    grant = json.loads(requested.stdout) if requested.returncode == 0 else {}
    expect(grant.get("account") == member_a, "grant issued in member account A")
    events = trail.since_mark()
    show_calls(events)
    role = f"jit-{grant['id']}"
    in_a = [r["RoleName"] for r in admin_client_in(team, "iam", member_a).list_roles()["Roles"]]
    in_hub = [r["RoleName"] for r in admin_client(team, "iam").list_roles()["Roles"]]
    expect(role in in_a and role not in in_hub, f"its role {role} was made in A, not in the hub")
    writes = iam_writes(events)
    execution_role = f"arn:aws:iam::{member_a}:role/{MEMBER_ROLE_NAME}"
    broker_role = f"arn:aws:iam::{ACCOUNT_ID}:role/{BROKER_ROLE_NAME}"
    expect(
        bool(writes)
        and all(
            e["recipientAccountId"] == member_a
            and e["userIdentity"]["sessionIssuer"] == execution_role
            for e in writes
        ),
        f"its IAM writes ({len(writes)}) were made in A, through A's execution role",
    )
    expect(
        [
            e["userIdentity"]["sessionIssuer"]
            for e in events
            if e["eventName"] == "AssumeRole"
            and e["requestParameters"].get("roleArn", "").endswith(f"/{role}")
        ]
        == [broker_role],
        "its role was assumed directly by the hub broker's own role (one hop)",
    )

    step(9, "Its credentials act in member account A only")
    creds_run = jit(team, "creds", grant["id"], "--format", "json", who="TeamUser", secret=True)
    creds = json.loads(creds_run.stdout)
    caller = session_client(team, "sts", creds).get_caller_identity()
    show(f"caller: {caller['Arn']}")
    expect(caller["Account"] == member_a, "the session is a session of member account A")
    s3 = session_client(team, "s3", creds)
    ok, _ = aws_call(
        f"list team-data-{member_a}",
        lambda: [o["Key"] for o in s3.list_objects_v2(Bucket=f"team-data-{member_a}")["Contents"]],
    )
    expect(ok, "reading member A's bucket works")
    ok, code = aws_call(
        f"list team-data-{member_b}",
        lambda: s3.list_objects_v2(Bucket=f"team-data-{member_b}")["KeyCount"],
    )
    expect(
        not ok and code == "AccessDenied",
        "member B's bucket is denied, although the profile's statements name team-data-*: "
        "another account's bucket",
    )
    revoked = jit(team, "revoke", grant["id"], who="TeamUser")
    expect(
        revoked.returncode == 0 and json.loads(revoked.stdout)["status"] == "revoked",
        "revoked: its role in A is torn down",
    )
    left = admin_client_in(team, "iam", member_a).list_roles()["Roles"]
    expect(role not in [r["RoleName"] for r in left], "no role of the grant is left in A")
    ok, code = aws_call(
        f"list team-data-{member_a} again",
        lambda: s3.list_objects_v2(Bucket=f"team-data-{member_a}")["KeyCount"],
    )
    expect(not ok and code == "AccessDenied", "the issued credentials are denied from now on")


def fast_grants(team: dict[str, str], trail: Trail) -> None:
    step(10, "Fast grants: s3-read-fast (mode shared-role) costs no IAM write once its role exists")

    def request(reason: str) -> tuple[str, list[dict[str, Any]]]:
        trail.mark()
        done = jit(
            team, "request", "s3-read-fast", "--reason", reason, "--duration", "30m", who="TeamUser"
        )
        if done.returncode != 0:
            raise DemoFailed("s3-read-fast was not granted")
        events = trail.since_mark()
        show_calls(events)
        return json.loads(done.stdout)["id"], events

    first, events = request("First look at the export")
    made = [e for e in iam_writes(events) if e["eventName"] == "CreateRole"]
    expect(
        [e["requestParameters"].get("roleName") for e in made] == ["jit-s-s3-read-fast"],
        f"the first grant made the profile's shared role jit-s-s3-read-fast, once "
        f"({len(iam_writes(events))} IAM writes)",
    )
    first_creds = json.loads(
        jit(team, "creds", first, "--format", "json", who="TeamUser", secret=True).stdout
    )
    s3_first = session_client(team, "s3", first_creds)
    ok, _ = aws_call(
        "list example-bucket", lambda: s3_first.list_objects_v2(Bucket="example-bucket")["KeyCount"]
    )
    expect(ok, "its session reads example-bucket")
    ok, code = aws_call(
        "write new.txt",
        lambda: (
            s3_first.put_object(Bucket="example-bucket", Key="new.txt", Body=b"x") and "written"
        ),
    )
    expect(not ok and code == "AccessDenied", "and may not write (its session policy)")

    second, events = request("A second look")
    assumed = [e for e in events if e["eventName"] == "AssumeRole"]
    expect(
        iam_writes(events) == [] and len(assumed) == 1,
        "the next grant: 0 IAM writes, one AssumeRole (and a ledger write)",
    )

    step(11, "Revoking a fast grant: its credentials are refused at once, the other grant's not")
    trail.mark()
    revoked = jit(team, "revoke", first, who="TeamUser")
    show_calls(trail.since_mark())
    expect(
        revoked.returncode == 0 and json.loads(revoked.stdout)["status"] == "revoked",
        "revoked: the grant added to the shared role's deny (its session tag jit:grant-id)",
    )
    ok, code = aws_call(
        "list example-bucket with the revoked grant's credentials",
        lambda: s3_first.list_objects_v2(Bucket="example-bucket")["KeyCount"],
    )
    expect(not ok and code == "AccessDenied", "the same credentials are refused from now on")
    second_creds = json.loads(
        jit(team, "creds", second, "--format", "json", who="TeamUser", secret=True).stdout
    )
    s3_second = session_client(team, "s3", second_creds)
    ok, _ = aws_call(
        "list example-bucket with the other grant's credentials",
        lambda: s3_second.list_objects_v2(Bucket="example-bucket")["KeyCount"],
    )
    expect(ok, "the other grant of the same shared role still reads")
    done = jit(team, "revoke", second, who="TeamUser")
    expect(done.returncode == 0, "and is revoked in turn")


def private_files(env: dict[str, str], folder: Path) -> dict[str, str]:
    """The stack's environment with the demo's own AWS config, credentials and jit cache and
    config: nothing of this machine's ~/.aws or ~/.cache is read or written. ``aws`` and
    ``jit`` (for ``jit exec`` and the AWS profile's credential_process) are this venv's."""
    (folder / "aws-config").write_text("")
    (folder / "aws-credentials").write_text("")
    bin_dir = str(Path(sys.executable).parent)
    return {
        **env,
        "AWS_CONFIG_FILE": str(folder / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(folder / "aws-credentials"),
        "XDG_CACHE_HOME": str(folder / "cache"),
        "XDG_CONFIG_HOME": str(folder / "config"),
        "PATH": bin_dir + os.pathsep + env.get("PATH", os.defpath),
    }


TRY_NEXT = """\
Try it yourself (in two terminals, from the repository):
  .venv-demo/bin/jit local --env-file /tmp/jit.env         # the stack, until Ctrl-C
  set -a; . /tmp/jit.env; set +a; export PATH="$PWD/.venv-demo/bin:$PATH"
  jit status                                                # who you sign as, your grants
  jit exec s3-read --reason "look around" --duration 15m    # a subshell with the grant
  jit --help                                                # every command, with examples
Install the CLI alone: uv tool install ./src/cli   (README: Install)"""


def approved_by_someone_else(
    team: dict[str, str], approver: dict[str, str], admin_iam: Any
) -> None:
    step(
        12, "TeamUser asks for s3-write-approved: it waits for an approver, nothing is granted yet"
    )
    asked = jit(
        team,
        "request",
        "s3-write-approved",
        "--reason",
        "Fix the export's bad row",
        "--duration",
        "30m",
        who="TeamUser",
    )
    request = json.loads(asked.stdout) if asked.returncode == 0 else {}
    grant_id = str(request.get("id", ""))
    roles = [r["RoleName"] for r in admin_iam.list_roles(PathPrefix="/jit/")["Roles"]]
    expect(
        request.get("status") == "requested" and f"jit-{grant_id}" not in roles,
        "202 requested: no role was made and no credentials were issued",
    )
    early = jit(team, "creds", grant_id, who="TeamUser")
    expect(early.returncode == 6 and early.stdout == "", "no credentials before the approval")

    step(13, "TeamUser may not approve their own request")
    own = jit(team, "approve", grant_id, "--comment", "looks fine to me", who="TeamUser")
    expect(
        own.returncode == 4 and "self_approval_refused" in own.stderr,
        "self-approval refused (the ledger's conditional write, not only a check in code)",
    )

    step(14, "ApproverUser sees the request and approves it with a comment")
    lines = jit(approver, "approvals", "--output", "text", who="ApproverUser").stdout.splitlines()
    expect(
        [line.split()[0] for line in lines[1:]] == [grant_id],
        "the request is the one ApproverUser may decide (with its review deadline)",
    )
    decided = jit(
        approver,
        "approve",
        grant_id,
        "--comment",
        "Checked the row: go ahead",
        "--output",
        "text",
        who="ApproverUser",
    )
    expect(decided.returncode == 0, "approved; its 30-minute window starts now")

    step(15, "TeamUser takes credentials of the approved grant and writes the fix")
    creds_run = jit(team, "creds", grant_id, "--format", "json", who="TeamUser", secret=True)
    creds = json.loads(creds_run.stdout) if creds_run.returncode == 0 else {}
    expect(bool(creds), "credentials issued only now, after the approval")
    s3 = session_client(team, "s3", creds) if creds else None
    ok, _ = aws_call(
        "write fixed.csv",
        lambda: (
            s3 is not None
            and s3.put_object(Bucket="example-bucket", Key="fixed.csv", Body=b"ok") is not None
            and "written"
        ),
    )
    expect(ok, "writing to example-bucket works with the approved grant")
    done = jit(team, "revoke", grant_id, who="TeamUser")
    expect(done.returncode == 0, "and TeamUser revokes it when done")


def break_glass(team: dict[str, str], approver: dict[str, str]) -> None:
    step(16, "Break-glass: TeamUser gets s3-break-glass at once, with a reason, for a short window")
    bare = jit(team, "request", "s3-break-glass", "--explain", who="TeamUser")
    expect(
        bare.returncode == 4 and '"reason"' in bare.stdout,
        "without a reason it would be refused (explain, nothing created)",
    )
    used = jit(
        team,
        "request",
        "s3-break-glass",
        "--reason",
        "INC-9: the export is down, restart it",
        who="TeamUser",
    )
    grant = json.loads(used.stdout) if used.returncode == 0 else {}
    expect(
        grant.get("status") == "active",
        "granted without an approver; every approver is told at once (BreakGlassUsed event)",
    )

    step(17, "ApproverUser closes its review afterwards (TeamUser may not review their own)")
    grant_id = str(grant.get("id", ""))
    own = jit(team, "review", grant_id, "--comment", "all fine", who="TeamUser")
    expect(own.returncode == 4, "TeamUser's own review is refused")
    closed = jit(
        approver,
        "review",
        grant_id,
        "--comment",
        "Checked INC-9: the restart was needed",
        who="ApproverUser",
    )
    expect(closed.returncode == 0, "review closed, with who, when and the comment")
    done = jit(team, "revoke", grant_id, who="TeamUser")
    expect(done.returncode == 0, "and the grant is revoked once the incident is over")


def explain(env: dict[str, str]) -> None:
    step(18, "Explain: would JITUser get s3-read for 4 hours, with no reason? Nothing is created")
    trail_before = len(admin_client(env, "iam").list_roles(PathPrefix="/jit/")["Roles"])
    said = jit(env, "request", "s3-read", "--duration", "4h", "--explain")
    verdict = json.loads(said.stdout) if said.stdout.strip() else {}
    rules = {d.get("rule") for d in verdict.get("denials", [])}
    expect(
        said.returncode == 4 and {"duration", "reason"} <= rules,
        "no: every rule that stops it is listed (the window, the missing reason), exit 4",
    )
    roles_after = len(admin_client(env, "iam").list_roles(PathPrefix="/jit/")["Roles"])
    expect(roles_after == trail_before, "and nothing was created")


def main() -> int:
    print(f"{BOLD}JIT access broker — the everyday scenario on the embedded local stack{RESET}")
    with tempfile.TemporaryDirectory(prefix="jit-demo-") as tmp:
        env_file = Path(tmp) / "local.env"
        step(1, "Start the stack: embedded AWS (moto, IAM enforced) + local API gateway (SigV4)")
        trail_file = Path(tmp) / "trail.jsonl"
        print(f"   $ jit local --port 0 --env-file {env_file} --trail-file {trail_file} &")
        stack = BackgroundStack(env_file, Path(tmp) / "stack.log", trail_file=trail_file)
        try:
            with stack:
                env = private_files(stack.env, Path(tmp))
                print(f"   API {env['JIT_API_URL']}, embedded AWS {env['AWS_ENDPOINT_URL']}")
                print(f"   accounts: hub {ACCOUNT_ID}, members {env['JIT_MEMBER_ACCOUNTS']}")
                print("   access policy: src/local/jit_local/access-policy.example.yaml")
                scenario(env, Trail(trail_file))
        except (DemoFailed, StackFailed) as exc:
            print(f"\n{RED}demo failed: {exc}{RESET}", file=sys.stderr)
            return 1
    print(f"\n{GREEN}{BOLD}All steps behaved as described.{RESET} The stack has stopped.\n")
    print(TRY_NEXT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
