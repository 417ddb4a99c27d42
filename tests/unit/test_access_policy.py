"""The access policy: validated strictly, bad fields reported by path, matching exact."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jit_broker.access_policy import parse_policy
from jit_broker.errors import PolicyInvalid
from jit_broker.identity import parse_caller

EXAMPLE = (
    Path(__file__).resolve().parents[2]
    / "src"
    / "local"
    / "jit_local"
    / "access-policy.example.yaml"
)
ACCOUNT = "123456789012"


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def errors_of(doc: dict) -> list[str]:
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(yaml.safe_dump(doc))
    return info.value.errors


def test_the_shipped_example_is_valid() -> None:
    policy = parse_policy(EXAMPLE.read_text())
    assert list(policy.profiles) == [
        "s3-read",
        "team-data-read",
        "s3-read-fast",
        "s3-write-approved",
        "s3-break-glass",
    ]
    assert policy.profiles["s3-read"].max_session == 3600
    # Issue 9: a profile in the local stack's two member accounts, and a shared-role one.
    assert policy.profiles["team-data-read"].accounts == ["210987654321", "345678901234"]
    assert policy.profiles["s3-read-fast"].mode.value == "shared-role"


def test_unknown_field_is_reported_with_its_path() -> None:
    doc = example()
    doc["profiles"]["s3-read"]["max_sesion"] = 900
    assert errors_of(doc) == ["profiles.s3-read.max_sesion: Extra inputs are not permitted"]


def test_session_over_an_hour_is_refused() -> None:
    doc = example()
    doc["profiles"]["s3-read"]["max_session"] = 7200
    (err,) = errors_of(doc)
    assert err.startswith("profiles.s3-read.max_session:") and "3600" in err


def test_bad_requester_arn_is_refused() -> None:
    doc = example()
    doc["profiles"]["s3-read"]["requesters"]["users"] = ["arn:aws:iam::123456789012:user/*"]
    (err,) = errors_of(doc)
    assert err.startswith("profiles.s3-read.requesters.users.0:")


def test_statement_with_a_principal_is_refused() -> None:
    doc = example()
    doc["profiles"]["s3-read"]["permissions"]["inline"]["Statement"][0]["Principal"] = "*"
    (err,) = errors_of(doc)
    assert "Statement.0.Principal" in err


def test_statement_needs_action_and_resource() -> None:
    doc = example()
    del doc["profiles"]["s3-read"]["permissions"]["inline"]["Statement"][0]["Action"]
    (err,) = errors_of(doc)
    assert "exactly one of Action or NotAction" in err


def test_managed_policy_outside_the_allow_list_is_refused() -> None:
    doc = example()
    doc["profiles"]["s3-read"]["permissions"]["managed"] = [
        "arn:aws:iam::aws:policy/AdministratorAccess"
    ]
    (err,) = errors_of(doc)
    assert "not in managed_policy_allow_list" in err and "AdministratorAccess" in err


def test_oversized_inline_policy_is_refused() -> None:
    doc = example()
    doc["profiles"]["s3-read"]["permissions"]["inline"]["Statement"] = [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::bucket-{i:04d}/*"}
        for i in range(300)
    ]
    (err,) = errors_of(doc)
    assert "characters" in err


def test_bad_ticket_pattern_is_refused() -> None:
    doc = example()
    doc["profiles"]["s3-read"]["ticket_pattern"] = "([A-Z"
    (err,) = errors_of(doc)
    assert "ticket_pattern" in err


def test_not_yaml_is_reported() -> None:
    with pytest.raises(PolicyInvalid, match="not valid YAML"):
        parse_policy("profiles: [unclosed")


def test_entitlement_is_exact() -> None:
    policy = parse_policy(EXAMPLE.read_text())
    profile = policy.profiles["s3-read"]
    yes = parse_caller(f"arn:aws:iam::{ACCOUNT}:user/JITUser", ACCOUNT)
    for arn in [
        f"arn:aws:iam::{ACCOUNT}:user/JITUser2",
        f"arn:aws:iam::{ACCOUNT}:user/jituser",
        f"arn:aws:iam::{ACCOUNT}:user/x/JITUser",
    ]:
        assert not policy.is_entitled(profile, parse_caller(arn, ACCOUNT)), arn
    assert policy.is_entitled(profile, yes)


def test_role_entitlement_ignores_role_path_and_session() -> None:
    doc = example()
    doc["profiles"]["s3-read"]["requesters"] = {"roles": [f"arn:aws:iam::{ACCOUNT}:role/ci/Deploy"]}
    policy = parse_policy(yaml.safe_dump(doc))
    caller = parse_caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/Deploy/build-42", ACCOUNT)
    assert policy.is_entitled(policy.profiles["s3-read"], caller)


def test_account_entitlement_needs_the_account_allowed_too() -> None:
    doc = example()
    doc["profiles"]["s3-read"]["requesters"] = {"accounts": ["210987654321"]}
    policy = parse_policy(yaml.safe_dump(doc))
    caller = parse_caller("arn:aws:iam::210987654321:user/x", "210987654321")
    assert not policy.is_entitled(policy.profiles["s3-read"], caller)
