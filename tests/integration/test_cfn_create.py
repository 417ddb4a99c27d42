"""moto's CloudFormation creates the translated stack (issue 8, "what proves it here" 4), and
the policies it creates are the ones jit_local.template resolves (the resolver the policy table
and the local stack rest on, checked against an independent implementation of CloudFormation).

What moto needs, and why (each applied below, and each asserted so a change shows):
1. Code as S3 objects: ``translate`` points CodeUri/ContentUri at
   s3://jit-broker-artifacts/<directory>, as ``sam package`` uploads them; a zip is put at each
   key, as ``sam package`` would have. moto's Lambda reads the code from its S3.
2. Resource types moto's CloudFormation cannot create are removed (moto would skip them with a
   warning, leaving Refs to them dangling): UNSUPPORTED_TYPES, asserted to be exactly what the
   template uses. AWS::CloudFormation::WaitConditionHandle is one: moto "creates" it as nothing,
   with no physical id, which breaks DescribeStackResources. DependsOn on them is dropped.
3. AWS::ApiGateway::Deployment is removed too: moto's RestApi ignores Body (no OpenAPI
   import), so a deployment finds no method ("The REST API doesn't contain any methods").
4. The RestApi's Name: CloudFormation takes it from Body's info.title; moto requires Name.
5. A Ref to an AWS::Events::EventBus: moto's bus has no physical id and the Ref returns moto's
   object; it is replaced by the bus's Name property, which is what Ref returns on AWS.
6. AWS::NoValue as a list element (Fn::If in the boundary's statements): moto keeps it as a
   null statement (a malformed policy); such elements are dropped beforehand, their condition
   evaluated by jit_local.template.
7. A resource whose Condition is false (the optional grant notification topic, its policy and
   rule): CloudFormation never creates it, but moto "creates" some types as nothing, with no
   logical or physical id, which breaks DescribeStackResources. They are dropped beforehand,
   their condition evaluated by jit_local.template (the expected resources leave them out
   the same way).
The member template (templates/member-account.yaml, issue 9) is created the same way, in an
account of its own, as a StackSet's stack instance.
Reading back: moto's CloudFormation stores a role's inline policy as Python's repr of the
document (read with ast.literal_eval), and a Number parameter as a number where AWS gives a
string (a function's environment values are compared as strings).
"""

from __future__ import annotations

import ast
import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudformation.parsing import get_model_map

from jit_local.template import CODE_BUCKET, Stack, translate

ROOT = Path(__file__).resolve().parents[2]
STACK_NAME = "jit-broker-local"
REGION = "us-east-1"
UNSUPPORTED_TYPES = {
    "AWS::ApiGateway::Account",
    "AWS::ApiGateway::Stage",
    "AWS::CloudFormation::WaitConditionHandle",
    "AWS::CloudWatch::Alarm",
    "AWS::Lambda::EventInvokeConfig",
}
NO_OPENAPI_IMPORT = {"AWS::ApiGateway::Deployment"}
NO_VALUE = {"Ref": "AWS::NoValue"}


def code_locations(template: dict[str, Any]) -> set[tuple[str, str]]:
    locations = set()
    for resource in template["Resources"].values():
        for key in ("Code", "Content"):
            location = resource.get("Properties", {}).get(key)
            if isinstance(location, dict) and "S3Key" in location:
                locations.add((location["S3Bucket"], location["S3Key"]))
    return locations


