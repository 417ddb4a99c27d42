"""jit_local.iam_eval: a role session's session policies and session tags, as AWS applies them.

A shared-role grant is only as safe as three things IAM does for it: the session policy cuts
the role's permissions down to the profile's (and denies after the grant's expiry), the
session tags become ``aws:PrincipalTag`` so the role's revocation deny can name one grant,
and SourceIdentity names the person. The first half proves them on a running moto server
(127.0.0.1, a free port) with the evaluator installed, signing with the sessions' own
credentials; the second half proves the same combination as pure evaluation.

Times come from the test's clock (started at ``time.time()``), never a fixed date.
"""

from __future__ import annotations

import json
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
from jit_local.iam_eval import Decision

# An account of its own: moto's backends are per process, other modules seed theirs.
ACCOUNT = "444455556666"
REGION = "us-east-1"
BUCKET_A = "session-eval-bucket-a"
BUCKET_B = "session-eval-bucket-b"
BROKER_ARN = f"arn:aws:iam::{ACCOUNT}:user/session-broker"
ROLE_NAME = "jit-s-reader"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/jit/stack/{ROLE_NAME}"
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})
DENIED = {"AccessDenied", "AccessDeniedException"}
GRANT_TAG = "jit:grant-id"

READ = ["s3:GetObject", "s3:ListBucket"]


def bucket_resources(*buckets: str) -> list[str]:
    return [arn for b in buckets for arn in (f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*")]


ROLE_GRANT: dict[str, Any] = {
    "Sid": "ProfileOnBothBuckets",
    "Effect": "Allow",
    "Action": READ,
    "Resource": bucket_resources(BUCKET_A, BUCKET_B),
}
ONLY_A: dict[str, Any] = {
    "Sid": "ProfileOnBucketA",
    "Effect": "Allow",
    "Action": READ,
    "Resource": bucket_resources(BUCKET_A),
}
# The shared role's trust, as issue 9's contract writes it.
SHARED_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "BrokerOnlyWithPersonAndGrant",
            "Effect": "Allow",
            "Principal": {"AWS": BROKER_ARN},
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
            "Condition": {
                "StringLike": {"sts:SourceIdentity": "?*", f"aws:RequestTag/{GRANT_TAG}": "g-*"},
                "Null": {f"aws:RequestTag/{GRANT_TAG}": "false"},
            },
        }
    ],
}


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps(document(*statements))


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deny_after(epoch: float) -> dict[str, Any]:
    return {
        "Sid": "DenyAfterGrantExpiry",
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"DateGreaterThan": {"aws:CurrentTime": iso(epoch)}},
    }


def revoked(*grant_ids: str) -> dict[str, Any]:
    return {
        "Sid": "RevokedGrants",
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"StringEquals": {f"aws:PrincipalTag/{GRANT_TAG}": list(grant_ids)}},
    }


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
    broker: Creds  # an IAM user allowed to assume, tag and name sessions of role/jit/*

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

    def session(
        self,
        grant_id: str,
        *,
        person: str = "alice",
        extra_tags: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Creds:
        """A shared-role session as the broker opens one: person, grant tag, session policy."""
        tags = {GRANT_TAG: grant_id, "jit:requester": person} | (extra_tags or {})
        answer = self.client("sts", self.broker).assume_role(
            RoleArn=ROLE_ARN,
            RoleSessionName=f"{person}-{grant_id}",
            SourceIdentity=person,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            DurationSeconds=900,
            **kwargs,
        )["Credentials"]
        return Creds(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])

    def reads(self, creds: Creds, bucket: str) -> bool:
        """Whether ``creds`` may list ``bucket`` and get its object (both, or neither)."""
        s3 = self.client("s3", creds)
        outcomes = []
        for call in (
            partial(s3.list_objects_v2, Bucket=bucket),
            partial(s3.get_object, Bucket=bucket, Key="report.csv"),
        ):
            try:
                call()
                outcomes.append(True)
            except ClientError as exc:
                assert exc.response["Error"]["Code"] in DENIED
                outcomes.append(False)
        assert outcomes[0] == outcomes[1], f"list and get disagree on {bucket}"
        return outcomes[0]

    def put_role_policy(self, name: str, *statements: dict[str, Any]) -> None:
        self.client("iam", self.admin).put_role_policy(
            RoleName=ROLE_NAME, PolicyName=name, PolicyDocument=policy(*statements)
        )

    def delete_role_policy(self, name: str) -> None:
        self.client("iam", self.admin).delete_role_policy(RoleName=ROLE_NAME, PolicyName=name)


