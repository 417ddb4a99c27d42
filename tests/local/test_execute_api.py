"""Callers need execute-api:Invoke (issue 8, defect 9): after verifying the signature, the local
gateway asks the embedded IAM, as API Gateway's AWS_IAM authorization does, whether the
caller's identity-based policies allow execute-api:Invoke on
arn:aws:execute-api:REGION:ACCOUNT:API-ID/STAGE/METHOD/PATH; if not, 403 with API Gateway's
message and the handler is never called. The example stack gives its users exactly that."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto import mock_aws

from jit_local.credentials import moto_key_lookup
from jit_local.execute_api import moto_identity_policies
from jit_local.gateway import LOCAL_API_ID, LocalGateway
from jit_local.server import EXAMPLE_POLICY, LocalStack

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
REGION = "us-east-1"
API = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{LOCAL_API_ID}"
MASKED_API = f"arn:aws:execute-api:{REGION}:********9012:{LOCAL_API_ID}"


def invoke(resource: str = f"{API}/*", effect: str = "Allow") -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": effect, "Action": "execute-api:Invoke", "Resource": resource}],
    }


@dataclass
class Spy:
    """A Lambda handler that records its calls and answers 200."""

    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.calls.append(event)
        return {"statusCode": 200, "headers": {}, "body": '{"ok":true}'}


@dataclass
class Answer:
    status: int
    error_type: str | None
    body: Any


def send(url: str, creds: Credentials, method: str = "GET", path: str = "/v1/whoami") -> Answer:
    data = b"{}" if method == "POST" else None
    headers = {"content-type": "application/json"} if data else {}
    request = AWSRequest(method=method, url=url + path, data=data, headers=headers)
    SigV4Auth(creds, "execute-api", REGION).add_auth(request)
    sent = urllib.request.Request(
        request.url, data=data, headers=dict(request.headers.items()), method=method
    )
    try:
        with urllib.request.urlopen(sent, timeout=30) as response:
            return Answer(response.status, None, json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.headers.get("x-amzn-ErrorType"), json.loads(exc.read()))


@dataclass
class World:
    iam: Any
    gateway: LocalGateway
    spy: Spy

    def user(self, name: str, *policies: dict[str, Any], iam: Any = None) -> Credentials:
        iam = iam or self.iam
        iam.create_user(UserName=name)
        for i, document in enumerate(policies):
            iam.put_user_policy(
                UserName=name, PolicyName=f"p{i}", PolicyDocument=json.dumps(document)
            )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    def call(self, creds: Credentials, method: str = "GET", path: str = "/v1/whoami") -> Answer:
        return send(self.gateway.url, creds, method, path)


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        spy = Spy()
        gateway = LocalGateway(
            spy,
            moto_key_lookup(ACCOUNT),
            region=REGION,
            api_account_id=ACCOUNT,
            identity_policies=moto_identity_policies(),
        )
        with gateway:
            yield World(boto3.client("iam", region_name=REGION), gateway, spy)


def denial(caller_arn: str, method: str, path: str, explicit: bool = False) -> dict[str, str]:
    message = (
        f"User: {caller_arn} is not authorized to perform: execute-api:Invoke on resource: "
        f"{MASKED_API}/local/{method}/{path.lstrip('/')}"
    )
    return {"Message": message + (" with an explicit deny" if explicit else "")}


# ---------------------------------------------------------------- the gateway


def test_a_user_without_execute_api_invoke_gets_api_gateways_403_and_no_invocation(
    world: World,
) -> None:
    creds = world.user("NoInvoke")

    answer = world.call(creds)

    assert (answer.status, answer.error_type) == (403, "AccessDeniedException")
    assert answer.body == denial(f"arn:aws:iam::{ACCOUNT}:user/NoInvoke", "GET", "/v1/whoami")
    assert world.spy.calls == []


def test_a_user_allowed_execute_api_invoke_reaches_the_handler(world: World) -> None:
    creds = world.user("Invoker", invoke())

    answer = world.call(creds)

    assert (answer.status, answer.body) == (200, {"ok": True})
    assert len(world.spy.calls) == 1


def test_the_permission_is_judged_per_method_and_path(world: World) -> None:
    creds = world.user("WhoamiOnly", invoke(f"{API}/local/GET/v1/whoami"))

    assert world.call(creds).status == 200
    refused = world.call(creds, "POST", "/v1/grants")

    assert refused.status == 403
    assert refused.body == denial(f"arn:aws:iam::{ACCOUNT}:user/WhoamiOnly", "POST", "/v1/grants")
    assert len(world.spy.calls) == 1


def test_invoke_allowed_on_another_api_only_is_refused(world: World) -> None:
    creds = world.user("ElsewhereOnly", invoke(f"arn:aws:execute-api:{REGION}:{ACCOUNT}:other/*"))

    assert world.call(creds).status == 403
    assert world.spy.calls == []


def test_an_explicit_deny_wins_over_an_allow_and_says_so(world: World) -> None:
    creds = world.user("Denied", invoke(), invoke(effect="Deny"))

    answer = world.call(creds)

    assert answer.status == 403
    assert answer.body == denial(
        f"arn:aws:iam::{ACCOUNT}:user/Denied", "GET", "/v1/whoami", explicit=True
    )
    assert world.spy.calls == []


def test_a_group_policy_allows_as_iam_does(world: World) -> None:
    world.iam.create_group(GroupName="engineers")
    world.iam.put_group_policy(
        GroupName="engineers", PolicyName="invoke", PolicyDocument=json.dumps(invoke())
    )
    creds = world.user("Grouped")
    world.iam.add_user_to_group(GroupName="engineers", UserName="Grouped")

    assert world.call(creds).status == 200


def test_a_role_session_needs_it_from_its_role_and_its_boundary(world: World) -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    boundary = world.iam.create_policy(
        PolicyName="no-api",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": f"{API}/*"},
                ],
            }
        ),
    )["Policy"]["Arn"]
    sts = boto3.client("sts", region_name=REGION)
    sessions = {}
    for name, extra in (("free", {}), ("bounded", {"PermissionsBoundary": boundary})):
        role = world.iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), **extra
        )["Role"]
        world.iam.put_role_policy(
            RoleName=name, PolicyName="invoke", PolicyDocument=json.dumps(invoke())
        )
        issued = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="alice")["Credentials"]
        sessions[name] = Credentials(
            issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"]
        )

    assert world.call(sessions["free"]).status == 200
    refused = world.call(sessions["bounded"])
    assert refused.status == 403
    assert refused.body == denial(
        f"arn:aws:sts::{ACCOUNT}:assumed-role/bounded/alice", "GET", "/v1/whoami", explicit=True
    )
    assert len(world.spy.calls) == 1


def test_a_caller_of_another_account_is_refused_without_a_resource_policy(world: World) -> None:
    # Credentials of the other account (moto acts in a session's own account) make a user
    # there that its own IAM allows to invoke anything.
    sts = boto3.client("sts", region_name=REGION)
    issued = sts.assume_role(
        RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/admin", RoleSessionName="setup"
    )["Credentials"]
    other_iam = boto3.client(
        "iam",
        region_name=REGION,
        aws_access_key_id=issued["AccessKeyId"],
        aws_secret_access_key=issued["SecretAccessKey"],
        aws_session_token=issued["SessionToken"],
    )
    creds = world.user("Outsider", invoke("*"), iam=other_iam)
    verified = moto_key_lookup(ACCOUNT)(creds.access_key)
    assert verified is not None and verified.account_id == OTHER_ACCOUNT
    # its own policies allow it: what refuses it is API Gateway's rule for other accounts
    assert moto_identity_policies()(verified, "execute-api:Invoke", f"{API}/local/GET/x", {}) == (
        "allow"
    )

    answer = world.call(creds)

    assert answer.status == 403
    assert answer.body == denial(f"arn:aws:iam::{OTHER_ACCOUNT}:user/Outsider", "GET", "/v1/whoami")
    assert world.spy.calls == []


# ---------------------------------------------------------------- the example stack


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(port=0, policy_file=EXAMPLE_POLICY, audit_interval=0) as running:
        yield running


def test_the_example_users_hold_exactly_execute_api_invoke_on_the_local_api(
    stack: LocalStack,
) -> None:
    iam = stack.client("iam", stack.keys["JITAdmin"])
    for name in ("JITUser", "OtherUser"):
        names = iam.list_user_policies(UserName=name)["PolicyNames"]
        assert names == ["invoke-jit-api"], name
        document = iam.get_user_policy(UserName=name, PolicyName="invoke-jit-api")
        (statement,) = document["PolicyDocument"]["Statement"]
        assert statement == {
            "Sid": "InvokeJitApi",
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": f"{API}/*",
        }
        assert iam.list_attached_user_policies(UserName=name)["AttachedPolicies"] == []
        assert iam.list_groups_for_user(UserName=name)["Groups"] == []


def test_on_the_example_stack_jituser_is_served_and_a_user_without_invoke_is_not(
    stack: LocalStack,
) -> None:
    iam = stack.client("iam", stack.keys["JITAdmin"])
    iam.create_user(UserName="Newcomer")
    key = iam.create_access_key(UserName="Newcomer")["AccessKey"]

    assert stack.call("GET", "/v1/whoami")[0] == 200
    refused = send(stack.api_url, Credentials(key["AccessKeyId"], key["SecretAccessKey"]))

    assert (refused.status, refused.error_type) == (403, "AccessDeniedException")
    assert refused.body == denial(f"arn:aws:iam::{ACCOUNT}:user/Newcomer", "GET", "/v1/whoami")
