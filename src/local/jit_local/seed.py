"""What the embedded local stack (and the integration tests) create before the broker runs:
the ledger table, the permissions boundary and the broker's and auditor's roles, their
documents taken from template.yaml as CloudFormation sees it (``local_stack``: translated by
aws-sam-translator, resolved for this stack; tests/unit/test_local_matches_template.py reads
back what was seeded and compares).

The hub stack lists two member accounts (MEMBER_ACCOUNTS, its MemberAccountIds); in each,
``seed_member_account`` creates every resource of templates/member-account.yaml (the grant
roles' boundary and the execution role), resolved for one stack instance given the hub's own
values (``member_stack``), and the role AWS Organizations makes in the accounts it creates,
through which the embedded administrator reaches the members."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jit_local.template import MEMBER_TEMPLATE_PATH, Stack, translate

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
OWNER_TAG = "jit-broker-local"  # the local "stack name"
# Local names of resources the template leaves for CloudFormation to name (it would add a
# random suffix to <stack>-<logical id>); names the template gives are the template's.
TABLE_NAME = "jit-grants"
BROKER_ROLE_NAME = f"{OWNER_TAG}-BrokerRole"
CLEANUP_ROLE_NAME = f"{OWNER_TAG}-CleanupRole"
BOUNDARY_NAME = f"{OWNER_TAG}-jit-boundary"  # as the template names it: <stack>-jit-boundary
AUDIT_FUNCTION = f"{OWNER_TAG}-auditor"
AUDIT_BUS = f"{OWNER_TAG}-audit"
GRANT_BUS = f"{OWNER_TAG}-grants"  # grant events (template.yaml's GrantEventBus)
DEAD_LETTER_QUEUE = f"{OWNER_TAG}-auditor-dlq"
POLICY_PARAMETER = "/jit-broker/access-policy"
# The stack's own role path, as the template derives it from the stack name: /jit/<stack>/.
ROLE_PATH = f"/jit/{OWNER_TAG}/"
# What only the broker function's environment holds (template.yaml), not the auditor's.
BROKER_ONLY = frozenset({"JIT_MANAGED_POLICY_ALLOW_LIST", "JIT_ASSUME_RETRY_BUDGET_SECONDS"})
# The member accounts (A and B) of the local stack: the hub template's MemberAccountIds.
MEMBER_A = "210987654321"
MEMBER_B = "345678901234"
MEMBER_ACCOUNTS = (MEMBER_A, MEMBER_B)
# As the member template names its execution role: <hub stack>-jit-member.
MEMBER_ROLE_NAME = f"{OWNER_TAG}-jit-member"
# The member template's stack instance in each member (no name there depends on it).
MEMBER_STACK_NAME = f"{OWNER_TAG}-member"
# The role AWS Organizations creates in every account it creates, trusted by the management
# account (here the hub) with administrator rights: the local administrator's way in.
ORGANIZATION_ROLE_NAME = "OrganizationAccountAccessRole"
# The member template's resource types and how seed_member_account creates each.
MEMBER_RESOURCE_TYPES = frozenset({"AWS::IAM::ManagedPolicy", "AWS::IAM::Role"})


def table_definition(name: str = TABLE_NAME) -> dict[str, Any]:
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "gsi1pk", "AttributeType": "S"},
            {"AttributeName": "gsi1sk", "AttributeType": "S"},
            {"AttributeName": "gsi2pk", "AttributeType": "S"},
            {"AttributeName": "gsi2sk", "AttributeType": "N"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "by_requester",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "by_expiry",
                "KeySchema": [
                    {"AttributeName": "gsi2pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi2sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    }


def local_stack(region: str = REGION) -> Stack:
    """template.yaml as the local stack holds it: translated by aws-sam-translator (in the SAM
    tool venv: jit_local.template) and resolved for account ACCOUNT_ID, ``region``, stack name
    OWNER_TAG and the local names of the resources the template leaves unnamed. The one source
    of the boundary's and the broker's and auditor's policies: nothing here is copied by hand."""
    from jit_local.gateway import LOCAL_API_ID

    return Stack(
        translate(),
        OWNER_TAG,
        account=ACCOUNT_ID,
        region=region,
        parameters={"MemberAccountIds": ",".join(MEMBER_ACCOUNTS)},
        physical_ids={
            "GrantTable": TABLE_NAME,
            "BrokerRole": BROKER_ROLE_NAME,
            "CleanupRole": CLEANUP_ROLE_NAME,
            "AuditorDeadLetterQueue": DEAD_LETTER_QUEUE,
            "JitApi": LOCAL_API_ID,  # the local gateway's API: the boundary denies invoking it
        },
    )


