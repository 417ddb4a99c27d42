"""Grant modes and accounts in the broker (issue 9): shared-role grants cost no IAM write once
their role exists, each session is scoped by its grant's session policy and tags, revocation
adds the grant to the shared role's deny (from the ledger's list, never lost to a concurrent
one, refused loudly at IAM's size limit); grants in member accounts are written there through
the execution role and assumed directly by the broker's own role.

moto ignores session policies and trust, so these assert the exact calls and documents the
broker sends (the CallLog spy); tests/local proves the same sessions against the local IAM
evaluator."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from jit_local.seed import ROLE_PATH
from tests.conftest import (
    ACCOUNT,
    EXAMPLE_POLICY,
    JIT_USER,
    OTHER_USER,
    CallLog,
    Stack,
    build_broker,
    grant_body,
    moto_stack,
)

MEMBER_A = "210987654321"
MEMBER_B = "345678901234"
MEMBER_ROLE = "jit-broker-jit-member"
IAM_WRITES = {
    "CreateRole",
    "PutRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "DeleteRolePolicy",
    "DeleteRole",
    "TagRole",
    "UntagRole",
    "UpdateAssumeRolePolicy",
}

FAST = {
    "description": "Read example-bucket, fast",
    "mode": "shared-role",
    "permissions": {
        "inline": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadObjects",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject"],
                    "Resource": "arn:aws:s3:::example-bucket/*",
                }
            ],
        }
    },
    "requesters": {"users": [JIT_USER, OTHER_USER]},
    "max_active_grants": 3,
}


def _policy(stack: Stack, **profiles: dict[str, Any]) -> None:
    document = yaml.safe_load(EXAMPLE_POLICY.read_text())
    document["profiles"].update(profiles)
    stack.policy_file.write_text(yaml.safe_dump(document))


def _member_client(sts: Any, account: str, service: str, calls: CallLog) -> Any:
    """A client acting in ``account`` (moto keeps accounts apart by the credentials')."""
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/admin", RoleSessionName="setup")[
        "Credentials"
    ]
    return calls.attach(
        boto3.client(
            service,
            region_name="us-east-1",
            aws_access_key_id=c["AccessKeyId"],
            aws_secret_access_key=c["SecretAccessKey"],
            aws_session_token=c["SessionToken"],
        )
    )


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Stack]:
    """The in-process stack with two member accounts: each has the boundary under the hub's
    name and the execution role; the broker reaches them through MemberClients."""
    from jit_broker import runtime
    from jit_broker.adapters.iam import Iam
    from jit_broker.adapters.members import MemberClients

    with moto_stack(tmp_path) as stack:
        boundary_name = stack.seeded.boundary_arn.rsplit("/", 1)[-1]
        boundary_doc = stack.iam.get_policy_version(
            PolicyArn=stack.seeded.boundary_arn, VersionId="v1"
        )["PolicyVersion"]["Document"]
        for account in (MEMBER_A, MEMBER_B):
            iam = _member_client(stack.sts, account, "iam", CallLog())
            iam.create_policy(PolicyName=boundary_name, PolicyDocument=json.dumps(boundary_doc))
            iam.create_role(RoleName=MEMBER_ROLE, AssumeRolePolicyDocument="{}")
        member_calls = CallLog()

        def session_factory(**credentials: Any) -> Any:
            session = boto3.session.Session(region_name="us-east-1", **credentials)
            real_client = session.client

            def client(service: str, **kw: Any) -> Any:
                return member_calls.attach(real_client(service, **kw))

            session.client = client  # type: ignore[method-assign]
            return session

        env = {
            "JIT_MEMBER_ACCOUNTS": f"{MEMBER_A},{MEMBER_B}",
            "JIT_MEMBER_ROLE_NAME": MEMBER_ROLE,
        }
        from jit_broker.settings import Settings

        settings = Settings.from_env(stack.seeded.broker_env(str(stack.policy_file)) | env)
        members = MemberClients(
            sts=stack.sts,
            session_factory=session_factory,
            role_arn_of=settings.member_role_arn,
            session_name="jit-broker",
        )
        clients = {"iam": stack.iam, "sts": stack.sts, "dynamodb": stack.dynamodb}
        stack.broker = build_broker(
            clients,
            stack.seeded,
            stack.policy_file,
            env=env,
            member_iam=lambda account: Iam(members.client(account)),
        )
        stack.env = {"member_calls": member_calls}  # type: ignore[dict-item]
        runtime.set_broker(stack.broker)
        stack.calls.clear()
        yield stack


