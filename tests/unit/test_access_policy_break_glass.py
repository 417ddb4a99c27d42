"""Break-glass profiles (issue 11, part 3): validated when the policy loads (approvers named,
no approval settings, the policy's window cap and review time in range), granted without
approval and their window capped by the policy."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from jit_broker.access_policy import parse_policy
from jit_broker.errors import PolicyInvalid
from tests.unit.test_access_policy import ACCOUNT, example

A = f"arn:aws:iam::{ACCOUNT}:user/Approver1"
ONCALL = f"arn:aws:iam::{ACCOUNT}:role/Oncall"


def _doc(profile: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    doc = example()
    fields = {"break_glass": True, "approvers": {"users": [A], "roles": [ONCALL]}}
    doc["profiles"]["s3-read"].update(fields if profile is None else profile)
    doc.update(top)
    return doc


def _errors(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(yaml.safe_dump(doc))
    return info.value.errors


def test_a_break_glass_profile_needs_no_approval_and_its_window_is_capped_by_the_policy() -> None:
    policy = parse_policy(yaml.safe_dump(_doc(break_glass_max_window=1800)))
    profile = policy.profiles["s3-read"]
    assert profile.break_glass and profile.required_approvals == 0
    assert profile.max_window == 3600 and policy.window_limit(profile) == 1800
    assert policy.break_glass_review_within == 86400  # the default: a day
    other = policy.profiles["team-data-read"]
    assert policy.window_limit(other) == other.max_window  # not break-glass: not capped


def test_the_profile_s_own_shorter_window_wins_over_the_policy_cap() -> None:
    profile = {
        "break_glass": True,
        "approvers": {"users": [A]},
        "max_window": 900,
        "max_session": 900,
    }
    policy = parse_policy(yaml.safe_dump(_doc(profile)))
    assert policy.window_limit(policy.profiles["s3-read"]) == 900
    assert policy.break_glass_max_window == 3600  # the default: an hour


@pytest.mark.parametrize(
    ("profile", "said"),
    [
        ({"break_glass": True}, "break_glass needs approvers"),
        (
            {"break_glass": True, "approvers": {"users": [A]}, "approvals_required": 1},
            "granted without approval",
        ),
        (
            {"break_glass": True, "approvers": {"users": [A]}, "review_window": 600},
            "granted without approval",
        ),
        ({"break_glass": True, "approvers": {}}, "names no user and no role"),
        ({"break_glass": "sometimes", "approvers": {"users": [A]}}, "valid boolean"),
    ],
)
def test_bad_break_glass_profiles_are_refused_at_load_with_their_path(
    profile: dict[str, Any], said: str
) -> None:
    errors = _errors(_doc(profile))
    assert any(e.startswith("profiles.s3-read") and said in e for e in errors), errors


@pytest.mark.parametrize(
    ("top", "said"),
    [
        ({"break_glass_max_window": 899}, "break_glass_max_window: Input should be greater"),
        ({"break_glass_max_window": 14401}, "break_glass_max_window: Input should be less"),
        ({"break_glass_review_within": 3599}, "break_glass_review_within: Input should be greater"),
        ({"break_glass_review_within": 604801}, "break_glass_review_within: Input should be less"),
        ({"break_glass_max_window": "1h"}, "break_glass_max_window: Input should be a valid"),
    ],
)
def test_break_glass_settings_out_of_range_are_refused_at_load(
    top: dict[str, Any], said: str
) -> None:
    errors = _errors(_doc(**top))
    assert any(e.startswith(said) for e in errors), errors


def test_the_limits_of_the_settings_themselves_load() -> None:
    for window, within in ((900, 3600), (14400, 604800)):
        policy = parse_policy(
            yaml.safe_dump(_doc(break_glass_max_window=window, break_glass_review_within=within))
        )
        assert (policy.break_glass_max_window, policy.break_glass_review_within) == (
            window,
            within,
        )
