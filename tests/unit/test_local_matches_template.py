"""The embedded local stack gives the broker the same least privilege as template.yaml, so a
permission the template lacks fails on the local stack too (moto enforces IAM there)."""

from __future__ import annotations

import re
from typing import Any

from jit_local.seed import (
    ACCOUNT_ID,
    AUDIT_BUS,
    DEAD_LETTER_QUEUE,
    OWNER_TAG,
    POLICY_PARAMETER,
    REGION,
    TABLE_NAME,
    broker_role_statements,
    cleanup_role_statements,
)
from tests.unit.test_template import load_template

BOUNDARY = f"arn:aws:iam::{ACCOUNT_ID}:policy/{OWNER_TAG}-jit-boundary"
SUBSTITUTIONS = {
    "AWS::Partition": "aws",
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::Region": REGION,
    "AccessPolicyParameterName": POLICY_PARAMETER,
    "GrantTable.Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{TABLE_NAME}",
    "AWS::StackName": OWNER_TAG,  # the local stack's owner tag is its "stack name"
}
KNOWN_ATTRIBUTES = {
    ("GrantTable", "Arn"): SUBSTITUTIONS["GrantTable.Arn"],
    ("AuditEventBus", "Arn"): f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{AUDIT_BUS}",
    ("AuditorDeadLetterQueue", "Arn"): f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{DEAD_LETTER_QUEUE}",
}


def resolve(value: Any) -> Any:
    """Template values as the local stack's: !Sub expanded, !Ref/!GetAtt of known resources."""
    if isinstance(value, dict) and len(value) == 1:
        ((tag, arg),) = value.items()
        if tag in ("Fn::Sub", "!Sub"):
            return re.sub(r"\$\{([^}]+)\}", lambda m: SUBSTITUTIONS[m.group(1)], arg)
        if tag in ("Ref", "!Ref") and arg == "JitRoleBoundary":
            return BOUNDARY
        if tag in ("Ref", "!Ref") and arg == "AWS::StackName":
            return OWNER_TAG
        if tag in ("Fn::GetAtt", "!GetAtt"):
            key = tuple(arg.split(".", 1)) if isinstance(arg, str) else tuple(arg)
            if key in KNOWN_ATTRIBUTES:
                return KNOWN_ATTRIBUTES[key]
    if isinstance(value, dict):
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


def normalized(statements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for statement in statements:
        s = resolve(statement)
        as_list = lambda v: sorted(v if isinstance(v, list) else [v])  # noqa: E731
        out[s["Sid"]] = {
            "Effect": s["Effect"],
            "Action": as_list(s["Action"]),
            "Resource": as_list(s["Resource"]),
            "Condition": s.get("Condition"),
        }
    return out


def test_local_broker_role_has_exactly_the_templates_statements() -> None:
    template = load_template()
    policies = template["Resources"]["BrokerRole"]["Properties"]["Policies"]
    (document,) = [p["PolicyDocument"] for p in policies]
    local = broker_role_statements(
        account=ACCOUNT_ID,
        region=REGION,
        table_name=TABLE_NAME,
        boundary_arn=BOUNDARY,
        parameter=POLICY_PARAMETER,
    )
    assert normalized(local) == normalized(document["Statement"])


def test_local_cleanup_role_has_exactly_the_templates_statements() -> None:
    template = load_template()
    policies = template["Resources"]["CleanupRole"]["Properties"]["Policies"]
    (document,) = [p["PolicyDocument"] for p in policies]
    local = cleanup_role_statements(
        account=ACCOUNT_ID, region=REGION, table_name=TABLE_NAME, parameter=POLICY_PARAMETER
    )
    assert normalized(local) == normalized(document["Statement"])


def test_local_cleanup_env_names_are_the_templates() -> None:
    from jit_local.seed import Seeded

    template = load_template()
    env = template["Resources"]["CleanupFunction"]["Properties"]["Environment"]["Variables"]
    local = Seeded(ACCOUNT_ID, REGION, TABLE_NAME, BOUNDARY, "arn:aws:iam::123456789012:role/x")
    names = set(local.cleanup_env("p"))
    # the template reads the policy from SSM, the local stack from a file
    assert set(env) - {"JIT_POLICY_PARAMETER"} == names - {"JIT_POLICY_FILE"}


def test_local_broker_env_names_are_the_templates() -> None:
    from jit_local.seed import Seeded

    template = load_template()
    env = template["Resources"]["BrokerFunction"]["Properties"]["Environment"]["Variables"]
    local = Seeded(
        ACCOUNT_ID,
        REGION,
        TABLE_NAME,
        BOUNDARY,
        "arn:aws:iam::123456789012:role/x",
        "arn:aws:iam::123456789012:role/y",
    ).broker_env("p")
    template_names = {k for k in env if k.startswith("JIT_")}
    # the template reads the policy from SSM, the local stack from a file
    # JIT_AUDIT_FUNCTION: locally the broker runs the auditor in-process (jit_local.server)
    assert template_names - {
        "JIT_POLICY_PARAMETER",
        "JIT_MAX_ROLES",
        "JIT_MAX_ROLES_PER_OWNER",
        "JIT_AUDIT_FUNCTION",
    } == set(local) - {"JIT_POLICY_FILE"}


def test_cleanup_role_the_local_stack_seeds_holds_exactly_the_templates_statements() -> None:
    # What is really in (moto's) IAM after seeding, read back: not only what the seed
    # function returns, so a seed that wrote something else, or more, fails here.
    import boto3
    from moto import mock_aws

    from jit_local.seed import CLEANUP_ROLE_NAME, seed_broker_resources

    template = load_template()
    policies = template["Resources"]["CleanupRole"]["Properties"]["Policies"]
    (document,) = [p["PolicyDocument"] for p in policies]
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        seeded = seed_broker_resources(iam, boto3.client("dynamodb", region_name=REGION))
        role = iam.get_role(RoleName=CLEANUP_ROLE_NAME)["Role"]
        names = iam.list_role_policies(RoleName=CLEANUP_ROLE_NAME)["PolicyNames"]
        attached = iam.list_attached_role_policies(RoleName=CLEANUP_ROLE_NAME)
        (name,) = names
        seeded_document = iam.get_role_policy(RoleName=CLEANUP_ROLE_NAME, PolicyName=name)[
            "PolicyDocument"
        ]
    assert seeded.cleanup_role_arn == role["Arn"]
    assert not role["Path"].startswith("/jit")
    assert attached["AttachedPolicies"] == []
    assert normalized(seeded_document["Statement"]) == normalized(document["Statement"])
