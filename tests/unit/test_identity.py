"""Identity comes from requestContext.identity only and is parsed strictly."""

from __future__ import annotations

import pytest

from jit_broker.errors import NotAuthenticated
from jit_broker.identity import caller_from_context, parse_caller

ACCOUNT = "123456789012"


def ctx(arn: str | None, account: str | None = ACCOUNT, caller: str | None = "AIDAEXAMPLE") -> dict:
    return {
        "identity": {
            "userArn": arn,
            "accountId": account,
            "caller": caller,
            "accessKey": "AKIDEXAMPLE",
        }
    }


def test_iam_user_is_its_own_requester() -> None:
    c = caller_from_context(ctx(f"arn:aws:iam::{ACCOUNT}:user/JITUser"))
    assert (c.principal_type, c.requester_id, c.name, c.source_identity) == (
        "user",
        f"arn:aws:iam::{ACCOUNT}:user/JITUser",
        "JITUser",
        "JITUser",
    )


def test_user_with_a_path_keeps_the_path_in_its_requester_id() -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:user/eng/platform/alice"
    c = parse_caller(arn, ACCOUNT)
    assert c.requester_id == arn and c.name == "alice"


def test_assumed_role_is_identified_by_its_role_not_its_session_name() -> None:
    a = parse_caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/Deploy/alice", ACCOUNT)
    b = parse_caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/Deploy/mallory", ACCOUNT)
    assert a.requester_id == b.requester_id == f"arn:aws:iam::{ACCOUNT}:role/Deploy"
    assert a.principal_type == "assumed-role" and a.session_name == "alice"
    assert a.source_identity == "Deploy@alice"


def test_federated_user_is_accepted() -> None:
    c = parse_caller(f"arn:aws:sts::{ACCOUNT}:federated-user/bob", ACCOUNT)
    assert c.principal_type == "federated-user" and c.name == "bob"


def test_govcloud_partition_is_understood() -> None:
    c = parse_caller(f"arn:aws-us-gov:sts::{ACCOUNT}:assumed-role/Ops/x1", ACCOUNT)
    assert c.requester_id == f"arn:aws-us-gov:iam::{ACCOUNT}:role/Ops"


@pytest.mark.parametrize(
    "context",
    [
        None,
        {},
        {"identity": None},
        ctx(None),
        ctx(f"arn:aws:iam::{ACCOUNT}:user/JITUser", account=None),
        ctx(f"arn:aws:iam::{ACCOUNT}:user/JITUser", caller=None),
    ],
    ids=["no context", "empty", "null identity", "no arn", "no account", "no caller"],
)
def test_missing_identity_is_refused(context: dict | None) -> None:
    with pytest.raises(NotAuthenticated, match="no verified IAM identity"):
        caller_from_context(context)


@pytest.mark.parametrize(
    ("arn", "message"),
    [
        (f"arn:aws:iam::{ACCOUNT}:root", "root"),
        (f"arn:aws:iam::{ACCOUNT}:group/Admins", "unrecognised"),
        (f"arn:aws:iam::{ACCOUNT}:role/Deploy", "unrecognised"),
        ("arn:aws:iam::12345678901:user/short-account", "unrecognised"),
        (f"arn:aws:iam::{ACCOUNT}:user/JIT User", "unrecognised"),
        (f"arn:aws:iam::{ACCOUNT}:user/JITUser\n", "unrecognised"),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/Deploy", "unrecognised"),
        (f"arn:evil:iam::{ACCOUNT}:user/x", "unrecognised"),
        ("*", "unrecognised"),
        ("arn:aws:iam::210987654321:user/JITUser", "does not match"),
    ],
)
def test_unusable_principals_are_refused(arn: str, message: str) -> None:
    with pytest.raises(NotAuthenticated, match=message):
        parse_caller(arn, ACCOUNT)
