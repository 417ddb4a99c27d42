"""Limits from outside the access policy, checked when it loads: the managed policies the
stack lets the broker attach (template.yaml's ManagedPolicyAllowList, in the broker's
JIT_MANAGED_POLICY_ALLOW_LIST), and statement ids the broker writes itself or that repeat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from jit_broker import documents
from jit_broker.access_policy import broker_sids, parse_policy
from jit_broker.adapters import policy_source
from jit_broker.errors import PolicyInvalid
from jit_broker.settings import Settings
from tests.conftest import BROKER_ENV

EXAMPLE = (
    Path(__file__).resolve().parents[2]
    / "src"
    / "local"
    / "jit_local"
    / "access-policy.example.yaml"
)
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
OWN = "arn:aws:iam::123456789012:policy/team/Deploy"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    policy_source._file_cache.clear()


def example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def with_managed(*arns: str) -> dict[str, Any]:
    doc = example()
    doc["managed_policy_allow_list"] = list(arns)
    doc["profiles"]["s3-read"]["permissions"]["managed"] = list(arns)
    return doc


def errors_of(doc: dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(yaml.safe_dump(doc), **kwargs)
    return info.value.errors


def statement(sid: str, bucket: str = "example-bucket") -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket}


# ---------------------------------------------------------------- the stack's managed policies


def test_stack_allow_list_is_read_comma_separated_from_the_environment() -> None:
    settings = Settings.from_env(
        BROKER_ENV | {"JIT_MANAGED_POLICY_ALLOW_LIST": f"{READ_ONLY}, {OWN},"}
    )
    assert settings.managed_policy_allow_list == (READ_ONLY, OWN)


@pytest.mark.parametrize("env", [{}, {"JIT_MANAGED_POLICY_ALLOW_LIST": ""}])
def test_stack_allow_list_unset_or_empty_allows_no_managed_policy(env: dict[str, str]) -> None:
    assert Settings.from_env(BROKER_ENV | env).managed_policy_allow_list == ()


def test_stack_allow_list_entry_that_is_not_a_policy_arn_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="managed_policy_allow_list"):
        Settings.from_env(BROKER_ENV | {"JIT_MANAGED_POLICY_ALLOW_LIST": "ReadOnlyAccess"})


def test_policy_within_the_stack_allow_list_loads() -> None:
    policy = parse_policy(
        yaml.safe_dump(with_managed(READ_ONLY)), stack_managed_policies=(READ_ONLY, OWN)
    )
    assert policy.profiles["s3-read"].permissions.managed == [READ_ONLY]


def test_each_managed_policy_the_stack_does_not_allow_is_named_with_what_to_change() -> None:
    errors = errors_of(with_managed(READ_ONLY, ADMIN, OWN), stack_managed_policies=(READ_ONLY,))
    assert [e.split(":", 1)[0] for e in errors] == [
        "managed_policy_allow_list.1",
        "managed_policy_allow_list.2",
    ]
    assert ADMIN in errors[0] and OWN in errors[1]
    assert all("ManagedPolicyAllowList" in e and "not allowed by this stack" in e for e in errors)


def test_a_stack_allowing_none_refuses_a_policy_that_allows_any() -> None:
    (error,) = errors_of(with_managed(READ_ONLY), stack_managed_policies=())
    assert READ_ONLY in error and "ManagedPolicyAllowList" in error


def test_allow_list_entries_no_profile_uses_must_still_be_allowed_by_the_stack() -> None:
    doc = example()
    doc["managed_policy_allow_list"] = [ADMIN]  # allowed by the policy, attached by none yet
    (error,) = errors_of(doc, stack_managed_policies=())
    assert ADMIN in error


def test_load_policy_checks_the_stack_list_on_every_load_of_a_cached_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(with_managed(READ_ONLY)))
    assert policy_source.load_policy(path=str(path), stack_managed_policies=(READ_ONLY,))
    with pytest.raises(PolicyInvalid, match="ManagedPolicyAllowList"):
        policy_source.load_policy(path=str(path), stack_managed_policies=())


def test_the_broker_built_from_settings_refuses_a_policy_beyond_its_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jit_broker import runtime, settings
    from jit_local.seed import MEMBER_ACCOUNTS, MEMBER_ROLE_NAME

    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(with_managed(READ_ONLY)))
    # The stack has the example's member accounts: only the managed policy is beyond it.
    members = {
        "JIT_MEMBER_ACCOUNTS": ",".join(MEMBER_ACCOUNTS),
        "JIT_MEMBER_ROLE_NAME": MEMBER_ROLE_NAME,
    }
    for name, value in (BROKER_ENV | members | {"JIT_POLICY_FILE": str(path)}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("JIT_MANAGED_POLICY_ALLOW_LIST", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    settings.get_settings.cache_clear()
    try:
        broker = runtime.build_broker()
        with pytest.raises(PolicyInvalid, match="ManagedPolicyAllowList"):
            broker._policy()
        monkeypatch.setenv("JIT_MANAGED_POLICY_ALLOW_LIST", READ_ONLY)
        settings.get_settings.cache_clear()
        assert runtime.build_broker()._policy().managed_policy_allow_list == [READ_ONLY]
    finally:
        settings.get_settings.cache_clear()


# ---------------------------------------------------------------- statement ids


def test_the_broker_reserves_every_sid_it_writes() -> None:
    assert {"DenyAfterGrantExpiry", "GrantRevoked", "BrokerOnlyWithSourceIdentity"} <= (
        broker_sids()
    )
    tail = documents.grant_policy([], 0)["Statement"][-1]
    assert tail["Sid"] in broker_sids()


@pytest.mark.parametrize("sid", ["DenyAfterGrantExpiry", "GrantRevoked"])
def test_a_profile_statement_taking_the_brokers_sid_is_refused_naming_profile_and_sid(
    sid: str,
) -> None:
    doc = example()
    doc["profiles"]["s3-read"]["permissions"]["inline"]["Statement"].append(statement(sid))
    (error,) = errors_of(doc)
    assert error.startswith("profiles.s3-read.permissions.inline.Statement:")
    assert f"Sid {sid!r} is the broker's own" in error


def test_duplicate_sids_in_one_profile_are_refused_naming_profile_and_sid() -> None:
    doc = example()
    doc["profiles"]["s3-read"]["permissions"]["inline"]["Statement"].append(
        statement("ReadObjects", "arn:aws:s3:::other-bucket")
    )
    (error,) = errors_of(doc)
    assert error.startswith("profiles.s3-read.permissions.inline.Statement:")
    assert "Sid 'ReadObjects' is used by 2 statements" in error


def test_every_profile_with_a_bad_sid_is_reported() -> None:
    doc = example()
    second = yaml.safe_load(yaml.safe_dump(doc["profiles"]["s3-read"]))
    second["permissions"]["inline"]["Statement"] = [statement("A"), statement("A")]
    doc["profiles"]["s3-list"] = second
    doc["profiles"]["s3-read"]["permissions"]["inline"]["Statement"].append(
        statement("DenyAfterGrantExpiry")
    )
    errors = errors_of(doc)
    assert sorted(e.split(".")[1] for e in errors) == ["s3-list", "s3-read"]


def test_the_same_sid_in_two_profiles_and_statements_without_sid_are_fine() -> None:
    doc = example()
    second = yaml.safe_load(yaml.safe_dump(doc["profiles"]["s3-read"]))
    doc["profiles"]["s3-again"] = second  # ListBucket and ReadObjects again: another role
    unnamed = statement("X")
    del unnamed["Sid"]
    doc["profiles"]["s3-read"]["permissions"]["inline"]["Statement"] += [unnamed, dict(unnamed)]
    assert set(parse_policy(yaml.safe_dump(doc)).profiles) == set(example()["profiles"]) | {
        "s3-again"
    }