def member_stack(account: str, region: str = REGION, hub: Stack | None = None) -> Stack:
    """templates/member-account.yaml as one stack instance in ``account`` holds it: translated
    like template.yaml and given the hub's own values (docs/deploy.md): its stack name, its
    broker's and auditor's role ARNs, its API id, access policy parameter, alarm topic and
    managed policy allow list."""
    hub = hub or local_stack(region)
    return Stack(
        translate(MEMBER_TEMPLATE_PATH),
        MEMBER_STACK_NAME,
        account=account,
        region=region,
        parameters={
            "HubStackName": hub.name,
            "HubBrokerRoleArn": hub.arn("BrokerRole"),
            "HubAuditorRoleArn": hub.arn("CleanupRole"),
            "HubApiId": hub.ref("JitApi"),
            "HubAccessPolicyParameterName": hub.ref("AccessPolicyParameterName"),
            "HubAlarmTopicArn": hub.ref("AlarmTopicArn"),
            "ManagedPolicyAllowList": ",".join(hub.ref("ManagedPolicyAllowList")),
        },
    )


@dataclass(frozen=True)
class SeededMember:
    account_id: str
    boundary_arn: str
    execution_role_arn: str


def seed_member_account(
    iam: Any, account: str, *, region: str = REGION, hub: Stack | None = None
) -> SeededMember:
    """Every resource of the member template in ``account`` (``iam``: a client acting there),
    as CloudFormation would create them: managed policies first (the role may name them),
    then roles with their trust, inline and managed policies. Raises ValueError for a resource
    type this does not create, so a resource added to the template is never skipped."""
    stack = member_stack(account, region, hub)
    resources = stack.template.get("Resources", {})
    unknown = {r.get("Type") for r in resources.values()} - MEMBER_RESOURCE_TYPES
    if unknown:
        raise ValueError(
            f"the member template has resources the local stack cannot create: {unknown}"
        )
    for logical in stack.logical_ids("AWS::IAM::ManagedPolicy"):
        props = stack.properties(logical)
        iam.create_policy(
            PolicyName=props["ManagedPolicyName"],
            Path=props.get("Path", "/"),
            Description=props.get("Description", ""),
            PolicyDocument=json.dumps(props["PolicyDocument"]),
        )
    for logical in stack.logical_ids("AWS::IAM::Role"):
        props = stack.properties(logical)
        iam.create_role(
            RoleName=props["RoleName"],
            Path=props.get("Path", "/"),
            Description=props.get("Description", ""),
            AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
        )
        for policy_name, document in stack.inline_policies(logical).items():
            iam.put_role_policy(
                RoleName=props["RoleName"],
                PolicyName=policy_name,
                PolicyDocument=json.dumps(document),
            )
        for arn in stack.managed_policy_arns(logical):
            iam.attach_role_policy(RoleName=props["RoleName"], PolicyArn=arn)
    return SeededMember(
        account, stack.ref("JitRoleBoundary"), stack.get_att("MemberExecutionRole", "Arn")
    )


