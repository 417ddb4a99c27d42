"""Benchmarks: ratios against a baseline measured in the same run (never timing asserts).

1. Cold start: importing the broker handler module in a fresh interpreter vs ``import boto3``
   alone, both with the environment Lambda sets (LAMBDA_TASK_ROOT, function name, region).
   Target <= 2.0x.
2. Warm grant: one POST /v1/grants handled in-process against moto vs the bare boto3 calls it
   must make on the same moto (create role, put policy, assume role, two ledger writes).
   Target <= 1.3x.

Run: ``make bench`` (or ``.venv/bin/python bench/run.py [--rounds N]``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LAMBDA_ENV = {
    "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "broker"),
    "AWS_LAMBDA_FUNCTION_NAME": "jit-broker",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "jit-broker",
    "POWERTOOLS_METRICS_NAMESPACE": "JitBroker",
}

TIMED_IMPORT = (
    "import sys, time; sys.path.insert(0, {root!r}); t = time.perf_counter(); import {module}; "
    "print(time.perf_counter() - t)"
)


def import_seconds(module: str, root: str) -> float:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **LAMBDA_ENV}
    out = subprocess.run(
        [sys.executable, "-c", TIMED_IMPORT.format(root=root, module=module)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def cold_start(rounds: int) -> float:
    handler_dir = str(ROOT / "functions" / "broker")
    boto3_times, handler_times = [], []
    for _ in range(rounds):  # interleaved, so machine noise hits both alike
        boto3_times.append(import_seconds("boto3", handler_dir))
        handler_times.append(import_seconds("app", handler_dir))
    b, h = statistics.median(boto3_times), statistics.median(handler_times)
    print(
        f"cold start: import app {h * 1000:.0f} ms vs import boto3 {b * 1000:.0f} ms "
        f"(medians of {rounds}) -> ratio {h / b:.2f}x (target <= 2.0x)"
    )
    return h / b


def warm_grant(rounds: int, *, capped: bool) -> float:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    import boto3
    import yaml
    from moto import mock_aws

    from jit_broker import runtime
    from jit_local.seed import ROLE_PATH, TABLE_NAME, seed_broker_resources
    from tests.conftest import LambdaContext, api_event, build_broker

    with mock_aws(), tempfile.TemporaryDirectory() as tmp:
        clients = {n: boto3.client(n, region_name="us-east-1") for n in ("iam", "sts", "dynamodb")}
        seeded = seed_broker_resources(clients["iam"], clients["dynamodb"])
        policy = yaml.safe_load(
            (ROOT / "src/local/jit_local/access-policy.example.yaml").read_text()
        )
        policy["limits"]["requests_per_minute"] = 1000
        # capped: the example's one active grant per requester, so each round is another
        # engineer (the slot claim rides in the grant's first ledger transaction)
        policy["profiles"]["s3-read"]["max_active_grants"] = 1 if capped else None
        policy["profiles"]["s3-read"]["requesters"] = {"accounts": ["123456789012"]}
        policy_file = Path(tmp) / "policy.yaml"
        policy_file.write_text(yaml.safe_dump(policy))
        runtime.set_broker(
            build_broker(clients, seeded, policy_file, env={"JIT_MAX_ROLES": "5000"})
        )
        import importlib.util

        spec = importlib.util.spec_from_file_location("bench_app", ROOT / "functions/broker/app.py")
        assert spec and spec.loader
        app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(app)
        from jit_broker.observability import logger

        logger.setLevel("WARNING")  # one INFO line per grant would be all the output
        from jit_broker.adapters.ledger import Ledger
        from jit_broker.documents import compact, grant_policy, trust_policy
        from jit_broker.models.domain import Grant, GrantStatus, IssuedSession
        from jit_broker.naming import new_grant_id

        statements = policy["profiles"]["s3-read"]["permissions"]["inline"]["Statement"]
        iam, sts, ddb = clients["iam"], clients["sts"], clients["dynamodb"]

        def broker_grant() -> None:
            body = {
                "profile": "s3-read",
                "duration": 1800,
                "reason": "bench",
                "nonce": uuid.uuid4().hex,
            }
            user = f"arn:aws:iam::123456789012:user/dev-{uuid.uuid4().hex[:12]}"
            event = api_event("POST", "/v1/grants", body, user_arn=user)
            with contextlib.redirect_stdout(io.StringIO()):  # the metrics line
                response = app.lambda_handler(event, LambdaContext())
            assert response["statusCode"] == 201, response["body"]

        ledger = Ledger(ddb, TABLE_NAME)

        def bare_calls() -> None:
            """The AWS calls a grant must make, issued directly: the role, its policy, the
            session, and the ledger's two writes (the same conditional transactions: grant +
            nonce + counters — and, for a capped profile, the requester's slot — then
            activation + session record)."""
            gid = new_grant_id()
            now = int(time.time())
            expires = now + 1800
            grant = Grant(
                grant_id=gid,
                profile="s3-read",
                requester_id=f"bench-{gid}",  # as the broker's: another engineer each round
                requester_arn="bench",
                owner=f"bench-{gid}",
                account_id="123456789012",
                source_identity="bench",
                status=GrantStatus.ISSUING,
                created_at=now,
                expires_at=expires,
                role_name=f"jit-{gid}",
                slot=0 if capped else None,
            )
            role = iam.create_role(
                Path=ROLE_PATH,
                RoleName=grant.role_name,
                AssumeRolePolicyDocument=compact(trust_policy(seeded.broker_role_arn, expires)),
                MaxSessionDuration=3600,
                PermissionsBoundary=seeded.boundary_arn,
                Tags=[{"Key": "jit:grant-id", "Value": gid}],
            )["Role"]
            iam.put_role_policy(
                RoleName=grant.role_name,
                PolicyName="jit-grant",
                PolicyDocument=compact(grant_policy(statements, expires)),
            )
            creds = sts.assume_role(
                RoleArn=role["Arn"],
                RoleSessionName="bench",
                SourceIdentity="bench",
                DurationSeconds=1800,
            )["Credentials"]
            ledger.open_grant(
                grant,
                nonce=uuid.uuid4().hex,
                now=now,
                rate_limit=10**6,
                max_roles=10**6,
                max_roles_per_owner=10**6,
            )
            ledger.activate(
                grant.model_copy(update={"role_arn": role["Arn"], "role_id": role["RoleId"]}),
                IssuedSession(
                    grant_id=gid,
                    access_key_id=creds["AccessKeyId"],
                    issued_at=now,
                    expires_at=expires,
                    source_identity="bench",
                    session_name="bench",
                ),
            )

        for _ in range(5):  # warm both paths (imports, models, moto's first-call setup)
            broker_grant()
            bare_calls()
        broker_times, bare_times = [], []
        for _ in range(rounds):
            t = time.perf_counter()
            bare_calls()
            bare_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            broker_grant()
            broker_times.append(time.perf_counter() - t)
        runtime.set_broker(None)
    g, b = statistics.median(broker_times), statistics.median(bare_times)
    label = (
        "one active grant per requester (slot claimed in the first ledger write)"
        if capped
        else "no active-grant cap"
    )
    print(
        f"warm grant, {label}: broker {g * 1000:.1f} ms vs bare boto3 calls {b * 1000:.1f} ms "
        f"(medians of {rounds}) -> ratio {g / b:.2f}x (target <= 1.3x)"
    )
    return g / b


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    results = {
        "cold_start_ratio": cold_start(args.rounds),
        "warm_grant_ratio": warm_grant(args.rounds * 3, capped=False),
        "warm_grant_ratio_capped": warm_grant(args.rounds * 3, capped=True),
    }
    print(json.dumps({k: round(v, 2) for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
