"""Static checks of template.yaml, samconfig.toml and the layer's requirements (THREATS.md 1, 2, 5, 9, 14).

The template is read as written (CloudFormation tags become their JSON form). One test also runs
the SAM translator from the SAM tool venv (.tools/sam, made by `make validate`) to check the
resources SAM generates, such as the Lambda permission, which the template does not spell out.
"""

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from jit_local.template import translate

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"

# Only the broker's own role names (jit-g-<grant id>) under its stack's own path (threats 31,
# 32; issue 8, defect 6: /jit/<stack>/, so two stacks in one account never share roles).
JIT_ROLE_PATH = "/jit/${AWS::StackName}/"
JIT_ROLE_ARN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/jit/${AWS::StackName}/jit-g-*"
# Issue 9: shared roles (mode shared-role), jit-s-<profile>, at the same path.
JIT_SHARED_ROLE_ARN = (
    "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/jit/${AWS::StackName}/jit-s-*"
)
JIT_ROLE_ARNS = [{"Fn::Sub": JIT_ROLE_ARN}, {"Fn::Sub": JIT_SHARED_ROLE_ARN}]
JIT_PATH_ARN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/jit/${AWS::StackName}/*"
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


def when(statements: list[Any], conditions: dict[str, bool]) -> list[dict[str, Any]]:
    """A statement list with its Fn::If elements decided by ``conditions`` (AWS::NoValue
    dropped), as CloudFormation makes it for those condition values."""
    out = []
    for stmt in statements:
        if "Fn::If" in stmt:
            name, if_true, if_false = stmt["Fn::If"]
            stmt = if_true if conditions[name] else if_false
            if stmt == {"Ref": "AWS::NoValue"}:
                continue
        out.append(stmt)
    return out


# Conditions as the tests assume them unless they say otherwise: every optional part present.
ALL_PRESENT = {
    "HasManagedPolicyAllowList": True,
    "HasAlarmTopic": True,
    "HasMemberAccountIds": True,
    "CreateGrantNotifications": True,
}


def role_statements(
    resources: dict[str, Any], role: str, conditions: dict[str, bool] = ALL_PRESENT
) -> list[dict[str, Any]]:
    policies = resources[role]["Properties"]["Policies"]
    return [
        stmt
        for policy in policies
        for stmt in when(policy["PolicyDocument"]["Statement"], conditions)
    ]


def broker_statements(
    resources: dict[str, Any], conditions: dict[str, bool] = ALL_PRESENT
) -> list[dict[str, Any]]:
    return role_statements(resources, "BrokerRole", conditions)


def boundary_statements(
    resources: dict[str, Any], conditions: dict[str, bool] = ALL_PRESENT
) -> list[dict[str, Any]]:
    document = resources["JitRoleBoundary"]["Properties"]["PolicyDocument"]
    return when(document["Statement"], conditions)


def statements_with_action(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    """The statements that allow ``action`` (denies are checked on their own)."""
    return [s for s in statements if s["Effect"] == "Allow" and action in as_list(s["Action"])]


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
    [deny] = [s for s in boundary_statements(resources) if s["Sid"] == "DenyBrokerApi"]
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
    assert stmt["Effect"] == "Allow" and stmt["Resource"] == JIT_ROLE_ARNS
    assert stmt["Condition"] == {
        "StringEquals": BOUNDARY_CONDITION["StringEquals"] | OWNER_TAG_CONDITION
    }


def test_threat32_tags_are_written_only_as_this_stacks_owner_and_never_removed(resources):
    [tag] = statements_with_action(broker_statements(resources), "iam:TagRole")
    assert tag["Effect"] == "Allow" and tag["Resource"] == JIT_ROLE_ARNS
    assert tag["Condition"] == {"StringEquals": OWNER_TAG_CONDITION}
    allowed = {
        a
        for s in broker_statements(resources)
        if s["Effect"] == "Allow"
        for a in as_list(s["Action"])
    }
    assert "iam:UntagRole" not in allowed and "iam:UpdateAssumeRolePolicy" not in allowed


def test_roles_are_given_inline_policies_only_under_jit_with_the_boundary(resources):
    [stmt] = statements_with_action(broker_statements(resources), "iam:PutRolePolicy")
    assert stmt["Effect"] == "Allow"
    assert stmt["Resource"] == JIT_ROLE_ARNS
    assert stmt["Condition"] == BOUNDARY_CONDITION


def test_threat32_only_managed_policies_of_the_stacks_allow_list_are_ever_attached(template):
    # Issue 8, defect 1: AttachRolePolicy was conditioned on the boundary only, so a
    # compromised broker could attach AdministratorAccess (capped by the boundary, but still
    # every service the boundary leaves). Now: only ARNs of ManagedPolicyAllowList, ...
    resources = template["Resources"]
    parameter = template["Parameters"]["ManagedPolicyAllowList"]
    assert parameter["Type"] == "CommaDelimitedList" and parameter["Default"] == ""
    [stmt] = statements_with_action(broker_statements(resources), "iam:AttachRolePolicy")
    assert stmt == {
        "Sid": "AttachAllowedManagedPolicies",
        "Effect": "Allow",
        "Action": "iam:AttachRolePolicy",
        "Resource": JIT_ROLE_ARNS,
        "Condition": BOUNDARY_CONDITION
        | {"ArnEquals": {"iam:PolicyARN": {"Ref": "ManagedPolicyAllowList"}}},
    }
    # ... and with the list empty (the default) no statement allows attaching anything.
    assert template["Conditions"]["HasManagedPolicyAllowList"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "ManagedPolicyAllowList"}]}, ""]}]
    }
    without = broker_statements(resources, ALL_PRESENT | {"HasManagedPolicyAllowList": False})
    assert statements_with_action(without, "iam:AttachRolePolicy") == []
    assert not [s for s in without if "iam:*" in as_list(s["Action"])]


def test_the_broker_is_told_the_stacks_managed_policy_allow_list(resources):
    # The access policy's own allow list is checked at load against this one (a subset).
    from jit_broker.settings import Settings

    env = resources["BrokerFunction"]["Properties"]["Environment"]["Variables"]
    assert env["JIT_MANAGED_POLICY_ALLOW_LIST"] == {
        "Fn::Join": [",", {"Ref": "ManagedPolicyAllowList"}]
    }
    arns = "arn:aws:iam::aws:policy/ReadOnlyAccess,arn:aws:iam::123456789012:policy/x"
    base = {
        "JIT_TABLE_NAME": "jit-grants",
        "JIT_BOUNDARY_POLICY_ARN": "arn:aws:iam::123456789012:policy/b",
        "JIT_BROKER_ROLE_ARN": "arn:aws:iam::123456789012:role/broker",
        "JIT_OWNER_TAG": "stack",
        "JIT_POLICY_PARAMETER": "/p",
    }
    settings = Settings.from_env(base | {"JIT_MANAGED_POLICY_ALLOW_LIST": arns})
    assert settings.managed_policy_allow_list == tuple(arns.split(","))
    # The empty list's join is "", read as none.
    empty = Settings.from_env(base | {"JIT_MANAGED_POLICY_ALLOW_LIST": ""})
    assert empty.managed_policy_allow_list == ()


def test_every_iam_and_sts_allow_is_scoped_to_jit_roles(resources):
    allowed = [s for s in broker_statements(resources) if s["Effect"] == "Allow"]
    scoped = [
        s for s in allowed if any(a.split(":")[0] in {"iam", "sts"} for a in as_list(s["Action"]))
    ]
    at_home = {
        "CreateJitRole",
        "TagJitRoleAsOwned",
        "ManageJitRolePolicies",
        "AttachAllowedManagedPolicies",
        "ManageJitRole",
        "AssumeJitRole",
    }
    in_members = {"AssumeMemberJitRoles", "AssumeMemberExecutionRole"}
    assert {s["Sid"] for s in scoped} == at_home | in_members | {"DeleteJitGrantRole"}
    for stmt in scoped:
        if stmt["Sid"] in at_home:  # grant and shared roles, in this account
            assert as_list(stmt["Resource"]) == JIT_ROLE_ARNS, stmt["Sid"]
        elif stmt["Sid"] == "DeleteJitGrantRole":  # a shared role is the auditor's to remove
            assert stmt["Resource"] == {"Fn::Sub": JIT_ROLE_ARN}
        else:  # issue 9: any account's ARN, but only the listed member accounts'
            assert stmt["Condition"] == MEMBER_ACCOUNTS_ONLY, stmt["Sid"]
            for resource in as_list(stmt["Resource"]):
                assert resource["Fn::Sub"].startswith("arn:${AWS::Partition}:iam::*:role/")
        # No statement mixes IAM/STS with other services (which might need a wider Resource).
        assert {a.split(":")[0] for a in as_list(stmt["Action"])} <= {"iam", "sts"}, stmt["Sid"]
    # Without member accounts, no statement reaches beyond this account.
    without = broker_statements(resources, ALL_PRESENT | {"HasMemberAccountIds": False})
    assert not {s["Sid"] for s in without} & in_members


MEMBER_ACCOUNTS_ONLY = {"StringEquals": {"aws:ResourceAccount": {"Ref": "MemberAccountIds"}}}
MEMBER_ROLE_ARN = "arn:${AWS::Partition}:iam::*:role/${AWS::StackName}-jit-member"


def test_broker_assumes_jit_roles_with_source_identity_and_session_tags_only(resources):
    by_sid = {
        s["Sid"]: s for s in statements_with_action(broker_statements(resources), "sts:AssumeRole")
    }
    assert set(by_sid) == {"AssumeJitRole", "AssumeMemberJitRoles", "AssumeMemberExecutionRole"}
    for sid in ("AssumeJitRole", "AssumeMemberJitRoles"):
        assert sorted(as_list(by_sid[sid]["Action"])) == [
            "sts:AssumeRole",
            "sts:SetSourceIdentity",
            "sts:TagSession",
        ]
    assert by_sid["AssumeJitRole"]["Resource"] == JIT_ROLE_ARNS
    # Issue 9: the same roles in the member accounts, directly (one hop) ...
    assert by_sid["AssumeMemberJitRoles"]["Resource"] == [
        {"Fn::Sub": arn.replace("${AWS::AccountId}", "*")}
        for arn in (JIT_ROLE_ARN, JIT_SHARED_ROLE_ARN)
    ]
    # ... and, with no session tags or SourceIdentity, the members' execution role.
    assert by_sid["AssumeMemberExecutionRole"]["Action"] == "sts:AssumeRole"
    assert by_sid["AssumeMemberExecutionRole"]["Resource"] == {"Fn::Sub": MEMBER_ROLE_ARN}


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
    return [s for s in boundary_statements(resources) if s["Effect"] == "Deny"]


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


def test_functions_and_layer_are_named_under_the_stack_so_the_boundary_covers_them(resources):
    # A generated function name cuts a long stack name short (64 characters), which could
    # escape the boundary's function:${AWS::StackName}-*; these names cannot.
    names = {
        name: resources[name]["Properties"][key]
        for name, key in [
            ("BrokerFunction", "FunctionName"),
            ("CleanupFunction", "FunctionName"),
            ("CommonLayer", "LayerName"),
        ]
    }
    assert names == {
        "BrokerFunction": {"Fn::Sub": "${AWS::StackName}-broker"},
        "CleanupFunction": {"Fn::Sub": "${AWS::StackName}-auditor"},
        "CommonLayer": {"Fn::Sub": "${AWS::StackName}-common"},
    }


# ---------------------------------------------------------------- function settings


def test_tracer_never_captures_responses_or_errors(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert env["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false"
    # each stack its own metrics' service dimension (its alarms select it)
    assert env["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}
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
    assert env["JIT_ROLE_PATH"] == {"Fn::Sub": JIT_ROLE_PATH}
    assert env["JIT_BOUNDARY_POLICY_ARN"] == BOUNDARY_ARN
    assert env["JIT_BROKER_ROLE_ARN"] == {"Fn::GetAtt": ["BrokerRole", "Arn"]}
    assert env["JIT_AUDITOR_ROLE_ARN"] == {"Fn::GetAtt": ["CleanupRole", "Arn"]}
    assert env["JIT_MAX_ROLES_PER_OWNER"] == {"Ref": "MaxJitRolesPerRequester"}
    assert env["JIT_OWNER_TAG"] == {"Ref": "AWS::StackName"}
    assert env["JIT_POLICY_PARAMETER"] == {"Ref": "AccessPolicyParameterName"}
    assert env["JIT_MAX_ROLES"] == {"Ref": "MaxJitRoles"}


@pytest.mark.parametrize(
    "function, group",
    [("BrokerFunction", "BrokerLogGroup"), ("CleanupFunction", "CleanupLogGroup")],
)
def test_each_function_logs_to_its_own_kept_group_with_retention(resources, function, group):
    assert resources[function]["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": group}}
    assert resources[group]["DeletionPolicy"] == "Retain"
    assert resources[group]["UpdateReplacePolicy"] == "Retain"
    assert resources[group]["Properties"] == {"RetentionInDays": {"Ref": "LogRetentionDays"}}
    assert resources["ApiAccessLogGroup"]["Properties"] == {
        "RetentionInDays": {"Ref": "LogRetentionDays"}
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


def test_outputs_give_what_the_cli_admins_and_e2e_tests_need(template):
    # Issue 8, defect 8: jit configure (API URL, region), execute-api policies for callers
    # (API id), the e2e tests and admins (table, boundary, roles, path, bus, auditor, topic).
    outputs = {k: v["Value"] for k, v in template["Outputs"].items()}
    assert outputs == {
        "ApiUrl": {
            "Fn::Sub": "https://${JitApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}"
        },
        "ApiId": {"Ref": "JitApi"},
        "ApiStage": {"Ref": "Stage"},
        "Region": {"Ref": "AWS::Region"},
        "GrantTableName": {"Ref": "GrantTable"},
        "AccessPolicyParameterName": {"Ref": "AccessPolicyParameterName"},
        "BoundaryPolicyArn": {"Ref": "JitRoleBoundary"},
        "BrokerRoleArn": {"Fn::GetAtt": ["BrokerRole", "Arn"]},
        "AuditorRoleArn": {"Fn::GetAtt": ["CleanupRole", "Arn"]},
        "AuditorFunctionName": {"Ref": "CleanupFunction"},
        "RolePath": {"Fn::Sub": JIT_ROLE_PATH},
        "AuditEventBusName": {"Ref": "AuditEventBus"},
        "GrantEventBusName": {"Ref": "GrantEventBus"},
        "AlarmTopicArn": {"Ref": "AlarmTopicArn"},
        "GrantNotificationTopicArn": {"Ref": "GrantNotificationTopic"},
    }
    # An output's value may not be empty: a topic's exists only when there is one.
    assert template["Outputs"]["AlarmTopicArn"]["Condition"] == "HasAlarmTopic"
    assert (
        template["Outputs"]["GrantNotificationTopicArn"]["Condition"] == "CreateGrantNotifications"
    )
    assert {k for k, v in template["Outputs"].items() if "Condition" in v} == {
        "AlarmTopicArn",
        "GrantNotificationTopicArn",
    }


# ---------------------------------------------------------------- the auditor (issue 3)

JIT_INSTANCE_PROFILE_ARN = (
    "arn:${AWS::Partition}:iam::${AWS::AccountId}:instance-profile/jit/${AWS::StackName}/*"
)
GRANT_TABLE_AND_INDEXES = [
    {"Fn::GetAtt": ["GrantTable", "Arn"]},
    {"Fn::Sub": "${GrantTable.Arn}/index/*"},
]
IAM_READ_PREFIXES = ("iam:Get", "iam:List")


def cleanup_statements(resources: dict[str, Any]) -> list[dict[str, Any]]:
    return role_statements(resources, "CleanupRole")


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
            assert resource in JIT_ROLE_ARNS, (stmt["Sid"], action)
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
    # ... but for the members' execution role (issue 9), only in the listed accounts.
    assumes = [(r, s) for a, r, s in cleanup_allows(resources) if a.startswith("sts:")]
    assert [(r, s["Action"], s["Condition"]) for r, s in assumes] == [
        ({"Fn::Sub": MEMBER_ROLE_ARN}, "sts:AssumeRole", MEMBER_ACCOUNTS_ONLY)
    ]
    without = role_statements(
        resources, "CleanupRole", ALL_PRESENT | {"HasMemberAccountIds": False}
    )
    assert not [s for s in without if "sts:" in str(s["Action"])]
    allowed = {
        a.lower() for a, r, _ in cleanup_allows(resources) if r != {"Fn::Sub": MEMBER_ROLE_ARN}
    }
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


def test_auditor_puts_events_only_on_the_audit_bus_and_the_grant_bus(resources):
    events = [(a, r) for a, r, _ in cleanup_allows(resources) if a.startswith("events:")]
    assert events == [
        ("events:PutEvents", {"Fn::GetAtt": ["AuditEventBus", "Arn"]}),
        ("events:PutEvents", {"Fn::GetAtt": ["GrantEventBus", "Arn"]}),  # Expired, Cleaned
    ]
    assert resources["AuditEventBus"]["Type"] == "AWS::Events::EventBus"
    env = resources["CleanupFunction"]["Properties"]["Environment"]["Variables"]
    assert env["JIT_AUDIT_EVENT_BUS"] == {"Ref": "AuditEventBus"}
    assert env["JIT_GRANT_EVENT_BUS"] == {"Ref": "GrantEventBus"}


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


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    # As CloudFormation will see it: aws-sam-translator in the SAM tool venv (`make validate`
    # makes it), code locations as S3 objects as `sam package` makes them, no network.
    return translate(TEMPLATE_PATH)


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
    rules = {
        k: r
        for k, r in resources.items()
        if r["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in r["Properties"]
    }
    assert len(permissions) == 1 and len(rules) == 1
    [(rule_name, rule)] = rules.items()
    assert permissions[0]["Principal"] == "events.amazonaws.com"
    assert permissions[0]["SourceArn"] == {"Fn::GetAtt": [rule_name, "Arn"]}
    assert rule["Properties"]["ScheduleExpression"] == {"Ref": "AuditSchedule"}
    # Named <stack>-auditor: the boundary's rule/<stack>-* keeps grants off it.
    assert rule["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-auditor"}
    # The only other rules are the example on the audit bus and the grant notification rule
    # (CreateGrantNotificationTopic), which invoke nothing of ours.
    others = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule" and "ScheduleExpression" not in r["Properties"]
    ]
    assert [o["EventBusName"] for o in others] == [
        {"Ref": "AuditEventBus"},
        {"Ref": "GrantEventBus"},
    ]
    assert not [t for o in others for t in o["Targets"] if "Fn::GetAtt" in str(t)]


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


# ---------------------------------------------------------------- issue 8: deploying for real
#
# A small resolver for the static checks below: a template value as one stack of it holds it
# (Fn::Sub, Ref and Fn::GetAtt of what these checks need), and IAM's wildcard matching.

ACCOUNT = "123456789012"
REGION = "us-east-1"
API_ID = "a1b2c3d4e5"
GRANT_ROLE_NAME = "jit-g-0123456789abcdef01234567"
MEMBER_ACCOUNT = "210987654321"


def stack_values(stack: str, region: str = REGION) -> dict[str, str]:
    return {
        "AWS::Partition": "aws",
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": stack,
        "AWS::URLSuffix": "amazonaws.com",
        "JitApi": API_ID,
        "AccessPolicyParameterName": "/jit-broker/access-policy",
        "GrantTable.Arn": f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{stack}-GrantTable-1ABCDEF",
        "AuditorDeadLetterQueue.Arn": f"arn:aws:sqs:{region}:{ACCOUNT}:{stack}-DLQ-1ABCDEF",
        "AuditEventBus.Arn": f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{stack}-audit",
        "GrantEventBus.Arn": f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{stack}-grants",
        "GrantNotificationTopic": (
            f"arn:aws:sns:{region}:{ACCOUNT}:{stack}-GrantNotificationTopic-1ABCDEF"
        ),
        "AlarmTopicArn": f"arn:aws:sns:{region}:{ACCOUNT}:ops-alarms",
        "ManagedPolicyAllowList": "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "MemberAccountIds": MEMBER_ACCOUNT,
    }


def resolved(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, argument),) = value.items()
        if tag == "Fn::Sub":
            return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], argument)
        if tag == "Ref":
            return values[argument]
        if tag == "Fn::GetAtt":
            return values[".".join(argument)]
    if isinstance(value, dict):
        return {k: resolved(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [resolved(v, values) for v in value]
    return value


def iam_match(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM's wildcards: * any run of characters (/ and : included), ? one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, value, flags | re.DOTALL) is not None


def denied(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """Whether an unconditional Deny of ``statements`` (resolved) covers action on resource."""
    return any(
        s["Effect"] == "Deny"
        and "Condition" not in s
        and any(iam_match(a, action, case_sensitive=False) for a in as_list(s["Action"]))
        and any(iam_match(r, resource) for r in as_list(s["Resource"]))
        for s in statements
    )


def resolved_boundary(resources: dict[str, Any], stack: str = "jit-broker") -> list[dict[str, Any]]:
    return resolved(boundary_statements(resources), stack_values(stack))


# ------------------------------------------------ defect 1: the boundary (threat 32)

# A way out of the boundary, whatever resource it names: IAM and identity administration,
# the organization and the account, the audit trail, and code or commands run as another role.
WAYS_OUT = [
    "iam:CreateUser",
    "iam:CreateAccessKey",
    "iam:PassRole",
    "iam:AttachRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:UpdateAssumeRolePolicy",
    "sso:CreateAccountAssignment",
    "sso:AttachManagedPolicyToPermissionSet",
    "sso-directory:CreateUser",
    "identitystore:CreateGroupMembership",
    "organizations:LeaveOrganization",
    "organizations:DetachPolicy",
    "ram:CreateResourceShare",
    "account:CloseAccount",
    "sts:AssumeRole",
    "cloudtrail:StopLogging",
    "cloudtrail:DeleteTrail",
    "cloudtrail:UpdateTrail",
    "cloudtrail:PutEventSelectors",
    "config:StopConfigurationRecorder",
    "config:DeleteConfigurationRecorder",
    "config:DeleteDeliveryChannel",
    "guardduty:DeleteDetector",
    "guardduty:CreateIPSet",
    "securityhub:DisableSecurityHub",
    "lambda:CreateFunction",
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
    "lambda:PublishLayerVersion",
    "lambda:AddPermission",
    "lambda:CreateFunctionUrlConfig",
    "ssm:SendCommand",
    "ssm:StartSession",
    "ssm:StartAutomationExecution",
    "ssm:CreateAssociation",
    "ec2-instance-connect:SendSSHPublicKey",
    "ec2:ModifyInstanceAttribute",
    "ec2:CreateLaunchTemplateVersion",
    "ecs:RunTask",
    "ecs:ExecuteCommand",
    "ecs:RegisterTaskDefinition",
    "glue:UpdateDevEndpoint",
    "glue:UpdateJob",
    "codebuild:StartBuild",
    "codebuild:UpdateProject",
    "sagemaker:CreatePresignedNotebookInstanceUrl",
    "states:UpdateStateMachine",
    "cloudformation:CreateStack",
    "cloudformation:UpdateStack",
    "cloudformation:DeleteStack",
]


@pytest.mark.parametrize("action", WAYS_OUT)
def test_threat32_boundary_denies_every_way_out_on_every_resource(resources, action):
    statements = resolved_boundary(resources)
    for resource in ("*", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:someone-elses"):
        assert denied(statements, action, resource), (action, resource)


# What the profiles are for: the boundary must leave it alone (it caps, the profile grants).
ORDINARY_WORK = [
    ("s3:GetObject", "arn:aws:s3:::reports/q3.csv"),
    ("s3:PutObject", "arn:aws:s3:::reports/q3.csv"),
    ("ec2:DescribeInstances", "*"),
    ("ec2:StopInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0"),
    ("ecs:UpdateService", f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/web"),
    ("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders-api"),
    ("lambda:GetFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders-api"),
    ("dynamodb:Query", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders"),
    ("logs:FilterLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/orders-api"),
    ("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/orders/db-host"),
    ("states:StartExecution", f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:orders"),
    ("cloudtrail:LookupEvents", "*"),
    ("config:DescribeConfigRules", "*"),
    ("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"),
    ("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"),
    ("cloudwatch:GetMetricData", "*"),
]


@pytest.mark.parametrize("action, resource", ORDINARY_WORK)
def test_boundary_leaves_ordinary_work_to_the_profiles(resources, action, resource):
    statements = resolved_boundary(resources)
    assert not denied(statements, action, resource)
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert allows == [
        {"Sid": "AllowWhatTheGrantAllows", "Effect": "Allow", "Action": "*", "Resource": "*"}
    ]


def stack_resource_arns(stack: str) -> dict[str, tuple[str, str]]:
    """One request a grant must never make on each of the stack's own resources, with the
    names the template gives them (or CloudFormation's <stack>-<logical id>-<suffix>)."""
    arn = f"{REGION}:{ACCOUNT}"
    return {
        "broker function": (
            "lambda:InvokeFunction",
            f"arn:aws:lambda:{arn}:function:{stack}-broker",
        ),
        "auditor function": (
            "lambda:InvokeFunction",
            f"arn:aws:lambda:{arn}:function:{stack}-auditor",
        ),
        "layer": ("lambda:GetLayerVersion", f"arn:aws:lambda:{arn}:layer:{stack}-common:7"),
        "ledger": ("dynamodb:PutItem", stack_values(stack)["GrantTable.Arn"]),
        "ledger index": (
            "dynamodb:Query",
            stack_values(stack)["GrantTable.Arn"] + "/index/by_expiry",
        ),
        "an earlier, kept ledger": (
            "dynamodb:DeleteTable",
            f"arn:aws:dynamodb:{arn}:table/{stack}-GrantTable-0OLD",
        ),
        "access policy": (
            "ssm:PutParameter",
            f"arn:aws:ssm:{arn}:parameter/jit-broker/access-policy",
        ),
        "audit bus": ("events:PutEvents", f"arn:aws:events:{arn}:event-bus/{stack}-audit"),
        "grant bus": ("events:PutEvents", f"arn:aws:events:{arn}:event-bus/{stack}-grants"),
        "rule on the grant bus": (
            "events:PutTargets",
            f"arn:aws:events:{arn}:rule/{stack}-grants/{stack}-GrantNotificationRule-1ABC",
        ),
        "grant notification topic": (
            "sns:Subscribe",
            stack_values(stack)["GrantNotificationTopic"],
        ),
        "schedule": ("events:DisableRule", f"arn:aws:events:{arn}:rule/{stack}-auditor"),
        "rule on the audit bus": (
            "events:PutTargets",
            f"arn:aws:events:{arn}:rule/{stack}-audit/{stack}-AuditFindingsRule-1ABC",
        ),
        "broker logs": (
            "logs:DeleteLogGroup",
            f"arn:aws:logs:{arn}:log-group:{stack}-BrokerLogGroup-1ABC",
        ),
        "auditor log stream": (
            "logs:PutLogEvents",
            f"arn:aws:logs:{arn}:log-group:{stack}-CleanupLogGroup-1ABC:log-stream:x",
        ),
        "access log": (
            "logs:DeleteLogGroup",
            f"arn:aws:logs:{arn}:log-group:{stack}-ApiAccessLogGroup-1ABC",
        ),
        "dead letters": ("sqs:PurgeQueue", stack_values(stack)["AuditorDeadLetterQueue.Arn"]),
        "alarm": (
            "cloudwatch:DisableAlarmActions",
            f"arn:aws:cloudwatch:{arn}:alarm:{stack}-audit-drift",
        ),
        "alarm topic": ("sns:Unsubscribe", stack_values(stack)["AlarmTopicArn"]),
        "API": ("execute-api:Invoke", f"arn:aws:execute-api:{arn}:{API_ID}/dev/POST/v1/grants"),
        "API policy": ("apigateway:PATCH", f"arn:aws:apigateway:{REGION}::/restapis/{API_ID}"),
        "API stage": (
            "apigateway:DELETE",
            f"arn:aws:apigateway:{REGION}::/restapis/{API_ID}/stages/dev",
        ),
        "logging role setting": ("apigateway:PATCH", f"arn:aws:apigateway:{REGION}::/account"),
        "stack": ("cloudformation:UpdateStack", f"arn:aws:cloudformation:{arn}:stack/{stack}/0a1b"),
    }


@pytest.mark.parametrize("what", sorted(stack_resource_arns("s")))
def test_threat32_boundary_keeps_grants_off_every_resource_of_the_broker(resources, what):
    for stack in ("jit-broker", "a-much-longer-stack-name-for-the-broker-in-prod"):
        action, arn = stack_resource_arns(stack)[what]
        assert denied(resolved_boundary(resources, stack), action, arn), (stack, action, arn)


def test_whatever_a_grant_must_not_touch_is_named_under_the_stack(template):
    # The boundary names the stack's resources by <stack>-*: every name the template gives is
    # so, and every resource it leaves unnamed gets <stack>-<logical id>-<suffix> from
    # CloudFormation. A name outside the pattern would escape the boundary.
    name_keys = ("FunctionName", "LayerName", "Name", "AlarmName", "ManagedPolicyName")
    names = {
        logical: resource["Properties"][key]
        for logical, resource in template["Resources"].items()
        for key in name_keys
        if key in resource.get("Properties", {})
    }
    names |= {
        f"{fn}.{event}": e["Properties"]["Name"]
        for fn, f in functions(template["Resources"]).items()
        for event, e in f["Properties"].get("Events", {}).items()
        if "Name" in e["Properties"]
    }
    assert {
        "BrokerFunction",
        "CleanupFunction",
        "CommonLayer",
        "AuditEventBus",
        "GrantEventBus",
    } <= set(names)
    assert "CleanupFunction.Schedule" in names
    for logical, name in names.items():
        assert isinstance(name, dict) and name["Fn::Sub"].startswith("${AWS::StackName}-"), (
            logical,
            name,
        )


def test_boundary_fits_iams_managed_policy_size_for_the_longest_stack_name(resources):
    # IAM: 6144 characters, whitespace not counted. Stack names here are at most 56
    # characters (the auditor is <stack>-auditor, a function name of at most 64).
    longest = "s" * 56
    document = {
        "Version": "2012-10-17",
        "Statement": resolved(
            boundary_statements(resources), stack_values(longest, "ap-southeast-2")
        ),
    }
    assert len(json.dumps(document, separators=(",", ":"))) <= 6144


# ------------------------------------------------ defect 4: redeploying under the same name


def test_nothing_kept_after_a_delete_has_a_name_that_blocks_the_next_stack(resources):
    # A resource kept when its stack goes (DeletionPolicy Retain) with a fixed name makes
    # the next create of a stack of that name fail ("already exists"): after a delete, and
    # after a failed first create (a rollback keeps it too). Kept resources get the names
    # CloudFormation generates (a random suffix each time).
    name_keys = {
        "LogGroupName",
        "TableName",
        "RoleName",
        "QueueName",
        "TopicName",
        "BucketName",
        "FunctionName",
        "Name",
        "ManagedPolicyName",
    }
    kept = {k: r for k, r in resources.items() if r.get("DeletionPolicy") == "Retain"}
    assert {"GrantTable", "BrokerLogGroup", "CleanupLogGroup", "ApiAccessLogGroup"} <= set(kept)
    for name, resource in kept.items():
        assert not name_keys & set(resource.get("Properties", {})), name


def test_functions_log_only_to_their_kept_groups_never_one_named_after_them(translated):
    # A function without LoggingConfig logs to /aws/lambda/<function name>, which Lambda
    # creates on first run: with a fixed function name, the very name that blocked redeploys.
    resources = translated["Resources"]
    lambdas = translated_of_type(translated, "AWS::Lambda::Function")
    assert set(lambdas) == {"BrokerFunction", "CleanupFunction"}
    groups = {}
    for name, function in lambdas.items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert resources[group]["Type"] == "AWS::Logs::LogGroup"
        assert "LogGroupName" not in resources[group]["Properties"]
        groups[name] = group
    assert groups == {"BrokerFunction": "BrokerLogGroup", "CleanupFunction": "CleanupLogGroup"}


# ------------------------------------------------ defect 5: IAM propagation


def test_assume_retry_budget_is_a_parameter_that_fits_the_lambda_and_api_timeouts(template):
    from jit_broker.grants import ANSWER_RESERVE_SECONDS
    from jit_broker.settings import Settings

    parameter = template["Parameters"]["AssumeRetryBudgetSeconds"]
    assert parameter["Type"] == "Number"
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (18, 0, 20)
    env = template["Resources"]["BrokerFunction"]["Properties"]["Environment"]["Variables"]
    assert env["JIT_ASSUME_RETRY_BUDGET_SECONDS"] == {"Ref": "AssumeRetryBudgetSeconds"}
    # The settings take exactly the parameter's range and default.
    field = Settings.model_fields["assume_retry_budget_seconds"]
    bounds = {type(m).__name__: m for m in field.metadata}
    assert (bounds["Ge"].ge, bounds["Le"].le) == (parameter["MinValue"], parameter["MaxValue"])
    assert field.default == parameter["Default"]
    # The longest budget and the broker's reserve for answering fit the function's timeout,
    # which is under API Gateway's 29 s: the caller always gets the broker's own answer.
    timeout = template["Globals"]["Function"]["Timeout"]
    assert "Timeout" not in template["Resources"]["BrokerFunction"]["Properties"]
    assert parameter["MaxValue"] + ANSWER_RESERVE_SECONDS <= timeout < 29


# ------------------------------------------------ defect 6: one path per stack


def test_the_role_path_is_the_stacks_own_in_both_functions_and_the_settings_take_it(template):
    from jit_broker.settings import AuditSettings, Settings

    for function in ("BrokerFunction", "CleanupFunction"):
        env = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert env["JIT_ROLE_PATH"] == {"Fn::Sub": JIT_ROLE_PATH}, function
    path = resolved({"Fn::Sub": JIT_ROLE_PATH}, stack_values("jit-broker-prod"))
    base = {
        "JIT_TABLE_NAME": "jit-grants",
        "JIT_BOUNDARY_POLICY_ARN": "arn:aws:iam::123456789012:policy/b",
        "JIT_BROKER_ROLE_ARN": "arn:aws:iam::123456789012:role/broker",
        "JIT_OWNER_TAG": "jit-broker-prod",
        "JIT_ROLE_PATH": path,
    }
    assert Settings.from_env(base | {"JIT_POLICY_PARAMETER": "/p"}).role_path == path
    assert AuditSettings.from_env(base).role_path == "/jit/jit-broker-prod/"
    outputs = template["Outputs"]
    assert outputs["RolePath"]["Value"] == {"Fn::Sub": JIT_ROLE_PATH}


def iam_allows(resources: dict[str, Any], stack: str) -> list[tuple[str, str, str]]:
    """(role, action, resource) of every IAM/STS Allow of the broker's and auditor's roles."""
    return [
        (role, action, resource)
        for role in ("BrokerRole", "CleanupRole")
        for stmt in resolved(role_statements(resources, role), stack_values(stack))
        if stmt["Effect"] == "Allow"
        for action in as_list(stmt["Action"])
        if action.split(":")[0] in {"iam", "sts"}
        for resource in as_list(stmt["Resource"])
    ]


# dev and prod side by side, one name the other's prefix (a pattern jit/jit-broker* would
# cover both).
@pytest.mark.parametrize(
    "stack, other", [("jit-broker", "jit-broker-prod"), ("jit-broker-prod", "jit-broker")]
)
def test_two_stacks_in_one_account_cannot_touch_each_others_roles(resources, stack, other):
    others = [
        f"arn:aws:iam::{ACCOUNT}:role/jit/{other}/{GRANT_ROLE_NAME}",
        f"arn:aws:iam::{ACCOUNT}:instance-profile/jit/{other}/{GRANT_ROLE_NAME}",
    ]
    allows = iam_allows(resources, stack)
    # ListRoles has no resource: it lists (reads) every path; the auditor acts on its own only.
    assert {a for _, a, r in allows if r == "*"} == {"iam:ListRoles"}
    for role, action, resource in allows:
        if action == "iam:ListRoles":
            continue
        for arn in others:
            assert not iam_match(resource, arn), (stack, role, action, resource, arn)
    # ... while each reaches its own: the broker creates and assumes, the auditor removes.
    own = f"arn:aws:iam::{ACCOUNT}:role/jit/{stack}/{GRANT_ROLE_NAME}"
    reach = {(role, action) for role, action, resource in allows if iam_match(resource, own)}
    assert {
        ("BrokerRole", "iam:CreateRole"),
        ("BrokerRole", "sts:AssumeRole"),
        ("CleanupRole", "iam:DeleteRole"),
    } <= reach


# ------------------------------------------------ defect 7: a policy over 4 KB


def test_access_policy_parameter_tells_how_to_hold_a_policy_over_4_kb(template):
    description = " ".join(
        template["Parameters"]["AccessPolicyParameterName"]["Description"].split()
    )
    assert "--tier Advanced" in description and "4 KB" in description


# ------------------------------------------------ defect 8: operations

# (alarm, namespace, metric, dimensions): broker failures, auditor failures and dead letters,
# drift, roles the broker did not make, and ledger writes that failed.
ALARMS = [
    (
        "BrokerApi5xxAlarm",
        "AWS/ApiGateway",
        "5XXError",
        {"ApiName": {"Ref": "AWS::StackName"}, "Stage": {"Ref": "Stage"}},
    ),
    ("BrokerErrorsAlarm", "AWS/Lambda", "Errors", {"FunctionName": {"Ref": "BrokerFunction"}}),
    ("AuditorErrorsAlarm", "AWS/Lambda", "Errors", {"FunctionName": {"Ref": "CleanupFunction"}}),
    (
        "AuditorDeadLetterAlarm",
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": ["AuditorDeadLetterQueue", "QueueName"]}},
    ),
    ("AuditDriftAlarm", "JitBroker", "AuditDrift", {"service": {"Ref": "AWS::StackName"}}),
    (
        "AuditUnexpectedRolesAlarm",
        "JitBroker",
        "AuditUnexpectedRoles",
        {"service": {"Ref": "AWS::StackName"}},
    ),
    (
        "AuditAccountsUnreachableAlarm",
        "JitBroker",
        "AccountsUnreachable",
        {"service": {"Ref": "AWS::StackName"}},
    ),
    (
        "LedgerUnavailableAlarm",
        "JitBroker",
        "Refused_ledger_unavailable",
        {"service": {"Ref": "AWS::StackName"}},
    ),
]
TOPIC_IF_GIVEN = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


@pytest.mark.parametrize("alarm, namespace, metric, dimensions", ALARMS)
def test_alarm_fires_on_one_occurrence_to_the_topic_when_given(
    resources, alarm, namespace, metric, dimensions
):
    props = resources[alarm]["Properties"]
    assert resources[alarm]["Type"] == "AWS::CloudWatch::Alarm"
    assert (props["Namespace"], props["MetricName"]) == (namespace, metric)
    assert {d["Name"]: d["Value"] for d in props["Dimensions"]} == dimensions
    assert props["Threshold"] == 1
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["TreatMissingData"] == "notBreaching"
    assert props["AlarmActions"] == TOPIC_IF_GIVEN
    assert props["OKActions"] == TOPIC_IF_GIVEN
    assert props["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-")


def test_every_alarm_is_one_of_the_listed(resources):
    alarms = {k for k, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms == {a[0] for a in ALARMS}


def test_alarmed_metrics_are_the_ones_the_functions_publish(translated):
    # The namespace and service dimension of the code's Metrics, and the metric names the
    # auditor and the broker's refusal handler write: an alarm on a name nobody writes
    # would never fire.
    import inspect

    from jit_broker.audit import Auditor
    from jit_broker.errors import LedgerUnavailable
    from jit_broker.observability import metrics

    # the service dimension is POWERTOOLS_SERVICE_NAME (the stack's name in Lambda; tests: jit-broker)
    assert (metrics.namespace, metrics.service) == ("JitBroker", "jit-broker")
    emitted = inspect.getsource(Auditor._emit)
    assert '"AuditDrift"' in emitted and '"AuditUnexpectedRoles"' in emitted
    assert LedgerUnavailable.code == "ledger_unavailable"
    broker_app = (ROOT / "functions" / "broker" / "app.py").read_text()
    assert 'name=f"Refused_{exc.code}"' in broker_app
    # SAM names the REST API after the stack (the 5XX alarm's ApiName).
    body = translated["Resources"]["JitApi"]["Properties"]["Body"]
    assert body["info"]["title"] == {"Ref": "AWS::StackName"}
    assert "Name" not in translated["Resources"]["JitApi"]["Properties"]


def test_alarm_topic_is_an_optional_parameter(template):
    parameter = template["Parameters"]["AlarmTopicArn"]
    assert parameter["Type"] == "String" and parameter["Default"] == ""
    assert template["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }


def test_example_rule_on_the_audit_bus_sends_findings_to_the_topic_or_stays_disabled(resources):
    from jit_broker.adapters.events import SOURCE

    rule = resources["AuditFindingsRule"]
    assert rule["Type"] == "AWS::Events::Rule"
    props = rule["Properties"]
    assert props["EventBusName"] == {"Ref": "AuditEventBus"}
    assert props["EventPattern"] == {"source": [SOURCE], "detail-type": ["JIT audit finding"]}
    assert props["State"] == {"Fn::If": ["HasAlarmTopic", "ENABLED", "DISABLED"]}
    assert props["Targets"] == {
        "Fn::If": [
            "HasAlarmTopic",
            [{"Id": "alarm-topic", "Arn": {"Ref": "AlarmTopicArn"}}],
            {"Ref": "AWS::NoValue"},
        ]
    }


def test_auditor_runs_one_at_a_time(resources):
    # Overlapping sweeps would race on the same roles and on the resume cursor.
    assert resources["CleanupFunction"]["Properties"]["ReservedConcurrentExecutions"] == 1


def test_ledger_cannot_be_deleted_by_accident(resources):
    assert resources["GrantTable"]["Properties"]["DeletionProtectionEnabled"] is True


def test_every_parameter_is_constrained_and_its_default_passes(template):
    # CloudFormation matches AllowedPattern against the whole value, and against each element
    # of a CommaDelimitedList (so an empty default list must match as "").
    for name, parameter in template["Parameters"].items():
        kind = parameter["Type"]
        default = str(parameter.get("Default", ""))
        if "AllowedValues" in parameter:
            assert default in [str(v) for v in parameter["AllowedValues"]], name
        elif kind in ("String", "CommaDelimitedList"):
            pattern = parameter["AllowedPattern"]
            values = default.split(",") if kind == "CommaDelimitedList" else [default]
            for value in values:
                assert re.fullmatch(pattern, value), (name, value)
        else:
            assert kind == "Number", name
            assert parameter["MinValue"] <= float(default) <= parameter["MaxValue"], name
        assert parameter.get("Description"), name


@pytest.mark.parametrize(
    "name, good, bad",
    [
        ("AllowedAccountIds", "123456789012", "12345678901"),
        ("MemberAccountIds", "210987654321", "arn:aws:iam::210987654321:root"),
        ("ManagedPolicyAllowList", "arn:aws:iam::aws:policy/ReadOnlyAccess", "ReadOnlyAccess"),
        (
            "ManagedPolicyAllowList",
            "arn:aws:iam::123456789012:policy/team/x",
            "arn:aws:iam::*:policy/x",
        ),
        (
            "AlarmTopicArn",
            "arn:aws:sns:us-east-1:123456789012:ops",
            "arn:aws:sqs:us-east-1:123456789012:ops",
        ),
    ],
)
def test_list_and_arn_parameters_take_only_well_formed_values(template, name, good, bad):
    pattern = template["Parameters"][name]["AllowedPattern"]
    assert re.fullmatch(pattern, good) and not re.fullmatch(pattern, bad)


def test_threat32_the_broker_never_makes_or_uses_a_role_below_its_path(resources):
    # role/jit/<stack>/jit-g-* also matches role/jit/<stack>/jit-g-x/<any name>: a role at a
    # deeper path, which the auditor (exact path only, threat 31) never removes. A compromised
    # broker could make one trusting an outside account: a backdoor that outlives every grant.
    statements = resolved(broker_statements(resources), stack_values("jit-broker"))
    base = f"arn:aws:iam::{ACCOUNT}:role/jit/jit-broker/"
    deeper = f"{base}jit-g-x/backdoor"
    for action in (
        "iam:CreateRole",
        "iam:TagRole",
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "sts:AssumeRole",
    ):
        assert denied(statements, action, deeper), action
        assert not denied(statements, action, base + GRANT_ROLE_NAME), action
    # Issue 9: nor in a member account, whose roles it assumes directly.
    member = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/jit/jit-broker/"
    assert denied(statements, "sts:AssumeRole", f"{member}jit-s-x/backdoor")
    assert not denied(statements, "sts:AssumeRole", f"{member}jit-s-s3-read")


def test_both_functions_are_told_the_member_accounts_and_their_execution_roles_name(template):
    # Issue 9: the name templates/member-account.yaml gives the role (<hub stack>-jit-member),
    # the one the broker's and the auditor's AssumeMemberExecutionRole name.
    parameter = template["Parameters"]["MemberAccountIds"]
    assert parameter["Type"] == "CommaDelimitedList" and parameter["Default"] == ""
    assert template["Conditions"]["HasMemberAccountIds"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "MemberAccountIds"}]}, ""]}]
    }
    for function in ("BrokerFunction", "CleanupFunction"):
        env = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert env["JIT_MEMBER_ACCOUNTS"] == {"Fn::Join": [",", {"Ref": "MemberAccountIds"}]}
        assert env["JIT_MEMBER_ROLE_NAME"] == {"Fn::Sub": "${AWS::StackName}-jit-member"}
        assert MEMBER_ROLE_ARN.endswith(":role/" + env["JIT_MEMBER_ROLE_NAME"]["Fn::Sub"])


# ------------------------------------------------ issue 11, part 4: grant events


def test_broker_may_put_events_on_exactly_the_grant_bus_and_do_nothing_else_of_eventbridge(
    resources,
):
    # A compromised broker must not forge the auditor's findings (the audit bus), reach any
    # other bus, or make rules or targets that route events elsewhere.
    for conditions in (ALL_PRESENT, dict.fromkeys(ALL_PRESENT, False)):
        statements = broker_statements(resources, conditions)
        events = [
            (s["Sid"], s["Effect"], s["Action"], s["Resource"], s.get("Condition"))
            for s in statements
            if any(a.lower().startswith("events:") for a in as_list(s["Action"]))
        ]
        assert events == [
            (
                "GrantEvents",
                "Allow",
                "events:PutEvents",
                {"Fn::GetAtt": ["GrantEventBus", "Arn"]},
                None,
            )
        ]
    assert resources["GrantEventBus"]["Type"] == "AWS::Events::EventBus"
    assert resources["GrantEventBus"]["Properties"] == {
        "Name": {"Fn::Sub": "${AWS::StackName}-grants"}
    }
    assert "DeletionPolicy" not in resources["GrantEventBus"]
    env = resources["BrokerFunction"]["Properties"]["Environment"]["Variables"]
    assert env["JIT_GRANT_EVENT_BUS"] == {"Ref": "GrantEventBus"}


def test_grant_bus_resolves_to_one_bus_arn_no_wildcard_other_than_the_audit_bus(resources):
    values = stack_values("jit-broker")
    [statement] = [s for s in broker_statements(resources) if s["Sid"] == "GrantEvents"]
    resource = resolved(statement["Resource"], values)
    assert resource == f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/jit-broker-grants"
    assert "*" not in resource and resource != values["AuditEventBus.Arn"]
    default_bus = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
    assert not iam_match(resource, values["AuditEventBus.Arn"])
    assert not iam_match(resource, default_bus)


def test_grant_notification_topic_is_optional_and_off_by_default(template, resources):
    parameter = template["Parameters"]["CreateGrantNotificationTopic"]
    assert parameter["Default"] == "false" and parameter["AllowedValues"] == ["true", "false"]
    assert template["Conditions"]["CreateGrantNotifications"] == {
        "Fn::Equals": [{"Ref": "CreateGrantNotificationTopic"}, "true"]
    }
    for name in ("GrantNotificationTopic", "GrantNotificationTopicPolicy", "GrantNotificationRule"):
        assert resources[name]["Condition"] == "CreateGrantNotifications", name


def test_grant_notification_rule_sends_every_grant_event_of_the_grant_bus_to_the_topic(resources):
    from jit_broker.models.events import GRANT_EVENT_SOURCE

    props = resources["GrantNotificationRule"]["Properties"]
    assert props["EventBusName"] == {"Ref": "GrantEventBus"}
    assert props["EventPattern"] == {"source": [GRANT_EVENT_SOURCE]}
    assert props["State"] == "ENABLED"
    assert props["Targets"] == [
        {"Id": "grant-notification-topic", "Arn": {"Ref": "GrantNotificationTopic"}}
    ]


def test_only_the_grant_notification_rule_may_publish_to_its_topic(resources):
    props = resources["GrantNotificationTopicPolicy"]["Properties"]
    assert props["Topics"] == [{"Ref": "GrantNotificationTopic"}]
    [statement] = props["PolicyDocument"]["Statement"]
    assert statement == {
        "Sid": "GrantEventsRuleOnly",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sns:Publish",
        "Resource": {"Ref": "GrantNotificationTopic"},
        "Condition": {
            "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["GrantNotificationRule", "Arn"]}}
        },
    }


def test_grants_can_neither_put_events_on_the_grant_bus_nor_touch_its_topic(resources):
    values = stack_values("jit-broker")
    boundary = resolved_boundary(resources)
    assert denied(boundary, "events:PutEvents", values["GrantEventBus.Arn"])
    assert denied(boundary, "sns:Subscribe", values["GrantNotificationTopic"])
    assert denied(boundary, "sns:SetTopicAttributes", values["GrantNotificationTopic"])
