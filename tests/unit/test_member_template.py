"""templates/member-account.yaml (issue 9), as CloudFormation sees it and as the hub meets it.

The member template is translated like the hub's template (jit_local.template: aws-sam-translator
in the SAM tool venv; it is plain CloudFormation, so nothing is expanded) and resolved for one
stack instance of a StackSet in account MEMBER, with the hub's own values as parameters: the
hub's template resolved for stack ``jit-broker-local`` in account HUB gives the broker's and
auditor's role ARNs, the API id, the access policy's name. Its policies are then judged by the
project's IAM evaluator (jit_local.iam_eval), row by row as tests/unit/test_deployed_policies.py
judges the hub's: the execution role's rights (exactly the hub broker's and auditor's IAM rights
at home on role/jit/<hub stack>/jit-g-* and jit-s-*, nothing else), its trust (the hub's two
roles only), the boundary (the hub's, statement for statement). Two tests hold the member's
statements to the hub's, so neither can change without the other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jit_broker import naming
from jit_local.iam_eval import Decision, Principal, evaluate
from jit_local.template import Stack, translate

ROOT = Path(__file__).resolve().parents[2]
MEMBER_TEMPLATE = ROOT / "templates" / "member-account.yaml"

HUB_STACK = "jit-broker-local"
HUB = "123456789012"
MEMBER = "111122223333"
OTHER_ACCOUNT = "210987654321"
# A StackSet names each stack instance StackSet-<set name>-<id>, never after the hub.
INSTANCE = "StackSet-jit-member-0a1b2c3d-4e5f-4789-abcd-ef0123456789"
OTHER_INSTANCE = "jit-member"  # self-managed, or a stack made by hand
GRANT_NAME = naming.role_name_for("g-0123456789abcdef01234567")
SHARED_NAME = naming.shared_role_name("s3-read")  # jit-s-<profile>
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
ADMINISTRATOR = "arn:aws:iam::aws:policy/AdministratorAccess"
ALLOW_LIST = f"{READ_ONLY},arn:aws:iam::aws:policy/AWSSupportAccess"
ALARM_TOPIC = f"arn:aws:sns:us-east-1:{HUB}:ops-alarms"

ALLOWED = (Decision.ALLOW,)
EXPLICIT_DENY = (Decision.DENY,)
DENIED = (Decision.DENY, Decision.NEUTRAL)


@pytest.fixture(scope="module")
def hub_translated() -> dict[str, Any]:
    return translate()


@pytest.fixture(scope="module")
def member_translated() -> dict[str, Any]:
    return translate(MEMBER_TEMPLATE)


def hub_stack(translated: Mapping[str, Any], **parameters: str) -> Stack:
    return Stack(
        translated,
        HUB_STACK,
        account=HUB,
        parameters={"MemberAccountIds": MEMBER} | parameters,
    )


def member_stack(
    member_translated: Mapping[str, Any],
    hub: Stack,
    *,
    name: str = INSTANCE,
    account: str = MEMBER,
    **parameters: str,
) -> Stack:
    """A stack instance given the hub's own values, as docs/deploy.md passes them."""
    given = {
        "HubStackName": hub.name,
        "HubBrokerRoleArn": hub.arn("BrokerRole"),
        "HubAuditorRoleArn": hub.arn("CleanupRole"),
    }
    return Stack(member_translated, name, account=account, parameters=given | parameters)


@pytest.fixture(scope="module")
def hub(hub_translated: dict[str, Any]) -> Stack:
    return hub_stack(hub_translated)


@pytest.fixture(scope="module")
def member(member_translated: dict[str, Any], hub: Stack) -> Stack:
    return member_stack(member_translated, hub)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------- names


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def test_no_name_depends_on_the_stack_instances_own_name(member_translated, hub):
    # StackSets-ready: a service-managed StackSet names its instances StackSet-<set>-<id>; the
    # hub's broker finds the boundary and the execution role by names it derives from its own
    # stack name. So nothing refers to AWS::StackName, and two instances of other names (or
    # the same instance in another account) resolve to the same names.
    assert not [s for s in strings(member_translated) if "AWS::StackName" in s]
    one = member_stack(member_translated, hub, name=INSTANCE)
    other = member_stack(member_translated, hub, name=OTHER_INSTANCE)
    elsewhere = member_stack(member_translated, hub, account=OTHER_ACCOUNT)
    for logical in ("JitRoleBoundary", "MemberExecutionRole"):
        assert one.arn(logical) == other.arn(logical), logical
        assert one.arn(logical) == elsewhere.arn(logical).replace(OTHER_ACCOUNT, MEMBER)
    assert one.resolve(member_translated["Outputs"]) == other.resolve(member_translated["Outputs"])


