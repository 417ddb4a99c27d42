"""jit_local.iam_eval: moto authorizes requests the way AWS does for the broker's documents.

The first half drives a real in-process moto server (127.0.0.1, a free port) with IAM
enforcement on and boto3 clients signing with access keys of IAM users created in it.
The second half checks the condition evaluator and policy matching as pure functions.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.server import ThreadedMotoServer

from jit_local import iam_eval
from jit_local.iam_eval import Decision, Principal, UnsupportedPolicyError

# A dedicated account keeps this module's users, roles, buckets and tables apart from any
# other moto state in the process (moto's backends are per process, not per server).
ACCOUNT = "111122223333"
# Bucket names are global in moto as in AWS: these are the module's "example-bucket" and
# "other-bucket".
EXAMPLE = "iam-eval-example-bucket"
OTHER = "iam-eval-other-bucket"
REGION = "us-east-1"
BROKER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/jit-broker"
BROKER_CALLER_ARN = f"arn:aws:iam::{ACCOUNT}:user/broker-caller"
HOPPER_ARN = f"arn:aws:iam::{ACCOUNT}:user/hopper"
BOUNDARY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/jit-boundary"
GRANT_ROLES = f"arn:aws:iam::{ACCOUNT}:role/jit/*"
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})
DENIED = {"AccessDenied", "AccessDeniedException"}
EXPIRED = {"ExpiredToken", "ExpiredTokenException"}

GRANT_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "BrokerOnly",
            "Effect": "Allow",
            "Principal": {"AWS": BROKER_ROLE_ARN},
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
            "Condition": {"StringLike": {"sts:SourceIdentity": "?*"}},
        }
    ],
}
GRANT_ACCESS = [
    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{EXAMPLE}"},
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{EXAMPLE}/*"},
]
BROKER_POLICY = [
    {
        "Sid": "AssumeGrantRoles",
        "Effect": "Allow",
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
        "Resource": GRANT_ROLES,
    },
    {
        "Sid": "WriteGrantRolesWithBoundary",
        "Effect": "Allow",
        "Action": ["iam:CreateRole", "iam:PutRolePolicy"],
        "Resource": GRANT_ROLES,
        "Condition": {"StringEquals": {"iam:PermissionsBoundary": BOUNDARY_ARN}},
    },
]
ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}
LIST_EXAMPLE = {
    "Effect": "Allow",
    "Action": "s3:ListBucket",
    "Resource": f"arn:aws:s3:::{EXAMPLE}",
}


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def trust(principal_arn: str, actions: list[str]) -> str:
    """A trust policy letting ``principal_arn`` do ``actions``, without conditions."""
    return policy({"Effect": "Allow", "Principal": {"AWS": principal_arn}, "Action": actions})


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return str(info.value.response["Error"]["Code"])


# --------------------------------------------------------------------------- the stack


class FakeClock:
    def __init__(self, start: float) -> None:
        self.start = start
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Creds:
    key: str
    secret: str
    token: str | None = None


@dataclass
class Stack:
    url: str
    clock: FakeClock
    admin: Creds  # an IAM user allowed everything
    broker_caller: Creds  # an IAM user allowed only to assume jit-broker
    hopper: Creds  # an IAM user allowed to assume any role that trusts it

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

    def user(self, name: str, *statements: dict[str, Any]) -> Creds:
        return _create_user(self.client("iam", self.admin), name, *statements)

    def role(
        self,
        name: str,
        trust_policy: str,
        *statements: dict[str, Any],
        path: str = "/",
        boundary: str | None = None,
    ) -> str:
        iam = self.client("iam", self.admin)
        extra = {"PermissionsBoundary": boundary} if boundary else {}
        arn = iam.create_role(
            RoleName=name, Path=path, AssumeRolePolicyDocument=trust_policy, **extra
        )["Role"]["Arn"]
        if statements:
            iam.put_role_policy(
                RoleName=name, PolicyName="access", PolicyDocument=policy(*statements)
            )
        return str(arn)

    def assume(self, creds: Creds, role_arn: str, session: str = "s1", **kwargs: Any) -> Creds:
        answer = self.client("sts", creds).assume_role(
            RoleArn=role_arn, RoleSessionName=session, **kwargs
        )["Credentials"]
        return Creds(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])

    def broker(self) -> Creds:
        """A session of jit-broker, as the broker Lambda has."""
        return self.assume(self.broker_caller, BROKER_ROLE_ARN, "broker")

    def grant_role(self, name: str, expiry: float) -> str:
        deny_after = {
            "Sid": "DenyAfterExpiry",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateGreaterThan": {"aws:CurrentTime": iso(expiry)}},
        }
        arn = self.role(
            name, json.dumps(GRANT_TRUST), *GRANT_ACCESS, path="/jit/", boundary=BOUNDARY_ARN
        )
        self.client("iam", self.admin).put_role_policy(
            RoleName=name, PolicyName="deny-after-expiry", PolicyDocument=policy(deny_after)
        )
        return arn


def _create_user(iam: Any, name: str, *statements: dict[str, Any]) -> Creds:
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="access", PolicyDocument=policy(*statements))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Creds(key["AccessKeyId"], key["SecretAccessKey"])


def _seed_client(url: str, service: str) -> Any:
    """A client for seeding: any signature passes while enforcement is off, as for root."""
    client = boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="seed",
        aws_secret_access_key="seed",
    )

    def in_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = ACCOUNT

    client.meta.events.register("before-sign", in_account)
    return client


def _seed(url: str) -> tuple[Creds, Creds, Creds]:
    """Runs with enforcement off. Later requests find the account from their access key."""
    iam = _seed_client(url, "iam")
    admin = _create_user(iam, "admin", ALLOW_ALL)
    caller = _create_user(
        iam,
        "broker-caller",
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": BROKER_ROLE_ARN},
    )
    hopper = _create_user(
        iam,
        "hopper",
        {
            "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
            "Resource": "*",
        },
    )
    iam.create_policy(
        PolicyName="jit-boundary",
        PolicyDocument=policy(
            {"Effect": "Allow", "Action": ["s3:*", "dynamodb:*"], "Resource": "*"}
        ),
    )
    iam.create_role(
        RoleName="jit-broker",
        AssumeRolePolicyDocument=trust(BROKER_CALLER_ARN, ["sts:AssumeRole"]),
    )
    iam.put_role_policy(
        RoleName="jit-broker", PolicyName="broker", PolicyDocument=policy(*BROKER_POLICY)
    )
    s3 = _seed_client(url, "s3")
    for bucket in (EXAMPLE, OTHER):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="report.csv", Body=b"a,b\n")
    dynamodb = _seed_client(url, "dynamodb")
    for table in ("grants", "other-table"):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "owner", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-owner",
                    "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    return admin, caller, hopper


@pytest.fixture(scope="module")
def _stack() -> Iterator[Stack]:
    """One moto server on 127.0.0.1 for the module; what it changes is put back after."""
    was_installed, previous_clock = iam_eval.is_installed(), iam_eval.get_clock()
    saved = (settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count)
    clock = FakeClock(time.time())
    server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    server.start()
    try:
        iam_eval.install(clock)
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
        ActionAuthenticatorMixin.request_count = 0
        admin, broker_caller, hopper = _seed(url)
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # from here on every request is authorized
        yield Stack(url, clock, admin, broker_caller, hopper)
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = saved
        server.stop()
        iam_eval.set_clock(previous_clock)
        if not was_installed:
            iam_eval.uninstall()


@pytest.fixture
def stack(_stack: Stack) -> Iterator[Stack]:
    """The module's stack, with its clock back at the start after each test."""
    yield _stack
    _stack.clock.now = _stack.clock.start


