"""What the embedded local stack (and the integration tests) create before the broker runs:
the ledger table, the permissions boundary and the broker's and auditor's roles, their
documents taken from template.yaml as CloudFormation sees it (``local_stack``: translated by
aws-sam-translator, resolved for this stack; tests/unit/test_local_matches_template.py reads
back what was seeded and compares)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jit_local.template import Stack, translate

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
DEAD_LETTER_QUEUE = f"{OWNER_TAG}-auditor-dlq"
POLICY_PARAMETER = "/jit-broker/access-policy"
# The stack's own role path, as the template derives it from the stack name: /jit/<stack>/.
ROLE_PATH = f"/jit/{OWNER_TAG}/"
# What only the broker function's environment holds (template.yaml), not the auditor's.
BROKER_ONLY = frozenset({"JIT_MANAGED_POLICY_ALLOW_LIST", "JIT_ASSUME_RETRY_BUDGET_SECONDS"})


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
        physical_ids={
            "GrantTable": TABLE_NAME,
            "BrokerRole": BROKER_ROLE_NAME,
            "CleanupRole": CLEANUP_ROLE_NAME,
            "AuditorDeadLetterQueue": DEAD_LETTER_QUEUE,
            "JitApi": LOCAL_API_ID,  # the local gateway's API: the boundary denies invoking it
        },
    )


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
        env = {
            **{k: v for k, v in self.broker_env(policy_file).items() if k not in BROKER_ONLY},
            "JIT_DRIFT_QUARANTINE": "false",
        }
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
            "JIT_ROLE_PATH": ROLE_PATH,
            "JIT_POLICY_FILE": policy_file,
            # The template's defaults: no managed policy may be attached; AssumeRole retried
            # for up to 18 s (locally a new role is assumable at once).
            "JIT_MANAGED_POLICY_ALLOW_LIST": "",
            "JIT_ASSUME_RETRY_BUDGET_SECONDS": "18",
        }
        if self.cleanup_role_arn:
            env["JIT_AUDITOR_ROLE_ARN"] = self.cleanup_role_arn
        return env


def seed_broker_resources(
    iam: Any, dynamodb: Any, *, region: str = REGION, events: Any = None
) -> Seeded:
    """Table, boundary policy, the broker's and the auditor's roles, as template.yaml makes them
    for the local stack, and, given an EventBridge client, the auditor's event bus.

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
    return Seeded(ACCOUNT_ID, region, table_name, boundary, broker_role_arn, cleanup_role_arn)