def test_execution_role_is_the_one_the_hubs_functions_are_told_at_the_root_path(member, hub):
    for function in ("BrokerFunction", "CleanupFunction"):
        name = hub.environment(function)["JIT_MEMBER_ROLE_NAME"]
        assert member.arn("MemberExecutionRole") == f"arn:aws:iam::{MEMBER}:role/{name}"
    props = member.properties("MemberExecutionRole")
    assert props["Path"] == "/"
    # IAM's 64 characters, for the longest hub stack name the parameter admits.
    pattern = member.template["Parameters"]["HubStackName"]["AllowedPattern"]
    longest = "s" * 53
    assert re.fullmatch(pattern, longest) and not re.fullmatch(pattern, longest + "s")
    assert len(props["RoleName"].replace(hub.name, longest)) <= 64


def test_boundary_is_the_one_the_hub_names_with_this_accounts_id(member, hub):
    # The broker creates grant roles here with (and its CreateRole requires) the boundary
    # of its own name, <hub stack>-jit-boundary at path /, in the account of the role.
    at_home = hub.environment("BrokerFunction")["JIT_BOUNDARY_POLICY_ARN"]
    assert member.ref("JitRoleBoundary") == at_home.replace(f":{HUB}:", f":{MEMBER}:")
    assert member.properties("JitRoleBoundary")["Path"] == "/"


def test_outputs_are_the_execution_role_and_the_boundary(member, member_translated):
    outputs = member.resolve(member_translated["Outputs"])
    assert {k: v["Value"] for k, v in outputs.items()} == {
        "ExecutionRoleArn": member.arn("MemberExecutionRole"),
        "BoundaryPolicyArn": member.ref("JitRoleBoundary"),
    }


def test_every_parameter_is_constrained_and_only_the_hubs_identity_is_required(member_translated):
    parameters = member_translated["Parameters"]
    required = {name for name, p in parameters.items() if "Default" not in p}
    assert required == {"HubStackName", "HubBrokerRoleArn", "HubAuditorRoleArn"}
    for name, parameter in parameters.items():
        assert parameter.get("Description"), name
        pattern = parameter["AllowedPattern"]
        if "Default" in parameter:
            for value in str(parameter["Default"]).split(","):
                assert re.fullmatch(pattern, value), (name, value)
    role_arn = parameters["HubBrokerRoleArn"]["AllowedPattern"]
    assert re.fullmatch(role_arn, f"arn:aws:iam::{HUB}:role/jit-broker-BrokerRole-1ABC")
    assert not re.fullmatch(role_arn, f"arn:aws:iam::{HUB}:root")
    assert not re.fullmatch(role_arn, "*")


# --------------------------------------------------------------------------- trust


def session(role_arn: str) -> Principal:
    account = role_arn.split(":")[4]
    name = role_arn.rsplit("/", 1)[1]
    return Principal(
        arn=f"arn:aws:sts::{account}:assumed-role/{name}/session",
        principal_arn=role_arn,
        account=account,
    )


def test_execution_role_trusts_only_the_hubs_broker_and_auditor(member, hub):
    trust = member.properties("MemberExecutionRole")["AssumeRolePolicyDocument"]
    [statement] = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert sorted(statement["Principal"]["AWS"]) == sorted(
        [hub.arn("BrokerRole"), hub.arn("CleanupRole")]
    )
    assert "Condition" not in statement
    role = member.arn("MemberExecutionRole")
    path = hub.environment("BrokerFunction")["JIT_ROLE_PATH"]
    callers = {
        hub.arn("BrokerRole"): ALLOWED,
        hub.arn("CleanupRole"): ALLOWED,
        f"arn:aws:iam::{HUB}:role{path}{GRANT_NAME}": DENIED,  # a grant of the hub
        f"arn:aws:iam::{MEMBER}:role{path}{GRANT_NAME}": DENIED,  # a grant of this account
        f"arn:aws:iam::{MEMBER}:role/admin": DENIED,
        # the broker's role name in another account
        hub.arn("BrokerRole").replace(HUB, OTHER_ACCOUNT): DENIED,
    }
    for caller, expect in callers.items():
        principal = session(caller)
        context = {"aws:PrincipalArn": caller, "aws:PrincipalAccount": principal.account}
        for action in ("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"):
            decision = evaluate([trust], action, role, context, principal)
            want = expect if action == "sts:AssumeRole" else DENIED
            assert decision in want, (caller, action, decision)


