"""Benchmark: one auditor run over the hub and its member accounts on moto, 1% of roles stale.

Each account holds ``--roles`` JIT roles (default 3 accounts x 2,000: the hub and two members,
each member reached through its execution role as the deployed auditor reaches it). Prints the
IAM calls by operation and account against the targets (list calls <= ceil(N / page size) per
account, tag reads only for candidates, at most 6 further calls per removed role) and the run's
wall time against three bare paginated ListRoles (PathPrefix = the role path) in the same
accounts with the same clients (target <= 1.5x plus the removals, whose time is measured and
shown apart, as is the ledger's read of the open grants). Ratios from one run; nothing is
asserted.

    .venv/bin/python bench/cleanup.py [--accounts 3] [--roles 2000] [--stale-percent 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [
    str(ROOT / "layers" / "common"),
    str(ROOT / "src" / "cli"),
    str(ROOT / "src" / "local"),
]

REGION = "us-east-1"
OWNER = "arn:aws:iam::123456789012:user/JITUser|AIDAJITUSEREXAMPLE"


def _environment() -> None:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": REGION,
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_METRICS_DISABLED": "1",
        }
    )
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)


def _timed(method: Any, bucket: dict[str, float]) -> Any:
    def wrapper(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return method(*a, **k)
        finally:
            bucket["s"] += time.perf_counter() - t

    return wrapper


def _member_accounts(count: int) -> tuple[str, ...]:
    """The local stack's two members first (jit_local.seed), then made-up ones."""
    from jit_local.seed import MEMBER_ACCOUNTS

    extra = tuple(f"{400_000_000_000 + i:012d}" for i in range(max(0, count - 2)))
    return (*MEMBER_ACCOUNTS, *extra)[:count]


def _admin_iam(sts: Any, account: str) -> Any:
    """An IAM client acting in ``account`` as its administrator (moto: the credentials')."""
    import boto3

    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/admin", RoleSessionName="bench")[
        "Credentials"
    ]
    return boto3.client(
        "iam",
        region_name=REGION,
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
    )