def _member_calls(stack: Stack) -> CallLog:
    return stack.env["member_calls"]  # type: ignore[return-value]


def _writes(calls: CallLog) -> list[str]:
    return [op for op in calls.operations() if op in IAM_WRITES]


# --------------------------------------------------------------------------- shared-role
def test_a_shared_role_grant_costs_no_iam_write_once_its_role_exists(hub: Stack, call: Any) -> None:
    _policy(hub, fast=FAST)
    status, _, first = call("POST", "/v1/grants", grant_body(profile="fast"))
    assert status == 201, first
    assert _writes(hub.calls) == ["CreateRole", "PutRolePolicy"]
    hub.calls.clear()
    for user in (JIT_USER, OTHER_USER):
        status, _, body = call("POST", "/v1/grants", grant_body(profile="fast"), user_arn=user)
        assert status == 201, body
    assert _writes(hub.calls) == []
    assert hub.calls.operations().count("AssumeRole") == 2
    # per grant: one read (the nonce, the rate and the profile's 3 slots) before STS, one
    # AssumeRole, one transaction after
    assert hub.calls.operations() == ["BatchGetItem", "AssumeRole", "TransactWriteItems"] * 2
    assert first["grant"]["mode"] == "shared-role"
    assert first["grant"]["role_arn"] == f"arn:aws:iam::{ACCOUNT}:role{ROLE_PATH}jit-s-fast"


def test_each_shared_role_session_is_scoped_to_its_profile_and_grant(hub: Stack, call: Any) -> None:
    _policy(hub, fast=FAST)
    status, _, body = call("POST", "/v1/grants", grant_body(profile="fast", duration=900))
    assert status == 201, body
    [assume] = hub.calls.named("AssumeRole")
    grant = body["grant"]
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(grant["expires_at"]))
    assert json.loads(assume["Policy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            *FAST["permissions"]["inline"]["Statement"],
            {
                "Sid": "DenyAfterGrantExpiry",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateGreaterThan": {"aws:CurrentTime": expires}},
            },
        ],
    }
    assert {t["Key"]: t["Value"] for t in assume["Tags"]}["jit:grant-id"] == grant["id"]
    assert assume["SourceIdentity"] == "JITUser"
    assert assume["DurationSeconds"] == 900
    [create] = hub.calls.named("CreateRole")
    trust = json.loads(create["AssumeRolePolicyDocument"])["Statement"][0]
    assert trust["Principal"] == {"AWS": hub.seeded.broker_role_arn}
    assert trust["Condition"]["StringLike"]["aws:RequestTag/jit:grant-id"] == "g-*"
    assert create["PermissionsBoundary"] == hub.seeded.boundary_arn
    assert {t["Key"]: t["Value"] for t in create["Tags"]}["jit:mode"] == "shared-role"


def test_a_shared_role_is_rewritten_once_when_its_profile_changes(hub: Stack, call: Any) -> None:
    _policy(hub, fast=FAST)
    assert call("POST", "/v1/grants", grant_body(profile="fast"))[0] == 201
    changed = json.loads(json.dumps(FAST))
    changed["permissions"]["inline"]["Statement"][0]["Action"] = ["s3:GetObject", "s3:ListBucket"]
    _policy(hub, fast=changed)
    hub.calls.clear()
    assert call("POST", "/v1/grants", grant_body(profile="fast"), user_arn=OTHER_USER)[0] == 201
    [put] = hub.calls.named("PutRolePolicy")
    assert (
        json.loads(put["PolicyDocument"])["Statement"]
        == changed["permissions"]["inline"]["Statement"]
    )
    assert "CreateRole" in _writes(hub.calls)  # tried, exists: kept (its deny list stays)
    hub.calls.clear()
    assert call("POST", "/v1/grants", grant_body(profile="fast"), user_arn=OTHER_USER)[0] == 201
    assert _writes(hub.calls) == []


