"""The access policy comes from SSM Parameter Store in AWS (cached) and from a file locally;
an invalid document is refused with the paths of its bad fields."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from jit_broker.adapters import policy_source
from jit_broker.errors import PolicyInvalid

EXAMPLE = (
    Path(__file__).resolve().parents[2]
    / "src"
    / "local"
    / "jit_local"
    / "access-policy.example.yaml"
)


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    policy_source._ssm_cache.clear()
    policy_source._file_cache.clear()


def test_policy_is_read_from_ssm_and_cached() -> None:
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        ssm.put_parameter(
            Name="/jit-broker/access-policy", Type="String", Value=EXAMPLE.read_text()
        )
        first = policy_source.load_policy(parameter="/jit-broker/access-policy")
        ssm.put_parameter(
            Name="/jit-broker/access-policy",
            Type="String",
            Overwrite=True,
            Value=EXAMPLE.read_text().replace("max_window: 3600", "max_window: 7200"),
        )
        cached = policy_source.load_policy(parameter="/jit-broker/access-policy")
    assert list(first.profiles) == [
        "s3-read",
        "team-data-read",
        "s3-read-fast",
        "s3-write-approved",
        "s3-break-glass",
    ]
    assert cached is first  # within max_age the parameter is not read again


def test_invalid_policy_in_ssm_is_reported_by_field_path() -> None:
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        ssm.put_parameter(
            Name="/p",
            Type="String",
            Value=EXAMPLE.read_text().replace("max_session: 3600", "max_session: 7200"),
        )
        with pytest.raises(PolicyInvalid) as info:
            policy_source.load_policy(parameter="/p")
    assert any(e.startswith("profiles.s3-read.max_session:") for e in info.value.errors)


def test_file_policy_is_reloaded_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(EXAMPLE.read_text())
    assert policy_source.load_policy(path=str(path)).profiles["s3-read"].max_window == 3600
    path.write_text(EXAMPLE.read_text().replace("max_window: 3600", "max_window: 7200"))
    import os

    os.utime(path, (1, 1))  # a different mtime, as an edit would give
    assert policy_source.load_policy(path=str(path)).profiles["s3-read"].max_window == 7200


def test_a_missing_ssm_parameter_is_a_typed_503_not_a_crash() -> None:
    from jit_broker.errors import PolicyUnavailable

    with mock_aws(), pytest.raises(PolicyUnavailable) as refused:
        policy_source.load_policy(parameter="/jit-broker/no-such-policy")
    assert refused.value.status == 503 and refused.value.code == "policy_unavailable"
    assert "no-such-policy" not in refused.value.message  # nothing of the stack's layout


def test_a_missing_policy_file_is_a_typed_503(tmp_path: Path) -> None:
    from jit_broker.errors import PolicyUnavailable

    with pytest.raises(PolicyUnavailable):
        policy_source.load_policy(path=str(tmp_path / "absent.yaml"))
