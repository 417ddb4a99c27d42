"""``jit local``: the embedded local stack.

moto's server runs in this process on 127.0.0.1 with IAM enforcement on (and
``jit_local.iam_eval`` making it evaluate the conditions the broker writes), seeded from the
access policy, without moto's management API (``jit_local.moto_endpoint``); a local API
gateway verifies SigV4 like API Gateway's IAM authorization and calls the broker's handler,
which talks to the embedded AWS as the broker's role: in this process, one invocation at a
time (the default), or with ``--workers N`` in N worker processes at once
(``jit_local.workers``), as Lambda runs many execution environments.

The embedded AWS holds three accounts: the hub (``seed.ACCOUNT_ID``: the broker's stack, its
users and example-bucket) and two member accounts (``seed.MEMBER_ACCOUNTS``, the hub
template's MemberAccountIds), each with the member template's resources
(``seed.seed_member_account``: the boundary and the execution role the broker and the auditor
use there), the role AWS Organizations makes in an account it creates (through which the
administrator reaches it: ``LocalStack.member_client``) and a team-data-<account> bucket.

Contract, for scripts: ``jit local --port P [--env-file F] [--trail-file T]`` serves the API at
http://127.0.0.1:P and writes to F (or prints) shell ``export`` lines for JIT_API_URL,
AWS_ENDPOINT_URL, AWS_REGION, JITUser's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the
embedded administrator's JIT_ADMIN_ACCESS_KEY_ID/JIT_ADMIN_SECRET_ACCESS_KEY and the member
accounts (JIT_MEMBER_ACCOUNTS=id,id). F is written (atomically) only once the stack answers
signed requests; it is removed on shutdown. With T, every IAM and STS request the embedded
AWS allows from then on is appended to T as one JSON line shaped like a CloudTrail management
event (eventTime, eventSource, eventName, readOnly, recipientAccountId, userIdentity.arn and
.sessionIssuer, requestParameters: names and ARNs only, never a secret); the stack keeps the
last TRAIL_MAX of them in ``LocalStack.trail`` as well. Runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jit_local import seed
from jit_local.lambda_env import HANDLER_FILE, load_handler, logs_to_stderr, role_session
from jit_local.workers import MAX_WORKERS, WorkerStartFailed

EXAMPLE_POLICY = Path(__file__).resolve().parent / "access-policy.example.yaml"
OBJECTS = {
    "example-bucket": {
        "README.txt": b"Objects for the JIT access demo.\n",
        "reports/2026-11.csv": b"day,exports,failed\n2026-11-27,412,3\n",
    },
    "other-bucket": {"private.txt": b"Nothing for a grant of s3-read.\n"},
}
# Each member account's own bucket (bucket names are global, in moto as in AWS).
MEMBER_OBJECTS = {
    account: {
        f"team-data-{account}": {
            "README.txt": f"Team data of member account {account}.\n".encode(),
        }
    }
    for account in seed.MEMBER_ACCOUNTS
}
# TeamUser requests the example policy's member-account and shared-role profiles, and the one
# that needs an approval, which ApproverUser decides (issue 11).
USERS = ("JITUser", "OtherUser", "TeamUser", "ApproverUser")
ADMIN = "JITAdmin"
INVOKE_POLICY_NAME = "invoke-jit-api"
TRAIL_MAX = 10_000
# IAM actions CloudTrail records as read-only.
_READ_ONLY_IAM = ("Get", "List", "Simulate", "Generate")


def trail_event(call: Any) -> dict[str, Any]:
    """An allowed request (``iam_eval.AllowedCall``) as CloudTrail shapes a management event."""
    service, action = call.action.split(":", 1)
    return {
        "eventTime": datetime.fromtimestamp(call.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{service}.amazonaws.com",
        "eventName": action,
        "readOnly": service != "iam" or action.startswith(_READ_ONLY_IAM),
        "recipientAccountId": call.account,
        "userIdentity": {"arn": call.caller_arn, "sessionIssuer": call.caller_principal_arn},
        "requestParameters": {k[:1].lower() + k[1:]: v for k, v in call.parameters.items()},
    }


def invoke_policy(region: str) -> dict[str, Any]:
    """What a caller of the local API needs beside the access policy's entitlement."""
    from jit_local.gateway import LOCAL_API_ID

    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeJitApi",
                "Effect": "Allow",
                "Action": "execute-api:Invoke",
                "Resource": f"arn:aws:execute-api:{region}:{seed.ACCOUNT_ID}:{LOCAL_API_ID}/*",
            }
        ],
    }


