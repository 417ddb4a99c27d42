"""Static checks of template.yaml, samconfig.toml and the layer's requirements (THREATS.md 1, 2, 5, 9, 14).

The template is read as written (CloudFormation tags become their JSON form). One test also runs
the SAM translator from the SAM tool venv (.tools/sam, made by `make validate`) to check the
resources SAM generates, such as the Lambda permission, which the template does not spell out.
"""

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
SAM_PYTHON = ROOT / ".tools" / "sam" / "bin" / "python"

# Only the broker's own role names (jit-g-<grant id>) under its path (threats 31, 32).
JIT_ROLE_ARN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/jit/jit-g-*"
JIT_PATH_ARN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/jit/*"
BOUNDARY_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/${AWS::StackName}-jit-boundary"
}
BOUNDARY_CONDITION = {"StringEquals": {"iam:PermissionsBoundary": BOUNDARY_ARN}}
OWNER_TAG_CONDITION = {"aws:RequestTag/jit:owner": {"Ref": "AWS::StackName"}}

# What the Lambda python3.12 runtime ships: never in the layer, so the runtime's boto3 and
# botocore stay a matching pair.
RUNTIME_PROVIDED = {
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "urllib3",
    "python-dateutil",
    "six",
}


class CloudFormationLoader(yaml.SafeLoader):
    """A YAML loader that reads CloudFormation short-form tags (!Ref, !Sub, !GetAtt, ...)."""


def _construct_cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{tag_suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_template() -> dict[str, Any]:
    return yaml.load(TEMPLATE_PATH.read_text(), Loader=CloudFormationLoader)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def broker_statements(resources: dict[str, Any]) -> list[dict[str, Any]]:
    policies = resources["BrokerRole"]["Properties"]["Policies"]
    return [stmt for policy in policies for stmt in policy["PolicyDocument"]["Statement"]]


def statements_with_action(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in as_list(s["Action"])]


def functions(resources: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}


def api_events(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{name}.{event_name}", event["Properties"])
        for name, fn in functions(resources).items()
        for event_name, event in fn["Properties"].get("Events", {}).items()
        if event["Type"] == "Api"
    ]


# ---------------------------------------------------------------- threat 1: who may invoke


def test_broker_is_reachable_only_through_one_proxy_route_of_jit_api(resources):
    # Threat 1. SAM turns this Api event into an AWS::Lambda::Permission for
    # apigateway.amazonaws.com with SourceArn arn:...:execute-api:<region>:<account>:<JitApi id>/*,
    # so nothing but this API can invoke the function (asserted on SAM's output below).
    events = resources["BrokerFunction"]["Properties"]["Events"]
    assert list(events.values()) == [
        {
            "Type": "Api",
            "Properties": {
                "RestApiId": {"Ref": "JitApi"},
                "Path": "/{proxy+}",
                "Method": "ANY",
                "Auth": {"Authorizer": "AWS_IAM"},
            },
        }
    ]
    assert "FunctionUrlConfig" not in resources["BrokerFunction"]["Properties"]


def test_no_hand_written_lambda_permission_lacks_a_source_arn(resources):
    # Threat 1: a permission without SourceArn would let any API (or anyone, with "*") invoke it.
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Permission":
            assert "SourceArn" in resource["Properties"], name
        assert resource["Type"] != "AWS::Lambda::Url", name


def test_broker_runs_as_its_own_role_not_one_sam_generates(resources):
    props = resources["BrokerFunction"]["Properties"]
    assert props["Role"] == {"Fn::GetAtt": ["BrokerRole", "Arn"]}
    assert "Policies" not in props


# ---------------------------------------------------------------- threat 2: IAM auth everywhere


def test_jit_api_authorizes_every_method_with_aws_iam_by_default(resources):
    auth = resources["JitApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "AWS_IAM"
    # An OpenAPI body of our own would bypass the authorizer SAM adds to every method.
    assert "DefinitionBody" not in resources["JitApi"]["Properties"]
    assert "DefinitionUri" not in resources["JitApi"]["Properties"]


def test_no_api_event_opts_out_of_iam_auth_or_lands_on_an_implicit_api(resources):
    # An Api event without RestApiId creates SAM's implicit ServerlessRestApi, which has no auth.
    events = api_events(resources)
    assert events, "the broker has no Api event"
    for name, props in events:
        assert props.get("RestApiId") == {"Ref": "JitApi"}, name
        assert props.get("Auth", {}).get("Authorizer", "AWS_IAM") == "AWS_IAM", name
    other_apis = [
        name
        for name, r in resources.items()
        if r["Type"].startswith(
            ("AWS::ApiGateway", "AWS::ApiGatewayV2", "AWS::Serverless::HttpApi")
        )
        and r["Type"] != "AWS::ApiGateway::Account"
    ]
    assert other_apis == []


def test_api_invokes_the_function_through_its_permission_not_caller_credentials(resources):
    # With AWS_IAM SAM defaults to "invoke with caller credentials" (arn:aws:iam::*:user/*).
    assert resources["JitApi"]["Properties"]["Auth"]["InvokeRole"] == "NONE"


# ---------------------------------------------------------------- threat 5: allowed accounts


def test_api_resource_policy_admits_only_allowed_accounts_or_this_account(template, resources):
    props = resources["JitApi"]["Properties"]
    statements = props["Policy"]["Statement"]
    assert statements[0] == {
        "Sid": "AllowedAccounts",
        "Effect": "Allow",
        "Principal": {
            "AWS": {
                "Fn::If": [
                    "HasAllowedAccountIds",
                    {"Ref": "AllowedAccountIds"},
                    {"Ref": "AWS::AccountId"},
                ]
            }
        },
        "Action": "execute-api:Invoke",
        "Resource": "execute-api:/*",
    }
    assert [s["Sid"] for s in statements] == ["AllowedAccounts", "DenyBrokerSessions"]
    assert template["Parameters"]["AllowedAccountIds"]["Type"] == "CommaDelimitedList"
    assert template["Conditions"]["HasAllowedAccountIds"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "AllowedAccountIds"}]}, ""]}]
    }
    # A changed resource policy takes effect only in a new deployment.
    assert props["AlwaysDeploy"] is True


def test_threat27_api_resource_policy_denies_jit_sessions_and_the_stacks_own_roles(resources):
    """An explicit deny in the API's resource policy: no session of a role under the JIT path
    (aws:PrincipalArn is the role's ARN, path included) nor of the broker's or auditor's
    role is ever authorized by API Gateway, whatever their identity policies allow."""
    statements = resources["JitApi"]["Properties"]["Policy"]["Statement"]
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny == {
        "Sid": "DenyBrokerSessions",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": "execute-api:/*",
        "Condition": {
            "ArnLike": {
                "aws:PrincipalArn": [
                    {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/jit/*"},
                    {"Fn::GetAtt": ["BrokerRole", "Arn"]},
                    {"Fn::GetAtt": ["CleanupRole", "Arn"]},
                ]
            }
        },
    }


def test_threat27_boundary_denies_invoking_the_brokers_api(resources):
    statements = resources["JitRoleBoundary"]["Properties"]["PolicyDocument"]["Statement"]
    [deny] = [s for s in statements if s["Sid"] == "DenyBrokerApi"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "execute-api:*"
    assert deny["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${JitApi}/*"
    }


def test_api_is_regional_throttled_and_access_logged_without_headers_or_bodies(resources):
    props = resources["JitApi"]["Properties"]
    assert props["EndpointConfiguration"] == {"Type": "REGIONAL"}
    [settings] = props["MethodSettings"]
    assert settings["ResourcePath"] == "/*"
    assert settings["HttpMethod"] == "*"
    assert settings["ThrottlingBurstLimit"] == 20
    assert settings["ThrottlingRateLimit"] == 10
    assert settings["DataTraceEnabled"] is False
    log = props["AccessLogSetting"]
    assert log["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    record = json.loads(log["Format"])
    assert record["userArn"] == "$context.identity.userArn"
    assert not [v for v in record.values() if "header" in v.lower() or "body" in v.lower()]


# ---------------------------------------------------------------- threat 9: the broker's own rights


def test_every_broker_statement_has_a_sid_and_only_exact_actions(resources):
    statements = broker_statements(resources)
    assert len({s["Sid"] for s in statements}) == len(statements)
    for stmt in statements:
        assert re.fullmatch(r"[A-Za-z0-9]+", stmt["Sid"]), stmt
        for action in as_list(stmt["Action"]):
            assert "*" not in action, (stmt["Sid"], action)
        assert "NotAction" not in stmt and "NotResource" not in stmt, stmt["Sid"]


def test_broker_cannot_pass_roles_or_use_other_managed_policies(resources):
    actions = {a.lower() for s in broker_statements(resources) for a in as_list(s["Action"])}
    assert "iam:passrole" not in actions
    assert resources["BrokerRole"]["Properties"]["ManagedPolicyArns"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        },
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"},
    ]


def test_threat32_roles_are_created_only_with_the_broker_name_boundary_and_owner_tag(resources):
    [stmt] = statements_with_action(broker_statements(resources), "iam:CreateRole")
    assert stmt["Effect"] == "Allow" and stmt["Resource"] == {"Fn::Sub": JIT_ROLE_ARN}
    assert stmt["Condition"] == {
        "StringEquals": BOUNDARY_CONDITION["StringEquals"] | OWNER_TAG_CONDITION
    }


def test_threat32_tags_are_written_only_as_this_stacks_owner_and_never_removed(resources):
    [tag] = statements_with_action(broker_statements(resources), "iam:TagRole")
    assert tag["Effect"] == "Allow" and tag["Resource"] == {"Fn::Sub": JIT_ROLE_ARN}
    assert tag["Condition"] == {"StringEquals": OWNER_TAG_CONDITION}
    allowed = {
        a
        for s in broker_statements(resources)
        if s["Effect"] == "Allow"
        for a in as_list(s["Action"])
    }
    assert "iam:UntagRole" not in allowed and "iam:UpdateAssumeRolePolicy" not in allowed


@pytest.mark.parametrize("action", ["iam:PutRolePolicy", "iam:AttachRolePolicy"])
def test_roles_are_given_policies_only_under_jit_with_the_boundary(resources, action):
    statements = statements_with_action(broker_statements(resources), action)
    assert statements, f"{action} is not granted"
    for stmt in statements:
        assert stmt["Effect"] == "Allow"
        assert stmt["Resource"] == {"Fn::Sub": JIT_ROLE_ARN}
        assert stmt["Condition"] == BOUNDARY_CONDITION


def test_every_iam_and_sts_allow_is_scoped_to_jit_roles(resources):
    allowed = [s for s in broker_statements(resources) if s["Effect"] == "Allow"]
    scoped = [
        s for s in allowed if any(a.split(":")[0] in {"iam", "sts"} for a in as_list(s["Action"]))
    ]
    assert {s["Sid"] for s in scoped} == {
        "CreateJitRole",
        "TagJitRoleAsOwned",
        "ManageJitRolePolicies",
        "ManageJitRole",
        "AssumeJitRole",
    }
    for stmt in scoped:
        assert as_list(stmt["Resource"]) == [{"Fn::Sub": JIT_ROLE_ARN}], stmt["Sid"]
        # No statement mixes IAM/STS with other services (which might need a wider Resource).
        assert {a.split(":")[0] for a in as_list(stmt["Action"])} <= {"iam", "sts"}, stmt["Sid"]


def test_broker_assumes_jit_roles_with_source_identity_and_session_tags_only(resources):
    [stmt] = statements_with_action(broker_statements(resources), "sts:AssumeRole")
    assert sorted(as_list(stmt["Action"])) == [
        "sts:AssumeRole",
        "sts:SetSourceIdentity",
        "sts:TagSession",
    ]
    assert stmt["Resource"] == {"Fn::Sub": JIT_ROLE_ARN}


def test_broker_may_never_change_a_roles_trust_boundary_or_tags(resources):
    [stmt] = [
        s for s in broker_statements(resources) if s["Sid"] == "DenyTrustBoundaryAndOwnerChange"
    ]
    assert stmt["Effect"] == "Deny"
    assert sorted(as_list(stmt["Action"])) == [
        "iam:DeleteRolePermissionsBoundary",
        "iam:PutRolePermissionsBoundary",
        "iam:UntagRole",
        "iam:UpdateAssumeRolePolicy",
    ]
    assert stmt["Resource"] == "*"


def test_broker_role_is_not_under_the_jit_path_it_manages(resources):
    # Under /jit/ the broker could rewrite or assume its own role.
    assert not str(resources["BrokerRole"]["Properties"].get("Path", "/")).startswith("/jit")
    trust = resources["BrokerRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]


def test_ledger_and_access_policy_rights_are_exact_and_scoped(resources):
    by_sid = {s["Sid"]: s for s in broker_statements(resources)}
    ledger = by_sid["Ledger"]
    assert sorted(ledger["Action"]) == sorted(
        [
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:Query",
            "dynamodb:ConditionCheckItem",
        ]
    )
    assert ledger["Resource"] == [
        {"Fn::GetAtt": ["GrantTable", "Arn"]},
        {"Fn::Sub": "${GrantTable.Arn}/index/*"},
    ]
    access_policy = by_sid["AccessPolicy"]
    assert access_policy["Action"] == "ssm:GetParameter"
    assert access_policy["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${AccessPolicyParameterName}"
    }


# ---------------------------------------------------------------- the per-grant role boundary


def boundary_denies(resources: dict[str, Any]) -> list[dict[str, Any]]:
    statements = resources["JitRoleBoundary"]["Properties"]["PolicyDocument"]["Statement"]
    return [s for s in statements if s["Effect"] == "Deny"]


def test_boundary_denies_iam_organizations_account_and_role_chaining(resources):
    denies = boundary_denies(resources)
    denied_everywhere = {
        action for s in denies if s["Resource"] == "*" for action in as_list(s["Action"])
    }
    assert {"iam:*", "organizations:*", "account:*", "sts:AssumeRole"} <= denied_everywhere


def test_boundary_keeps_grants_off_the_ledger_the_broker_and_the_access_policy(resources):
    denies = {s["Sid"]: s for s in boundary_denies(resources)}
    assert denies["DenyLedger"]["Action"] == "dynamodb:*"
    assert {"Fn::GetAtt": ["GrantTable", "Arn"]} in denies["DenyLedger"]["Resource"]
    assert denies["DenyBroker"]["Action"] == "lambda:*"
    assert {
        "Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-*"
    } in denies["DenyBroker"]["Resource"]
    assert denies["DenyAccessPolicy"]["Action"] == "ssm:*"


def test_broker_function_is_named_so_the_boundary_pattern_covers_it(resources):
    # SAM names an unnamed function <stack>-BrokerFunction-<suffix>, which the boundary's
    # function:${AWS::StackName}-* pattern matches; a FunctionName could escape it.
    assert "FunctionName" not in resources["BrokerFunction"]["Properties"]


# ---------------------------------------------------------------- function settings


def test_tracer_never_captures_responses_or_errors(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert env["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false"
    assert env["POWERTOOLS_SERVICE_NAME"] == "jit-broker"
    for name, fn in functions(template["Resources"]).items():
        fn_env = fn["Properties"].get("Environment", {}).get("Variables", {})
        assert fn_env.get("POWERTOOLS_TRACER_CAPTURE_RESPONSE", "false") == "false", name
        assert fn_env.get("POWERTOOLS_TRACER_CAPTURE_ERROR", "false") == "false", name


def test_functions_run_python312_arm64_traced_within_the_api_timeout(template):
    glob = template["Globals"]["Function"]
    assert glob["Runtime"] == "python3.12"
    assert glob["Architectures"] == ["arm64"]
    assert glob["Tracing"] == "Active"
    assert glob["Timeout"] < 29  # API Gateway's REST integration timeout
    assert glob["Layers"] == [{"Ref": "CommonLayer"}]


def test_broker_environment_points_at_this_stacks_resources(resources):
    env = resources["BrokerFunction"]["Properties"]["Environment"]["Variables"]
    assert env["JIT_TABLE_NAME"] == {"Ref": "GrantTable"}
    assert env["JIT_ROLE_PATH"] == "/jit/"
    assert env["JIT_BOUNDARY_POLICY_ARN"] == BOUNDARY_ARN
    assert env["JIT_BROKER_ROLE_ARN"] == {"Fn::GetAtt": ["BrokerRole", "Arn"]}
    assert env["JIT_AUDITOR_ROLE_ARN"] == {"Fn::GetAtt": ["CleanupRole", "Arn"]}
    assert env["JIT_MAX_ROLES_PER_OWNER"] == {"Ref": "MaxJitRolesPerRequester"}
    assert env["JIT_OWNER_TAG"] == {"Ref": "AWS::StackName"}
    assert env["JIT_POLICY_PARAMETER"] == {"Ref": "AccessPolicyParameterName"}
    assert env["JIT_MAX_ROLES"] == {"Ref": "MaxJitRoles"}


def test_broker_log_group_is_the_functions_own_with_retention(resources):
    props = resources["BrokerLogGroup"]["Properties"]
    assert props["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${BrokerFunction}"}
    assert props["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert resources["ApiAccessLogGroup"]["Properties"]["RetentionInDays"] == {
        "Ref": "LogRetentionDays"
    }


def test_layer_is_built_for_python312_arm64_from_layers_common(resources):
    layer = resources["CommonLayer"]
    assert layer["Properties"]["ContentUri"] == "layers/common"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "python3.12", "BuildArchitecture": "arm64"}


# ---------------------------------------------------------------- ledger and outputs


def test_grant_table_is_on_demand_with_ttl_both_indexes_pitr_sse_and_retained(resources):
    table = resources["GrantTable"]
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types == {
        "pk": "S",
        "sk": "S",
        "gsi1pk": "S",
        "gsi1sk": "S",
        "gsi2pk": "S",
        "gsi2sk": "N",  # expiry as epoch seconds, never text (threat 16)
    }
    indexes = {i["IndexName"]: i for i in props["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"by_requester", "by_expiry"}
    for name, (hash_key, range_key) in {
        "by_requester": ("gsi1pk", "gsi1sk"),
        "by_expiry": ("gsi2pk", "gsi2sk"),
    }.items():
        assert indexes[name]["KeySchema"] == [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ]
        assert indexes[name]["Projection"] == {"ProjectionType": "ALL"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}


def test_outputs_give_the_api_url_table_boundary_and_broker_role(template):
    outputs = {k: v["Value"] for k, v in template["Outputs"].items()}
    assert outputs == {
        "ApiUrl": {
            "Fn::Sub": "https://${JitApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}"
        },
        "GrantTableName": {"Ref": "GrantTable"},
        "BoundaryPolicyArn": {"Ref": "JitRoleBoundary"},
        "BrokerRoleArn": {"Fn::GetAtt": ["BrokerRole", "Arn"]},
    }


# ---------------------------------------------------------------- the auditor (issue 3)

JIT_INSTANCE_PROFILE_ARN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:instance-profile/jit/*"
GRANT_TABLE_AND_INDEXES = [
    {"Fn::GetAtt": ["GrantTable", "Arn"]},
    {"Fn::Sub": "${GrantTable.Arn}/index/*"},
]
IAM_READ_PREFIXES = ("iam:Get", "iam:List")


def cleanup_statements(resources: dict[str, Any]) -> list[dict[str, Any]]:
    policies = resources["CleanupRole"]["Properties"]["Policies"]
    return [stmt for policy in policies for stmt in policy["PolicyDocument"]["Statement"]]


def cleanup_allows(resources: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """(action, resource, statement) for every action and resource the auditor is allowed."""
    return [
        (action, resource, stmt)
        for stmt in cleanup_statements(resources)
        if stmt["Effect"] == "Allow"
        for action in as_list(stmt["Action"])
        for resource in as_list(stmt["Resource"])
    ]


def test_every_cleanup_statement_has_a_unique_sid_and_only_exact_actions(resources):
    statements = cleanup_statements(resources)
    assert statements
    assert len({s.get("Sid") for s in statements}) == len(statements)
    for stmt in statements:
        assert re.fullmatch(r"[A-Za-z0-9]+", stmt.get("Sid", "")), stmt
        assert "NotAction" not in stmt and "NotResource" not in stmt, stmt["Sid"]
        for action in as_list(stmt["Action"]):
            assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), (stmt["Sid"], action)


def test_cleanup_iam_writes_only_on_jit_roles_and_jit_instance_profiles(resources):
    iam = [(a, r, s) for a, r, s in cleanup_allows(resources) if a.startswith("iam:")]
    assert iam
    for action, resource, stmt in iam:
        if action == "iam:ListRoles":
            continue
        if action.startswith(IAM_READ_PREFIXES):  # reads: all under the path (findings)
            assert resource == {"Fn::Sub": JIT_PATH_ARN}, (stmt["Sid"], action)
        elif action == "iam:RemoveRoleFromInstanceProfile":
            assert resource == {"Fn::Sub": JIT_INSTANCE_PROFILE_ARN}, stmt["Sid"]
        else:
            assert resource == {"Fn::Sub": JIT_ROLE_ARN}, (stmt["Sid"], action)
    writes = {a for a, _, _ in iam if not a.startswith(IAM_READ_PREFIXES)}
    assert writes == {
        "iam:PutRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:DetachRolePolicy",
        "iam:DeleteRole",
        "iam:RemoveRoleFromInstanceProfile",
    }


def test_list_roles_is_the_only_iam_action_the_auditor_has_on_every_resource(resources):
    on_everything = {a for a, r, _ in cleanup_allows(resources) if r == "*"}
    assert {a for a in on_everything if a.startswith("iam:")} == {"iam:ListRoles"}
    [stmt] = [s for _, _, s in cleanup_allows(resources) if "iam:ListRoles" in as_list(s["Action"])]
    assert as_list(stmt["Action"]) == ["iam:ListRoles"]  # alone in its statement


def test_auditor_can_never_create_pass_or_assume_a_role(resources):
    allowed = {a.lower() for a, _, _ in cleanup_allows(resources)}
    assert not allowed & {"iam:createrole", "iam:passrole", "sts:assumerole"}
    assert not any(a.startswith("sts:") for a in allowed)
    assert not any(a.startswith("iam:") and ("policyversion" in a) for a in allowed)
    for action in allowed:
        assert "*" not in action, action


def test_auditor_is_explicitly_denied_changing_managed_policies_and_boundaries(resources):
    denies = [s for s in cleanup_statements(resources) if s["Effect"] == "Deny"]
    denied_everywhere = {
        a for s in denies if as_list(s["Resource"]) == ["*"] for a in as_list(s["Action"])
    }
    assert {
        "iam:DeletePolicy",
        "iam:DeletePolicyVersion",
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:DeleteRolePermissionsBoundary",
        "iam:PutRolePermissionsBoundary",
    } <= denied_everywhere
    assert all("Condition" not in s for s in denies)  # unconditional


def test_auditor_ledger_rights_are_exact_and_only_on_the_grant_table_and_its_indexes(resources):
    ddb = [s for s in cleanup_statements(resources) if "dynamodb:" in str(s["Action"])]
    assert [s["Sid"] for s in ddb] == ["Ledger"]
    [ledger] = ddb
    assert ledger["Effect"] == "Allow"
    assert sorted(as_list(ledger["Action"])) == [
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ]
    assert ledger["Resource"] == GRANT_TABLE_AND_INDEXES


def test_auditor_puts_events_only_on_the_audit_bus(resources):
    events = [(a, r) for a, r, _ in cleanup_allows(resources) if a.startswith("events:")]
    assert events == [("events:PutEvents", {"Fn::GetAtt": ["AuditEventBus", "Arn"]})]
    assert resources["AuditEventBus"]["Type"] == "AWS::Events::EventBus"
    env = resources["CleanupFunction"]["Properties"]["Environment"]["Variables"]
    assert env["JIT_AUDIT_EVENT_BUS"] == {"Ref": "AuditEventBus"}


def test_auditor_runs_on_the_audit_schedule_parameter_every_five_minutes_by_default(template):
    assert template["Parameters"]["AuditSchedule"]["Default"] == "rate(5 minutes)"
    events = template["Resources"]["CleanupFunction"]["Properties"]["Events"]
    schedules = [e["Properties"] for e in events.values() if e["Type"] == "Schedule"]
    assert len(schedules) == 1 and len(events) == 1  # no other trigger (no API event)
    assert schedules[0]["Schedule"] == {"Ref": "AuditSchedule"}
    assert json.loads(schedules[0]["Input"]) == {"dry_run": False}


def test_failed_auditor_runs_go_to_a_dead_letter_queue_it_may_write(resources):
    props = resources["CleanupFunction"]["Properties"]
    assert props["DeadLetterQueue"] == {
        "Type": "SQS",
        "TargetArn": {"Fn::GetAtt": ["AuditorDeadLetterQueue", "Arn"]},
    }
    assert resources["AuditorDeadLetterQueue"]["Type"] == "AWS::SQS::Queue"
    sends = [(a, r) for a, r, _ in cleanup_allows(resources) if a.startswith("sqs:")]
    assert sends == [("sqs:SendMessage", {"Fn::GetAtt": ["AuditorDeadLetterQueue", "Arn"]})]


def test_auditor_log_group_is_the_functions_own_with_retention(resources):
    group = resources["CleanupLogGroup"]
    assert group["DeletionPolicy"] == "Retain"
    assert group["Properties"] == {
        "LogGroupName": {"Fn::Sub": "/aws/lambda/${CleanupFunction}"},
        "RetentionInDays": {"Ref": "LogRetentionDays"},
    }


def test_broker_may_invoke_only_the_auditor_function(resources):
    lambda_allows = [
        (a, s["Resource"])
        for s in broker_statements(resources)
        if s["Effect"] == "Allow"
        for a in as_list(s["Action"])
        if a.startswith("lambda:")
    ]
    auditor = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-auditor"
    assert lambda_allows == [("lambda:InvokeFunction", {"Fn::Sub": auditor})]
    # ... and that name is the auditor's: fixed in the template, passed to the broker
    assert resources["CleanupFunction"]["Properties"]["FunctionName"] == {
        "Fn::Sub": "${AWS::StackName}-auditor"
    }
    env = resources["BrokerFunction"]["Properties"]["Environment"]["Variables"]
    assert env["JIT_AUDIT_FUNCTION"] == {"Fn::Sub": "${AWS::StackName}-auditor"}


def test_drift_quarantine_parameter_reaches_the_auditors_settings(template):
    from jit_broker.settings import AuditSettings

    parameter = template["Parameters"]["DriftQuarantine"]
    assert parameter["Default"] == "false"
    assert sorted(parameter["AllowedValues"]) == ["false", "true"]
    env = template["Resources"]["CleanupFunction"]["Properties"]["Environment"]["Variables"]
    [name] = [k for k, v in env.items() if v == {"Ref": "DriftQuarantine"}]
    base = {
        "JIT_TABLE_NAME": "jit-grants",
        "JIT_BOUNDARY_POLICY_ARN": "arn:aws:iam::123456789012:policy/b",
        "JIT_BROKER_ROLE_ARN": "arn:aws:iam::123456789012:role/broker",
        "JIT_OWNER_TAG": "stack",
    }
    assert AuditSettings.from_env(base | {name: "true"}).drift_quarantine is True
    assert AuditSettings.from_env(base | {name: parameter["Default"]}).drift_quarantine is False


def test_auditor_role_trusts_only_lambda_and_is_not_under_jit(resources):
    props = resources["CleanupRole"]["Properties"]
    assert not str(props.get("Path", "/")).startswith("/jit")
    assert props["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert resources["CleanupFunction"]["Properties"]["Role"] == {
        "Fn::GetAtt": ["CleanupRole", "Arn"]
    }


# ---------------------------------------------------------------- deploy settings


def test_samconfig_names_capability_named_iam_for_the_one_named_iam_resource(resources):
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["version"] == 0.1
    for env in ("default", "prod"):
        assert (
            config[env]["deploy"]["parameters"]["capabilities"]
            == "CAPABILITY_IAM CAPABILITY_NAMED_IAM"
        )
        assert config[env]["deploy"]["parameters"]["confirm_changeset"] is True
        assert config[env]["validate"]["parameters"]["lint"] is True
    # Only the boundary is named (so it can name the API without a dependency cycle), and
    # by the stack's name, so two stacks in one account never collide.
    name_keys = {"RoleName", "ManagedPolicyName", "UserName", "GroupName", "InstanceProfileName"}
    named = {
        name: {k: resource["Properties"][k] for k in name_keys & set(resource["Properties"])}
        for name, resource in resources.items()
        if resource["Type"].startswith("AWS::IAM::") and name_keys & set(resource["Properties"])
    }
    assert named == {
        "JitRoleBoundary": {"ManagedPolicyName": {"Fn::Sub": "${AWS::StackName}-jit-boundary"}}
    }


# ---------------------------------------------------------------- the layer's dependencies


def lock_packages() -> dict[str, dict[str, Any]]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {p["name"]: p for p in lock["package"]}


def runtime_closure(packages: dict[str, dict[str, Any]]) -> set[str]:
    """Names of everything jit-broker needs at run time (its dependencies with their extras)."""
    names: set[str] = set()
    visited: set[tuple[str, frozenset[str]]] = set()
    todo = [
        (d["name"], frozenset(d.get("extra", []))) for d in packages["jit-broker"]["dependencies"]
    ]
    while todo:
        item = todo.pop()
        if item in visited:
            continue
        visited.add(item)
        name, extras = item
        names.add(name)
        deps = list(packages[name].get("dependencies", []))
        for extra in extras:
            deps += packages[name].get("optional-dependencies", {}).get(extra, [])
        # Lambda runs Linux: a Windows-only dependency is never needed there.
        todo += [
            (d["name"], frozenset(d.get("extra", [])))
            for d in deps
            if "win32" not in d.get("marker", "")
        ]
    return names


def layer_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "layers" / "common" / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[re.sub(r"\[.*\]", "", name).lower()] = version
    return pins


def test_layer_requirements_pin_exactly_the_locked_runtime_dependencies():
    packages = lock_packages()
    expected = {
        name: packages[name]["version"] for name in runtime_closure(packages) - RUNTIME_PROVIDED
    }
    assert layer_pins() == expected


def test_layer_requirements_leave_out_what_the_runtime_ships_and_test_tools():
    pins = layer_pins()
    assert not RUNTIME_PROVIDED & set(pins)
    assert not {"moto", "pytest", "ruff", "mypy", "aws-sam-cli", "jit-broker"} & set(pins)
    assert {"aws-lambda-powertools", "aws-xray-sdk", "pydantic", "pyyaml"} <= set(pins)


# ---------------------------------------------------------------- what SAM generates

TRANSLATE = """
import json, sys
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

class NoManagedPolicies:
    def load(self):
        return {}

template = yaml_parse(open(sys.argv[1]).read())
for resource in template["Resources"].values():
    props = resource.get("Properties", {})
    for key in ("CodeUri", "ContentUri"):
        if isinstance(props.get(key), str):
            props[key] = "s3://bucket/" + props[key]
print(json.dumps(transform(template, {}, NoManagedPolicies())))
"""


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    if not SAM_PYTHON.exists():
        pytest.skip("the SAM tool venv is missing: run `make validate` (make test does)")
    closed_port = "http://127.0.0.1:9"  # no network: the translator needs none
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "HTTP_PROXY": closed_port,
        "HTTPS_PROXY": closed_port,
        "NO_PROXY": "",
    }
    result = subprocess.run(
        [str(SAM_PYTHON), "-c", TRANSLATE, str(TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_generated_lambda_permission_is_pinned_to_the_jit_api_by_source_arn(translated):
    # Threat 1: only API Gateway, and only this API (its id in SourceArn), may invoke the broker.
    permissions = [
        r["Properties"]
        for r in translated["Resources"].values()
        if r["Type"] == "AWS::Lambda::Permission"
        and r["Properties"]["FunctionName"] != {"Ref": "CleanupFunction"}
    ]
    assert permissions
    for permission in permissions:
        assert permission["Principal"] == "apigateway.amazonaws.com"
        assert permission["FunctionName"] == {"Ref": "BrokerFunction"}
        template, variables = permission["SourceArn"]["Fn::Sub"]
        assert template.startswith(
            "arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${__ApiId__}/"
        )
        assert variables["__ApiId__"] == {"Ref": "JitApi"}


def test_generated_api_methods_all_require_sigv4_and_no_caller_credentials(translated):
    # Threat 2: every method of the deployed OpenAPI body is AWS_IAM; none invokes with the
    # caller's credentials.
    body = translated["Resources"]["JitApi"]["Properties"]["Body"]
    assert body["openapi"] == "3.0.1"  # OpenAPI 3: the scheme is under components
    scheme = body["components"]["securitySchemes"]["AWS_IAM"]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    methods = [(path, m, op) for path, item in body["paths"].items() for m, op in item.items()]
    assert methods
    for path, method, operation in methods:
        assert operation["security"] == [{"AWS_IAM": []}], (path, method)
        assert "credentials" not in operation["x-amazon-apigateway-integration"], (path, method)


def test_generated_auditor_permission_admits_only_its_schedule_rule(translated):
    # The auditor is invoked only by its EventBridge rule (and the broker's role, by IAM).
    resources = translated["Resources"]
    permissions = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Permission"
        and r["Properties"]["FunctionName"] == {"Ref": "CleanupFunction"}
    ]
    rules = {k: r for k, r in resources.items() if r["Type"] == "AWS::Events::Rule"}
    assert len(permissions) == 1 and len(rules) == 1
    [(rule_name, rule)] = rules.items()
    assert permissions[0]["Principal"] == "events.amazonaws.com"
    assert permissions[0]["SourceArn"] == {"Fn::GetAtt": [rule_name, "Arn"]}
    assert rule["Properties"]["ScheduleExpression"] == {"Ref": "AuditSchedule"}


def translated_of_type(translated: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in translated["Resources"].items() if r["Type"] == kind}


def test_the_api_has_exactly_one_stage_the_configured_one(translated):
    # Without OpenApiVersion SAM's deployment also creates a stage named "Stage": unthrottled,
    # unlogged, untraced and still allowed to invoke the broker (issue 8, defect 2).
    stages = translated_of_type(translated, "AWS::ApiGateway::Stage")
    assert [s["Properties"]["StageName"] for s in stages.values()] == [{"Ref": "Stage"}]
    deployments = translated_of_type(translated, "AWS::ApiGateway::Deployment")
    assert deployments
    for name, deployment in deployments.items():
        assert "StageName" not in deployment["Properties"], name


def test_first_deploy_sets_the_accounts_api_gateway_logging_role_and_keeps_it(template):
    # Access logging fails on a region whose API Gateway account settings name no CloudWatch
    # role: the documented default creates it. That setting is the account's, used by every
    # API of the region: deleting this stack must not take it away (issue 8, defect 3).
    parameter = template["Parameters"]["ConfigureApiGatewayAccountLogging"]
    assert parameter["Default"] == "true"
    assert sorted(parameter["AllowedValues"]) == ["false", "true"]
    assert "another stack" in parameter["Description"]
    assert template["Conditions"]["CreateApiGatewayAccountLogging"] == {
        "Fn::Equals": [{"Ref": "ConfigureApiGatewayAccountLogging"}, "true"]
    }
    resources = template["Resources"]
    for name in ("ApiGatewayCloudWatchRole", "ApiGatewayAccount"):
        assert resources[name]["Condition"] == "CreateApiGatewayAccountLogging", name
        assert resources[name]["DeletionPolicy"] == "Retain", name
        assert resources[name]["UpdateReplacePolicy"] == "Retain", name
    assert resources["ApiGatewayAccount"]["Properties"]["CloudWatchRoleArn"] == {
        "Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]
    }
    # The stage (with its access logging) is made only after the account setting.
    assert resources["JitApi"]["DependsOn"] == "ApiGatewayAccountReady"
    assert resources["ApiGatewayAccountReady"]["Metadata"]["ApiGatewayAccount"] == {
        "Fn::If": ["CreateApiGatewayAccountLogging", {"Ref": "ApiGatewayAccount"}, "none"]
    }