def test_a_shared_role_grant_holds_no_role_quota(hub: Stack, call: Any) -> None:
    _policy(hub, fast=FAST)
    assert call("POST", "/v1/grants", grant_body(profile="fast"))[0] == 201
    quotas = [i for i in hub.table_items() if i["pk"]["S"].startswith("QUOTA#")]
    assert [int(q["count"]["N"]) for q in quotas if "count" in q] in ([], [0, 0])


def _revoked_list(hub: Stack) -> list[str]:
    out = hub.iam.get_role_policy(RoleName="jit-s-fast", PolicyName="jit-revoked")
    document = out["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    [statement] = document["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "*"
    ids = statement["Condition"]["StringEquals"]["aws:PrincipalTag/jit:grant-id"]
    return [ids] if isinstance(ids, str) else ids


def test_revoking_a_shared_role_grant_denies_its_tag_and_no_other(hub: Stack, call: Any) -> None:
    _policy(hub, fast=FAST)
    a = call("POST", "/v1/grants", grant_body(profile="fast"))[2]["grant"]["id"]
    b = call("POST", "/v1/grants", grant_body(profile="fast"), user_arn=OTHER_USER)[2]["grant"][
        "id"
    ]
    status, _, body = call("POST", f"/v1/grants/{a}/revoke", {"reason": "done"})
    assert status == 200 and body["grant"]["status"] == "revoked"
    assert _revoked_list(hub) == [a]
    assert call("POST", f"/v1/grants/{b}/revoke", {}, user_arn=OTHER_USER)[0] == 200
    assert _revoked_list(hub) == sorted([a, b])
    # the shared role itself stays: other grants of the profile keep working
    assert hub.iam.get_role(RoleName="jit-s-fast")["Role"]["Arn"]
    status, _, body = call(
        "POST", f"/v1/grants/{a}/credentials", {"nonce": "n-" + uuid.uuid4().hex}
    )
    assert status == 409 and body["error"]["code"] == "grant_not_active"


def test_a_revocation_made_while_another_writes_the_deny_is_not_lost(
    hub: Stack, call: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two revocations at once: A reads the list [a], B adds b and writes [a, b], then A's
    write of [a] lands last. A re-reads the list, sees it changed, and writes it again."""
    from jit_broker.adapters.iam import Iam

    _policy(hub, fast=FAST)
    a = call("POST", "/v1/grants", grant_body(profile="fast"))[2]["grant"]["id"]
    b = call("POST", "/v1/grants", grant_body(profile="fast"), user_arn=OTHER_USER)[2]["grant"][
        "id"
    ]
    real = Iam.deny_grants
    interleaved: list[list[str]] = []

    def deny_grants(self: Iam, role_name: str, grant_ids: list[str]) -> None:
        if not interleaved:  # A's first write: B's whole revocation runs before it lands
            interleaved.append(list(grant_ids))
            assert call("POST", f"/v1/grants/{b}/revoke", {}, user_arn=OTHER_USER)[0] == 200
        real(self, role_name, grant_ids)

    monkeypatch.setattr(Iam, "deny_grants", deny_grants)
    assert call("POST", f"/v1/grants/{a}/revoke", {})[0] == 200
    assert interleaved == [[a]]
    assert _revoked_list(hub) == sorted([a, b])


def test_revocation_at_iams_size_limit_is_refused_and_changes_nothing(
    hub: Stack, call: Any
) -> None:
    """The deny lists as many grants as fit IAM's 10,240 characters beside the role's own
    policy; one more is refused with 503 revocation_list_full, the grant still active and the
    role's policies as they were."""
    from jit_broker import documents

    _policy(hub, fast=FAST)
    grant = call("POST", "/v1/grants", grant_body(profile="fast"))[2]["grant"]
    own = len(documents.compact({"Version": "2012-10-17", **_statements(FAST)}))
    most = documents.revoked_list_capacity(own)
    listed = [f"g-{i:024x}" for i in range(most)]
    assert len(documents.compact(documents.revoked_grants_deny(listed))) + own <= 10240
    over = [*listed, "g-" + "f" * 24]
    assert len(documents.compact(documents.revoked_grants_deny(over))) + own > 10240
    hub.dynamodb.update_item(
        TableName=hub.seeded.table_name,
        Key={"pk": {"S": f"SHARED#{ACCOUNT}#fast"}, "sk": {"S": "SHARED"}},
        UpdateExpression="ADD revoked :ids",
        ExpressionAttributeValues={":ids": {"SS": listed}},
    )
    hub.calls.clear()
    status, _, body = call("POST", f"/v1/grants/{grant['id']}/revoke", {})
    assert status == 503 and body["error"]["code"] == "revocation_list_full"
    assert "audit" in body["error"]["message"]
    assert _writes(hub.calls) == []
    assert call("GET", f"/v1/grants/{grant['id']}")[2]["grant"]["status"] == "active"
    # one fewer listed: the revocation goes through
    hub.dynamodb.update_item(
        TableName=hub.seeded.table_name,
        Key={"pk": {"S": f"SHARED#{ACCOUNT}#fast"}, "sk": {"S": "SHARED"}},
        UpdateExpression="DELETE revoked :ids",
        ExpressionAttributeValues={":ids": {"SS": [listed[0]]}},
    )
    assert call("POST", f"/v1/grants/{grant['id']}/revoke", {})[0] == 200
    assert len(_revoked_list(hub)) == most


def _statements(profile: dict[str, Any]) -> dict[str, Any]:
    return {"Statement": profile["permissions"]["inline"]["Statement"]}


def test_a_shared_role_profile_whose_session_policy_is_too_long_does_not_load() -> None:
    from jit_broker.access_policy import parse_policy
    from jit_broker.errors import PolicyInvalid

    document = yaml.safe_load(EXAMPLE_POLICY.read_text())
    big = json.loads(json.dumps(FAST))
    big["permissions"]["inline"]["Statement"][0]["Resource"] = [
        f"arn:aws:s3:::bucket-{i:04d}/*" for i in range(80)
    ]
    document["profiles"]["fast"] = big
    with pytest.raises(PolicyInvalid) as raised:
        parse_policy(yaml.safe_dump(document))
    assert "STS allows 2048" in str(raised.value)
    document["profiles"]["fast"]["mode"] = "per-grant-role"
    assert parse_policy(yaml.safe_dump(document)).profiles["fast"]


# ------------------------------------------------------------------------- member accounts
MEMBER_PROFILE = {
    "description": "Read example-bucket in member A",
    "accounts": [MEMBER_A],
    "permissions": FAST["permissions"],
    "requesters": {"users": [JIT_USER]},
}


def test_a_grant_in_a_member_account_is_made_there_and_assumed_by_the_broker_itself(
    hub: Stack, call: Any
) -> None:
    _policy(hub, member=MEMBER_PROFILE)
    status, _, body = call("POST", "/v1/grants", grant_body(profile="member"))
    assert status == 201, body
    grant = body["grant"]
    assert grant["account"] == MEMBER_A
    assert grant["role_arn"] == f"arn:aws:iam::{MEMBER_A}:role{ROLE_PATH}jit-{grant['id']}"
    member = _member_calls(hub)
    [create] = member.named("CreateRole")
    assert create["PermissionsBoundary"] == hub.seeded.boundary_arn.replace(ACCOUNT, MEMBER_A)
    assert "CreateRole" not in hub.calls.operations()  # nothing written in the hub's IAM
    # the execution role is assumed only for IAM; the grant role by the broker's own client
    assumed = [p["RoleArn"] for p in hub.calls.named("AssumeRole")]
    assert assumed == [
        f"arn:aws:iam::{MEMBER_A}:role/{MEMBER_ROLE}",
        grant["role_arn"],
    ]
    assert "AssumeRole" not in member.operations()
    revoked = call("POST", f"/v1/grants/{grant['id']}/revoke", {})
    assert revoked[0] == 200
    assert "DeleteRole" in member.operations()


def test_a_profile_in_several_accounts_needs_one_named(hub: Stack, call: Any) -> None:
    _policy(hub, multi={**MEMBER_PROFILE, "accounts": [MEMBER_A, MEMBER_B]})
    status, _, body = call("POST", "/v1/grants", grant_body(profile="multi"))
    assert status == 400
    assert MEMBER_A in body["error"]["message"] and MEMBER_B in body["error"]["message"]
    status, _, body = call("POST", "/v1/grants", grant_body(profile="multi", account=ACCOUNT))
    assert status == 400 and "does not grant access in account" in body["error"]["message"]
    assert hub.grant_items() == []
    status, _, body = call("POST", "/v1/grants", grant_body(profile="multi", account=MEMBER_B))
    assert status == 201 and body["grant"]["account"] == MEMBER_B
    profiles = call("GET", "/v1/profiles")[2]["profiles"]
    assert {p["name"]: p["accounts"] for p in profiles}["multi"] == [MEMBER_A, MEMBER_B]


def test_a_profile_naming_an_account_the_stack_cannot_reach_does_not_load(
    hub: Stack, call: Any
) -> None:
    _policy(hub, member={**MEMBER_PROFILE, "accounts": ["999999999999"]})
    status, _, body = call("POST", "/v1/grants", grant_body(profile="s3-read"))
    assert status == 503 and body["error"]["code"] == "policy_unavailable"
    assert hub.grant_items() == []
    from jit_broker.errors import PolicyInvalid

    with pytest.raises(PolicyInvalid) as raised:  # what the broker logs for its administrators
        hub.broker._policy()
    assert raised.value.errors == [
        "profiles.member.accounts.0: 999999999999 is not one of this stack's accounts: add it "
        "to the stack's MemberAccountIds parameter and deploy the member template there, or "
        "remove it from the profile"
    ]


def test_an_unreachable_member_fails_the_grant_cleanly(hub: Stack, call: Any) -> None:
    from jit_broker.errors import AccountUnreachable

    def unreachable(account: str) -> Any:
        raise AccountUnreachable(f"account {account} cannot be reached")

    hub.broker._member_iam = unreachable
    _policy(hub, member=MEMBER_PROFILE)
    status, _, body = call("POST", "/v1/grants", grant_body(profile="member"))
    assert status == 503 and body["error"]["code"] == "account_unreachable"
    [item] = hub.grant_items()
    assert item["status"]["S"] == "failed"
    assert "AssumeRole" not in hub.calls.operations()


def test_a_shared_role_session_is_refused_on_every_route(hub: Stack, call: Any) -> None:
    """Threat 27 for shared roles: a session of jit-s-<profile> is one of the broker's own,
    in the hub or in a member account, and mints nothing."""
    from tests.integration.test_attack_findings import MINTING, routes

    _policy(hub, fast=FAST)
    status, _, first = call("POST", "/v1/grants", grant_body(profile="fast"))
    assert status == 201, first
    gid = first["grant"]["id"]
    hub.calls.clear()
    for account in (ACCOUNT, MEMBER_A):
        session = f"arn:aws:sts::{account}:assumed-role/jit-s-fast/jit-JITUser"
        for method, path, body in routes(gid):
            status, _, answer = call(method, path, body, user_arn=session)
            assert (status, answer["error"]["code"]) == (403, "broker_session_refused"), path
    assert [op for op in hub.calls.operations() if op in MINTING] == []


def test_a_replayed_or_over_the_rate_shared_grant_request_never_reaches_sts(
    hub: Stack, call: Any
) -> None:
    """A shared-role grant is written after its AssumeRole, so the nonce and the rate are
    read first: a replay (same nonce) or a request past the minute's limit stops there."""
    document = yaml.safe_load(EXAMPLE_POLICY.read_text())
    document["profiles"]["fast"] = FAST
    document["limits"]["requests_per_minute"] = 2
    hub.policy_file.write_text(yaml.safe_dump(document))
    body = grant_body(profile="fast")
    assert call("POST", "/v1/grants", body)[0] == 201
    hub.calls.clear()
    status, _, answer = call("POST", "/v1/grants", body)
    assert (status, answer["error"]["code"]) == (409, "replayed_request")
    assert "AssumeRole" not in hub.calls.operations()
    assert call("POST", "/v1/grants", grant_body(profile="fast"))[0] == 201
    hub.calls.clear()
    status, _, answer = call("POST", "/v1/grants", grant_body(profile="fast"))
    assert (status, answer["error"]["code"]) == (429, "too_many_requests")
    assert "AssumeRole" not in hub.calls.operations()
    assert len(hub.grant_items()) == 2