# --------------------------------------------------------------------------- 1. per-grant role


def test_grant_session_reads_example_bucket_until_expiry_then_is_denied_then_expired(
    stack: Stack,
) -> None:
    expiry = stack.clock.now + 300
    role_arn = stack.grant_role("jit-g-abc", expiry)
    assert role_arn == f"arn:aws:iam::{ACCOUNT}:role/jit/jit-g-abc"
    grant = stack.assume(
        stack.broker(), role_arn, "alice", SourceIdentity="alice", DurationSeconds=900
    )
    s3 = stack.client("s3", grant)

    assert s3.list_objects_v2(Bucket=EXAMPLE)["KeyCount"] == 1
    assert s3.get_object(Bucket=EXAMPLE, Key="report.csv")["Body"].read() == b"a,b\n"
    assert error_code(lambda: s3.put_object(Bucket=EXAMPLE, Key="x", Body=b"")) in DENIED
    assert error_code(lambda: s3.list_objects_v2(Bucket=OTHER)) in DENIED

    stack.clock.advance(301)  # past the grant's expiry, inside the session's 900 s
    assert error_code(lambda: s3.list_objects_v2(Bucket=EXAMPLE)) in DENIED
    assert error_code(lambda: s3.get_object(Bucket=EXAMPLE, Key="report.csv")) in DENIED

    stack.clock.advance(600)  # past the session's own Expiration
    assert error_code(lambda: s3.list_objects_v2(Bucket=EXAMPLE)) in EXPIRED
    assert error_code(lambda: stack.client("sts", grant).get_caller_identity()) in EXPIRED
    assert error_code(lambda: stack.client("dynamodb", grant).list_tables()) in EXPIRED


def test_assume_role_records_source_identity_tags_and_clock_times(stack: Stack) -> None:
    role_arn = stack.grant_role("jit-g-record", stack.clock.now + 3600)
    issued = stack.clock.now
    grant = stack.assume(
        stack.broker(),
        role_arn,
        "alice",
        SourceIdentity="alice@example.com",
        Tags=[{"Key": "grant-id", "Value": "g-record"}],
        DurationSeconds=1200,
    )
    info = iam_eval.session_context(grant.key)
    assert info is not None
    assert (info.role_arn, info.session_name) == (role_arn, "alice")
    assert info.source_identity == "alice@example.com"
    assert info.tags == {"grant-id": "g-record"}
    assert (info.issued_at, info.expires_at) == (issued, issued + 1200)
    assert iam_eval.session_context("ASIANOTISSUED0000000") is None


# --------------------------------------------------------------------------- 2. trust policies


def test_assume_without_source_identity_is_denied_by_the_trust_policy(stack: Stack) -> None:
    role_arn = stack.grant_role("jit-g-nosi", stack.clock.now + 3600)
    assert error_code(lambda: stack.assume(stack.broker(), role_arn, "alice")) in DENIED


def test_assume_with_source_identity_by_the_broker_is_allowed(stack: Stack) -> None:
    role_arn = stack.grant_role("jit-g-si", stack.clock.now + 3600)
    grant = stack.assume(stack.broker(), role_arn, "alice", SourceIdentity="alice")
    identity = stack.client("sts", grant).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/jit-g-si/alice"


def test_assume_by_a_principal_other_than_the_broker_role_is_denied(stack: Stack) -> None:
    role_arn = stack.grant_role("jit-g-other", stack.clock.now + 3600)
    impostor_arn = stack.role(
        "not-the-broker", trust(HOPPER_ARN, ["sts:AssumeRole"]), *BROKER_POLICY
    )
    impostor = stack.assume(stack.hopper, impostor_arn, "impostor")
    call = partial(stack.assume, impostor, role_arn, "alice", SourceIdentity="alice")
    assert error_code(call) in DENIED


def test_broker_policy_without_set_source_identity_is_denied_when_source_identity_is_sent(
    stack: Stack,
) -> None:
    lite_arn = stack.role(
        "jit-broker-lite",
        trust(HOPPER_ARN, ["sts:AssumeRole"]),
        {
            "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Resource": GRANT_ROLES,
        },
    )
    target = stack.role(
        "jit-g-lite",
        trust(lite_arn, ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]),
        path="/jit/",
    )
    lite = stack.assume(stack.hopper, lite_arn, "lite")
    stack.assume(lite, target, "alice")  # trust and identity allow sts:AssumeRole itself
    call = partial(stack.assume, lite, target, "alice", SourceIdentity="alice")
    assert error_code(call) in DENIED


def test_trust_policy_without_set_source_identity_denies_a_source_identity(stack: Stack) -> None:
    target = stack.role(
        "jit-g-trust-nosi", trust(BROKER_ROLE_ARN, ["sts:AssumeRole"]), path="/jit/"
    )
    broker = stack.broker()
    stack.assume(broker, target, "alice")
    call = partial(stack.assume, broker, target, "alice", SourceIdentity="alice")
    assert error_code(call) in DENIED


def test_session_tags_need_sts_tag_session_in_the_trust_policy(stack: Stack) -> None:
    target = stack.role(
        "jit-g-notag",
        trust(BROKER_ROLE_ARN, ["sts:AssumeRole", "sts:SetSourceIdentity"]),
        path="/jit/",
    )
    broker = stack.broker()
    stack.assume(broker, target, "alice", SourceIdentity="alice")
    tagged = [{"Key": "grant-id", "Value": "g-1"}]
    call = partial(stack.assume, broker, target, "alice", SourceIdentity="alice", Tags=tagged)
    assert error_code(call) in DENIED


def test_trusted_role_arn_with_a_path_matches_its_sessions(stack: Stack) -> None:
    expected_arn = f"arn:aws:iam::{ACCOUNT}:role/svc/caller-svc"
    caller_arn = stack.role(
        "caller-svc",
        trust(HOPPER_ARN, ["sts:AssumeRole"]),
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": GRANT_ROLES,
            # aws:PrincipalArn of a session is its role's ARN, path included
            "Condition": {"ArnEquals": {"aws:PrincipalArn": expected_arn}},
        },
        path="/svc/",
    )
    assert caller_arn == expected_arn
    target = stack.role("jit-g-path", trust(caller_arn, ["sts:AssumeRole"]), path="/jit/")
    session = stack.assume(stack.hopper, caller_arn, "svc")
    stack.assume(session, target, "chained")  # assumed-role/caller-svc/svc matches role/svc/...


def test_assume_of_a_role_that_does_not_exist_is_denied(stack: Stack) -> None:
    missing = f"arn:aws:iam::{ACCOUNT}:role/jit/jit-g-missing"
    call = partial(stack.assume, stack.broker(), missing, "alice", SourceIdentity="alice")
    assert error_code(call) in DENIED