@dataclass
class LocalStack:
    """A running embedded stack. ``start()`` brings it up; ``stop()`` takes it down."""

    port: int = 0
    policy_file: Path = EXAMPLE_POLICY
    region: str = seed.REGION
    # The broker's and the embedded IAM's "now". Workers follow it by its offset from
    # time.time(), sent with each invocation (jit_local.workers).
    clock: Callable[[], float] = time.time
    # The auditor runs on a timer every this many seconds (0: only on POST /v1/audit).
    audit_interval: float = 30.0
    # 0: the handler runs in this process, one invocation at a time; N: N worker processes.
    workers: int = 0
    # IAM users seeded beside JITUser and OtherUser, each with an access key (in ``keys``).
    extra_users: tuple[str, ...] = ()
    # Where the IAM and STS requests the embedded AWS allows are appended (JSON lines).
    trail_file: Path | None = None
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The last TRAIL_MAX of those requests, as trail_event shapes them.
    trail: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=TRAIL_MAX))
    api_url: str = ""
    aws_url: str = ""
    _moto: Any = None
    _gateway: Any = None
    _pool: Any = None
    _saved: dict[str, Any] = field(default_factory=dict)
    auditor: Any = None
    _audit_lock: threading.Lock = field(default_factory=threading.Lock)
    _audit_stop: threading.Event = field(default_factory=threading.Event)
    _audit_thread: threading.Thread | None = None
    _trail_lock: threading.Lock = field(default_factory=threading.Lock)
    _trail_out: Any = None

    def start(self) -> LocalStack:
        from moto import settings as moto_settings
        from moto.core.authorization import ActionAuthenticatorMixin

        from jit_local import iam_eval
        from jit_local.moto_endpoint import MotoEndpoint

        if not 0 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"workers must be 0..{MAX_WORKERS}, not {self.workers}")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per AWS call
        self._saved = {
            "environ": dict(os.environ),
            "no_auth": moto_settings.INITIAL_NO_AUTH_ACTION_COUNT,
            "request_count": ActionAuthenticatorMixin.request_count,
        }
        try:
            iam_eval.install(self.clock)
            self._moto = MotoEndpoint("127.0.0.1").start()
            self.aws_url = self._moto.url
            moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
            # moto's state lives in the process: a stack started after another (tests) starts
            # from nothing, as `jit local` in a fresh process does.
            from moto.moto_api._internal.models import moto_api_backend

            moto_api_backend.reset()
            seeded = self._seed()
            if self.trail_file is not None:
                self._trail_out = self.trail_file.open("w", encoding="utf-8")
            iam_eval.set_observer(self._record)
            # From here on every request to the embedded AWS is authenticated and authorized.
            ActionAuthenticatorMixin.request_count = 0
            moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
            self._start_broker(seeded)
        except BaseException:
            self.stop()  # nothing half-started stays behind
            raise
        return self

    def stop(self) -> None:
        """Stop the gateway and moto, and put back what start() changed in this process."""
        self._audit_stop.set()
        if self._audit_thread is not None:
            self._audit_thread.join(timeout=30)
            self._audit_thread = None
        if self._gateway is not None:
            self._gateway.stop()
            self._gateway = None
        if self._pool is not None:
            self._pool.stop()
            self._pool = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        with self._trail_lock:
            if self._trail_out is not None:
                self._trail_out.close()
                self._trail_out = None
        if self._saved:
            from moto import settings as moto_settings
            from moto.core.authorization import ActionAuthenticatorMixin

            from jit_broker import runtime
            from jit_local import iam_eval

            runtime.set_broker(None)
            runtime.set_audit_gate(None)
            iam_eval.uninstall()
            iam_eval.set_clock(time.time)
            moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = self._saved["no_auth"]
            ActionAuthenticatorMixin.request_count = self._saved["request_count"]
            os.environ.clear()
            os.environ.update(self._saved["environ"])
            from jit_broker.settings import get_settings

            get_settings.cache_clear()
            self._saved = {}

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- the trail ---------------------------------------------------------------------
    def _record(self, call: Any) -> None:
        """iam_eval's observer: IAM and STS requests the embedded AWS allowed."""
        if not call.action.startswith(("iam:", "sts:")):
            return
        event = trail_event(call)
        with self._trail_lock:
            self.trail.append(event)
            if self._trail_out is not None:
                self._trail_out.write(json.dumps(event, separators=(",", ":")) + "\n")
                self._trail_out.flush()

    # --- set-up ------------------------------------------------------------------------
    def member_client(self, service: str, account: str, key: tuple[str, str] | None = None) -> Any:
        """A client acting in member ``account`` as its OrganizationAccountAccessRole, which
        the embedded administrator (or ``key``'s caller) assumes."""
        sts = self.client("sts", key or self.keys[ADMIN])
        c = sts.assume_role(
            RoleArn=seed.organization_role_arn(account), RoleSessionName="jit-local-admin"
        )["Credentials"]
        return self.client(service, (c["AccessKeyId"], c["SecretAccessKey"]), c["SessionToken"])

    def client(
        self, service: str, key: tuple[str, str] | None = None, token: str | None = None
    ) -> Any:
        import boto3

        access, secret = key or ("seed", "seed")
        return boto3.client(
            service,
            endpoint_url=self.aws_url,
            region_name=self.region,
            aws_access_key_id=access,
            aws_secret_access_key=secret,
            aws_session_token=token,
        )

    def _seed(self) -> seed.Seeded:
        iam, dynamodb, s3 = self.client("iam"), self.client("dynamodb"), self.client("s3")
        seeded = seed.seed_broker_resources(
            iam, dynamodb, region=self.region, events=self.client("events")
        )
        for name in (*USERS, *self.extra_users, ADMIN):
            iam.create_user(UserName=name)
            key = iam.create_access_key(UserName=name)["AccessKey"]
            self.keys[name] = (key["AccessKeyId"], key["SecretAccessKey"])
        # Callers need execute-api:Invoke on the API (API Gateway's IAM authorization, which
        # the local gateway evaluates): exactly that, on this API only.
        for name in (*USERS, *self.extra_users):
            iam.put_user_policy(
                UserName=name,
                PolicyName=INVOKE_POLICY_NAME,
                PolicyDocument=json.dumps(invoke_policy(self.region)),
            )
        admin_policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        iam.put_user_policy(
            UserName=ADMIN, PolicyName="admin", PolicyDocument=json.dumps(admin_policy)
        )
        for bucket, objects in OBJECTS.items():
            s3.create_bucket(Bucket=bucket)
            for key_name, body in objects.items():
                s3.put_object(Bucket=bucket, Key=key_name, Body=body)
        self._seed_members(seeded)
        return seeded

    def _seed_members(self, seeded: seed.Seeded) -> None:
        """Each member account: the role AWS Organizations would have made (reached with the
        seeding key, as the management account), the member template's resources, its bucket."""
        hub = seed.local_stack(self.region)
        seeding_key = ("seed", "seed")
        for account in seeded.member_accounts:
            iam = self.member_client("iam", account, seeding_key)
            seed.seed_organization_access(iam, seeded.account_id)
            seed.seed_member_account(iam, account, region=self.region, hub=hub)
            s3 = self.member_client("s3", account, seeding_key)
            for bucket, objects in MEMBER_OBJECTS[account].items():
                s3.create_bucket(Bucket=bucket)
                for key_name, body in objects.items():
                    s3.put_object(Bucket=bucket, Key=key_name, Body=body)

    def _start_broker(self, seeded: seed.Seeded) -> None:
        from jit_broker import runtime
        from jit_broker.adapters.policy_source import load_policy
        from jit_broker.audit import AuditGate
        from jit_broker.settings import Settings
        from jit_local.credentials import moto_key_lookup
        from jit_local.execute_api import moto_identity_policies
        from jit_local.gateway import LocalGateway
        from jit_local.workers import BrokerWiring, WorkerConfig, WorkerPool

        function_env = {
            **seeded.broker_env(str(self.policy_file)),
            "POWERTOOLS_SERVICE_NAME": os.environ.get("POWERTOOLS_SERVICE_NAME", "jit-broker"),
            "POWERTOOLS_METRICS_NAMESPACE": os.environ.get(
                "POWERTOOLS_METRICS_NAMESPACE", "JitBroker"
            ),
            "POWERTOOLS_TRACE_DISABLED": "true",
            # no CloudWatch here
            "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
            # Only here may POST /v1/audit evaluate "as of" another time (jit audit --at).
            "JIT_ALLOW_CLOCK_OVERRIDE": "true",
            "AWS_ENDPOINT_URL": self.aws_url,
            # As Lambda sets them: clients the broker makes from credentials alone (the member
            # accounts' execution role) find their region there.
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }
        os.environ.update(function_env)
        # Settings are read once per process (as in one Lambda environment): a stack started
        # after another in this process (tests) reads its own, not the last one's.
        from jit_broker.settings import get_settings

        get_settings.cache_clear()
        admin_sts = self.client("sts", self.keys[ADMIN])

        # The auditor runs in this process as the cleanup role (template.yaml's CleanupRole);
        # POST /v1/audit reaches it directly instead of through lambda:InvokeFunction.
        self.auditor = runtime.build_auditor(
            role_session(
                admin_sts,
                seeded.cleanup_role_arn,
                "jit-auditor-local",
                region=self.region,
                clock=self.clock,
            ),
            clock=self.clock,
            env=seeded.cleanup_env(str(self.policy_file)) | {"JIT_ALLOW_CLOCK_OVERRIDE": "true"},
        )
        if self.workers:
            self._pool = WorkerPool(
                self.workers,
                WorkerConfig(
                    handler_file=HANDLER_FILE,
                    env=function_env,
                    broker=BrokerWiring(
                        aws_url=self.aws_url,
                        region=self.region,
                        admin_key=self.keys[ADMIN],
                        broker_role_arn=seeded.broker_role_arn,
                        policy_file=str(self.policy_file),
                    ),
                ),
                clock=self.clock,
                audit_runner=self._run_audit,
            ).start()
            handler = self._pool
        else:
            session = role_session(
                admin_sts,
                seeded.broker_role_arn,
                "jit-broker-local",
                region=self.region,
                clock=self.clock,
            )
            runtime.set_broker(runtime.build_broker(session, clock=self.clock))
            runtime.set_audit_gate(
                AuditGate(
                    settings=Settings.from_env(),
                    policy=lambda: load_policy(path=str(self.policy_file)),
                    runner=self._run_audit,
                )
            )
            handler = load_handler().lambda_handler
        logs_to_stderr()
        self._gateway = LocalGateway(
            handler,
            moto_key_lookup(),
            region=self.region,
            port=self.port,  # signatures are checked against real time: clients sign with it
            concurrent=self._pool is not None,
            identity_policies=moto_identity_policies(),
        ).start()
        self.api_url = self._gateway.url
        if self.audit_interval > 0:
            self._audit_thread = threading.Thread(
                target=self._audit_timer, name="jit-auditor", daemon=True
            )
            self._audit_thread.start()

    # --- the auditor -------------------------------------------------------------------
    def _run_audit(self, request: Any, requested_by: str = "timer") -> Any:
        """One audit run (never two at once), as of the stack clock or ``request.at``."""
        del requested_by
        with self._audit_lock:
            return self.auditor.run(dry_run=request.dry_run, at=request.at, budget_ms=15_000)

    def _audit_timer(self) -> None:
        from jit_broker.models.audit import AuditRequest

        while not self._audit_stop.wait(self.audit_interval):
            try:
                self._run_audit(AuditRequest())
            except Exception as exc:  # a failed run is logged; the next one tries again
                print(f"jit local: audit run failed: {exc!r}", file=sys.stderr)

    # --- for scripts -------------------------------------------------------------------
    def exports(self) -> dict[str, str]:
        user, admin = self.keys["JITUser"], self.keys[ADMIN]
        return {
            "JIT_API_URL": self.api_url,
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": user[0],
            "AWS_SECRET_ACCESS_KEY": user[1],
            "JIT_ADMIN_ACCESS_KEY_ID": admin[0],
            "JIT_ADMIN_SECRET_ACCESS_KEY": admin[1],
            "JIT_MEMBER_ACCOUNTS": ",".join(seed.MEMBER_ACCOUNTS),
        }

    def call(
        self, method: str, path: str, body: Any = None, *, user: str = "JITUser"
    ) -> tuple[int, Any]:
        """One request to the API signed as ``user`` (a seeded IAM user): (status, JSON)."""
        import urllib.error
        import urllib.request

        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"content-type": "application/json"}
        request = AWSRequest(method=method, url=self.api_url + path, data=data, headers=headers)
        SigV4Auth(Credentials(*self.keys[user]), "execute-api", self.region).add_auth(request)
        sent = urllib.request.Request(  # noqa: S310 (loopback)
            request.url, data=data, headers=dict(request.headers.items()), method=method
        )
        try:
            with urllib.request.urlopen(sent, timeout=60) as response:  # noqa: S310  # the stack's own http://127.0.0.1 URL  # nosec B310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def answers(self) -> bool:
        """A signed GET /v1/whoami as JITUser answers 200: the whole chain is up."""
        try:
            return self.call("GET", "/v1/whoami")[0] == 200
        except (OSError, ValueError):
            return False


