"""Benchmark: one auditor sweep over 10,000 JIT roles on moto, 1% stale.

Prints the IAM calls by operation against the targets (list calls <= ceil(N / page size), tag
reads only for candidates, at most 6 further calls per removed role) and the sweep's wall time
against bare paginated ListRoles over the same roles (target <= 1.5x plus the removals, whose
time is measured and shown apart). Ratios from one run; nothing is asserted.

    .venv/bin/python bench/cleanup.py [--roles 10000] [--stale-percent 1]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "common"), str(ROOT / "src")]

NOW = 1_795_000_000
PAGE = 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roles", type=int, default=10_000)
    parser.add_argument("--stale-percent", type=float, default=1.0)
    args = parser.parse_args(argv)

    import os

    for k, v in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_DISABLED": "1",
    }.items():
        os.environ[k] = v
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)

    import boto3
    from moto import mock_aws

    from jit_broker import documents, naming
    from jit_broker.adapters.events import RecordedEvents
    from jit_broker.adapters.iam_audit import IamAudit
    from jit_broker.adapters.ledger import Ledger, _to_item
    from jit_broker.cleanup import Auditor
    from jit_broker.models.domain import Grant, GrantStatus
    from jit_broker.settings import AuditSettings
    from jit_local.seed import OWNER_TAG, ROLE_PATH, seed_broker_resources

    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        db = boto3.client("dynamodb", region_name="us-east-1")
        seeded = seed_broker_resources(iam, db)
        stale_count = max(1, round(args.roles * args.stale_percent / 100))
        print(f"setting up {args.roles} JIT roles ({stale_count} stale) on moto ...", flush=True)
        items = []
        for i in range(args.roles):
            gid = naming.new_grant_id()
            expires = NOW - 100_000 if i < stale_count else NOW + 3600
            out = iam.create_role(
                RoleName=naming.role_name_for(gid),
                Path=ROLE_PATH,
                AssumeRolePolicyDocument=documents.compact(
                    documents.trust_policy(seeded.broker_role_arn, expires)
                ),
                PermissionsBoundary=seeded.boundary_arn,
                Tags=[
                    {"Key": documents.TAG_GRANT, "Value": gid},
                    {"Key": documents.TAG_OWNER, "Value": OWNER_TAG},
                ],
            )["Role"]
            grant = Grant(
                grant_id=gid,
                profile="s3-read",
                requester_id="arn:aws:iam::123456789012:user/JITUser",
                requester_arn="arn:aws:iam::123456789012:user/JITUser",
                owner="arn:aws:iam::123456789012:user/JITUser|AIDAJITUSEREXAMPLE",
                account_id="123456789012",
                source_identity="JITUser",
                status=GrantStatus.ACTIVE,
                created_at=expires - 1800,
                expires_at=expires,
                role_name=out["RoleName"],
                role_arn=out["Arn"],
                role_id=out["RoleId"],
            )
            items.append({"PutRequest": {"Item": _to_item(grant)}})
        for start in range(0, len(items), 25):
            db.batch_write_item(RequestItems={seeded.table_name: items[start : start + 25]})
        db.put_item(
            TableName=seeded.table_name,
            Item={
                "pk": {"S": "QUOTA#roles"},
                "sk": {"S": "QUOTA"},
                "live_roles": {"N": str(args.roles)},
            },
        )

        # baseline: bare paginated ListRoles over the same roles
        started = time.perf_counter()
        listed = sum(
            len(p["Roles"])
            for p in iam.get_paginator("list_roles").paginate(
                PathPrefix=ROLE_PATH, PaginationConfig={"PageSize": PAGE}
            )
        )
        baseline = time.perf_counter() - started

        calls: Counter[str] = Counter()
        removal_time = {"s": 0.0}
        iam.meta.events.register(
            "provide-client-params.iam.*", lambda model, **_: calls.update([model.name])
        )
        audit_iam = IamAudit(iam)
        teardown = audit_iam.teardown

        def timed_teardown(name: str, *, deny_first: bool = True) -> None:
            t = time.perf_counter()
            teardown(name, deny_first=deny_first)
            removal_time["s"] += time.perf_counter() - t

        audit_iam.teardown = timed_teardown  # type: ignore[method-assign]
        ledger = Ledger(db, seeded.table_name)
        query_time = {"s": 0.0}

        def timed(method: Any, bucket: dict[str, float]) -> Any:
            def wrapper(*a: Any, **k: Any) -> Any:
                t = time.perf_counter()
                try:
                    return method(*a, **k)
                finally:
                    bucket["s"] += time.perf_counter() - t

            return wrapper

        # the ledger writes of a removal count with the removal (moto's DynamoDB transactions
        # copy the whole table, so they dominate on moto); the ledger read is shown apart
        for name in ("move", "mark_cleaned", "release_slot"):
            setattr(ledger, name, timed(getattr(ledger, name), removal_time))
        ledger.open_grants = timed(ledger.open_grants, query_time)  # type: ignore[method-assign]
        settings = AuditSettings.from_env(
            seeded.cleanup_env("unused", event_bus=False)
            | {"JIT_AUDIT_DRIFT_CHECKS": "0", "JIT_AUDIT_MAX_DELETIONS": "10000"}
        ).model_copy(update={"policy_file": None})
        auditor = Auditor(
            settings=settings,
            ledger=ledger,
            iam=audit_iam,
            events=RecordedEvents(),
        )
        started = time.perf_counter()
        report = auditor.run(at=NOW, budget_ms=900_000)
        sweep = time.perf_counter() - started

    removed = len(report.removed)
    list_calls = calls["ListRoles"]
    tag_reads = calls["ListRoleTags"]
    per_removal = sum(v for k, v in calls.items() if k not in ("ListRoles", "ListRoleTags"))
    print(json.dumps(dict(sorted(calls.items())), indent=2))
    print(f"roles listed {listed} (baseline) / {report.roles_listed} (sweep); removed {removed}")
    print(
        f"list calls      {list_calls:6d}   target <= ceil({args.roles}/{PAGE}) = "
        f"{math.ceil(args.roles / PAGE)}"
    )
    print(f"tag reads       {tag_reads:6d}   target: candidates only = {stale_count}")
    print(
        f"other IAM calls {per_removal:6d}   = {per_removal / max(1, removed):.2f} per removed role "
        "(target <= 6)"
    )
    without_removals = sweep - removal_time["s"] - query_time["s"]
    print(f"ledger read (open grants, moto Query): {query_time['s']:.2f} s")
    print(
        f"wall time: sweep {sweep:.2f} s (of which removals {removal_time['s']:.2f} s), "
        f"bare ListRoles {baseline:.2f} s"
    )
    print(
        f"ratio (sweep - removals - ledger read) / bare ListRoles = {without_removals / baseline:.2f}x "
        "(target <= 1.5x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
