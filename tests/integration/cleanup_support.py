"""Building blocks for the auditor's tests: grants and roles exactly as the broker writes
them (documents, tags, boundary, ledger transactions), decoys, and snapshots of IAM and the
ledger."""

from __future__ import annotations

import json
from typing import Any

from jit_broker import documents, naming
from jit_broker.adapters.iam import Iam, RoleSpec
from jit_broker.adapters.iam_audit import IamAudit
from jit_broker.adapters.ledger import Ledger
from jit_broker.audit import Auditor
from jit_broker.models.domain import Grant, GrantStatus
from jit_broker.settings import AuditSettings
from jit_local.seed import ROLE_PATH
from tests.conftest import FakeMonotonic, owner_of

JIT_USER = "arn:aws:iam::123456789012:user/JITUser"


def audit_settings(stack: Any, **overrides: Any) -> AuditSettings:
    """The cleanup function's settings for ``stack``, sweeping the hub alone unless
    ``member_accounts`` is given (tests/integration/test_audit_accounts.py sweeps members)."""
    env = stack.seeded.cleanup_env(str(stack.policy_file), event_bus=False)
    return AuditSettings.model_validate(
        AuditSettings.from_env(env).model_dump()
        | {"deep_drift_checks_per_run": 0, "member_accounts": ()}
        | overrides
    )


class Events:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def publish(self, events: list[tuple[str, dict[str, Any]]]) -> int:
        self.sent.extend(events)
        return 0


def make_auditor(
    stack: Any, *, iam: Any = None, monotonic: Any = None, events: Any = None, **settings: Any
) -> Auditor:
    from jit_broker.adapters.policy_source import load_policy

    s = audit_settings(stack, **settings)
    return Auditor(
        settings=s,
        ledger=Ledger(stack.dynamodb, s.table_name),
        iam=IamAudit(iam or stack.iam, sleep=lambda _: None),
        events=events or Events(),
        policy=lambda: load_policy(path=str(stack.policy_file)),
        monotonic=(monotonic or FakeMonotonic()).monotonic,
    )


def make_grant(
    stack: Any,
    *,
    expires_at: int,
    status: GrantStatus = GrantStatus.ACTIVE,
    created_at: int | None = None,
    with_role: bool = True,
    role_id: str | None = None,
    window: int = 1800,
    record_written: bool = True,
) -> Grant:
    """A grant the way the broker makes it: ledger first (quota +1, and what the role's
    permissions will be), then the role, then (for active and later states) the ledger
    records the role's id. ``record_written=False`` makes a record of an older broker."""
    ledger = Ledger(stack.dynamodb, stack.seeded.table_name)
    gid = naming.new_grant_id()
    grant = Grant(
        grant_id=gid,
        profile="s3-read",
        requester_id=JIT_USER,
        requester_arn=JIT_USER,
        owner=owner_of(JIT_USER),
        account_id="123456789012",
        source_identity="JITUser",
        reason="test",
        status=GrantStatus.ISSUING,
        created_at=created_at if created_at is not None else expires_at - window,
        expires_at=expires_at,
        role_name=naming.role_name_for(gid),
    )
    if record_written:
        spec = role_spec(stack, grant)
        grant = grant.model_copy(
            update={
                "policy_sha256": documents.policy_digest(spec.permissions_policy),
                "managed_policy_arns": sorted(spec.managed_policy_arns),
            }
        )
    ledger.open_grant(
        grant,
        nonce=f"n-{gid}",
        now=grant.created_at,
        rate_limit=10**6,
        max_roles=10**6,
        max_roles_per_owner=10**6,
    )
    role = None
    if with_role:
        role = Iam(stack.iam).create_grant_role(role_spec(stack, grant))
    if status != GrantStatus.ISSUING:
        fields = {"role_arn": role.arn, "role_id": role_id or role.role_id} if role else {}
        ledger.move(gid, GrantStatus.ISSUING, GrantStatus.ACTIVE, **fields)
        if status in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
            ledger.move(gid, GrantStatus.ACTIVE, status)
        if status == GrantStatus.REVOKED and role:
            Iam(stack.iam).deny_everything(grant.role_name)
    got = ledger.get_grant(gid)
    assert got is not None
    return got


def profile_statements(stack: Any) -> list[dict[str, Any]]:
    from jit_broker.adapters.policy_source import load_policy

    inline = load_policy(path=str(stack.policy_file)).profiles["s3-read"].permissions.inline
    assert inline is not None
    return inline.statements()


def role_spec(stack: Any, grant: Grant) -> RoleSpec:
    return RoleSpec(
        name=grant.role_name,
        path=ROLE_PATH,
        trust_policy=documents.trust_policy(stack.seeded.broker_role_arn, grant.expires_at),
        permissions_policy=documents.grant_policy(profile_statements(stack), grant.expires_at),
        managed_policy_arns=(),
        boundary_arn=stack.seeded.boundary_arn,
        tags={
            documents.TAG_GRANT: grant.grant_id,
            documents.TAG_REQUESTER: naming.tag_value(grant.requester_id),
            documents.TAG_EXPIRES: str(grant.expires_at),
            documents.TAG_OWNER: "jit-broker-local",
            documents.TAG_PROFILE: grant.profile,
        },
        description="test",
    )


def plain_role(
    stack: Any, name: str, path: str = ROLE_PATH, owner: str | None = "jit-broker-local"
) -> str:
    tags = [{"Key": documents.TAG_OWNER, "Value": owner}] if owner else []
    return str(
        stack.iam.create_role(
            RoleName=name,
            Path=path,
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
            Tags=tags,
        )["Role"]["RoleId"]
    )


def role_names(stack: Any) -> set[str]:
    names: set[str] = set()
    for page in stack.iam.get_paginator("list_roles").paginate():
        names |= {r["RoleName"] for r in page["Roles"]}
    return names


def live_roles(stack: Any) -> int:
    item = stack.dynamodb.get_item(
        TableName=stack.seeded.table_name, Key={"pk": {"S": "QUOTA#roles"}, "sk": {"S": "QUOTA"}}
    ).get("Item")
    return int(item["live_roles"]["N"]) if item else 0


def iam_snapshot(stack: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for page in stack.iam.get_paginator("list_roles").paginate():
        for r in page["Roles"]:
            name = r["RoleName"]
            out[name] = {
                "role": {
                    k: v
                    for k, v in stack.iam.get_role(RoleName=name)["Role"].items()
                    if k != "RoleLastUsed"
                },
                "inline": {
                    p: stack.iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                    for p in stack.iam.list_role_policies(RoleName=name)["PolicyNames"]
                },
                "managed": stack.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"],
            }
    return out


def ledger_snapshot(stack: Any) -> list[dict[str, Any]]:
    return sorted(stack.table_items(), key=lambda i: (i["pk"]["S"], i["sk"]["S"]))