def test_the_hubs_broker_and_auditor_may_assume_this_role_in_a_listed_account_only(
    member, hub, member_translated
):
    # The other half of the trust: the hub's own identity policies (MemberAccountIds).
    for logical in ("BrokerRole", "CleanupRole"):
        identity = list(hub.inline_policies(logical).values())
        for account, expect in ((MEMBER, ALLOWED), (OTHER_ACCOUNT, DENIED)):
            target = member_stack(member_translated, hub, account=account)
            role = target.arn("MemberExecutionRole")
            context = {"aws:ResourceAccount": account}
            decision = evaluate(identity, "sts:AssumeRole", role, context)
            assert decision in expect, (logical, account, decision)


# --------------------------------------------------------------------------- the execution role


@dataclass(frozen=True)
class Row:
    action: str
    resource: str  # str.format'ed with the facts
    expect: tuple[Decision, ...]
    why: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)
    allow_list: str = ""  # the ManagedPolicyAllowList parameter

    def param(self) -> Any:
        return pytest.param(self, id=self.why)


def create_role(*, boundary: str | None = "{boundary}", owner: str | None = "{owner}") -> dict:
    """CreateRole's keys (and TagRole's): the boundary asked for and the tags written."""
    tags = {"jit:grant-id": "g-0123456789abcdef01234567", "jit:profile": "s3-read"}
    if owner is not None:
        tags["jit:owner"] = owner
    context: dict[str, Any] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    context["aws:TagKeys"] = list(tags)
    if boundary is not None:
        context["iam:PermissionsBoundary"] = boundary
    return context


ON_BOUNDED_ROLE = {"iam:PermissionsBoundary": "{boundary}"}


def attach(policy_arn: str) -> dict[str, str]:
    return {**ON_BOUNDED_ROLE, "iam:PolicyARN": policy_arn}


GRANT = "{grant_role}"
SHARED = "{shared_role}"