def export_lines(values: dict[str, str]) -> str:
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in values.items())


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)  # holds access keys of the embedded AWS
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jit local",
        description="Run the broker on the embedded local stack (moto + a SigV4-verifying gateway).",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=5566,
        help="API port on 127.0.0.1 (default 5566; 0 = any free port)",
    )
    parser.add_argument(
        "--env-file", type=Path, help="write the export lines here (else print them)"
    )
    parser.add_argument(
        "--trail-file",
        type=Path,
        help="append each IAM and STS request the embedded AWS allows here, as a JSON line "
        "shaped like a CloudTrail event",
    )
    parser.add_argument(
        "--policy",
        type=Path,
        default=EXAMPLE_POLICY,
        help="access policy file (default: the shipped example)",
    )
    parser.add_argument(
        "--audit-interval",
        type=float,
        default=float(os.environ.get("JIT_LOCAL_AUDIT_INTERVAL", "30")),
        help="run the auditor every this many seconds (default 30, or "
        "JIT_LOCAL_AUDIT_INTERVAL; 0 = only on POST /v1/audit)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run the broker's handler in this many worker processes at once, as Lambda "
        f"runs many environments (1..{MAX_WORKERS}; default 0: in this process, one "
        "request at a time)",
    )
    args = parser.parse_args(argv)
    if args.audit_interval < 0:
        parser.error("--audit-interval must be 0 or more")
    if not 0 <= args.workers <= MAX_WORKERS:
        parser.error(f"--workers must be 0..{MAX_WORKERS}")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0..65535")
    if not args.policy.is_file():
        parser.error(f"--policy {args.policy}: no such file")

    from jit_broker.access_policy import parse_policy
    from jit_broker.errors import PolicyInvalid

    try:
        parse_policy(args.policy.read_text(encoding="utf-8"))
    except PolicyInvalid as exc:
        print(f"jit local: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = LocalStack(
        port=args.port,
        policy_file=args.policy.resolve(),
        audit_interval=args.audit_interval,
        workers=args.workers,
        trail_file=args.trail_file,
    )
    try:
        stack.start()
    except (OSError, WorkerStartFailed) as exc:
        print(f"jit local: cannot start: {exc}", file=sys.stderr)
        stack.stop()
        return 1
    try:
        deadline = time.monotonic() + 30
        while not stack.answers():
            if time.monotonic() > deadline or stop.is_set():
                print("jit local: the stack did not answer within 30 s", file=sys.stderr)
                return 1
            time.sleep(0.1)
        lines = export_lines(stack.exports())
        if args.env_file:
            write_atomically(args.env_file, lines)
            print(
                f"jit local: API at {stack.api_url}; environment in {args.env_file}",
                file=sys.stderr,
            )
        else:
            sys.stdout.write(lines)
            sys.stdout.flush()
            print(f"jit local: API at {stack.api_url}", file=sys.stderr)
        print("jit local: running; Ctrl-C stops it", file=sys.stderr)
        stop.wait()
        return 0
    finally:
        if args.env_file:
            args.env_file.unlink(missing_ok=True)
        stack.stop()
        print("jit local: stopped", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