def _seed_client(url: str, service: str) -> Any:
    """A client for seeding: any signature passes while enforcement is off."""
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


def _user(iam: Any, name: str, *statements: dict[str, Any]) -> Creds:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="access", PolicyDocument=policy(*statements))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Creds(key["AccessKeyId"], key["SecretAccessKey"])


def _seed(url: str) -> tuple[Creds, Creds]:
    iam = _seed_client(url, "iam")
    admin = _user(iam, "session-admin", {"Effect": "Allow", "Action": "*", "Resource": "*"})
    broker = _user(
        iam,
        "session-broker",
        {
            "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
            "Resource": f"arn:aws:iam::{ACCOUNT}:role/jit/stack/jit-s-*",
        },
    )
    iam.create_role(
        RoleName=ROLE_NAME,
        Path="/jit/stack/",
        AssumeRolePolicyDocument=json.dumps(SHARED_TRUST),
        Tags=[
            {"Key": "jit:mode", "Value": "shared-role"},
            {"Key": "Team", "Value": "red"},
        ],
    )
    iam.put_role_policy(
        RoleName=ROLE_NAME, PolicyName="jit-grant", PolicyDocument=policy(ROLE_GRANT)
    )
    iam.create_policy(PolicyName="profile-bucket-a", PolicyDocument=policy(ONLY_A))
    s3 = _seed_client(url, "s3")
    for bucket in (BUCKET_A, BUCKET_B):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="report.csv", Body=b"a,b\n")
    return admin, broker


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
        admin, broker = _seed(url)
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # from here on every request is authorized
        yield Stack(url, clock, admin, broker)
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


# --------------------------------------------------------------------------- on the stack


def test_without_a_session_policy_a_session_has_the_roles_permissions(stack: Stack) -> None:
    session = stack.session("g-plain")
    assert stack.reads(session, BUCKET_A)
    assert stack.reads(session, BUCKET_B)


def test_inline_session_policy_limits_the_session_to_bucket_a(stack: Stack) -> None:
    session = stack.session("g-inline", Policy=policy(ONLY_A))
    assert stack.reads(session, BUCKET_A)
    assert not stack.reads(session, BUCKET_B)


def test_managed_session_policy_limits_the_session_to_bucket_a(stack: Stack) -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:policy/profile-bucket-a"
    session = stack.session("g-managed", PolicyArns=[{"arn": arn}])
    assert stack.reads(session, BUCKET_A)
    assert not stack.reads(session, BUCKET_B)


def test_session_policy_cannot_grant_more_than_the_role(stack: Stack) -> None:
    write_everywhere = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    session = stack.session("g-wider", Policy=policy(write_everywhere))
    s3 = stack.client("s3", session)
    assert stack.reads(session, BUCKET_B)
    assert error_code(lambda: s3.put_object(Bucket=BUCKET_A, Key="x", Body=b"")) in DENIED


def test_session_policy_deny_after_expiry_denies_the_live_session_once_the_clock_passes(
    stack: Stack,
) -> None:
    expiry = stack.clock.now + 300  # inside the session's 900 seconds
    both = dict(ROLE_GRANT, Sid="Profile")
    session = stack.session("g-expiring", Policy=policy(both, deny_after(expiry)))
    assert stack.reads(session, BUCKET_A)
    stack.clock.advance(300)  # at the expiry: DateGreaterThan does not hold yet
    assert stack.reads(session, BUCKET_A)
    stack.clock.advance(1)
    assert not stack.reads(session, BUCKET_A)
    assert not stack.reads(session, BUCKET_B)


def test_role_deny_on_a_revoked_grant_tag_denies_that_grant_only(stack: Stack) -> None:
    revoked_session = stack.session("g-revoked")
    other_session = stack.session("g-other")
    assert stack.reads(revoked_session, BUCKET_A)
    stack.put_role_policy("jit-revoked", revoked("g-earlier", "g-revoked"))
    try:
        assert not stack.reads(revoked_session, BUCKET_A)  # the live session, at once
        assert not stack.reads(stack.session("g-revoked"), BUCKET_A)  # and any new one
        assert stack.reads(other_session, BUCKET_A)
        assert stack.reads(stack.session("g-other", Policy=policy(ONLY_A)), BUCKET_A)
    finally:
        stack.delete_role_policy("jit-revoked")
    assert stack.reads(revoked_session, BUCKET_A)


