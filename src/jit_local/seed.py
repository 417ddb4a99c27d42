"""What the embedded local stack (and the integration tests) create before the broker runs:
the ledger table, the permissions boundary, the broker's role with the template's policy,
IAM users with keys, and the example bucket. Mirrors template.yaml; a test checks the broker
role's statements against it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
TABLE_NAME = "jit-grants"
BROKER_ROLE_NAME = "jit-broker-role"
CLEANUP_ROLE_NAME = "jit-cleanup-role"
OWNER_TAG = "jit-broker-local"  # the local "stack name"
BOUNDARY_NAME = f"{OWNER_TAG}-jit-boundary"  # as the template names it: <stack>-jit-boundary
AUDIT_FUNCTION = f"{OWNER_TAG}-auditor"
AUDIT_BUS = f"{OWNER_TAG}-audit"
DEAD_LETTER_QUEUE = f"{OWNER_TAG}-auditor-dlq"
POLICY_PARAMETER = "/jit-broker/access-policy"


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


def boundary_document(table_arn: str) -> dict[str, Any]:
    """The ceiling of every per-grant role: no IAM, no role chaining, no touching the ledger."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AllowWithinGrant", "Effect": "Allow", "Action": "*", "Resource": "*"},
            {
                "Sid": "DenyEscalation",
                "Effect": "Deny",
                "Action": ["iam:*", "organizations:*", "account:*", "sts:AssumeRole"],
                "Resource": "*",
            },
            {"Sid": "DenyLedger", "Effect": "Deny", "Action": "dynamodb:*", "Resource": table_arn},
        ],
    }


def broker_role_statements(
    *, account: str, region: str, table_name: str, boundary_arn: str, parameter: str
) -> list[dict[str, Any]]:
    """The broker's least privilege (template.yaml's BrokerRole inline policy)."""
    jit_roles = f"arn:aws:iam::{account}:role/jit/jit-g-*"
    table = f"arn:aws:dynamodb:{region}:{account}:table/{table_name}"
    boundary = {"StringEquals": {"iam:PermissionsBoundary": boundary_arn}}
    owned = {"StringEquals": {"aws:RequestTag/jit:owner": OWNER_TAG}}
    return [
        {
            "Sid": "CreateJitRole",
            "Effect": "Allow",
            "Action": ["iam:CreateRole"],
            "Resource": jit_roles,
            "Condition": {"StringEquals": boundary["StringEquals"] | owned["StringEquals"]},
        },
        {
            "Sid": "TagJitRoleAsOwned",
            "Effect": "Allow",
            "Action": ["iam:TagRole"],
            "Resource": jit_roles,
            "Condition": owned,
        },
        {
            "Sid": "ManageJitRolePolicies",
            "Effect": "Allow",
            "Action": ["iam:PutRolePolicy", "iam:AttachRolePolicy"],
            "Resource": jit_roles,
            "Condition": boundary,
        },
        {
            "Sid": "ManageJitRole",
            "Effect": "Allow",
            "Action": [
                "iam:GetRole",
                "iam:DeleteRolePolicy",
                "iam:DetachRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:DeleteRole",
            ],
            "Resource": jit_roles,
        },
        {
            "Sid": "DenyTrustBoundaryAndOwnerChange",
            "Effect": "Deny",
            "Action": [
                "iam:DeleteRolePermissionsBoundary",
                "iam:PutRolePermissionsBoundary",
                "iam:UpdateAssumeRolePolicy",
                "iam:UntagRole",
            ],
            "Resource": "*",
        },
        {
            "Sid": "AssumeJitRole",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
            "Resource": jit_roles,
        },
        {
            "Sid": "Ledger",
            "Effect": "Allow",
            "Action": [
                "dynamodb:GetItem",
                "dynamodb:BatchGetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:Query",
                "dynamodb:ConditionCheckItem",
            ],
            "Resource": [table, f"{table}/index/*"],
        },
        {
            "Sid": "AccessPolicy",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter"],
            "Resource": f"arn:aws:ssm:{region}:{account}:parameter{parameter}",
        },
        {
            "Sid": "InvokeAuditor",
            "Effect": "Allow",
            "Action": ["lambda:InvokeFunction"],
            "Resource": f"arn:aws:lambda:{region}:{account}:function:{AUDIT_FUNCTION}",
        },
    ]


