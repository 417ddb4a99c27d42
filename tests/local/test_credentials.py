"""moto_key_lookup finds IAM user keys and STS sessions in moto's in-process backends."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto import mock_aws

from jit_local.credentials import CallerKey, moto_key_lookup
from jit_local.gateway import LocalGateway

ACCOUNT = "123456789012"  # moto's default account
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


@pytest.fixture
def iam(aws: None) -> Any:
    return boto3.client("iam", region_name="us-east-1")


@pytest.fixture
def sts(aws: None) -> Any:
    return boto3.client("sts", region_name="us-east-1")


def test_user_access_key_is_found_with_the_user_identity(iam):
    user = iam.create_user(UserName="alice")["User"]
    key = iam.create_access_key(UserName="alice")["AccessKey"]

    found = moto_key_lookup()(key["AccessKeyId"])

    assert found == CallerKey(
        access_key_id=key["AccessKeyId"],
        secret_access_key=key["SecretAccessKey"],
        session_token=None,
        account_id=ACCOUNT,
        user_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        caller=user["UserId"],
        user=user["UserId"],
        expires_at=None,
    )


def test_assumed_role_session_is_found_with_the_session_identity(iam, sts):
    role = iam.create_role(RoleName="deployer", Path="/jit/", AssumeRolePolicyDocument=TRUST)
    role = role["Role"]
    issued = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="alice", DurationSeconds=900)
    creds = issued["Credentials"]

    found = moto_key_lookup()(creds["AccessKeyId"])

    assert found is not None
    assert found.access_key_id == creds["AccessKeyId"]
    assert found.secret_access_key == creds["SecretAccessKey"]
    assert found.session_token == creds["SessionToken"]
    assert found.account_id == ACCOUNT
    assert found.user_arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/alice"
    assert found.caller == found.user == f"{role['RoleId']}:alice"
    assert found.expires_at == pytest.approx(creds["Expiration"].timestamp(), abs=1)


def test_lookup_agrees_with_what_moto_sts_reports_for_the_same_keys(iam, sts):
    iam.create_user(UserName="alice")
    user_key = iam.create_access_key(UserName="alice")["AccessKey"]
    role = iam.create_role(RoleName="deployer", AssumeRolePolicyDocument=TRUST)["Role"]
    session = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s1")["Credentials"]
    lookup = moto_key_lookup()

    for key_id, secret, token in (
        (user_key["AccessKeyId"], user_key["SecretAccessKey"], None),
        (session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"]),
    ):
        who = boto3.client(
            "sts",
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=token,
        ).get_caller_identity()
        found = lookup(key_id)
        assert found is not None
        assert (found.caller, found.user_arn, found.account_id) == (
            who["UserId"],
            who["Arn"],
            who["Account"],
        )


def test_inactive_user_key_is_not_found(iam):
    iam.create_user(UserName="alice")
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    iam.update_access_key(UserName="alice", AccessKeyId=key["AccessKeyId"], Status="Inactive")

    assert moto_key_lookup()(key["AccessKeyId"]) is None


@pytest.mark.parametrize("key_id", ["AKIAUNKNOWN000000001", "ASIAUNKNOWN000000001", ""])
def test_unknown_key_is_not_found(iam, key_id):
    iam.create_user(UserName="alice")
    iam.create_access_key(UserName="alice")

    assert moto_key_lookup()(key_id) is None


def test_session_in_another_account_is_found_with_a_stable_caller(sts):
    # The role does not exist in moto: moto alone would invent a new role id each time.
    other_role = "arn:aws:iam::210987654321:role/auditor"
    creds = sts.assume_role(RoleArn=other_role, RoleSessionName="bob")["Credentials"]
    lookup = moto_key_lookup()

    first, second = lookup(creds["AccessKeyId"]), lookup(creds["AccessKeyId"])

    assert first is not None
    assert first == second
    assert first.account_id == "210987654321"
    assert first.user_arn == "arn:aws:sts::210987654321:assumed-role/auditor/bob"
    assert first.caller.startswith("AROA")
    assert first.caller.endswith(":bob")


def test_gateway_with_moto_lookup_accepts_a_moto_session_signature(iam, sts):
    role = iam.create_role(RoleName="deployer", AssumeRolePolicyDocument=TRUST)["Role"]
    creds = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="alice")["Credentials"]
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        events.append(event)
        return {"statusCode": 200, "body": "{}"}

    with LocalGateway(handler, moto_key_lookup()) as gateway:
        request = AWSRequest(method="GET", url=gateway.url + "/v1/whoami")
        signer_creds = Credentials(
            creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
        )
        SigV4Auth(signer_creds, "execute-api", "us-east-1").add_auth(request)
        prepared = request.prepare()
        outgoing = urllib.request.Request(prepared.url, headers=dict(prepared.headers.items()))
        with urllib.request.urlopen(outgoing, timeout=10) as response:
            status = response.status

    assert status == 200
    identity = events[0]["requestContext"]["identity"]
    assert identity["userArn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/alice"
    assert identity["caller"] == f"{role['RoleId']}:alice"
