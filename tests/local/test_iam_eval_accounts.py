"""jit_local.iam_eval across accounts: what the hub's broker does in member accounts is judged as
AWS judges cross-account requests, on a real in-process moto server (127.0.0.1) with IAM
enforcement on, two accounts of its own (moto keeps accounts apart by the credentials' account).

* sts:AssumeRole of a role in another account needs the caller's identity policy (with
  ``aws:ResourceAccount``, the role's account, as AWS sets it) AND the role's trust policy;
* a session acts in its own account only: a bucket of another account (bucket names are global,
  and moto serves any account's bucket to anyone) needs its bucket policy to let the caller in;
* an account named in moto's ``x-moto-account-id`` header does not move a caller's key there;
* the observer hears of allowed requests only, with names and ARNs, never a secret.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.server import ThreadedMotoServer

from jit_local import iam_eval

# Accounts of this module only (moto's backends are per process, shared by every server).
HUB = "444455556666"
MEMBER = "777788889999"
REGION = "us-east-1"
HUB_BUCKET = "iam-eval-accounts-hub"
MEMBER_BUCKET = "iam-eval-accounts-member"
BROKER_ROLE_ARN = f"arn:aws:iam::{HUB}:role/broker"
BROKER_CALLER_ARN = f"arn:aws:iam::{HUB}:user/broker-caller"
GRANT_ROLE_ARN = f"arn:aws:iam::{MEMBER}:role/jit/grant"
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})
DENIED = {"AccessDenied", "AccessDeniedException"}

ALL_S3 = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume_in(accounts: list[str], resource: str = "arn:aws:iam::*:role/jit/*") -> dict[str, Any]:
    """The hub broker's statement for member roles (template.yaml's AssumeMemberJitRoles)."""
    return {
        "Effect": "Allow",
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
        "Resource": resource,
        "Condition": {"StringEquals": {"aws:ResourceAccount": accounts}},
    }


def trusting(principal: str) -> str:
    return policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
        }
    )


def error_code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return str(info.value.response["Error"]["Code"])


@dataclass(frozen=True)
class Creds:
    key: str
    secret: str
    token: str | None = None


@dataclass
class Stack:
    url: str
    broker_caller: Creds

    def client(self, service: str, creds: Creds) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=creds.key,
            aws_secret_access_key=creds.secret,
            aws_session_token=creds.token,
            config=NO_RETRY,
        )

    def assume(self, creds: Creds, role_arn: str, session: str = "s1") -> Creds:
        c = self.client("sts", creds).assume_role(RoleArn=role_arn, RoleSessionName=session)
        answer = c["Credentials"]
        return Creds(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])

    def broker(self) -> Creds:
        return self.assume(self.broker_caller, BROKER_ROLE_ARN, "broker")


def _seed_client(url: str, service: str, account: str) -> Any:
    """While enforcement is off: a client acting in ``account`` (moto's account header)."""
    client = boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="seed",
        aws_secret_access_key="seed",
    )

    def in_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    client.meta.events.register("before-sign", in_account)
    return client