def cleanup_role_statements(
    *, account: str, region: str, table_name: str, parameter: str
) -> list[dict[str, Any]]:
    """The auditor's least privilege (template.yaml's CleanupRole inline policy)."""
    jit_roles = f"arn:aws:iam::{account}:role/jit/*"
    table = f"arn:aws:dynamodb:{region}:{account}:table/{table_name}"
    return [
        {"Sid": "ListRoles", "Effect": "Allow", "Action": ["iam:ListRoles"], "Resource": "*"},
        {
            "Sid": "ReadJitRoles",
            "Effect": "Allow",
            "Action": [
                "iam:GetRole",
                "iam:ListRoleTags",
                "iam:ListRolePolicies",
                "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
            ],
            "Resource": jit_roles,
        },
        {
            "Sid": "TearDownJitRoles",
            "Effect": "Allow",
            "Action": [
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:DetachRolePolicy",
                "iam:DeleteRole",
            ],
            "Resource": f"arn:aws:iam::{account}:role/jit/jit-g-*",
        },
        {
            "Sid": "LeaveJitInstanceProfiles",
            "Effect": "Allow",
            "Action": ["iam:RemoveRoleFromInstanceProfile"],
            "Resource": f"arn:aws:iam::{account}:instance-profile/jit/*",
        },
        {
            "Sid": "NeverTouchPoliciesOrBoundaries",
            "Effect": "Deny",
            "Action": [
                "iam:DeletePolicy",
                "iam:DeletePolicyVersion",
                "iam:CreatePolicyVersion",
                "iam:SetDefaultPolicyVersion",
                "iam:DeleteRolePermissionsBoundary",
                "iam:PutRolePermissionsBoundary",
            ],
            "Resource": "*",
        },
        {
            "Sid": "Ledger",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"],
            "Resource": [table, f"{table}/index/*"],
        },
        {
            "Sid": "AccessPolicy",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter"],
            "Resource": f"arn:aws:ssm:{region}:{account}:parameter{parameter}",
        },
        {
            "Sid": "AuditEvents",
            "Effect": "Allow",
            "Action": ["events:PutEvents"],
            "Resource": f"arn:aws:events:{region}:{account}:event-bus/{AUDIT_BUS}",
        },
        {
            "Sid": "DeadLetters",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": f"arn:aws:sqs:{region}:{account}:{DEAD_LETTER_QUEUE}",
        },
    ]


@dataclass(frozen=True)
class Seeded:
    account_id: str
    region: str
    table_name: str
    boundary_arn: str
    broker_role_arn: str
    cleanup_role_arn: str = ""

    def cleanup_env(self, policy_file: str, *, event_bus: bool = True) -> dict[str, str]:
        """The environment the cleanup function gets from template.yaml, for this stack."""
        env = {**self.broker_env(policy_file), "JIT_DRIFT_QUARANTINE": "false"}
        if event_bus:
            env["JIT_AUDIT_EVENT_BUS"] = AUDIT_BUS
        return env

    def broker_env(self, policy_file: str) -> dict[str, str]:
        """The environment the broker function gets from template.yaml, for this stack."""
        env = {
            "JIT_TABLE_NAME": self.table_name,
            "JIT_BOUNDARY_POLICY_ARN": self.boundary_arn,
            "JIT_BROKER_ROLE_ARN": self.broker_role_arn,
            "JIT_OWNER_TAG": OWNER_TAG,
            "JIT_ROLE_PATH": "/jit/",
            "JIT_POLICY_FILE": policy_file,
        }
        if self.cleanup_role_arn:
            env["JIT_AUDITOR_ROLE_ARN"] = self.cleanup_role_arn
        return env


def seed_broker_resources(
    iam: Any, dynamodb: Any, *, region: str = REGION, events: Any = None
) -> Seeded:
    """Table, boundary policy, the broker's and the auditor's roles (trusted by a local
    'lambda' principal: the account, so the local stack can assume them with its
    administrator) and, given an EventBridge client, the auditor's event bus."""
    account = ACCOUNT_ID
    dynamodb.create_table(**table_definition())
    table_arn = f"arn:aws:dynamodb:{region}:{account}:table/{TABLE_NAME}"
    boundary = iam.create_policy(
        PolicyName=BOUNDARY_NAME, PolicyDocument=json.dumps(boundary_document(table_arn))
    )["Policy"]["Arn"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }

    def function_role(name: str, policy_name: str, statements: list[dict[str, Any]]) -> str:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy_name,
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
        return str(arn["Role"]["Arn"])

    role_arn = function_role(
        BROKER_ROLE_NAME,
        "broker",
        broker_role_statements(
            account=account,
            region=region,
            table_name=TABLE_NAME,
            boundary_arn=boundary,
            parameter=POLICY_PARAMETER,
        ),
    )
    cleanup_arn = function_role(
        CLEANUP_ROLE_NAME,
        "auditor",
        cleanup_role_statements(
            account=account, region=region, table_name=TABLE_NAME, parameter=POLICY_PARAMETER
        ),
    )
    if events is not None:
        events.create_event_bus(Name=AUDIT_BUS)
    return Seeded(account, region, TABLE_NAME, boundary, role_arn, cleanup_arn)
