"""Grant modes (issue 9): ratios and counts measured in one run, never timing asserts.

1. IAM writes per grant, counted by a spy on the broker's IAM client: per-grant-role mode
   (the role, its policy; then its revocation) against shared-role mode (none once the
   profile's shared role exists; one PutRolePolicy to revoke).
2. A shared-role grant handled in-process against moto (the whole handler: identity, policy,
   ledger, STS) vs the bare calls it cannot do without on the same moto: one AssumeRole with
   the same session policy and tags, and one ledger transaction (the grant's first write).
   Target <= 1.3x.

Run: ``make bench`` (or ``.venv/bin/python bench/modes.py [--rounds N]``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IAM_WRITES = {
    "CreateRole",
    "PutRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "DeleteRolePolicy",
    "DeleteRole",
    "TagRole",
    "UntagRole",
}
ACCOUNT = "123456789012"


def _environment() -> None:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )


@contextlib.contextmanager
def _stack(tmp: str) -> Any:
    """moto in-process, the broker wired to spied clients, a policy with a per-grant-role
    profile (s3-read) and a shared-role one (s3-fast), open to the whole account."""
    import boto3
    import yaml
    from moto import mock_aws

    from jit_broker import runtime
    from jit_local.seed import seed_broker_resources
    from tests.conftest import CallLog, build_broker

    with mock_aws():
        calls = CallLog()
        clients = {
            n: calls.attach(boto3.client(n, region_name="us-east-1"))
            for n in ("iam", "sts", "dynamodb")
        }
        seeded = seed_broker_resources(clients["iam"], clients["dynamodb"])
        policy = yaml.safe_load(
            (ROOT / "src/local/jit_local/access-policy.example.yaml").read_text()
        )
        policy["limits"]["requests_per_minute"] = 1000
        base = policy["profiles"]["s3-read"]
        base["requesters"] = {"accounts": [ACCOUNT]}
        base["max_active_grants"] = None
        policy["profiles"] = {"s3-read": base, "s3-fast": {**base, "mode": "shared-role"}}
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

        logger.setLevel("WARNING")
        try:
            yield app, clients, calls, seeded, base
        finally:
            runtime.set_broker(None)


def _call(app: Any, method: str, path: str, body: Any, user: str) -> dict[str, Any]:
    from tests.conftest import LambdaContext, api_event

    event = api_event(method, path, body, user_arn=user)
    with contextlib.redirect_stdout(io.StringIO()):  # the metrics line
        response = app.lambda_handler(event, LambdaContext())
    assert response["statusCode"] in (200, 201), response["body"]
    return dict(json.loads(response["body"]))


def _grant(app: Any, profile: str) -> dict[str, Any]:
    user = f"arn:aws:iam::{ACCOUNT}:user/dev-{uuid.uuid4().hex[:12]}"
    body = {"profile": profile, "duration": 1800, "reason": "bench", "nonce": uuid.uuid4().hex}
    grant = _call(app, "POST", "/v1/grants", body, user)["grant"]
    grant["user"] = user
    return grant


def iam_writes() -> dict[str, int]:
    """IAM writes of one grant and of its revocation, in each mode (the shared role made by a
    first grant beforehand, as it is once per profile and account)."""
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp, _stack(tmp) as (app, _, calls, _s, _b):
        _grant(app, "s3-fast")  # the profile's shared role, once
        for mode, profile in (("per-grant-role", "s3-read"), ("shared-role", "s3-fast")):
            calls.clear()
            grant = _grant(app, profile)
            counts[f"{mode} grant"] = sum(op in IAM_WRITES for op in calls.operations())
            calls.clear()
            _call(app, "POST", f"/v1/grants/{grant['id']}/revoke", {}, grant["user"])
            counts[f"{mode} revocation"] = sum(op in IAM_WRITES for op in calls.operations())
    print(
        "IAM writes: per-grant-role grant {a}, its revocation {b}; shared-role grant {c}, "
        "its revocation {d} (the shared role itself: once per profile and account)".format(
            a=counts["per-grant-role grant"],
            b=counts["per-grant-role revocation"],
            c=counts["shared-role grant"],
            d=counts["shared-role revocation"],
        )
    )
    return counts


def shared_grant(rounds: int) -> float:
    from jit_broker import documents
    from jit_broker.adapters.ledger import Ledger
    from jit_broker.models.domain import Grant, GrantMode, GrantStatus
    from jit_broker.naming import new_grant_id
    from jit_local.seed import TABLE_NAME

    with tempfile.TemporaryDirectory() as tmp, _stack(tmp) as (app, clients, _c, _s, base):
        role_arn = _grant(app, "s3-fast")["role_arn"]
        statements = base["permissions"]["inline"]["Statement"]
        sts, ledger = clients["sts"], Ledger(clients["dynamodb"], TABLE_NAME)

        def bare_calls() -> None:
            """One AssumeRole as the broker makes it (session policy, tags, SourceIdentity)
            and one ledger transaction (the grant's first write: grant, nonce, rate)."""
            gid = new_grant_id()
            now = int(time.time())
            grant = Grant(
                grant_id=gid,
                profile="s3-fast",
                requester_id=f"bench-{gid}",
                requester_arn="bench",
                owner=f"bench-{gid}",
                account_id=ACCOUNT,
                source_identity="bench",
                status=GrantStatus.ISSUING,
                created_at=now,
                expires_at=now + 1800,
                role_name="jit-s-s3-fast",
                mode=GrantMode.SHARED_ROLE,
            )
            sts.assume_role(
                RoleArn=role_arn,
                RoleSessionName="jit-bench",
                SourceIdentity="bench",
                DurationSeconds=1800,
                Policy=documents.compact(documents.session_policy(statements, now + 1800)),
                Tags=[
                    {"Key": "jit:grant-id", "Value": gid},
                    {"Key": "jit:profile", "Value": "s3-fast"},
                    {"Key": "jit:requester", "Value": "bench"},
                ],
            )
            ledger.open_grant(
                grant,
                nonce=uuid.uuid4().hex,
                now=now,
                rate_limit=10**6,
                max_roles=10**6,
                max_roles_per_owner=10**6,
            )

        for _ in range(5):  # warm both paths
            _grant(app, "s3-fast")
            bare_calls()
        broker_times, bare_times = [], []
        for _ in range(rounds):
            t = time.perf_counter()
            bare_calls()
            bare_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            _grant(app, "s3-fast")
            broker_times.append(time.perf_counter() - t)
    g, b = statistics.median(broker_times), statistics.median(bare_times)
    print(
        f"shared-role grant: broker {g * 1000:.1f} ms vs one bare AssumeRole + one ledger "
        f"transaction {b * 1000:.1f} ms (medians of {rounds}) -> ratio {g / b:.2f}x "
        "(target <= 1.3x)"
    )
    return g / b


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=61)
    args = parser.parse_args()
    _environment()
    counts = iam_writes()
    results = {"shared_grant_ratio": round(shared_grant(args.rounds), 2), **counts}
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