def _populate(
    iam: Any,
    db: Any,
    *,
    account: str,
    seeded: Any,
    boundary_arn: str,
    roles: int,
    stale: int,
    now: int,
) -> None:
    """``roles`` grant roles in ``account`` as the broker makes them (path, trust, boundary,
    tags), each with its open grant in the ledger; the first ``stale`` expired long ago."""
    from jit_broker import documents, naming
    from jit_broker.adapters.ledger import _to_item
    from jit_broker.models.domain import Grant, GrantStatus
    from jit_local.seed import ACCOUNT_ID, OWNER_TAG, ROLE_PATH

    user = f"arn:aws:iam::{ACCOUNT_ID}:user/JITUser"
    items = []
    for i in range(roles):
        gid = naming.new_grant_id()
        expires = now - 100_000 if i < stale else now + 3600
        out = iam.create_role(
            RoleName=naming.role_name_for(gid),
            Path=ROLE_PATH,
            AssumeRolePolicyDocument=documents.compact(
                documents.trust_policy(seeded.broker_role_arn, expires)
            ),
            PermissionsBoundary=boundary_arn,
            Tags=[
                {"Key": documents.TAG_GRANT, "Value": gid},
                {"Key": documents.TAG_OWNER, "Value": OWNER_TAG},
            ],
        )["Role"]
        grant = Grant(
            grant_id=gid,
            profile="s3-read",
            requester_id=user,
            requester_arn=user,
            owner=OWNER,
            account_id=ACCOUNT_ID,
            source_identity="JITUser",
            status=GrantStatus.ACTIVE,
            created_at=expires - 1800,
            expires_at=expires,
            role_name=out["RoleName"],
            role_arn=out["Arn"],
            role_id=out["RoleId"],
            target_account=account,
        )
        items.append({"PutRequest": {"Item": _to_item(grant)}})
    for start in range(0, len(items), 25):
        db.batch_write_item(RequestItems={seeded.table_name: items[start : start + 25]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=3, help="the hub and N-1 members")
    parser.add_argument("--roles", type=int, default=2000, help="JIT roles in each account")
    parser.add_argument("--stale-percent", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.accounts < 1 or args.roles < 1:
        parser.error("--accounts and --roles must be at least 1")
    _environment()

    import boto3
    from moto import mock_aws

    from jit_broker.adapters.events import RecordedEvents
    from jit_broker.adapters.iam_audit import IamAudit
    from jit_broker.adapters.ledger import ROLE_QUOTA, Ledger, _owner_quota_pk
    from jit_broker.adapters.members import MemberClients
    from jit_broker.audit import Auditor
    from jit_broker.settings import AuditSettings
    from jit_local.seed import (
        MEMBER_ROLE_NAME,
        ROLE_PATH,
        local_stack,
        seed_broker_resources,
        seed_member_account,
    )

    now = int(time.time())
    members = _member_accounts(args.accounts - 1)
    stale = max(1, round(args.roles * args.stale_percent / 100))
    total = args.roles * args.accounts
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        sts = boto3.client("sts", region_name=REGION)
        db = boto3.client("dynamodb", region_name=REGION)
        seeded = seed_broker_resources(iam, db)
        settings = AuditSettings.from_env(
            seeded.cleanup_env("unused", event_bus=False)
            | {
                "JIT_AUDIT_DRIFT_CHECKS": "0",
                "JIT_AUDIT_MAX_DELETIONS": "10000",
                "JIT_MEMBER_ACCOUNTS": ",".join(members),
                "JIT_MEMBER_ROLE_NAME": MEMBER_ROLE_NAME,
            }
        ).model_copy(update={"policy_file": None})
        print(
            f"setting up {args.accounts} account(s) x {args.roles} JIT roles "
            f"({stale} stale in each) on moto ...",
            flush=True,
        )
        hub = local_stack(REGION)
        admin = {settings.home_account: iam}
        for account in members:  # the member template's boundary and execution role
            admin[account] = _admin_iam(sts, account)
            seed_member_account(admin[account], account, hub=hub)
        for account in settings.stack_accounts:
            _populate(
                admin[account],
                db,
                account=account,
                seeded=seeded,
                boundary_arn=settings.boundary_arn_in(account),
                roles=args.roles,
                stale=stale,
                now=now,
            )
        for quota in (ROLE_QUOTA, _owner_quota_pk(OWNER)):  # what the grants hold
            db.put_item(
                TableName=seeded.table_name,
                Item={"pk": {"S": quota}, "sk": {"S": "QUOTA"}, "live_roles": {"N": str(total)}},
            )

        # The auditor's clients: the hub's own, a member's through its execution role (assumed
        # once here and kept, as MemberClients keeps it for 15 minutes: in neither figure).
        auditor_sts = boto3.client("sts", region_name=REGION)
        member_clients = MemberClients(
            sts=auditor_sts,
            session_factory=lambda **c: boto3.session.Session(region_name=REGION, **c),
            role_arn_of=settings.member_role_arn,
            session_name="jit-auditor",
        )
        started = time.perf_counter()
        clients = {settings.home_account: boto3.client("iam", region_name=REGION)}
        clients |= {account: member_clients.client(account) for account in members}
        assumed = time.perf_counter() - started

        for client in clients.values():  # each client's first call (models, connection)
            client.list_roles(PathPrefix=ROLE_PATH, MaxItems=1)

        # baseline: bare paginated ListRoles in each account, with those clients
        listed = Counter[str]()
        started = time.perf_counter()
        for account, client in clients.items():
            for page in client.get_paginator("list_roles").paginate(
                PathPrefix=ROLE_PATH, PaginationConfig={"PageSize": settings.page_size}
            ):
                listed[account] += len(page["Roles"])
        baseline = time.perf_counter() - started

        calls = {account: Counter[str]() for account in clients}
        for account, client in clients.items():

            def count(model: Any, _calls: Counter[str] = calls[account], **_: Any) -> None:
                _calls.update([model.name])

            client.meta.events.register("provide-client-params.iam.*", count)

        # What a removal costs counts with the removals: the deny, the teardown, and the
        # ledger's writes (moto's DynamoDB transactions copy the whole table, so they dominate
        # on moto); the ledger's one read of the open grants is shown apart.
        removal_time = {"s": 0.0}
        query_time = {"s": 0.0}
        audits: dict[str, IamAudit] = {}
        for account, client in clients.items():
            audit = IamAudit(client)
            audit.teardown = _timed(audit.teardown, removal_time)  # type: ignore[method-assign]
            audit.deny = _timed(audit.deny, removal_time)  # type: ignore[method-assign]
            audits[account] = audit
        ledger = Ledger(db, seeded.table_name)
        for name in ("move", "mark_cleaned", "release_slot"):
            setattr(ledger, name, _timed(getattr(ledger, name), removal_time))
        ledger.open_grants = _timed(ledger.open_grants, query_time)  # type: ignore[method-assign]
        member_iam: Callable[[str], IamAudit] = audits.__getitem__
        auditor = Auditor(
            settings=settings,
            ledger=ledger,
            iam=audits[settings.home_account],
            member_iam=member_iam,
            events=RecordedEvents(),
        )
        started = time.perf_counter()
        report = auditor.run(at=now, budget_ms=900_000)
        sweep = time.perf_counter() - started

    all_calls = sum(calls.values(), Counter[str]())
    print(json.dumps({a: dict(sorted(c.items())) for a, c in calls.items()}, indent=2))
    if report.findings:
        print("findings:", [(f.kind, f.account, f.detail[:60]) for f in report.findings])
    target_lists = math.ceil(args.roles / settings.page_size)
    for a in report.accounts:
        print(
            f"account {a.account}: roles listed {listed[a.account]} (baseline) / "
            f"{a.roles_listed} (sweep), list calls {a.list_calls} (target <= {target_lists}), "
            f"tag reads {a.tag_reads} (target {stale}), removed {len(a.removed)}, "
            f"complete {a.complete}"
        )
    removed = len(report.removed)
    per_removal = sum(v for k, v in all_calls.items() if k not in ("ListRoles", "ListRoleTags"))
    print(
        f"other IAM calls {per_removal:6d}   = {per_removal / max(1, removed):.2f} per removed role "
        "(target <= 6)"
    )
    without_removals = sweep - removal_time["s"] - query_time["s"]
    print(f"execution roles assumed once beforehand ({len(members)}): {assumed:.2f} s")
    print(f"ledger read (open grants, {report.grants_open}, moto Query): {query_time['s']:.2f} s")
    print(
        f"wall time: audit run {sweep:.2f} s (of which removals {removal_time['s']:.2f} s), "
        f"bare ListRoles in {len(clients)} account(s) {baseline:.2f} s"
    )
    print(
        f"ratio (run - removals - ledger read) / bare ListRoles = "
        f"{without_removals / baseline:.2f}x (target <= 1.5x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
