"""An access policy larger than a Standard SSM parameter holds (4 KB) lives in an Advanced-tier
parameter (up to 8 KB) and loads as any other: GetParameter reads both tiers alike.

moto does not enforce the tiers' sizes, so what this proves is the broker's side: the
parameter it reads is named, not sized, and nothing in loading truncates or refuses a
document of that size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from jit_broker.adapters import policy_source

EXAMPLE = (
    Path(__file__).resolve().parents[2]
    / "src"
    / "local"
    / "jit_local"
    / "access-policy.example.yaml"
)
STANDARD_MAX_BYTES = 4096
ADVANCED_MAX_BYTES = 8192
NAME = "/jit-broker/access-policy"


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    policy_source._ssm_cache.clear()


def large_policy() -> str:
    """The example's s3-read with enough profiles beside it to pass 4 KB, each its own
    bucket's reader."""
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    template = doc["profiles"]["s3-read"]
    doc["profiles"] = {"s3-read": template}
    for i in range(9):
        profile = yaml.safe_load(yaml.safe_dump(template))
        profile["description"] = f"Read-only access to team-{i:02d}-bucket"
        for stmt in profile["permissions"]["inline"]["Statement"]:
            stmt["Resource"] = stmt["Resource"].replace("example-bucket", f"team-{i:02d}-bucket")
        doc["profiles"][f"team-{i:02d}-read"] = profile
    return yaml.safe_dump(doc, sort_keys=False)


def test_a_policy_over_4kb_in_an_advanced_parameter_loads_whole() -> None:
    text = large_policy()
    size = len(text.encode())
    assert STANDARD_MAX_BYTES < size <= ADVANCED_MAX_BYTES, size
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        ssm.put_parameter(Name=NAME, Type="String", Tier="Advanced", Value=text)
        (described,) = ssm.describe_parameters()["Parameters"]
        policy = policy_source.load_policy(parameter=NAME)
    assert described["Tier"] == "Advanced"
    assert len(policy.profiles) == 10
    assert policy.profiles["team-08-read"].permissions.inline is not None
    last = policy.profiles["team-08-read"].permissions.inline.statements()[-1]
    assert last["Resource"] == "arn:aws:s3:::team-08-bucket/*"