def test_session_tag_overrides_the_role_tag_of_the_same_key_whatever_its_case(
    stack: Stack,
) -> None:
    not_red = {
        "Sid": "DenyTeamRed",
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalTag/TEAM": "red"}},
    }
    stack.put_role_policy("deny-red", not_red)
    try:
        assert not stack.reads(stack.session("g-role-tag"), BUCKET_A)  # the role's Team=red
        blue = stack.session("g-blue", extra_tags={"team": "blue"})
        assert stack.reads(blue, BUCKET_A)
    finally:
        stack.delete_role_policy("deny-red")


def test_session_policy_sees_source_identity_and_token_issue_time(stack: Stack) -> None:
    issued = stack.clock.now
    for_alice = dict(ONLY_A, Condition={"StringEquals": {"aws:SourceIdentity": "alice"}})
    issued_now = dict(ONLY_A, Condition={"DateEquals": {"aws:TokenIssueTime": iso(issued)}})
    alice = stack.session("g-alice", Policy=policy(for_alice))
    bob = stack.session("g-bob", person="bob", Policy=policy(for_alice))
    fresh = stack.session("g-fresh", Policy=policy(issued_now))
    stack.clock.advance(5)
    late = stack.session("g-late", Policy=policy(issued_now))
    assert stack.reads(alice, BUCKET_A)
    assert not stack.reads(bob, BUCKET_A)
    assert stack.reads(fresh, BUCKET_A)
    assert not stack.reads(late, BUCKET_A)


def test_session_policy_and_tags_are_recorded_by_access_key_without_secrets(stack: Stack) -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:policy/profile-bucket-a"
    session = stack.session("g-record", Policy=policy(ONLY_A), PolicyArns=[{"arn": arn}])
    info = iam_eval.session_context(session.key)
    assert info is not None
    assert info.tags == {GRANT_TAG: "g-record", "jit:requester": "alice"}
    assert json.loads(info.session_policy or "") == document(ONLY_A)
    assert info.session_policy_arns == (arn,)
    recorded = repr(info)
    assert session.secret not in recorded
    assert session.token is not None and session.token not in recorded


def padded_policy(chars: int) -> str:
    """The bucket-A session policy, its Sid padded to exactly ``chars`` characters."""
    bare = len(policy(dict(ONLY_A, Sid="")))
    return policy(dict(ONLY_A, Sid="P" * (chars - bare)))


def test_session_policy_of_2048_characters_is_accepted_and_one_more_is_too_large(
    stack: Stack,
) -> None:
    at_limit = padded_policy(iam_eval.SESSION_POLICY_MAX_CHARS)
    assert len(at_limit) == 2048
    assert stack.reads(stack.session("g-at-limit", Policy=at_limit), BUCKET_A)
    over = padded_policy(2049)
    refused = partial(stack.session, "g-over-limit", Policy=over)
    assert error_code(refused) == "PackedPolicyTooLarge"


@pytest.mark.parametrize(
    "text",
    ['{"Version": "2012-10-17", "Statement": [', '["s3:GetObject"]', '{"Statement": [{}]}'],
    ids=["not-json", "not-an-object", "statement-without-effect"],
)
def test_malformed_session_policy_is_refused_not_issued(stack: Stack, text: str) -> None:
    assert error_code(partial(stack.session, "g-malformed", Policy=text)) == (
        "MalformedPolicyDocument"
    )


def test_session_tags_differing_only_in_case_are_refused(stack: Stack) -> None:
    refused = partial(stack.session, "g-twice", extra_tags={"JIT:Grant-ID": "g-else"})
    assert error_code(refused) == "ValidationError"


@pytest.mark.parametrize(
    "extra_tags",
    [
        {f"k{i}": "v" for i in range(49)},  # 51 with the grant and requester tags
        {"k" * 129: "v"},
        {"team": "v" * 257},
        {"team": "a;b"},
    ],
    ids=["51-tags", "129-char-key", "257-char-value", "character-outside-the-pattern"],
)
def test_session_tags_past_sts_limits_are_refused(stack: Stack, extra_tags: dict[str, str]) -> None:
    refused = partial(stack.session, "g-too-many", extra_tags=extra_tags)
    assert error_code(refused) == "ValidationError"


