"""The local stack's three accounts (issue 9), through the running stack: the hub and two
member accounts apart in the embedded AWS (moto keeps them apart by the credentials' account),
each member holding the member template's resources as the template makes them; a grant of
team-data-read names a member, its role is made there (through that member's execution role)
and assumed directly by the hub broker's role, and its session acts in that account only: the
other member's bucket is refused although the profile's statements name it too. Every call to
the broker is a SigV4-signed request through the local gateway; every AWS call a signed request
judged by the local IAM evaluator."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jit_local.seed import (
    ACCOUNT_ID,
    BOUNDARY_NAME,
    BROKER_ROLE_NAME,
    MEMBER_ACCOUNTS,
    MEMBER_ROLE_NAME,
    OWNER_TAG,
    ROLE_PATH,
    member_stack,
)
from jit_local.server import ADMIN, LocalStack

TEAM = "TeamUser"
PROFILE = "team-data-read"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(port=0, audit_interval=0) as running:
        yield running


@pytest.fixture(autouse=True)
def _stack_endpoint(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process broker, like a Lambda environment, makes its clients in a member account
    when it first reaches it, from the environment (AWS_ENDPOINT_URL, as the stack set it);
    tests/conftest.py's autouse fixture removes that variable before every test."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.aws_url)


def nonce() -> str:
    return "n-" + uuid.uuid4().hex


def request_grant(stack: LocalStack, **fields: Any) -> tuple[int, Any]:
    body = {"profile": PROFILE, "reason": "Check the export", "nonce": nonce(), **fields}
    return stack.call("POST", "/v1/grants", body, user=TEAM)


def session_client(stack: LocalStack, service: str, credentials: dict[str, str]) -> Any:
    key = (credentials["access_key_id"], credentials["secret_access_key"])
    return stack.client(service, key, credentials["session_token"])


def code_of(call: Any) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return str(info.value.response["Error"]["Code"])


def other(account: str) -> str:
    return next(a for a in MEMBER_ACCOUNTS if a != account)


@pytest.fixture
def member_grant(stack: LocalStack, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A grant of team-data-read in the member account the test is parametrized with,
    revoked afterwards (the profile allows two active grants)."""
    account = request.param
    mark = len(stack.trail)
    status, body = request_grant(stack, account=account)
    assert status == 201, body
    body["trail"] = list(stack.trail)[mark:]
    yield body
    stack.call("POST", f"/v1/grants/{body['grant']['id']}/revoke", {}, user=TEAM)


# --------------------------------------------------------------------------- three accounts


def test_the_env_file_lists_the_two_member_accounts(stack: LocalStack) -> None:
    assert stack.exports()["JIT_MEMBER_ACCOUNTS"] == ",".join(MEMBER_ACCOUNTS)
    assert len({ACCOUNT_ID, *MEMBER_ACCOUNTS}) == 3


@pytest.mark.parametrize("account", MEMBER_ACCOUNTS)
def test_each_member_holds_the_member_templates_boundary_and_execution_role(
    stack: LocalStack, account: str
) -> None:
    template = member_stack(account)
    iam = stack.member_client("iam", account)
    assert stack.member_client("sts", account).get_caller_identity()["Account"] == account
    role = iam.get_role(RoleName=MEMBER_ROLE_NAME)["Role"]
    assert role["Arn"] == template.get_att("MemberExecutionRole", "Arn")
    assert role["Arn"] == f"arn:aws:iam::{account}:role/{OWNER_TAG}-jit-member"
    assert (
        role["AssumeRolePolicyDocument"]
        == template.properties("MemberExecutionRole")["AssumeRolePolicyDocument"]
    )
    trusted = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"]
    assert trusted == [
        f"arn:aws:iam::{ACCOUNT_ID}:role/{BROKER_ROLE_NAME}",
        f"arn:aws:iam::{ACCOUNT_ID}:role/{OWNER_TAG}-CleanupRole",
    ]
    held = {
        name: iam.get_role_policy(RoleName=MEMBER_ROLE_NAME, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=MEMBER_ROLE_NAME)["PolicyNames"]
    }
    assert held == template.inline_policies("MemberExecutionRole")
    boundary = f"arn:aws:iam::{account}:policy/{BOUNDARY_NAME}"
    assert boundary == template.ref("JitRoleBoundary")
    document = iam.get_policy_version(PolicyArn=boundary, VersionId="v1")["PolicyVersion"]
    assert document["Document"] == template.policy_document("JitRoleBoundary")
    buckets = stack.member_client("s3", account).list_buckets()["Buckets"]
    assert [b["Name"] for b in buckets] == [f"team-data-{account}"]


def test_the_hub_holds_none_of_the_members_roles_and_the_members_none_of_the_hubs(
    stack: LocalStack,
) -> None:
    hub = {r["RoleName"] for r in stack.client("iam", stack.keys[ADMIN]).list_roles()["Roles"]}
    assert BROKER_ROLE_NAME in hub and MEMBER_ROLE_NAME not in hub
    for account in MEMBER_ACCOUNTS:
        member = {r["RoleName"] for r in stack.member_client("iam", account).list_roles()["Roles"]}
        assert MEMBER_ROLE_NAME in member and BROKER_ROLE_NAME not in member