def _seed(url: str) -> Creds:
    hub_iam = _seed_client(url, "iam", HUB)
    hub_iam.create_user(UserName="broker-caller")
    hub_iam.put_user_policy(
        UserName="broker-caller",
        PolicyName="access",
        PolicyDocument=policy(
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": BROKER_ROLE_ARN}
        ),
    )
    key = hub_iam.create_access_key(UserName="broker-caller")["AccessKey"]
    hub_iam.create_role(
        RoleName="broker",
        AssumeRolePolicyDocument=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": BROKER_CALLER_ARN},
                "Action": "sts:AssumeRole",
            }
        ),
    )
    member_iam = _seed_client(url, "iam", MEMBER)
    member_iam.create_role(
        RoleName="grant", Path="/jit/", AssumeRolePolicyDocument=trusting(BROKER_ROLE_ARN)
    )
    member_iam.put_role_policy(RoleName="grant", PolicyName="access", PolicyDocument=policy(ALL_S3))
    member_iam.create_role(
        RoleName="stranger",
        Path="/jit/",
        AssumeRolePolicyDocument=trusting(f"arn:aws:iam::{HUB}:role/someone-else"),
    )
    for account, bucket in ((HUB, HUB_BUCKET), (MEMBER, MEMBER_BUCKET)):
        s3 = _seed_client(url, "s3", account)
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="data.csv", Body=b"a,b\n")
    return Creds(key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """One moto server for the module; what it changes in this process is put back after."""
    was_installed, previous_clock = iam_eval.is_installed(), iam_eval.get_clock()
    saved = (settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count)
    server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    server.start()
    try:
        iam_eval.install(time.time)
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
        ActionAuthenticatorMixin.request_count = 0
        broker_caller = _seed(url)
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        yield Stack(url, broker_caller)
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = saved
        iam_eval.set_observer(None)
        server.stop()
        iam_eval.set_clock(previous_clock)
        if not was_installed:
            iam_eval.uninstall()


def _broker_policy(stack: Stack, *statements: dict[str, Any]) -> None:
    """The hub broker role's one inline policy, replaced (as the hub's administrator)."""
    iam = _seed_client(stack.url, "iam", HUB)
    saved = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    ActionAuthenticatorMixin.request_count = 0
    try:
        iam.put_role_policy(
            RoleName="broker", PolicyName="access", PolicyDocument=policy(*statements)
        )
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = saved


# --------------------------------------------------------------------------- sts:AssumeRole


def test_assume_of_a_member_role_needs_the_member_among_the_resource_accounts(stack: Stack) -> None:
    _broker_policy(stack, assume_in([MEMBER]))
    grant = stack.assume(stack.broker(), GRANT_ROLE_ARN)
    assert stack.client("sts", grant).get_caller_identity()["Account"] == MEMBER

    _broker_policy(stack, assume_in([HUB]))  # the member is not one of its accounts
    assert error_code(lambda: stack.assume(stack.broker(), GRANT_ROLE_ARN)) in DENIED


def test_assume_of_a_member_role_needs_the_roles_trust_as_well(stack: Stack) -> None:
    _broker_policy(stack, assume_in([MEMBER]))
    stranger = f"arn:aws:iam::{MEMBER}:role/jit/stranger"  # trusts another hub role
    assert error_code(lambda: stack.assume(stack.broker(), stranger)) in DENIED


def test_assume_of_a_member_role_needs_the_callers_own_policy_as_well(stack: Stack) -> None:
    # The role trusts the broker; a broker allowed nothing in other accounts is still refused.
    _broker_policy(stack, assume_in([MEMBER], resource=f"arn:aws:iam::{HUB}:role/jit/*"))
    assert error_code(lambda: stack.assume(stack.broker(), GRANT_ROLE_ARN)) in DENIED


# --------------------------------------------------------------------------- one account only


@pytest.fixture
def member_session(stack: Stack) -> Creds:
    """A session of the member's role, allowed s3:* on every resource by its own policy."""
    _broker_policy(stack, assume_in([MEMBER]))
    return stack.assume(stack.broker(), GRANT_ROLE_ARN)


def test_a_member_session_reads_its_accounts_bucket_and_not_another_accounts(
    stack: Stack, member_session: Creds
) -> None:
    s3 = stack.client("s3", member_session)
    assert s3.list_objects_v2(Bucket=MEMBER_BUCKET)["KeyCount"] == 1
    assert s3.get_object(Bucket=MEMBER_BUCKET, Key="data.csv")["Body"].read() == b"a,b\n"
    # Its own policy allows s3:* on "*": the hub's bucket is refused for being another account's.
    assert error_code(lambda: s3.list_objects_v2(Bucket=HUB_BUCKET)) in DENIED
    assert error_code(lambda: s3.get_object(Bucket=HUB_BUCKET, Key="data.csv")) in DENIED
    assert error_code(lambda: s3.put_object(Bucket=HUB_BUCKET, Key="x", Body=b"")) in DENIED


def test_a_bucket_policy_letting_the_member_in_opens_the_other_accounts_bucket(
    stack: Stack, member_session: Creds
) -> None:
    s3 = stack.client("s3", member_session)
    hub_s3 = _seed_client(stack.url, "s3", HUB)
    settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    ActionAuthenticatorMixin.request_count = 0
    try:
        hub_s3.put_bucket_policy(
            Bucket=HUB_BUCKET,
            Policy=policy(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": GRANT_ROLE_ARN},
                    "Action": "s3:ListBucket",
                    "Resource": f"arn:aws:s3:::{HUB_BUCKET}",
                }
            ),
        )
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    try:
        assert s3.list_objects_v2(Bucket=HUB_BUCKET)["KeyCount"] == 1
        # What the bucket policy does not grant stays refused, whatever the caller's own says.
        assert error_code(lambda: s3.get_object(Bucket=HUB_BUCKET, Key="data.csv")) in DENIED
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
        ActionAuthenticatorMixin.request_count = 0
        try:
            hub_s3.delete_bucket_policy(Bucket=HUB_BUCKET)
        finally:
            settings.INITIAL_NO_AUTH_ACTION_COUNT = 0


def test_an_account_named_in_motos_header_does_not_move_a_session_there(
    stack: Stack, member_session: Creds
) -> None:
    s3 = stack.client("s3", member_session)

    def into_the_hub(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = HUB

    s3.meta.events.register("before-sign", into_the_hub)
    code = error_code(lambda: s3.list_objects_v2(Bucket=HUB_BUCKET))
    assert code in DENIED | {"InvalidAccessKeyId", "InvalidToken"}


# --------------------------------------------------------------------------- the observer


def test_the_observer_hears_of_allowed_requests_only_and_of_no_secret(stack: Stack) -> None:
    heard: list[iam_eval.AllowedCall] = []
    _broker_policy(stack, assume_in([MEMBER]))
    broker = stack.broker()
    iam_eval.set_observer(heard.append)
    try:
        grant = stack.assume(broker, GRANT_ROLE_ARN, "alice")
        stranger = f"arn:aws:iam::{MEMBER}:role/jit/stranger"
        error_code(lambda: stack.assume(broker, stranger))
    finally:
        iam_eval.set_observer(None)
    assert [(c.action, c.account, c.parameters) for c in heard] == [
        ("sts:AssumeRole", HUB, {"RoleArn": GRANT_ROLE_ARN, "RoleSessionName": "alice"})
    ]
    assert heard[0].caller_arn == f"arn:aws:sts::{HUB}:assumed-role/broker/broker"
    assert heard[0].caller_principal_arn == BROKER_ROLE_ARN
    text = repr(heard)
    for secret in (broker.secret, broker.token or "", grant.secret, grant.token or ""):
        assert secret not in text


def test_a_failing_observer_does_not_fail_the_request(stack: Stack) -> None:
    def broken(_: iam_eval.AllowedCall) -> None:
        raise RuntimeError("observer down")

    _broker_policy(stack, assume_in([MEMBER]))
    iam_eval.set_observer(broken)
    try:
        grant = stack.assume(stack.broker(), GRANT_ROLE_ARN)
    finally:
        iam_eval.set_observer(None)
    assert stack.client("sts", grant).get_caller_identity()["Account"] == MEMBER