def for_moto(
    translated: dict[str, Any], parameters: dict[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The translated template with moto's workarounds (2-6 above), and what was removed;
    its conditions decided for the stack's ``parameters`` (the template's defaults unless
    given)."""
    template = copy.deepcopy(translated)
    resources = template["Resources"]
    conditions = Stack(translated, STACK_NAME, parameters=parameters or {})
    for name in [n for n, r in resources.items() if "Condition" in r]:
        if not conditions.condition(resources[name]["Condition"]):
            del resources[name]
    removed = {
        name: r["Type"]
        for name, r in resources.items()
        if r["Type"] not in get_model_map() or r["Type"] in NO_OPENAPI_IMPORT
    }
    for name in removed:
        del resources[name]
    for resource in resources.values():
        depends = resource.get("DependsOn")
        if depends is not None:
            kept = [
                d for d in ([depends] if isinstance(depends, str) else depends) if d not in removed
            ]
            resource.pop("DependsOn")
            if kept:
                resource["DependsOn"] = kept
    for api in (r for r in resources.values() if r["Type"] == "AWS::ApiGateway::RestApi"):
        api["Properties"].setdefault("Name", api["Properties"]["Body"]["info"]["title"])
    buses = {
        name: r["Properties"]["Name"]
        for name, r in resources.items()
        if r["Type"] == "AWS::Events::EventBus"
    }
    stack = Stack(translated, STACK_NAME, parameters=parameters or {})

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Ref"} and value["Ref"] in buses:
                return buses[value["Ref"]]
            return {k: rewrite(v) for k, v in value.items()}
        if isinstance(value, list):
            kept = []
            for item in value:
                if isinstance(item, dict) and set(item) == {"Fn::If"}:
                    condition, if_true, if_false = item["Fn::If"]
                    item = if_true if stack.condition(condition) else if_false
                    if item == NO_VALUE:
                        continue
                kept.append(rewrite(item))
            return kept
        return value

    template["Resources"] = rewrite(resources)
    return template, removed


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return translate()


@pytest.fixture(scope="module")
def created(translated: dict[str, Any]) -> Any:
    """(the stack's resources by logical id, what was removed, clients) with moto still on."""
    template, removed = for_moto(translated)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=CODE_BUCKET)
        package = io.BytesIO()
        with zipfile.ZipFile(package, "w") as archive:
            archive.writestr("app.py", "def lambda_handler(event, context):\n    return {}\n")
        for bucket, key in code_locations(template):
            s3.put_object(Bucket=bucket, Key=key, Body=package.getvalue())
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(
            StackName=STACK_NAME,
            TemplateBody=json.dumps(template),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
        described = cfn.describe_stack_resources(StackName=STACK_NAME)["StackResources"]
        yield (
            {r["LogicalResourceId"]: r for r in described},
            removed,
            {
                "cfn": cfn,
                "iam": boto3.client("iam", region_name=REGION),
                "lambda": boto3.client("lambda", region_name=REGION),
            },
        )


def test_code_locations_are_s3_objects_as_sam_package_makes_them(translated):
    locations = code_locations(translated)
    assert {key for _, key in locations} == {
        "functions/broker",
        "functions/cleanup",
        "layers/common",
    }
    assert {bucket for bucket, _ in locations} == {CODE_BUCKET}


def test_only_the_types_moto_cannot_create_and_the_undeployable_deployment_are_removed(created):
    _, removed, _ = created
    assert set(removed.values()) - NO_OPENAPI_IMPORT == UNSUPPORTED_TYPES
    assert set(removed.values()) & NO_OPENAPI_IMPORT == NO_OPENAPI_IMPORT


def test_moto_cloudformation_creates_every_other_resource_of_the_translated_stack(
    created, translated
):
    resources, removed, clients = created
    [stack] = clients["cfn"].describe_stacks(StackName=STACK_NAME)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    resolver = Stack(translated, STACK_NAME)
    expected = {name for name in translated["Resources"] if resolver.exists(name)} - set(removed)
    assert set(resources) == expected
    assert {r["ResourceStatus"] for r in resources.values()} == {"CREATE_COMPLETE"}


def moto_stack(translated: dict[str, Any], resources: dict[str, Any]) -> Stack:
    """The resolver, given the physical ids moto's CloudFormation generated."""
    physical = {}
    for name, resource in resources.items():
        value = resource.get("PhysicalResourceId")
        if not value or value.startswith("arn:"):
            continue
        physical[name] = value.rsplit("/", 1)[-1] if value.startswith("https://") else value
    return Stack(
        translated, STACK_NAME, account="123456789012", region=REGION, physical_ids=physical
    )


@pytest.mark.parametrize("role", ["BrokerRole", "CleanupRole"])
def test_the_roles_moto_creates_hold_the_policies_the_resolver_resolves(created, translated, role):
    resources, _, clients = created
    resolver = moto_stack(translated, resources)
    iam = clients["iam"]
    name = resources[role]["PhysicalResourceId"]
    held = {
        policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
    }
    held = {k: ast.literal_eval(v) if isinstance(v, str) else v for k, v in held.items()}
    assert held == resolver.inline_policies(role)
    assert iam.get_role(RoleName=name)["Role"]["Arn"] == resolver.arn(role)
    # (moto's CloudFormation does not attach a role's ManagedPolicyArns: not compared.)


def test_the_boundary_moto_creates_is_the_one_the_resolver_resolves(created, translated):
    resources, _, clients = created
    resolver = moto_stack(translated, resources)
    arn = resources["JitRoleBoundary"]["PhysicalResourceId"]
    assert arn == resolver.ref("JitRoleBoundary")
    iam = clients["iam"]
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]
    assert document["Document"] == resolver.policy_document("JitRoleBoundary")


@pytest.mark.parametrize("function", ["BrokerFunction", "CleanupFunction"])
def test_the_functions_moto_creates_have_the_environment_and_role_the_resolver_resolves(
    created, translated, function
):
    resources, _, clients = created
    resolver = moto_stack(translated, resources)
    configuration = clients["lambda"].get_function_configuration(
        FunctionName=resources[function]["PhysicalResourceId"]
    )
    variables = configuration["Environment"]["Variables"]
    assert {k: str(v) for k, v in variables.items()} == resolver.environment(function)
    assert configuration["Role"] == resolver.arn(
        translated["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    )


# --------------------------------------------------------------------------- the member template

MEMBER_TEMPLATE = ROOT / "templates" / "member-account.yaml"
MEMBER_ACCOUNT = "444455556666"
# A StackSet's stack instance: named StackSet-<set>-<id>, never after the hub.
MEMBER_INSTANCE = "StackSet-jit-broker-member-0a1b2c3d-4e5f-4789-abcd-ef0123456789"
MEMBER_PARAMETERS = {
    "HubStackName": STACK_NAME,
    "HubBrokerRoleArn": f"arn:aws:iam::111122223333:role/{STACK_NAME}-BrokerRole-1A2B3C",
    "HubAuditorRoleArn": f"arn:aws:iam::111122223333:role/{STACK_NAME}-CleanupRole-4D5E6F",
    "ManagedPolicyAllowList": "arn:aws:iam::aws:policy/ReadOnlyAccess",
}


@pytest.fixture(scope="module")
def member_translated() -> dict[str, Any]:
    return translate(MEMBER_TEMPLATE)


@pytest.fixture(scope="module")
def member_created(member_translated: dict[str, Any]) -> Any:
    """(the member stack's outputs, its resources by logical id, an IAM client), moto on.

    Created in an account of its own, as a self-managed StackSet does: with the credentials
    of the member's AWSCloudFormationStackSetExecutionRole (moto keeps accounts apart by the
    credentials' account)."""
    template, removed = for_moto(member_translated, MEMBER_PARAMETERS)
    assert removed == {}  # plain CloudFormation: every type is one moto creates
    with mock_aws():
        credentials = boto3.client("sts", region_name=REGION).assume_role(
            RoleArn=f"arn:aws:iam::{MEMBER_ACCOUNT}:role/AWSCloudFormationStackSetExecutionRole",
            RoleSessionName="stackset",
        )["Credentials"]
        member = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=REGION,
        )
        cfn = member.client("cloudformation")
        cfn.create_stack(
            StackName=MEMBER_INSTANCE,
            TemplateBody=json.dumps(template),
            Parameters=[
                {"ParameterKey": k, "ParameterValue": v} for k, v in MEMBER_PARAMETERS.items()
            ],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        [stack] = cfn.describe_stacks(StackName=MEMBER_INSTANCE)["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        described = cfn.describe_stack_resources(StackName=MEMBER_INSTANCE)["StackResources"]
        yield (
            {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]},
            {r["LogicalResourceId"]: r for r in described},
            member.client("iam"),
        )


def test_moto_creates_the_member_stack_the_resolver_resolves(member_created, member_translated):
    outputs, resources, iam = member_created
    resolver = Stack(
        member_translated, MEMBER_INSTANCE, account=MEMBER_ACCOUNT, parameters=MEMBER_PARAMETERS
    )
    assert set(resources) == {"JitRoleBoundary", "MemberExecutionRole"}
    assert outputs == {
        k: v["Value"] for k, v in resolver.resolve(member_translated["Outputs"]).items()
    }
    # The execution role: its name, path, trust and inline policy.
    role = iam.get_role(RoleName=resources["MemberExecutionRole"]["PhysicalResourceId"])["Role"]
    assert role["Arn"] == resolver.arn("MemberExecutionRole") == outputs["ExecutionRoleArn"]
    props = resolver.properties("MemberExecutionRole")
    assert role["Path"] == props["Path"]
    trust = role["AssumeRolePolicyDocument"]
    trust = ast.literal_eval(trust) if isinstance(trust, str) else trust
    assert trust == props["AssumeRolePolicyDocument"]
    held = {
        name: iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
    }
    held = {k: ast.literal_eval(v) if isinstance(v, str) else v for k, v in held.items()}
    assert held == resolver.inline_policies("MemberExecutionRole")
    # The boundary: its ARN and document.
    arn = resources["JitRoleBoundary"]["PhysicalResourceId"]
    assert arn == resolver.ref("JitRoleBoundary") == outputs["BoundaryPolicyArn"]
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]
    assert document["Document"] == resolver.policy_document("JitRoleBoundary")