def test_more_than_ten_managed_session_policies_are_refused(stack: Stack) -> None:
    arn = {"arn": f"arn:aws:iam::{ACCOUNT}:policy/profile-bucket-a"}
    assert stack.reads(stack.session("g-ten", PolicyArns=[arn] * 10), BUCKET_A)
    refused = partial(stack.session, "g-eleven", PolicyArns=[arn] * 11)
    assert error_code(refused) == "ValidationError"


# --------------------------------------------------------------------------- pure evaluation

ROLE_POLICIES = [document(ROLE_GRANT)]
OBJECT_B = f"arn:aws:s3:::{BUCKET_B}/report.csv"
OBJECT_A = f"arn:aws:s3:::{BUCKET_A}/report.csv"


def context_at(now: float, tags: dict[str, str]) -> dict[str, str]:
    return {"aws:CurrentTime": iso(now)} | {f"aws:PrincipalTag/{k}": v for k, v in tags.items()}


def test_pure_session_policy_intersects_with_the_roles_policies() -> None:
    decide = partial(iam_eval.session_decision, ROLE_POLICIES, session_policies=[document(ONLY_A)])
    context = context_at(time.time(), {})
    assert decide("s3:GetObject", OBJECT_A, context) is Decision.ALLOW
    assert decide("s3:GetObject", OBJECT_B, context) is Decision.NEUTRAL
    assert decide("s3:PutObject", OBJECT_A, context) is Decision.NEUTRAL


def test_pure_no_session_policy_leaves_the_roles_permissions_and_an_empty_one_allows_none() -> None:
    context = context_at(time.time(), {})
    unrestricted = iam_eval.session_decision(ROLE_POLICIES, "s3:GetObject", OBJECT_B, context)
    assert unrestricted is Decision.ALLOW
    empty = iam_eval.session_decision(
        ROLE_POLICIES, "s3:GetObject", OBJECT_B, context, session_policies=[]
    )
    assert empty is Decision.NEUTRAL


def test_pure_session_policy_deny_after_expiry() -> None:
    now = time.time()
    sessions = [document(ROLE_GRANT, deny_after(now + 300))]
    decide = partial(iam_eval.session_decision, ROLE_POLICIES, session_policies=sessions)
    assert decide("s3:GetObject", OBJECT_A, context_at(now + 300, {})) is Decision.ALLOW
    assert decide("s3:GetObject", OBJECT_A, context_at(now + 301, {})) is Decision.DENY


def test_pure_boundary_session_policy_and_role_must_all_allow() -> None:
    context = context_at(time.time(), {})
    only_b = document(dict(ROLE_GRANT, Resource=bucket_resources(BUCKET_B)))
    decision = iam_eval.session_decision(
        ROLE_POLICIES,
        "s3:GetObject",
        OBJECT_A,
        context,
        boundary=only_b,
        session_policies=[document(ONLY_A)],
    )
    assert decision is Decision.NEUTRAL


def test_pure_revocation_deny_on_principal_tag_names_one_grant() -> None:
    role = [*ROLE_POLICIES, document(revoked("g-earlier", "g-revoked"))]
    role_tags = {"jit:mode": "shared-role"}
    now = time.time()

    def decide(grant_id: str) -> Decision:
        tags = iam_eval.principal_tags(role_tags, {GRANT_TAG: grant_id})
        return iam_eval.session_decision(role, "s3:GetObject", OBJECT_A, context_at(now, tags))

    assert decide("g-revoked") is Decision.DENY
    assert decide("g-other") is Decision.ALLOW


def test_pure_session_tags_override_role_tags_of_the_same_key_whatever_its_case() -> None:
    merged = iam_eval.principal_tags(
        {"Team": "red", "jit:mode": "shared-role"}, {"team": "blue", GRANT_TAG: "g-1"}
    )
    assert merged == {"team": "blue", "jit:mode": "shared-role", GRANT_TAG: "g-1"}
    assert iam_eval.principal_tags({"Team": "red"}, {}) == {"Team": "red"}