def seed_organization_access(iam: Any, management_account: str = ACCOUNT_ID) -> str:
    """The role AWS Organizations creates in each account it creates (administrator rights,
    trusted by the management account): how the local administrator reaches a member."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{management_account}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    administrator = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    role = iam.create_role(
        RoleName=ORGANIZATION_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust)
    )
    iam.put_role_policy(
        RoleName=ORGANIZATION_ROLE_NAME,
        PolicyName="AdministratorAccess",
        PolicyDocument=json.dumps(administrator),
    )
    return str(role["Role"]["Arn"])


def organization_role_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:role/{ORGANIZATION_ROLE_NAME}"


@dataclass(frozen=True)
class Seeded:
    account_id: str
    region: str
    table_name: str
    boundary_arn: str
    broker_role_arn: str
    cleanup_role_arn: str = ""
    # The hub's member accounts and the execution role's name there (template.yaml gives both
    # functions JIT_MEMBER_ACCOUNTS and JIT_MEMBER_ROLE_NAME).
    member_accounts: tuple[str, ...] = MEMBER_ACCOUNTS
    member_role_name: str = MEMBER_ROLE_NAME

    def cleanup_env(self, policy_file: str, *, event_bus: bool = True) -> dict[str, str]:
        """The environment the cleanup function gets from template.yaml, for this stack."""
        env = {
            **{k: v for k, v in self.broker_env(policy_file).items() if k not in BROKER_ONLY},
            "JIT_DRIFT_QUARANTINE": "false",
        }
        if event_bus:
            env["JIT_AUDIT_EVENT_BUS"] = AUDIT_BUS
        else:  # no bus seeded: neither the audit nor the grant events are sent
            env.pop("JIT_GRANT_EVENT_BUS", None)
        return env

    def broker_env(self, policy_file: str) -> dict[str, str]:
        """The environment the broker function gets from template.yaml, for this stack."""
        env = {
            "JIT_TABLE_NAME": self.table_name,
            "JIT_BOUNDARY_POLICY_ARN": self.boundary_arn,
            "JIT_BROKER_ROLE_ARN": self.broker_role_arn,
            "JIT_OWNER_TAG": OWNER_TAG,
            "JIT_ROLE_PATH": ROLE_PATH,
            "JIT_POLICY_FILE": policy_file,
            # The template's defaults: no managed policy may be attached; AssumeRole retried
            # for up to 18 s (locally a new role is assumable at once).
            "JIT_MANAGED_POLICY_ALLOW_LIST": "",
            "JIT_ASSUME_RETRY_BUDGET_SECONDS": "18",
            "JIT_MEMBER_ACCOUNTS": ",".join(self.member_accounts),
            "JIT_MEMBER_ROLE_NAME": self.member_role_name,
            "JIT_GRANT_EVENT_BUS": GRANT_BUS,
        }
        if self.cleanup_role_arn:
            env["JIT_AUDITOR_ROLE_ARN"] = self.cleanup_role_arn
        return env


def seed_broker_resources(
    iam: Any, dynamodb: Any, *, region: str = REGION, events: Any = None
) -> Seeded:
    """Table, boundary policy, the broker's and the auditor's roles, as template.yaml makes them
    for the local stack, and, given an EventBridge client, the audit and grant event buses.

    Two differences, both because nothing here runs in Lambda: the roles trust the account
    (so the local stack assumes them with its administrator) rather than lambda.amazonaws.com,
    and the template's AWS managed policies (CloudWatch Logs and X-Ray writes) are not
    attached. Their inline policies and the boundary are the template's, resolved."""
    stack = local_stack(region)
    table_name = stack.ref("GrantTable")
    dynamodb.create_table(**table_definition(table_name))
    boundary_props = stack.properties("JitRoleBoundary")
    boundary = iam.create_policy(
        PolicyName=boundary_props["ManagedPolicyName"],
        Path=boundary_props.get("Path", "/"),
        Description=boundary_props.get("Description", ""),
        PolicyDocument=json.dumps(boundary_props["PolicyDocument"]),
    )["Policy"]["Arn"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }

    def function_role(logical_id: str) -> str:
        name = stack.ref(logical_id)
        role = iam.create_role(
            RoleName=name,
            Path=stack.properties(logical_id).get("Path", "/"),
            AssumeRolePolicyDocument=json.dumps(trust),
        )
        for policy_name, document in stack.inline_policies(logical_id).items():
            iam.put_role_policy(
                RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document)
            )
        return str(role["Role"]["Arn"])

    broker_role_arn = function_role("BrokerRole")
    cleanup_role_arn = function_role("CleanupRole")
    if events is not None:
        events.create_event_bus(Name=stack.ref("AuditEventBus"))
        events.create_event_bus(Name=stack.ref("GrantEventBus"))
    return Seeded(ACCOUNT_ID, region, table_name, boundary, broker_role_arn, cleanup_role_arn)
