"""The embedded local stack runs the broker and the auditor with the template's own roles
(issue 8, "what proves it here" 3): what seeding really wrote to (moto's) IAM, read back, is the
translated template resolved for the local stack (jit_local.seed.local_stack), so the embedded
IAM enforces the template's least privilege on every call the demo and the tests make."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from jit_local.seed import (
    ACCOUNT_ID,
    MEMBER_A,
    MEMBER_B,
    OWNER_TAG,
    REGION,
    Seeded,
    local_stack,
    member_stack,
    organization_role_arn,
    seed_broker_resources,
    seed_member_account,
    table_definition,
)
from jit_local.template import Stack


@pytest.fixture(scope="module")
def stack() -> Stack:
    return local_stack()


@pytest.fixture
def seeded_iam() -> Any:
    """(what seed_broker_resources returned, an IAM client of the account it seeded)."""
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        seeded = seed_broker_resources(
            iam,
            boto3.client("dynamodb", region_name=REGION),
            events=boto3.client("events", region_name=REGION),
        )
        yield seeded, iam


def test_the_local_stack_is_the_template_resolved_for_account_region_and_stack_name(stack):
    assert (stack.account, stack.region, stack.name) == (ACCOUNT_ID, REGION, OWNER_TAG)
    assert stack.partition == "aws"


@pytest.mark.parametrize("logical_id", ["BrokerRole", "CleanupRole"])
def test_seeded_role_holds_exactly_the_translated_templates_inline_policies(
    seeded_iam, stack, logical_id
):
    _, iam = seeded_iam
    name = stack.ref(logical_id)
    names = iam.list_role_policies(RoleName=name)["PolicyNames"]
    held = {
        policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        for policy in names
    }
    assert held == stack.inline_policies(logical_id)


@pytest.mark.parametrize(
    ("logical_id", "field"),
    [("BrokerRole", "broker_role_arn"), ("CleanupRole", "cleanup_role_arn")],
)
def test_seeded_role_is_at_the_templates_arn_with_its_path_and_no_boundary(
    seeded_iam, stack, logical_id, field
):
    seeded, iam = seeded_iam
    role = iam.get_role(RoleName=stack.ref(logical_id))["Role"]
    assert role["Arn"] == getattr(seeded, field) == stack.arn(logical_id)
    assert role["Path"] == stack.properties(logical_id).get("Path", "/")
    assert "PermissionsBoundary" not in role


@pytest.mark.parametrize("logical_id", ["BrokerRole", "CleanupRole"])
def test_seeded_roles_leave_out_only_the_aws_managed_logs_and_xray_policies(
    seeded_iam, stack, logical_id
):
    # Nothing local writes CloudWatch Logs or X-Ray: the template's AWS managed policies for
    # them are the one part of the roles not seeded (test_deployed_policies judges them).
    _, iam = seeded_iam
    attached = iam.list_attached_role_policies(RoleName=stack.ref(logical_id))
    assert attached["AttachedPolicies"] == []
    assert {arn.rsplit("/", 1)[1] for arn in stack.managed_policy_arns(logical_id)} <= {
        "AWSLambdaBasicExecutionRole",
        "AWSXrayWriteOnlyAccess",
    }


def test_seeded_boundary_is_the_translated_boundary_at_the_arn_the_functions_are_given(
    seeded_iam, stack
):
    seeded, iam = seeded_iam
    assert seeded.boundary_arn == stack.ref("JitRoleBoundary")
    policy = iam.get_policy(PolicyArn=seeded.boundary_arn)["Policy"]
    version = iam.get_policy_version(
        PolicyArn=seeded.boundary_arn, VersionId=policy["DefaultVersionId"]
    )
    assert version["PolicyVersion"]["Document"] == stack.policy_document("JitRoleBoundary")
    for function in ("BrokerFunction", "CleanupFunction"):
        assert stack.environment(function)["JIT_BOUNDARY_POLICY_ARN"] == seeded.boundary_arn


def test_seeded_ledger_table_is_the_templates_table(stack):
    props = stack.properties("GrantTable")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        seeded = seed_broker_resources(boto3.client("iam", region_name=REGION), dynamodb)
        table = dynamodb.describe_table(TableName=seeded.table_name)["Table"]
    assert seeded.table_name == stack.ref("GrantTable")
    assert table["TableArn"] == stack.arn("GrantTable")
    definition = table_definition(seeded.table_name)
    for key in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode"):
        assert definition[key] == props[key], key


def test_seeded_audit_and_grant_buses_are_the_templates(seeded_iam, stack):
    events = boto3.client("events", region_name=REGION)  # seeded_iam's moto is still on
    names = [bus["Name"] for bus in events.list_event_buses()["EventBuses"]]
    assert stack.ref("AuditEventBus") in names
    assert stack.ref("GrantEventBus") in names
    for function in ("BrokerFunction", "CleanupFunction"):
        assert local_envs(stack)[function]["JIT_GRANT_EVENT_BUS"] == stack.ref("GrantEventBus")


# --------------------------------------------------------------------------- the environments

# Left to the settings' defaults locally (equal to the template's defaults: tested below).
DEFAULTED = {"JIT_MAX_ROLES", "JIT_MAX_ROLES_PER_OWNER"}
# The template reads the access policy from SSM, the local stack from a file; locally the
# broker runs the auditor in-process (jit_local.server), not through lambda:InvokeFunction by
# name; the auditor's local env is built on the broker's (its own role's ARN included).
TEMPLATE_ONLY = {
    "BrokerFunction": {"JIT_POLICY_PARAMETER", "JIT_AUDIT_FUNCTION", *DEFAULTED},
    "CleanupFunction": {"JIT_POLICY_PARAMETER"},
}
LOCAL_ONLY = {
    "BrokerFunction": {"JIT_POLICY_FILE"},
    "CleanupFunction": {"JIT_POLICY_FILE", "JIT_AUDITOR_ROLE_ARN"},
}


def local_envs(stack: Stack) -> dict[str, dict[str, str]]:
    seeded = Seeded(
        ACCOUNT_ID,
        REGION,
        stack.ref("GrantTable"),
        stack.ref("JitRoleBoundary"),
        stack.arn("BrokerRole"),
        stack.arn("CleanupRole"),
    )
    return {
        "BrokerFunction": seeded.broker_env("policy.yaml"),
        "CleanupFunction": seeded.cleanup_env("policy.yaml"),
    }


@pytest.mark.parametrize("function", ["BrokerFunction", "CleanupFunction"])
def test_local_function_env_has_the_templates_jit_settings_with_the_templates_values(
    stack, function
):
    """Same names (but for the differences above) and, for the names both have, the values
    the template resolves to for the local stack: the role path, owner tag, table, boundary,
    roles and bus the local functions use are the ones seeded from the template."""
    template = {k: v for k, v in stack.environment(function).items() if k.startswith("JIT_")}
    local = local_envs(stack)[function]
    assert set(template) - TEMPLATE_ONLY[function] == set(local) - LOCAL_ONLY[function]
    shared = set(template) & set(local)
    assert {k: local[k] for k in shared} == {k: template[k] for k in shared}


@pytest.mark.parametrize("function", ["BrokerFunction", "CleanupFunction"])
def test_local_function_env_names_the_two_member_accounts_and_the_templates_execution_role(
    stack, function
):
    local = local_envs(stack)[function]
    assert local["JIT_MEMBER_ACCOUNTS"] == f"{MEMBER_A},{MEMBER_B}"
    assert local["JIT_MEMBER_ROLE_NAME"] == stack.environment(function)["JIT_MEMBER_ROLE_NAME"]
    assert stack.environment(function)["JIT_MEMBER_ACCOUNTS"] == f"{MEMBER_A},{MEMBER_B}"
    assert len({ACCOUNT_ID, MEMBER_A, MEMBER_B}) == 3


# --------------------------------------------------------------------------- member accounts


@pytest.fixture
def seeded_member() -> Any:
    """(what seed_member_account returned, an IAM client of member account A it seeded)."""
    with mock_aws():
        sts = boto3.client("sts", region_name=REGION)
        c = sts.assume_role(RoleArn=organization_role_arn(MEMBER_A), RoleSessionName="seed")
        iam = boto3.client(
            "iam",
            region_name=REGION,
            aws_access_key_id=c["Credentials"]["AccessKeyId"],
            aws_secret_access_key=c["Credentials"]["SecretAccessKey"],
            aws_session_token=c["Credentials"]["SessionToken"],
        )
        yield seed_member_account(iam, MEMBER_A), iam


def test_member_stack_is_the_member_template_given_the_hubs_own_values(stack):
    member = member_stack(MEMBER_A)
    assert (member.account, member.region) == (MEMBER_A, REGION)
    assert member.parameters["HubStackName"] == OWNER_TAG
    assert member.parameters["HubBrokerRoleArn"] == stack.arn("BrokerRole")
    assert member.parameters["HubAuditorRoleArn"] == stack.arn("CleanupRole")
    assert member.parameters["HubApiId"] == stack.ref("JitApi")
    assert (
        member.ref("MemberExecutionRole")
        == stack.environment("BrokerFunction")["JIT_MEMBER_ROLE_NAME"]
    )


def test_seeded_member_holds_the_member_templates_boundary_and_execution_role(seeded_member):
    seeded, iam = seeded_member
    member = member_stack(MEMBER_A)
    assert seeded.account_id == MEMBER_A
    assert seeded.boundary_arn == member.ref("JitRoleBoundary")
    assert seeded.boundary_arn == f"arn:aws:iam::{MEMBER_A}:policy/{OWNER_TAG}-jit-boundary"
    version = iam.get_policy_version(PolicyArn=seeded.boundary_arn, VersionId="v1")
    assert version["PolicyVersion"]["Document"] == member.policy_document("JitRoleBoundary")
    name = member.ref("MemberExecutionRole")
    role = iam.get_role(RoleName=name)["Role"]
    assert role["Arn"] == seeded.execution_role_arn == f"arn:aws:iam::{MEMBER_A}:role/{name}"
    props = member.properties("MemberExecutionRole")
    assert role["AssumeRolePolicyDocument"] == props["AssumeRolePolicyDocument"]
    held = {
        policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
    }
    assert held == member.inline_policies("MemberExecutionRole")
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []


def test_seeded_member_has_every_resource_of_the_member_template_and_nothing_else(seeded_member):
    _, iam = seeded_member
    member = member_stack(MEMBER_A)
    assert set(member.template["Resources"]) == {"JitRoleBoundary", "MemberExecutionRole"}
    assert [r["RoleName"] for r in iam.list_roles()["Roles"]] == [member.ref("MemberExecutionRole")]
    policies = [p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]]
    assert policies == [member.ref("JitRoleBoundary")]


def test_a_member_template_resource_the_local_stack_cannot_create_refuses_the_seeding(
    monkeypatch,
):
    import jit_local.seed as seed_module
    from jit_local.template import MEMBER_TEMPLATE_PATH, translate

    def translate_with_a_bucket(path: Any = None) -> dict[str, Any]:
        if path != MEMBER_TEMPLATE_PATH:
            return translate() if path is None else translate(path)
        translated = translate(path)
        translated["Resources"]["Audit"] = {"Type": "AWS::S3::Bucket", "Properties": {}}
        return translated

    monkeypatch.setattr(seed_module, "translate", translate_with_a_bucket)
    with mock_aws(), pytest.raises(ValueError, match="AWS::S3::Bucket"):
        seed_member_account(boto3.client("iam", region_name=REGION), MEMBER_A)