def test_source_identity_persists_through_role_chaining_and_cannot_be_changed(
    stack: Stack,
) -> None:
    set_identity = ["sts:AssumeRole", "sts:SetSourceIdentity"]
    second = stack.role("si-chain-second", trust(f"arn:aws:iam::{ACCOUNT}:root", set_identity))
    first = stack.role(
        "si-chain-first",
        trust(HOPPER_ARN, set_identity),
        {"Effect": "Allow", "Action": set_identity, "Resource": second},
    )
    carol = stack.assume(stack.hopper, first, "carol", SourceIdentity="carol")
    changed = partial(stack.assume, carol, second, "chained", SourceIdentity="mallory")
    assert error_code(changed) in DENIED
    chained = stack.assume(carol, second, "chained")
    info = iam_eval.session_context(chained.key)
    assert info is not None
    assert info.source_identity == "carol"


def test_session_tags_become_principal_tags(stack: Stack) -> None:
    team_only = dict(LIST_EXAMPLE, Condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}})
    target = stack.role(
        "jit-g-team",
        trust(BROKER_ROLE_ARN, ["sts:AssumeRole", "sts:TagSession"]),
        team_only,
        path="/jit/",
    )
    broker = stack.broker()
    blue = stack.assume(broker, target, "blue", Tags=[{"Key": "team", "Value": "blue"}])
    red = stack.assume(broker, target, "red", Tags=[{"Key": "team", "Value": "red"}])
    stack.client("s3", blue).list_objects_v2(Bucket=EXAMPLE)
    assert error_code(lambda: stack.client("s3", red).list_objects_v2(Bucket=EXAMPLE)) in DENIED


def test_role_chaining_longer_than_an_hour_and_aws_prefixed_source_identity_are_rejected(
    stack: Stack,
) -> None:
    role_arn = stack.grant_role("jit-g-validate", stack.clock.now + 3600)
    broker = stack.broker()
    too_long = partial(
        stack.assume, broker, role_arn, "alice", SourceIdentity="alice", DurationSeconds=7200
    )
    reserved = partial(stack.assume, broker, role_arn, "alice", SourceIdentity="aws:alice")
    assert error_code(too_long) == "ValidationError"
    assert error_code(reserved) == "ValidationError"


# --------------------------------------------------------------------------- 3. CreateRole