# One request per line: the table reads as a table.
# fmt: off
EXECUTION_ROLE_ROWS = [
    # What the hub's broker does here through the role: grant and shared roles under the path,
    # with the boundary and the owner tag; their jit-grant and jit-revoked policies.
    *(
        Row(action, role, ALLOWED, f"{action} of a {kind} role", context)
        for role, kind in ((GRANT, "grant"), (SHARED, "shared"))
        for action, context in (
            ("iam:CreateRole", create_role()),
            ("iam:TagRole", create_role()),
            ("iam:PutRolePolicy", ON_BOUNDED_ROLE),  # jit-grant, jit-revoked
            ("iam:DeleteRolePolicy", ON_BOUNDED_ROLE),
            ("iam:DetachRolePolicy", {"iam:PolicyARN": READ_ONLY}),
            ("iam:DeleteRole", {}),
            ("iam:GetRole", {}),
        )
    ),
    Row("iam:AttachRolePolicy", SHARED, ALLOWED, "attaches an allow-listed policy", attach(READ_ONLY), ALLOW_LIST),
    # What the hub's auditor does here: list, read everything under the path, tear down.
    Row("iam:ListRoles", "*", ALLOWED, "lists roles"),
    *(
        Row(action, resource, ALLOWED, f"audit read {action} of {resource}")
        for action in ("iam:ListRoleTags", "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole")
        for resource in (GRANT, SHARED, "arn:aws:iam::{member}:role{path}someone-elses")
    ),
    Row("iam:RemoveRoleFromInstanceProfile", "arn:aws:iam::{member}:instance-profile{path}{grant_name}", ALLOWED, "leaves instance profiles"),
    # Never another path, another name, another account, or without boundary and owner tag.
    Row("iam:CreateRole", "arn:aws:iam::{member}:role/jit/elsewhere/{grant_name}", DENIED, "no role at another path", create_role()),
    Row("iam:CreateRole", "arn:aws:iam::{member}:role/{grant_name}", DENIED, "no role outside the path", create_role()),
    Row("iam:CreateRole", "arn:aws:iam::{member}:role/jit/jit-broker-other/{grant_name}", DENIED, "no role at another stacks path", create_role()),
    Row("iam:CreateRole", "arn:aws:iam::{member}:role{path}{grant_name}/backdoor", EXPLICIT_DENY, "no role below the path", create_role()),
    Row("iam:CreateRole", "arn:aws:iam::{member}:role{path}admin", DENIED, "no other name under the path", create_role()),
    Row("iam:CreateRole", "arn:aws:iam::{hub}:role{path}{grant_name}", DENIED, "no role in the hub account", create_role()),
    Row("iam:CreateRole", GRANT, DENIED, "no grant role without a boundary", create_role(boundary=None)),
    Row("iam:CreateRole", SHARED, DENIED, "no shared role without a boundary", create_role(boundary=None)),
    Row("iam:CreateRole", GRANT, DENIED, "no role bounded by the hubs boundary", create_role(boundary="{hub_boundary}")),
    Row("iam:CreateRole", GRANT, DENIED, "no grant role without the owner tag", create_role(owner=None)),
    Row("iam:CreateRole", SHARED, DENIED, "no shared role without the owner tag", create_role(owner=None)),
    Row("iam:CreateRole", SHARED, DENIED, "no role of another owner", create_role(owner="jit-broker-other")),
    Row("iam:TagRole", SHARED, DENIED, "never tags as another owner", create_role(owner="jit-broker-other")),
    # Never a trust, boundary or owner change, or a managed policy past the allow list.
    Row("iam:UntagRole", SHARED, EXPLICIT_DENY, "never untags the owner", {"aws:TagKeys": ["jit:owner"]}),
    Row("iam:UpdateAssumeRolePolicy", SHARED, EXPLICIT_DENY, "never changes a trust policy"),
    Row("iam:UpdateAssumeRolePolicy", GRANT, EXPLICIT_DENY, "never changes a grant roles trust"),
    Row("iam:PutRolePermissionsBoundary", GRANT, EXPLICIT_DENY, "never changes a boundary", {"iam:PermissionsBoundary": "{hub_boundary}"}),
    Row("iam:DeleteRolePermissionsBoundary", SHARED, EXPLICIT_DENY, "never removes a boundary", ON_BOUNDED_ROLE),
    Row("iam:AttachRolePolicy", SHARED, DENIED, "never AdministratorAccess", attach(ADMINISTRATOR), ALLOW_LIST),
    Row("iam:AttachRolePolicy", SHARED, DENIED, "attaches nothing with an empty allow list", attach(READ_ONLY)),
    Row("iam:AttachRolePolicy", GRANT, DENIED, "an allow-listed policy only on a bounded role", {"iam:PolicyARN": READ_ONLY}, ALLOW_LIST),
    Row("iam:CreatePolicyVersion", "{boundary}", EXPLICIT_DENY, "never rewrites the boundary"),
    Row("iam:DeletePolicy", "{boundary}", EXPLICIT_DENY, "never deletes the boundary"),
    Row("iam:DeleteRole", "arn:aws:iam::{member}:role{path}someone-elses", DENIED, "never deletes a role it did not name"),
    Row("iam:DeleteRole", "{execution_role}", DENIED, "never deletes its own role"),
    Row("iam:PutRolePolicy", "{execution_role}", DENIED, "never writes to its own role"),
    Row("iam:PassRole", GRANT, DENIED, "never passes a role"),
    Row("iam:CreateUser", "arn:aws:iam::{member}:user/backdoor", DENIED, "never creates a user"),
    Row("iam:CreateAccessKey", "arn:aws:iam::{member}:user/admin", DENIED, "never makes access keys"),
    # Nothing but IAM: the broker assumes grant and shared roles with its own role.
    Row("sts:AssumeRole", GRANT, DENIED, "never assumes a grant role"),
    Row("sts:AssumeRole", SHARED, DENIED, "never assumes a shared role"),
    Row("sts:TagSession", SHARED, DENIED, "never tags a session"),
    Row("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:{member}:table/anything", DENIED, "no DynamoDB"),
    Row("s3:GetObject", "arn:aws:s3:::example-bucket/x", DENIED, "no S3"),
    Row("ssm:GetParameter", "arn:aws:ssm:us-east-1:{member}:parameter/x", DENIED, "no SSM"),
    Row("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:{member}:function:x", DENIED, "no Lambda"),
    Row("organizations:LeaveOrganization", "*", DENIED, "never leaves the organization"),
]
# fmt: on