# --------------------------------------------------------------------------- member grants


@pytest.mark.parametrize("member_grant", MEMBER_ACCOUNTS, indirect=True)
def test_a_member_grants_role_is_made_in_that_account_with_its_boundary(
    stack: LocalStack, member_grant: dict[str, Any]
) -> None:
    grant = member_grant["grant"]
    account = grant["account"]
    name = grant["role_arn"].rsplit("/", 1)[1]
    assert grant["role_arn"] == f"arn:aws:iam::{account}:role{ROLE_PATH}{name}"
    assert grant["mode"] == "per-grant-role"
    role = stack.member_client("iam", account).get_role(RoleName=name)["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == (
        f"arn:aws:iam::{account}:policy/{BOUNDARY_NAME}"
    )
    assert {"Key": "jit:owner", "Value": OWNER_TAG} in role["Tags"]
    for elsewhere in (other(account),):
        iam = stack.member_client("iam", elsewhere)
        assert code_of(lambda iam=iam: iam.get_role(RoleName=name)) == "NoSuchEntity"
    hub = stack.client("iam", stack.keys[ADMIN])
    assert code_of(lambda: hub.get_role(RoleName=name)) == "NoSuchEntity"


@pytest.mark.parametrize("member_grant", MEMBER_ACCOUNTS, indirect=True)
def test_a_member_grant_is_written_through_the_execution_role_and_assumed_by_the_broker(
    member_grant: dict[str, Any],
) -> None:
    grant, trail = member_grant["grant"], member_grant["trail"]
    account = grant["account"]
    writes = [e for e in trail if e["eventSource"] == "iam.amazonaws.com" and not e["readOnly"]]
    assert writes and {e["recipientAccountId"] for e in writes} == {account}
    assert {e["userIdentity"]["sessionIssuer"] for e in writes} == {
        f"arn:aws:iam::{account}:role/{MEMBER_ROLE_NAME}"
    }
    assumed = [e for e in trail if e["eventName"] == "AssumeRole"]
    by_target = {e["requestParameters"]["roleArn"]: e for e in assumed}
    broker_role = f"arn:aws:iam::{ACCOUNT_ID}:role/{BROKER_ROLE_NAME}"
    assert by_target[grant["role_arn"]]["userIdentity"]["sessionIssuer"] == broker_role
    assert by_target[grant["role_arn"]]["requestParameters"]["sourceIdentity"] == TEAM


@pytest.mark.parametrize("member_grant", MEMBER_ACCOUNTS, indirect=True)
def test_a_member_grants_session_reads_its_accounts_bucket_and_is_refused_the_others(
    stack: LocalStack, member_grant: dict[str, Any]
) -> None:
    account = member_grant["grant"]["account"]
    credentials = member_grant["credentials"]
    identity = session_client(stack, "sts", credentials).get_caller_identity()
    assert identity["Account"] == account
    s3 = session_client(stack, "s3", credentials)
    own, others = f"team-data-{account}", f"team-data-{other(account)}"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=own)["Contents"]] == ["README.txt"]
    assert s3.get_object(Bucket=own, Key="README.txt")["Body"].read().startswith(b"Team data")
    # The profile's statements name team-data-*: only the account keeps the other bucket out.
    assert code_of(lambda: s3.list_objects_v2(Bucket=others)) == "AccessDenied"
    assert code_of(lambda: s3.get_object(Bucket=others, Key="README.txt")) == "AccessDenied"
    assert code_of(lambda: s3.list_objects_v2(Bucket="example-bucket")) == "AccessDenied"


def test_a_profile_of_two_accounts_is_granted_in_one_named_account_only(
    stack: LocalStack,
) -> None:
    status, body = request_grant(stack)
    assert status == 400 and all(a in body["error"]["message"] for a in MEMBER_ACCOUNTS)
    status, body = request_grant(stack, account=ACCOUNT_ID)
    assert status == 400 and all(a in body["error"]["message"] for a in MEMBER_ACCOUNTS)


def test_revoking_a_member_grant_removes_its_role_there_and_refuses_its_credentials(
    stack: LocalStack,
) -> None:
    account = MEMBER_ACCOUNTS[0]
    status, body = request_grant(stack, account=account)
    assert status == 201, body
    grant = body["grant"]
    s3 = session_client(stack, "s3", body["credentials"])
    assert s3.list_objects_v2(Bucket=f"team-data-{account}")["KeyCount"] == 1

    status, revoked = stack.call("POST", f"/v1/grants/{grant['id']}/revoke", {}, user=TEAM)
    assert status == 200 and revoked["grant"]["status"] == "revoked"
    assert code_of(lambda: s3.list_objects_v2(Bucket=f"team-data-{account}")) == "AccessDenied"
    left = stack.member_client("iam", account).list_roles(PathPrefix=ROLE_PATH)["Roles"]
    assert grant["role_arn"] not in [r["Arn"] for r in left]
