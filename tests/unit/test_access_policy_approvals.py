"""A profile's approvers (issue 11): validated when the policy loads, matched exactly."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from jit_broker.access_policy import parse_policy
from jit_broker.errors import PolicyInvalid
from jit_broker.identity import parse_caller
from tests.unit.test_access_policy import ACCOUNT, example

A = f"arn:aws:iam::{ACCOUNT}:user/Approver1"
B = f"arn:aws:iam::{ACCOUNT}:user/Approver2"
ONCALL = f"arn:aws:iam::{ACCOUNT}:role/teams/Oncall"


def _with(**fields: Any) -> dict[str, Any]:
    doc = example()
    doc["profiles"]["s3-read"].update(fields)
    return doc


def _errors(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(yaml.safe_dump(doc))
    return info.value.errors


def test_one_approval_is_required_by_default_when_approvers_are_named() -> None:
    policy = parse_policy(yaml.safe_dump(_with(approvers={"users": [A]})))
    profile = policy.profiles["s3-read"]
    assert (profile.required_approvals, profile.review_window) == (1, 3600)
    assert policy.profiles["team-data-read"].required_approvals == 0  # none named


def test_more_approvals_than_distinct_approvers_is_refused_at_load() -> None:
    errors = _errors(_with(approvers={"users": [A, A], "roles": [ONCALL]}, approvals_required=3))
    assert len(errors) == 1
    assert errors[0].startswith("profiles.s3-read: ")
    assert "approvals_required is 3 but only 2 distinct approver(s)" in errors[0]
    # a role counts once, whatever its path is written as
    doc = _with(
        approvers={"roles": [ONCALL, f"arn:aws:iam::{ACCOUNT}:role/Oncall"]},
        approvals_required=2,
    )
    assert "only 1 distinct" in _errors(doc)[0]


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"approvals_required": 1}, "need approvers"),
        ({"review_window": 600}, "need approvers"),
        ({"approvers": {}}, "names no user and no role"),
        ({"approvers": {"users": [A]}, "review_window": 86401}, "less than or equal to 86400"),
        ({"approvers": {"users": [A]}, "review_window": 299}, "greater than or equal to 300"),
        ({"approvers": {"users": [A]}, "approvals_required": 0}, "greater than or equal to 1"),
        ({"approvers": {"users": ["arn:aws:iam::*:user/x"]}}, "should match pattern"),
        ({"approvers": {"groups": [A]}}, "Extra inputs are not permitted"),
    ],
)
def test_bad_approval_settings_are_refused_with_their_path(
    fields: dict[str, Any], said: str
) -> None:
    errors = _errors(_with(**fields))
    assert any(e.startswith("profiles.s3-read") and said in e for e in errors), errors


def test_approvers_match_by_exact_user_arn_or_by_role_never_by_session_name() -> None:
    policy = parse_policy(yaml.safe_dump(_with(approvers={"users": [A], "roles": [ONCALL]})))
    profile = policy.profiles["s3-read"]

    def may(arn: str) -> bool:
        return policy.may_approve(profile, parse_caller(arn, arn.split(":")[4]))

    assert may(A) and not may(B)
    assert not may(f"arn:aws:iam::{ACCOUNT}:user/approver1")  # exact, never case-folded
    assert may(f"arn:aws:sts::{ACCOUNT}:assumed-role/Oncall/alice")
    assert may(f"arn:aws:sts::{ACCOUNT}:assumed-role/Oncall/bob")
    assert not may(f"arn:aws:sts::{ACCOUNT}:assumed-role/Oncall2/alice")
    assert not may(f"arn:aws:sts::{ACCOUNT}:federated-user/Approver1")
    assert not may("arn:aws:iam::999999999999:user/Approver1")  # an account not admitted
    assert policy.approvable(parse_caller(A, ACCOUNT)) == ["s3-read"]


def test_a_person_is_the_caller_arn_whatever_its_case_or_session() -> None:
    alice = parse_caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/Oncall/alice", ACCOUNT)
    again = parse_caller(
        f"arn:aws:sts::{ACCOUNT}:assumed-role/Oncall/Alice", ACCOUNT, unique_id="x"
    )
    bob = parse_caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/Oncall/bob", ACCOUNT)
    assert alice.person == again.person != bob.person