@pytest.fixture(scope="module")
def facts(member: Stack, hub: Stack) -> dict[str, str]:
    path = hub.environment("BrokerFunction")["JIT_ROLE_PATH"]
    role = f"arn:aws:iam::{MEMBER}:role{path}"
    return {
        "member": MEMBER,
        "hub": HUB,
        "path": path,
        "grant_name": GRANT_NAME,
        "grant_role": role + GRANT_NAME,
        "shared_role": role + SHARED_NAME,
        "boundary": member.ref("JitRoleBoundary"),
        "hub_boundary": hub.ref("JitRoleBoundary"),
        "owner": hub.environment("BrokerFunction")["JIT_OWNER_TAG"],
        "execution_role": member.arn("MemberExecutionRole"),
    }


def fill(value: Any, facts: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return value.format_map(facts)
    if isinstance(value, list):
        return [fill(v, facts) for v in value]
    return value


def execution_role_policies(stack: Stack) -> list[dict[str, Any]]:
    return list(stack.inline_policies("MemberExecutionRole").values())


@pytest.mark.parametrize("row", [r.param() for r in EXECUTION_ROLE_ROWS])
def test_execution_role_decides_as_the_hubs_roles_do_at_home(
    row: Row, facts, hub, member_translated
):
    parameters = {"ManagedPolicyAllowList": row.allow_list} if row.allow_list else {}
    stack = member_stack(member_translated, hub, **parameters)
    resource = fill(row.resource, facts)
    context: dict[str, str | Sequence[str]] = {
        "aws:PrincipalArn": facts["execution_role"],
        "aws:PrincipalAccount": MEMBER,
        "aws:PrincipalType": "AssumedRole",
    }
    context |= {k: fill(v, facts) for k, v in row.context.items()}
    decision = evaluate(execution_role_policies(stack), row.action, resource, context)
    assert decision in row.expect, f"{row.action} on {resource}: {decision}"


def test_execution_role_holds_iam_actions_only_and_no_managed_policy_or_boundary(member):
    props = member.properties("MemberExecutionRole")
    assert "ManagedPolicyArns" not in props and "PermissionsBoundary" not in props
    assert list(member.inline_policies("MemberExecutionRole")) == ["jit-member"]
    for document in execution_role_policies(member):
        for statement in document["Statement"]:
            assert "NotAction" not in statement and "NotResource" not in statement
            for action in as_list(statement["Action"]):
                assert re.fullmatch(r"iam:[A-Za-z]+", action), (statement["Sid"], action)


def canonical(statement: Mapping[str, Any], *, iam_only: bool = False) -> str:
    """One statement (``iam_only``: its IAM actions), its lists sorted: equal text, equal
    statement."""
    actions = as_list(statement["Action"])
    normalized = {
        "Sid": statement["Sid"],
        "Effect": statement["Effect"],
        "Action": sorted(a for a in actions if a.startswith("iam:") or not iam_only),
        "Resource": sorted(as_list(statement["Resource"])),
        "Condition": {
            operator: {key: sorted(as_list(values)) for key, values in block.items()}
            for operator, block in (statement.get("Condition") or {}).items()
        },
    }
    return json.dumps(normalized, sort_keys=True)


@pytest.mark.parametrize("allow_list", ["", ALLOW_LIST], ids=["no-allow-list", "allow-list"])
def test_execution_role_rights_are_the_hub_roles_iam_rights_with_this_accounts_id(
    allow_list, hub_translated, member_translated
):
    """The drift guard: each IAM statement of the hub's BrokerRole and CleanupRole (their STS
    and other services' actions left out) is a statement of the execution role, the hub's
    account id replaced by this one's, and the execution role has no other. A right added
    to or taken from either side without the other fails here."""
    parameters = {"ManagedPolicyAllowList": allow_list} if allow_list else {}
    hub = hub_stack(hub_translated, **parameters)
    member = member_stack(member_translated, hub, **parameters)
    at_home = [
        statement
        for role in ("BrokerRole", "CleanupRole")
        for document in hub.inline_policies(role).values()
        for statement in document["Statement"]
        if any(a.startswith("iam:") for a in as_list(statement["Action"]))
    ]
    assert len({s["Sid"] for s in at_home}) == len(at_home)  # one statement per Sid
    expected = sorted(
        canonical(s, iam_only=True).replace(f":{HUB}:", f":{MEMBER}:") for s in at_home
    )
    held = sorted(canonical(s) for d in execution_role_policies(member) for s in d["Statement"])
    assert held == expected
    assert not [s for s in held if f":{HUB}:" in s]


# --------------------------------------------------------------------------- the boundary


@pytest.fixture(scope="module")
def boundaries(hub_translated, member_translated) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the hub's boundary, this one) with every optional part present: the hub's alarm topic
    given to both, the hub's API id and access policy name to this one."""
    hub = hub_stack(hub_translated, AlarmTopicArn=ALARM_TOPIC)
    member = member_stack(
        member_translated,
        hub,
        HubAlarmTopicArn=ALARM_TOPIC,
        HubApiId=hub.ref("JitApi"),
        HubAccessPolicyParameterName=hub.ref("AccessPolicyParameterName"),
    )
    return hub.policy_document("JitRoleBoundary"), member.policy_document("JitRoleBoundary")


def test_boundary_has_the_hubs_statements_and_those_on_every_resource_as_written(boundaries):
    at_home, here = boundaries
    assert [s["Sid"] for s in here["Statement"]] == [s["Sid"] for s in at_home["Statement"]]
    hub_by_sid = {s["Sid"]: s for s in at_home["Statement"]}
    for statement in here["Statement"]:
        twin = hub_by_sid[statement["Sid"]]
        assert statement["Effect"] == twin["Effect"] and statement["Action"] == twin["Action"]
        if twin["Resource"] == "*":
            assert statement == twin


def instances(pattern: str) -> str:
    """A concrete name a wildcard pattern matches (config:Stop* -> config:StopX)."""
    return pattern.replace("*", "X").replace("?", "X")


def test_boundary_denies_every_resource_the_hubs_boundary_denies_in_both_accounts(boundaries):
    # Each of the hub's denies, on each resource it names (the hub stack's ledger, functions,
    # layer, access policy, bus, schedule, logs, dead letters, alarms, topic, API), is denied
    # here too: on the hub's resource (a grant here reaching it across accounts) and on the
    # same name in this account (but the alarm topic, given by its ARN, not named by the stack).
    at_home, here = boundaries
    checked = 0
    for statement in at_home["Statement"]:
        if statement["Effect"] != "Deny":
            continue
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                if resource == "*":
                    resource = f"arn:aws:iam::{MEMBER}:role/anything"
                arns = {instances(resource)}
                if resource != ALARM_TOPIC:
                    arns.add(instances(resource).replace(HUB, MEMBER))
                for arn in sorted(arns):
                    decision = evaluate([here], instances(action), arn, {})
                    assert decision is Decision.DENY, (statement["Sid"], action, arn)
                    checked += 1
    assert checked > 100


def test_boundary_leaves_ordinary_work_to_the_profiles(boundaries):
    _, here = boundaries
    for action, resource in (
        ("s3:GetObject", "arn:aws:s3:::example-bucket/reports/2026-11.csv"),
        ("dynamodb:Query", f"arn:aws:dynamodb:us-east-1:{MEMBER}:table/orders"),
        ("lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:{MEMBER}:function:payments"),
        ("execute-api:Invoke", f"arn:aws:execute-api:us-east-1:{MEMBER}:abcdefghij/prod/GET/x"),
    ):
        assert evaluate([here], action, resource, {}) is Decision.ALLOW, action


def test_without_the_hubs_api_id_only_the_apis_own_policy_keeps_grants_off_it(
    member, member_translated
):
    # HubApiId is optional: the API's resource policy denies every role/jit/* session of any
    # account already (test_deployed_policies); the region's logging setting stays denied.
    statements = member.policy_document("JitRoleBoundary")["Statement"]
    sids = [s["Sid"] for s in statements]
    assert "DenyBrokerApi" not in sids and "DenyAlarmTopic" not in sids
    [configuration] = [s for s in statements if s["Sid"] == "DenyBrokerApiConfiguration"]
    assert configuration["Resource"] == ["arn:aws:apigateway:*::/account"]


def test_boundary_fits_iams_managed_policy_size_for_the_longest_hub_stack_name(
    member_translated, hub_translated
):
    # IAM: 6144 characters, whitespace not counted.
    longest = "s" * 53
    hub = Stack(hub_translated, longest, account=HUB, region="ap-southeast-2")
    member = member_stack(
        member_translated,
        hub,
        HubAlarmTopicArn=f"arn:aws:sns:ap-southeast-2:{HUB}:" + "t" * 256,
        HubApiId="abcdefghij",
        HubAccessPolicyParameterName="/" + "p" * 1000,
    )
    document = member.policy_document("JitRoleBoundary")
    assert len(json.dumps(document, separators=(",", ":"))) <= 6144