def test_broker_creates_roles_only_under_jit_with_the_boundary(stack: Stack) -> None:
    iam = stack.client("iam", stack.broker())
    document = json.dumps(GRANT_TRUST)

    def create(name: str, path: str, **extra: Any) -> Any:
        return iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=document, **extra)

    created = create("jit-g-new", "/jit/", PermissionsBoundary=BOUNDARY_ARN)
    assert created["Role"]["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/jit/jit-g-new"
    assert error_code(lambda: create("jit-g-nobound", "/jit/")) in DENIED
    assert error_code(lambda: create("jit-g-root", "/", PermissionsBoundary=BOUNDARY_ARN)) in DENIED
    other_boundary = f"arn:aws:iam::{ACCOUNT}:policy/other"
    assert (
        error_code(lambda: create("jit-g-ob", "/jit/", PermissionsBoundary=other_boundary))
        in DENIED
    )


def test_put_role_policy_condition_sees_the_existing_roles_boundary(stack: Stack) -> None:
    stack.role("jit-g-bounded", json.dumps(GRANT_TRUST), path="/jit/", boundary=BOUNDARY_ARN)
    stack.role("jit-g-unbounded", json.dumps(GRANT_TRUST), path="/jit/")
    iam = stack.client("iam", stack.broker())

    def put(name: str) -> Any:
        return iam.put_role_policy(
            RoleName=name, PolicyName="p", PolicyDocument=policy(LIST_EXAMPLE)
        )

    put("jit-g-bounded")
    assert error_code(lambda: put("jit-g-unbounded")) in DENIED


def test_attach_role_policy_condition_sees_the_policy_arn(stack: Stack) -> None:
    stack.role("jit-g-attach", json.dumps(GRANT_TRUST), path="/jit/")
    admin = stack.client("iam", stack.admin)
    arns = [
        admin.create_policy(PolicyName=name, PolicyDocument=policy(LIST_EXAMPLE))["Policy"]["Arn"]
        for name in ("attachable", "not-attachable")
    ]
    creds = stack.user(
        "attacher",
        {
            "Effect": "Allow",
            "Action": "iam:AttachRolePolicy",
            "Resource": GRANT_ROLES,
            "Condition": {"ArnEquals": {"iam:PolicyARN": arns[0]}},
        },
    )
    iam = stack.client("iam", creds)
    iam.attach_role_policy(RoleName="jit-g-attach", PolicyArn=arns[0])
    call = partial(iam.attach_role_policy, RoleName="jit-g-attach", PolicyArn=arns[1])
    assert error_code(call) in DENIED


# --------------------------------------------------------------------------- 4. evaluation rules


def test_explicit_deny_wins_over_allow(stack: Stack) -> None:
    creds = stack.user(
        "deny-wins",
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{EXAMPLE}/*"},
    )
    s3 = stack.client("s3", creds)
    s3.list_objects_v2(Bucket=EXAMPLE)
    assert error_code(lambda: s3.get_object(Bucket=EXAMPLE, Key="report.csv")) in DENIED


def test_allow_with_false_condition_does_not_deny_other_allows(stack: Stack) -> None:
    someone_else = {"StringEquals": {"aws:username": "someone-else"}}
    creds = stack.user("false-allow", dict(LIST_EXAMPLE, Condition=someone_else), LIST_EXAMPLE)
    stack.client("s3", creds).list_objects_v2(Bucket=EXAMPLE)
    only_false = stack.user("only-false-allow", dict(LIST_EXAMPLE, Condition=someone_else))
    s3 = stack.client("s3", only_false)
    assert error_code(lambda: s3.list_objects_v2(Bucket=EXAMPLE)) in DENIED


def test_unknown_operator_fails_closed_for_allow_and_for_deny(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    # moto's policy validator lets an operator it does not know through only with no keys.
    fancy: dict[str, Any] = {"StringFancyEquals": {}}
    allow_only = stack.user("fancy-allow", dict(LIST_EXAMPLE, Condition=fancy))
    deny_too = stack.user(
        "fancy-deny",
        LIST_EXAMPLE,
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": fancy},
    )
    with caplog.at_level(logging.WARNING, logger="jit_local.iam_eval"):
        for creds in (allow_only, deny_too):
            s3 = stack.client("s3", creds)
            assert error_code(lambda s3=s3: s3.list_objects_v2(Bucket=EXAMPLE)) in DENIED
    assert any("StringFancyEquals" in record.getMessage() for record in caplog.records)


def test_if_exists_and_null_follow_aws_rules(stack: Stack) -> None:
    # An IAM user's requests carry no aws:SourceIdentity.
    if_exists = {"StringEqualsIfExists": {"aws:SourceIdentity": "alice"}}
    plain = {"StringEquals": {"aws:SourceIdentity": "alice"}}
    require_source_identity = {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"Null": {"aws:SourceIdentity": "true"}},
    }
    allowed = stack.user("if-exists", dict(LIST_EXAMPLE, Condition=if_exists))
    stack.client("s3", allowed).list_objects_v2(Bucket=EXAMPLE)
    for name, statements in (
        ("plain-equals", [dict(LIST_EXAMPLE, Condition=plain)]),
        ("null-deny", [LIST_EXAMPLE, require_source_identity]),
    ):
        s3 = stack.client("s3", stack.user(name, *statements))
        assert error_code(lambda s3=s3: s3.list_objects_v2(Bucket=EXAMPLE)) in DENIED


def test_revocation_deny_all_denies_live_sessions_at_once(stack: Stack) -> None:
    role_arn = stack.grant_role("jit-g-revoke", stack.clock.now + 3600)
    grant = stack.assume(stack.broker(), role_arn, "alice", SourceIdentity="alice")
    s3 = stack.client("s3", grant)
    s3.list_objects_v2(Bucket=EXAMPLE)
    stack.client("iam", stack.admin).put_role_policy(
        RoleName="jit-g-revoke",
        PolicyName="revoked",
        PolicyDocument=policy({"Effect": "Deny", "Action": "*", "Resource": "*"}),
    )
    assert error_code(lambda: s3.list_objects_v2(Bucket=EXAMPLE)) in DENIED


def test_permissions_boundary_and_session_policy_limit_a_session(stack: Stack) -> None:
    narrow_boundary = stack.client("iam", stack.admin).create_policy(
        PolicyName="list-only-boundary", PolicyDocument=policy(LIST_EXAMPLE)
    )["Policy"]["Arn"]
    target = stack.role(
        "jit-g-narrow",
        trust(BROKER_ROLE_ARN, ["sts:AssumeRole"]),
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        path="/jit/",
        boundary=narrow_boundary,
    )
    broker = stack.broker()
    s3 = stack.client("s3", stack.assume(broker, target, "wide"))
    s3.list_objects_v2(Bucket=EXAMPLE)
    assert error_code(lambda: s3.get_object(Bucket=EXAMPLE, Key="report.csv")) in DENIED

    get_only = policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    scoped = stack.client("s3", stack.assume(broker, target, "scoped", Policy=get_only))
    assert error_code(lambda: scoped.list_objects_v2(Bucket=EXAMPLE)) in DENIED


def test_get_caller_identity_is_always_allowed(stack: Stack) -> None:
    creds = stack.user(
        "nobody", {"Effect": "Deny", "Action": "sts:GetCallerIdentity", "Resource": "*"}
    )
    identity = stack.client("sts", creds).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/nobody"
    s3 = stack.client("s3", creds)
    assert error_code(lambda: s3.list_objects_v2(Bucket=EXAMPLE)) in DENIED


def test_deactivated_access_key_is_refused(stack: Stack) -> None:
    creds = stack.user("inactive", ALLOW_ALL)
    stack.client("iam", stack.admin).update_access_key(
        UserName="inactive", AccessKeyId=creds.key, Status="Inactive"
    )
    assert error_code(lambda: stack.client("sts", creds).get_caller_identity()) == (
        "InvalidClientTokenId"
    )


# --------------------------------------------------------------------------- 5. DynamoDB


def test_dynamodb_put_item_only_on_the_table_named_in_the_resource(stack: Stack) -> None:
    grants_arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/grants"
    creds = stack.user(
        "ddb-writer", {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": grants_arn}
    )
    dynamodb = stack.client("dynamodb", creds)
    item = {"pk": {"S": "g-1"}, "owner": {"S": "alice"}}

    dynamodb.put_item(TableName="grants", Item=item)
    assert error_code(lambda: dynamodb.put_item(TableName="other-table", Item=item)) in DENIED
    dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": "grants", "Item": item}}])
    both = [{"Put": {"TableName": t, "Item": item}} for t in ("grants", "other-table")]
    assert error_code(lambda: dynamodb.transact_write_items(TransactItems=both)) in DENIED


def test_dynamodb_batch_write_needs_every_table_allowed(stack: Stack) -> None:
    grants_arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/grants"
    creds = stack.user(
        "ddb-batch",
        {"Effect": "Allow", "Action": "dynamodb:BatchWriteItem", "Resource": grants_arn},
    )
    dynamodb = stack.client("dynamodb", creds)

    def batch(*tables: str) -> Any:
        put = {"PutRequest": {"Item": {"pk": {"S": "g-2"}}}}
        return dynamodb.batch_write_item(RequestItems={t: [put] for t in tables})

    batch("grants")
    assert error_code(lambda: batch("grants", "other-table")) in DENIED


def test_dynamodb_query_on_an_index_needs_the_index_arn(stack: Stack) -> None:
    table_arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/grants"
    query = {
        "TableName": "grants",
        "IndexName": "by-owner",
        "KeyConditionExpression": "#o = :o",
        "ExpressionAttributeNames": {"#o": "owner"},
        "ExpressionAttributeValues": {":o": {"S": "alice"}},
    }
    table_only = stack.client(
        "dynamodb",
        stack.user(
            "ddb-table", {"Effect": "Allow", "Action": "dynamodb:Query", "Resource": table_arn}
        ),
    )
    assert error_code(lambda: table_only.query(**query)) in DENIED
    with_index = stack.client(
        "dynamodb",
        stack.user(
            "ddb-index",
            {"Effect": "Allow", "Action": "dynamodb:Query", "Resource": f"{table_arn}/index/*"},
        ),
    )
    with_index.query(**query)


# --------------------------------------------------------------------------- pure functions


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("arn:aws:s3:::example-bucket/*", "arn:aws:s3:::example-bucket/a/b.csv", True),
        ("arn:aws:s3:::example-bucket/*", "arn:aws:s3:::example-bucket", False),
        ("arn:aws:s3:::example-bucket", "arn:aws:s3:::example-bucket-2", False),
        ("arn:aws:iam::*:role/jit/*", "arn:aws:iam::123456789012:role/jit/jit-g-1", True),
        ("arn:aws:iam::*:role/jit/*", "arn:aws:iam::123456789012:role/jitx/jit-g-1", False),
        ("jit-g-?", "jit-g-1", True),
        ("jit-g-?", "jit-g-12", False),
        ("?*", "", False),
        ("?*", "a", True),
        ("Example", "example", False),
        ("a.b", "axb", False),
    ],
)
def test_wildcard_match(pattern: str, value: str, expected: bool) -> None:
    assert iam_eval.wildcard_match(pattern, value) is expected


def test_action_patterns_match_case_insensitively_and_resources_do_not() -> None:
    statement = {"Effect": "Allow", "Action": "S3:get*", "Resource": "arn:aws:s3:::Bucket/*"}
    document = {"Statement": [statement]}
    assert (
        iam_eval.evaluate([document], "s3:GetObject", "arn:aws:s3:::Bucket/k", {}) is Decision.ALLOW
    )
    assert (
        iam_eval.evaluate([document], "s3:GetObject", "arn:aws:s3:::bucket/k", {})
        is Decision.NEUTRAL
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-28T03:00:00Z", datetime(2026, 11, 28, 3, tzinfo=UTC).timestamp()),
        ("2026-11-28T03:00:00.500Z", datetime(2026, 11, 28, 3, tzinfo=UTC).timestamp() + 0.5),
        ("2026-11-28T04:00:00+01:00", datetime(2026, 11, 28, 3, tzinfo=UTC).timestamp()),
        ("2026-11-28T03:00:00", datetime(2026, 11, 28, 3, tzinfo=UTC).timestamp()),
        ("2026-11-28", datetime(2026, 11, 28, tzinfo=UTC).timestamp()),
        ("1795834800", 1795834800.0),
        ("next tuesday", None),
    ],
)
def test_parse_date(value: str, expected: float | None) -> None:
    assert iam_eval.parse_date(value) == expected


@pytest.mark.parametrize(
    ("block", "context", "expected"),
    [
        ({"StringEquals": {"k": ["a", "b"]}}, {"k": "b"}, True),
        ({"StringEquals": {"k": "a"}}, {"k": "A"}, False),
        ({"StringEqualsIgnoreCase": {"k": "a"}}, {"k": "A"}, True),
        ({"StringNotEquals": {"k": ["a", "b"]}}, {"k": "c"}, True),
        ({"StringNotEquals": {"k": ["a", "b"]}}, {"k": "a"}, False),
        ({"StringNotEqualsIgnoreCase": {"k": "a"}}, {"k": "A"}, False),
        ({"StringLike": {"sts:SourceIdentity": "?*"}}, {"sts:SourceIdentity": "alice"}, True),
        ({"StringLike": {"k": "jit-*"}}, {"k": "JIT-1"}, False),
        ({"StringNotLike": {"k": "jit-*"}}, {"k": "other"}, True),
        (
            {"DateGreaterThan": {"aws:CurrentTime": "2026-11-28T03:00:00Z"}},
            {"aws:CurrentTime": "2026-11-28T03:00:01Z"},
            True,
        ),
        (
            {"DateGreaterThan": {"aws:CurrentTime": "2026-11-28T03:00:00Z"}},
            {"aws:CurrentTime": "2026-11-28T03:00:00Z"},
            False,
        ),
        (
            {"DateGreaterThanEquals": {"aws:CurrentTime": "2026-11-28T03:00:00Z"}},
            {"aws:CurrentTime": "2026-11-28T03:00:00Z"},
            True,
        ),
        ({"DateLessThan": {"aws:EpochTime": 1795834800}}, {"aws:EpochTime": "1795834799"}, True),
        (
            {"DateLessThanEquals": {"aws:CurrentTime": "2026-11-28"}},
            {"aws:CurrentTime": "2026-11-28T00:00:01Z"},
            False,
        ),
        ({"DateEquals": {"k": "2026-11-28T03:00:00Z"}}, {"k": "1795834800"}, True),
        ({"DateNotEquals": {"k": "2026-11-28T03:00:00Z"}}, {"k": "1795834800"}, False),
        ({"NumericLessThan": {"k": "10"}}, {"k": "9.5"}, True),
        ({"NumericLessThanEquals": {"k": 10}}, {"k": "10"}, True),
        ({"NumericGreaterThan": {"k": "10"}}, {"k": "10"}, False),
        ({"NumericGreaterThanEquals": {"k": "10"}}, {"k": "10"}, True),
        ({"NumericEquals": {"k": "10"}}, {"k": "ten"}, False),
        ({"NumericNotEquals": {"k": "10"}}, {"k": "11"}, True),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "true"}, True),
        ({"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": "false"}, False),
        (
            {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/jit/*"}},
            {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/jit/g"},
            True,
        ),
        (
            {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/jit-broker"}},
            {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/jit-broker"},
            True,
        ),
        (
            {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*"}},
            {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/x"},
            False,
        ),
        (
            {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/jit/*"}},
            {"aws:PrincipalArn": "arn:aws:iam::123456789012:user/u"},
            True,
        ),
        (
            {"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/a"}},
            {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/a"},
            False,
        ),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}, True),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "192.168.0.1"}, True),
        # keys in one operator block are ANDed, operator blocks too; condition keys ignore case
        ({"StringEquals": {"a": "1", "b": "2"}}, {"a": "1", "b": "3"}, False),
        ({"StringEquals": {"a": "1"}, "StringLike": {"b": "2*"}}, {"A": "1", "b": "20"}, True),
    ],
)
def test_condition_operators(
    block: dict[str, Any], context: dict[str, str], expected: bool
) -> None:
    assert iam_eval.conditions_match(block, context) is expected


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ({"StringEquals": {"missing": "a"}}, False),
        ({"StringNotEquals": {"missing": "a"}}, True),  # negated operators match a missing key
        ({"StringNotLike": {"missing": "a*"}}, True),
        ({"ArnNotEquals": {"missing": "arn:aws:iam::1:role/a"}}, True),
        ({"DateGreaterThan": {"missing": "2026-01-01T00:00:00Z"}}, False),
        ({"StringEqualsIfExists": {"missing": "a"}}, True),
        ({"DateLessThanIfExists": {"missing": "2026-01-01T00:00:00Z"}}, True),
        ({"BoolIfExists": {"missing": "true"}}, True),
        ({"Null": {"missing": "true"}}, True),
        ({"Null": {"missing": "false"}}, False),
        ({"Null": {"present": "true"}}, False),
        ({"Null": {"present": "false"}}, True),
        ({"ForAnyValue:StringEquals": {"missing": "a"}}, False),
        ({"ForAllValues:StringEquals": {"missing": "a"}}, True),
    ],
)
def test_missing_keys_follow_aws_rules(block: dict[str, Any], expected: bool) -> None:
    assert iam_eval.conditions_match(block, {"present": "x"}) is expected


def test_if_exists_still_compares_a_present_key() -> None:
    assert iam_eval.conditions_match({"StringEqualsIfExists": {"k": "a"}}, {"k": "b"}) is False


@pytest.mark.parametrize(
    ("block", "tag_keys", "expected"),
    [
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "grant-id"]}}, ["team"], True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}, ["team", "cost"], False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}, ["cost", "team"], True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}, ["cost"], False),
        ({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["owner"]}}, ["team", "cost"], True),
        ({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["team"]}}, ["team"], False),
        ({"ForAnyValue:StringLike": {"aws:TagKeys": ["grant-*"]}}, ["grant-id"], True),
    ],
)
def test_multivalued_keys_with_set_qualifiers(
    block: dict[str, Any], tag_keys: list[str], expected: bool
) -> None:
    assert iam_eval.conditions_match(block, {"aws:TagKeys": tag_keys}) is expected


@pytest.mark.parametrize(
    "block",
    [
        {"StringFancyEquals": {"k": "a"}},
        {"ForSomeValues:StringEquals": {"k": "a"}},
        {"NullIfExists": {"k": "true"}},
        {"DateGreaterThan": {"k": "not a date"}},
        {"NumericLessThan": {"k": "ten"}},
        {"StringEquals": {"k": "${aws:username, bob}"}},  # a default must be in single quotes
        {"StringEquals": {"k": "${}"}},
    ],
)
def test_what_cannot_be_judged_raises(block: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedPolicyError):
        iam_eval.conditions_match(block, {"k": "a"})


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_unknown_operator_makes_allow_not_apply_and_deny_apply(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unknown = {"Condition": {"StringSortOf": {"aws:username": "x"}}}
    allow = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*"}
    with caplog.at_level(logging.WARNING, logger="jit_local.iam_eval"):
        assert (
            iam_eval.evaluate([_document(allow | unknown)], "s3:GetObject", "*", {})
            is Decision.NEUTRAL
        )
        assert (
            iam_eval.evaluate([_document(allow, deny | unknown)], "s3:GetObject", "*", {})
            is Decision.DENY
        )
    assert sum("StringSortOf" in r.getMessage() for r in caplog.records) == 2


def test_unknown_operator_in_a_deny_for_another_action_does_not_apply() -> None:
    deny = {"Effect": "Deny", "Action": "iam:*", "Resource": "*", "Condition": {"Huh": {"k": "v"}}}
    allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    assert iam_eval.evaluate([_document(allow, deny)], "s3:GetObject", "*", {}) is Decision.ALLOW


def test_false_condition_on_allow_is_neutral_and_on_deny_does_not_deny() -> None:
    never = {"Condition": {"StringEquals": {"aws:username": "nobody"}}}
    allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    assert (
        iam_eval.evaluate([_document(allow | never)], "s3:ListBucket", "*", {}) is Decision.NEUTRAL
    )
    assert (
        iam_eval.evaluate([_document(allow, deny | never)], "s3:ListBucket", "*", {})
        is Decision.ALLOW
    )


def test_deny_after_expiry_depends_on_current_time() -> None:
    deny = {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2026-11-28T03:00:00Z"}},
    }
    document = _document(GRANT_ACCESS[0], deny)
    resource = f"arn:aws:s3:::{EXAMPLE}"
    before = {"aws:CurrentTime": "2026-11-28T02:59:59Z"}
    after = {"aws:CurrentTime": "2026-11-28T03:00:01Z"}
    assert iam_eval.evaluate([document], "s3:ListBucket", resource, before) is Decision.ALLOW
    assert iam_eval.evaluate([document], "s3:ListBucket", resource, after) is Decision.DENY


def test_not_action_and_not_resource() -> None:
    document = _document(
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "NotResource": "arn:aws:s3:::example-bucket*"},
    )
    assert (
        iam_eval.evaluate([document], "s3:GetObject", "arn:aws:s3:::example-bucket/k", {})
        is Decision.ALLOW
    )
    assert (
        iam_eval.evaluate([document], "iam:GetRole", "arn:aws:s3:::example-bucket", {})
        is Decision.NEUTRAL
    )
    assert (
        iam_eval.evaluate([document], "s3:GetObject", "arn:aws:s3:::other/k", {}) is Decision.DENY
    )


def test_policy_variables_are_substituted_in_2012_10_17_documents_only() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::home/${aws:username}/*",
    }
    context = {"aws:username": "alice"}
    alice = "arn:aws:s3:::home/alice/k"
    assert (
        iam_eval.evaluate([_document(statement)], "s3:GetObject", alice, context) is Decision.ALLOW
    )
    bob = "arn:aws:s3:::home/bob/k"
    assert (
        iam_eval.evaluate([_document(statement)], "s3:GetObject", bob, context) is Decision.NEUTRAL
    )
    old = {"Version": "2008-10-17", "Statement": [statement]}
    assert iam_eval.evaluate([old], "s3:GetObject", alice, context) is Decision.NEUTRAL


# --------------------------------------------------------------------------- IAM User Guide rules
# Rows below come from the IAM User Guide's own examples: "IAM policy elements: Variables and
# tags" (reference_policies_variables), "Condition operators"
# (reference_policies_elements_condition_operators) and "Single-valued vs. multivalued context
# keys" (reference_policies_condition-single-vs-multi-valued-context-keys).

TEAM_BUCKET = {
    "Sid": "TeamBucketOrCompanyWide",
    "Effect": "Allow",
    "Action": "s3:ListBucket",
    "Resource": "arn:aws:s3:::amzn-s3-demo-bucket-${aws:PrincipalTag/team, 'company-wide'}",
}


@pytest.mark.parametrize(
    ("principal_tags", "bucket", "expected"),
    [
        ({"aws:PrincipalTag/team": "yellow"}, "amzn-s3-demo-bucket-yellow", Decision.ALLOW),
        ({"aws:PrincipalTag/team": "yellow"}, "amzn-s3-demo-bucket-company-wide", Decision.NEUTRAL),
        ({}, "amzn-s3-demo-bucket-company-wide", Decision.ALLOW),
        ({}, "amzn-s3-demo-bucket-yellow", Decision.NEUTRAL),
    ],
)
def test_resource_variable_default_value_names_the_company_wide_bucket(
    principal_tags: dict[str, str], bucket: str, expected: Decision
) -> None:
    """Guide, "Specifying default values": "surround the default value with single quotes (' '),
    and separate the variable text and the default value with a comma and space (, ). For
    example, if a principal is tagged with team=yellow, they can access ExampleCorp's Amazon S3
    bucket named amzn-s3-demo-bucket-yellow. [...] For users without team tags, it sets a
    default value of company-wide for the bucket name."
    """
    decision = iam_eval.evaluate(
        [_document(TEAM_BUCKET)], "s3:ListBucket", f"arn:aws:s3:::{bucket}", principal_tags
    )
    assert decision is expected


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"s3:ExistingObjectTag/owner": "bob"}, True),  # no aws:username: the default
        ({"s3:ExistingObjectTag/owner": "bob", "aws:username": "alice"}, False),
        ({"s3:ExistingObjectTag/owner": "alice", "aws:username": "alice"}, True),
    ],
)
def test_condition_variable_default_value_applies_only_without_a_value(
    context: dict[str, str], expected: bool
) -> None:
    """A default stands in only when the key has no value; "Key names are case-insensitive"."""
    block = {"StringEquals": {"s3:ExistingObjectTag/owner": "${AWS:UserName, 'bob'}"}}
    assert iam_eval.conditions_match(block, context) is expected


@pytest.mark.parametrize(
    ("block", "context", "expected"),
    [
        # "condition operators like StringEquals or StringLike do not match"
        ({"StringEquals": {"s3:ExistingObjectTag/Team": "${aws:PrincipalTag/Team}"}}, {}, False),
        ({"StringLike": {"s3:ExistingObjectTag/Team": "${aws:PrincipalTag/Team}*"}}, {}, False),
        (
            {"StringEqualsIgnoreCase": {"s3:ExistingObjectTag/Team": "${aws:PrincipalTag/Team}"}},
            {},
            False,
        ),
        # "Inverted condition operators like StringNotEquals or StringNotLike do match against a
        # null value"
        ({"StringNotEquals": {"s3:ExistingObjectTag/Team": "${aws:PrincipalTag/Team}"}}, {}, True),
        ({"StringNotLike": {"s3:ExistingObjectTag/Team": "${aws:PrincipalTag/Team}"}}, {}, True),
        # ...IfExists: "If the key is not present, evaluate the condition element as true."
        (
            {"StringEqualsIfExists": {"s3:ExistingObjectTag/Owner": "${aws:PrincipalTag/Team}"}},
            {},
            True,
        ),
        (
            {"StringEqualsIfExists": {"s3:ExistingObjectTag/Team": "${aws:PrincipalTag/Team}"}},
            {},
            False,
        ),
        # Condition operators, "Example using a policy variable with a string condition
        # operator": "No aws:username in the request context" -> "No match".
        (
            {"StringLike": {"s3:prefix": ["home/", "home/${aws:username}/"]}},
            {"s3:prefix": "home/martha_rivera/"},
            False,
        ),
        (
            {"StringLike": {"s3:prefix": ["home/", "home/${aws:username}/"]}},
            {"s3:prefix": "home/martha_rivera/", "aws:username": "martha_rivera"},
            True,
        ),
        (
            {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/${aws:username}"}},
            {},
            False,
        ),
        (
            {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/${aws:username}"}},
            {},
            True,
        ),
    ],
)
def test_a_variable_with_no_value_is_null(
    block: dict[str, Any], context: dict[str, str], expected: bool
) -> None:
    """Guide, "Policy variables with no value": "When policy variables reference a condition
    context key that has no value or is not present in an authorization context for a request,
    the value is effectively null. There is no equal or like value."
    """
    request = {
        "s3:ExistingObjectTag/Team": "red",
        "aws:PrincipalArn": "arn:aws:iam::111122223333:role/r",
    } | context
    assert iam_eval.conditions_match(block, request) is expected


TEAM_OBJECTS = "arn:aws:s3:::amzn-s3-demo-bucket/*"
DENY_OTHER_TEAMS = {
    "Effect": "Deny",
    "Action": "s3:GetObject",
    "Resource": TEAM_OBJECTS,
    "Condition": {"StringNotEquals": {"s3:ExistingObjectTag/Team": "${aws:PrincipalTag/Team}"}},
}
DENY_OWN_OBJECTS = DENY_OTHER_TEAMS | {
    "Condition": {"StringEquals": {"s3:ExistingObjectTag/Owner": "${aws:username}"}}
}


@pytest.mark.parametrize(
    ("deny", "context", "expected"),
    [
        # The guide's example: "Access is explicitly denied when aws:principaltag/Team is not set."
        (DENY_OTHER_TEAMS, {"aws:PrincipalTag/Team": "red"}, Decision.ALLOW),
        (DENY_OTHER_TEAMS, {"aws:PrincipalTag/Team": "blue"}, Decision.DENY),
        (DENY_OTHER_TEAMS, {}, Decision.DENY),
        # A positive operator with a null variable "does not match, and the policy statement
        # does not take effect": a Deny does not reach callers lacking the key.
        (DENY_OWN_OBJECTS, {"aws:username": "alice"}, Decision.DENY),
        (DENY_OWN_OBJECTS, {"aws:username": "bob"}, Decision.ALLOW),
        (DENY_OWN_OBJECTS, {}, Decision.ALLOW),
    ],
)
def test_deny_with_a_variable_reaches_callers_lacking_the_key_only_through_negation(
    deny: dict[str, Any], context: dict[str, str], expected: Decision
) -> None:
    allow = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": TEAM_OBJECTS}
    request = {"s3:ExistingObjectTag/Team": "red", "s3:ExistingObjectTag/Owner": "alice"}
    document = _document(allow, deny)
    decision = iam_eval.evaluate(
        [document], "s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/k", request | context
    )
    assert decision is expected


HOME = "arn:aws:s3:::amzn-s3-demo-bucket/home/${aws:username}/*"


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ({"Effect": "Deny", "Resource": HOME}, Decision.ALLOW),  # beside ALLOW_ALL
        ({"Effect": "Allow", "Resource": HOME}, Decision.NEUTRAL),
        ({"Effect": "Allow", "NotResource": HOME}, Decision.ALLOW),
        ({"Effect": "Deny", "NotResource": HOME}, Decision.DENY),  # beside ALLOW_ALL
    ],
)
def test_a_resource_with_a_null_variable_matches_no_resource(
    statement: dict[str, Any], expected: Decision
) -> None:
    """Guide, "Policy variables with no value": "If a variable that has no value in the
    authorization context is used as part of the Resource or NotResource element of a policy,
    the resource that includes a policy variable with no value will not match any resource." A
    role session has no aws:username."""
    statement = statement | {"Action": "s3:GetObject"}
    document = (
        _document(ALLOW_ALL, statement) if statement["Effect"] == "Deny" else _document(statement)
    )
    resource = "arn:aws:s3:::amzn-s3-demo-bucket/home/alice/k"
    assert iam_eval.evaluate([document], "s3:GetObject", resource, {}) is expected


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:iam::${aws:PrincipalAccount}:role/jit/*",  # the account, before the fifth colon
        "arn:aws:${aws:username}:::amzn-s3-demo-bucket",
        "${aws:username}",
    ],
)
@pytest.mark.parametrize(
    ("effect", "expected"), [("Allow", Decision.NEUTRAL), ("Deny", Decision.DENY)]
)
def test_a_variable_before_the_resource_portion_fails_closed(
    resource: str, effect: str, expected: Decision
) -> None:
    """Guide, "Where you can use policy variables": "You can use a policy variable in the Resource
    element, but only in the resource portion of the ARN. This portion of the ARN appears after
    the fifth colon (:). You can't use a variable to replace parts of the ARN before the fifth
    colon, such as the service or account."
    """
    statement = {"Effect": effect, "Action": "*", "Resource": resource}
    document = _document(ALLOW_ALL, statement) if effect == "Deny" else _document(statement)
    context = {"aws:PrincipalAccount": ACCOUNT, "aws:username": "iam"}
    target = f"arn:aws:iam::{ACCOUNT}:role/jit/g"
    assert iam_eval.evaluate([document], "iam:GetRole", target, context) is expected


@pytest.mark.parametrize(
    "block",
    [
        {"NumericLessThanEquals": {"s3:max-keys": "${aws:PrincipalTag/max-keys}"}},
        {"DateGreaterThan": {"aws:CurrentTime": "${aws:TokenIssueTime}"}},
        {"IpAddress": {"aws:SourceIp": "${aws:PrincipalTag/cidr}"}},
        # Condition operators marks Boolean variables "Supported", Variables and tags lists
        # "Boolean" among the operators that take none: the stricter reading fails closed.
        {"Bool": {"aws:SecureTransport": "${aws:PrincipalTag/tls}"}},
        {"BinaryEquals": {"k": "${aws:PrincipalTag/b}"}},
        # Condition operators: "You can not use a policy variable with the Null condition
        # operator."
        {"Null": {"aws:TokenIssueTime": "${aws:PrincipalTag/null}"}},
        {"NumericEqualsIfExists": {"s3:max-keys": "${*}"}},
    ],
)
def test_variables_in_operators_other_than_string_and_arn_cannot_be_judged(
    block: dict[str, Any],
) -> None:
    """Guide, "Where you can use policy variables": "You can use a policy variable for Condition
    values in any condition that involves the string operators or the ARN operators. [...] You
    can't use a policy variable with other operators, such as Numeric, Date, Boolean, Binary, IP
    Address, or Null operators." Each block would hold were its variable replaced."""
    context = {
        "s3:max-keys": "5",
        "aws:PrincipalTag/max-keys": "10",
        "aws:CurrentTime": "2026-11-28T03:00:00Z",
        "aws:TokenIssueTime": "2026-11-28T02:00:00Z",
        "aws:SourceIp": "203.0.113.7",
        "aws:PrincipalTag/cidr": "203.0.113.0/24",
        "aws:SecureTransport": "true",
        "aws:PrincipalTag/tls": "true",
        "k": "QmluYXJ5",
        "aws:PrincipalTag/b": "QmluYXJ5",
        "aws:PrincipalTag/null": "false",
    }
    with pytest.raises(UnsupportedPolicyError):
        iam_eval.conditions_match(block, context)
    allow = ALLOW_ALL | {"Condition": block}
    assert iam_eval.evaluate([_document(allow)], "s3:X", "*", context) is Decision.NEUTRAL
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": block}
    assert iam_eval.evaluate([_document(ALLOW_ALL, deny)], "s3:X", "*", context) is Decision.DENY


@pytest.mark.parametrize(
    ("block", "context"),
    [
        ({"StringEquals": {"k": "${aws:TagKeys}"}}, {"k": "team", "aws:TagKeys": ["team"]}),
        ({"StringEquals": {"k": "${aws:TagKeys, 'team'}"}}, {"k": "team"}),
        ({"StringLike": {"k": "*${aws:CalledVia}"}}, {"k": "x", "aws:CalledVia": ["x"]}),
        ({"StringEquals": {"k": "${other}"}}, {"k": "a", "other": ["a", "b"]}),
    ],
)
def test_a_multivalued_key_as_a_variable_cannot_be_judged(
    block: dict[str, Any], context: dict[str, Any]
) -> None:
    """Guide, "Using variables in policies": "You can use any single-valued condition key as a
    variable. You can't use a multivalued condition key as a variable." aws:TagKeys and
    aws:CalledVia are multivalued even with one value; a key given several values is multivalued
    whatever its name."""
    with pytest.raises(UnsupportedPolicyError):
        iam_eval.conditions_match(block, context)


@pytest.mark.parametrize(
    ("block", "context"),
    [
        (
            {"StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}},
            {"aws:TagKeys": ["environment", "dept"]},
        ),
        ({"StringEquals": {"aws:TagKeys": "environment"}}, {"aws:TagKeys": ["environment"]}),
        ({"StringNotEquals": {"aws:TagKeys": "owner"}}, {"aws:TagKeys": ["team", "owner"]}),
        ({"StringLikeIfExists": {"aws:TagKeys": "env*"}}, {}),
        ({"StringLike": {"k": "env*"}}, {"k": ["environment", "dept"]}),  # several values
    ],
)
@pytest.mark.parametrize(
    ("effect", "expected"), [("Allow", Decision.NEUTRAL), ("Deny", Decision.DENY)]
)
def test_a_single_valued_operator_on_a_multivalued_key_fails_closed(
    block: dict[str, Any], context: dict[str, Any], effect: str, expected: Decision
) -> None:
    """Guide, "Single-valued vs. multivalued context keys": "Multivalued context keys require a
    condition set operator." The guide gives no outcome for a single-valued operator on a
    multivalued key (aws:TagKeys is one whatever its number of values; so is any key given
    several): an Allow must not rely on it, a Deny must not be escaped through it."""
    with pytest.raises(UnsupportedPolicyError):
        iam_eval.conditions_match(block, context)
    statement = {"Effect": effect, "Action": "ec2:DeleteTags", "Resource": "*", "Condition": block}
    document = _document(ALLOW_ALL, statement) if effect == "Deny" else _document(statement)
    assert iam_eval.evaluate([document], "ec2:DeleteTags", "*", context) is expected


SET_OPERATOR_KEYS = {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}


@pytest.mark.parametrize(
    ("block", "tag_keys", "expected"),
    [
        # "ForAllValues set operator" table (with "Null": {"aws:TagKeys": "false"})
        (SET_OPERATOR_KEYS | {"Null": {"aws:TagKeys": "false"}}, ["environment"], True),
        (SET_OPERATOR_KEYS | {"Null": {"aws:TagKeys": "false"}}, ["cost-center"], True),
        (
            SET_OPERATOR_KEYS | {"Null": {"aws:TagKeys": "false"}},
            ["environment", "cost-center"],
            True,
        ),
        (SET_OPERATOR_KEYS | {"Null": {"aws:TagKeys": "false"}}, ["environment", "dept"], False),
        (SET_OPERATOR_KEYS | {"Null": {"aws:TagKeys": "false"}}, None, False),
        (SET_OPERATOR_KEYS, None, True),  # "It also returns true if there are no context keys"
        # "ForAnyValue set operator" table
        *(
            (
                {"ForAnyValue:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}},
                keys,
                result,
            )
            for keys, result in [
                (["environment"], True),
                (["cost-center"], True),
                (["environment", "cost-center"], True),
                (["environment", "dept"], True),
                (["dept"], False),
                (None, False),
            ]
        ),
    ],
)
def test_set_operators_follow_the_guides_tables(
    block: dict[str, Any], tag_keys: list[str] | None, expected: bool
) -> None:
    context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    assert iam_eval.conditions_match(block, context) is expected


def test_an_unjudgeable_clause_fails_a_deny_closed_even_beside_a_false_one() -> None:
    """Clauses are ANDed; one that cannot be judged makes the Deny apply whatever its order."""
    condition = {"StringEquals": {"a": "never"}, "StringLike": {"k": "x*"}}
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": condition}
    context = {"a": "other", "k": ["x1", "x2"]}
    assert iam_eval.evaluate([_document(ALLOW_ALL, deny)], "s3:X", "*", context) is Decision.DENY


SESSION = Principal(
    arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/jit-broker/broker",
    principal_arn=BROKER_ROLE_ARN,
    account=ACCOUNT,
)
PATHED_SESSION = Principal(
    arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/caller-svc/s",
    principal_arn=f"arn:aws:iam::{ACCOUNT}:role/svc/caller-svc",
    account=ACCOUNT,
)
USER = Principal(BROKER_CALLER_ARN, BROKER_CALLER_ARN, ACCOUNT)
STRANGER = Principal(
    "arn:aws:iam::210987654321:user/x", "arn:aws:iam::210987654321:user/x", "210987654321"
)


@pytest.mark.parametrize(
    ("trusted", "principal", "expected"),
    [
        (BROKER_ROLE_ARN, SESSION, True),
        (f"arn:aws:iam::{ACCOUNT}:role/other", SESSION, False),
        (f"arn:aws:iam::{ACCOUNT}:role/svc/caller-svc", PATHED_SESSION, True),
        (f"arn:aws:iam::{ACCOUNT}:role/caller-svc", PATHED_SESSION, False),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/jit-broker/broker", SESSION, True),
        (BROKER_CALLER_ARN, USER, True),
        (f"arn:aws:iam::{ACCOUNT}:user/broker-*", USER, False),
        (f"arn:aws:iam::{ACCOUNT}:root", SESSION, True),
        (ACCOUNT, USER, True),
        (f"arn:aws:iam::{ACCOUNT}:root", STRANGER, False),
        ("*", STRANGER, True),
        ([f"arn:aws:iam::{ACCOUNT}:role/other", BROKER_ROLE_ARN], SESSION, True),
    ],
)
def test_trust_policy_principal_matching(
    trusted: Any, principal: Principal, expected: bool
) -> None:
    document = _document(
        {"Effect": "Allow", "Principal": {"AWS": trusted}, "Action": "sts:AssumeRole"}
    )
    decision = iam_eval.evaluate([document], "sts:AssumeRole", BROKER_ROLE_ARN, {}, principal)
    assert (decision is Decision.ALLOW) is expected
