"""The deployed stack's policies, judged by the project's own IAM evaluator (THREATS.md 5, 9, 27,
31, 32; issue 8).

template.yaml is translated by aws-sam-translator as CloudFormation will see it and resolved for
one stack (account 123456789012, us-east-1, stack ``jit-broker-local``; jit_local.template).
Each row is one request to AWS: who makes it (the broker's role, the auditor's role, or a grant's
role: the boundary over an allow-everything identity policy, the widest profile there can be),
the action, the resource, the request's condition keys (aws:ResourceAccount from the resource's
ARN, as AWS sets it: member accounts, issue 9), and what AWS must decide. The decision is
``jit_local.iam_eval.evaluate`` per policy type, combined as AWS combines them: an explicit deny
in any type wins, otherwise every type that applies must allow.

Paths, names and ARNs come from the resolved template (the functions' JIT_ROLE_PATH,
JIT_OWNER_TAG and JIT_BOUNDARY_POLICY_ARN, the resources' ARNs), never from this file, so the
rows hold whatever path or names the template sets. A row marked ``pending`` is a finding the
template does not hold yet (its reason says what): a strict xfail, so it fails as soon as the
template holds it, to be made a plain row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto.iam.aws_managed_policies import aws_managed_policies_data

from jit_broker import documents, naming
from jit_local.iam_eval import Decision, Principal, evaluate
from jit_local.template import Stack, translate

STACK_NAME = "jit-broker-local"
OTHER_STACK_NAME = "jit-broker-other"  # a second stack in the same account (dev and prod)
ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
# Issue 9: two member accounts the hub grants in (MemberAccountIds), and OTHER_ACCOUNT unlisted.
MEMBER = "111122223333"
SECOND_MEMBER = "444455556666"
SHARED_NAME = naming.shared_role_name("s3-read")  # jit-s-<profile>
GRANT_ID = "g-0123456789abcdef01234567"

ALLOWED = (Decision.ALLOW,)
EXPLICIT_DENY = (Decision.DENY,)
DENIED = (Decision.DENY, Decision.NEUTRAL)  # explicitly, or because nothing allows it

ALLOW_EVERYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return translate()


@pytest.fixture(scope="module")
def stack(translated: dict[str, Any]) -> Stack:
    return Stack(translated, STACK_NAME, account=ACCOUNT)


@pytest.fixture(scope="module")
def facts(stack: Stack, translated: dict[str, Any]) -> dict[str, str]:
    """The names a row's resource and condition values are written with."""
    broker_env = stack.environment("BrokerFunction")
    other = Stack(translated, OTHER_STACK_NAME, account=ACCOUNT)
    other_env = other.environment("BrokerFunction")
    path = broker_env["JIT_ROLE_PATH"]
    grant_name = naming.role_name_for(GRANT_ID)
    iam = f"arn:aws:iam::{ACCOUNT}"
    [schedule] = [
        rule
        for rule in stack.logical_ids("AWS::Events::Rule")
        if stack.arn("CleanupFunction")
        in [target["Arn"] for target in stack.properties(rule).get("Targets") or []]
    ]
    [layer] = stack.logical_ids("AWS::Lambda::LayerVersion")
    return {
        "account": ACCOUNT,
        "path": path,
        "grant_name": grant_name,
        "grant_role": f"{iam}:role{path}{grant_name}",
        "grant_instance_profile": f"{iam}:instance-profile{path}{grant_name}",
        "other_stack_grant_role": f"{iam}:role{other_env['JIT_ROLE_PATH']}{grant_name}",
        "shared_role": f"{iam}:role{path}{SHARED_NAME}",
        "member": MEMBER,
        "member_role": f"arn:aws:iam::{MEMBER}:role/{broker_env['JIT_MEMBER_ROLE_NAME']}",
        "unlisted_member_role": (
            f"arn:aws:iam::{OTHER_ACCOUNT}:role/{broker_env['JIT_MEMBER_ROLE_NAME']}"
        ),
        "other_stack_member_role": (
            f"arn:aws:iam::{MEMBER}:role/{other_env['JIT_MEMBER_ROLE_NAME']}"
        ),
        "member_grant_role": f"arn:aws:iam::{MEMBER}:role{path}{grant_name}",
        "member_shared_role": f"arn:aws:iam::{SECOND_MEMBER}:role{path}{SHARED_NAME}",
        "unlisted_grant_role": f"arn:aws:iam::{OTHER_ACCOUNT}:role{path}{grant_name}",
        "boundary": broker_env["JIT_BOUNDARY_POLICY_ARN"],
        "other_boundary": other_env["JIT_BOUNDARY_POLICY_ARN"],
        "owner": broker_env["JIT_OWNER_TAG"],
        "other_owner": other_env["JIT_OWNER_TAG"],
        "broker_role": stack.arn("BrokerRole"),
        "auditor_role": stack.arn("CleanupRole"),
        "table": stack.arn("GrantTable"),
        "api": stack.arn("JitApi"),
        "stage": stack.ref("Stage"),
        "broker_function": stack.arn("BrokerFunction"),
        "auditor_function": stack.arn("CleanupFunction"),
        "layer": stack.ref(layer),
        "bus": stack.arn("AuditEventBus"),
        "grant_bus": stack.arn("GrantEventBus"),
        "schedule_rule": stack.arn(schedule),
        "dead_letters": stack.arn("AuditorDeadLetterQueue"),
        "broker_log_group": stack.arn("BrokerLogGroup"),
        "access_policy": (
            f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter{stack.ref('AccessPolicyParameterName')}"
        ),
        "stack": f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/{STACK_NAME}/0a1b2c3d",
    }


def aws_managed_document(arn: str) -> dict[str, Any]:
    """An AWS managed policy's document, from the copy moto ships (AWS's own, not ours)."""
    prefix = "arn:aws:iam::aws:policy"
    assert arn.startswith(prefix + "/"), arn
    *path, name = arn.removeprefix(prefix).split("/")
    known = json.loads(aws_managed_policies_data)[name]
    assert known["Path"] == "/".join(path) + "/", arn
    document: dict[str, Any] = known["Document"]
    return document


Policies = tuple[list[dict[str, Any]], dict[str, Any] | None]


@pytest.fixture(scope="module")
def principals(translated: dict[str, Any]) -> Any:
    """(who, the stack's parameter values) -> (identity-based policies, permissions boundary)."""
    cache: dict[tuple[str, tuple[tuple[str, str], ...]], Policies] = {}

    def policies(who: str, parameters: tuple[tuple[str, str], ...] = ()) -> Policies:
        if (who, parameters) not in cache:
            stack = Stack(translated, STACK_NAME, account=ACCOUNT, parameters=dict(parameters))
            if who == "grant":
                cache[who, parameters] = (
                    [ALLOW_EVERYTHING],
                    stack.policy_document("JitRoleBoundary"),
                )
            else:
                role = {"broker": "BrokerRole", "auditor": "CleanupRole"}[who]
                inline = list(stack.inline_policies(role).values())
                managed = [aws_managed_document(a) for a in stack.managed_policy_arns(role)]
                cache[who, parameters] = (inline + managed, None)
        return cache[who, parameters]

    return policies


def decide(
    identity: list[dict[str, Any]],
    boundary: dict[str, Any] | None,
    action: str,
    resource: str,
    context: Mapping[str, str | Sequence[str]],
) -> Decision:
    """AWS's combination for a role session in its own account (no session policy)."""
    decisions = [evaluate(identity, action, resource, context)]
    if boundary is not None:
        decisions.append(evaluate([boundary], action, resource, context))
    if Decision.DENY in decisions:
        return Decision.DENY
    if all(d is Decision.ALLOW for d in decisions):
        return Decision.ALLOW
    return Decision.NEUTRAL


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Row:
    threat: str  # THREATS.md item, or issue 8's defect
    who: str  # broker | auditor | grant
    action: str
    resource: str  # str.format'ed with the facts
    expect: tuple[Decision, ...]
    why: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)
    pending: str = ""  # the template change of issue 8 this row waits for
    parameters: tuple[tuple[str, str], ...] = ()  # the stack's, when not the defaults

    def param(self) -> Any:
        marks = [pytest.mark.xfail(strict=True, reason=self.pending)] if self.pending else []
        return pytest.param(self, id=f"T{self.threat}-{self.who}-{self.why}", marks=marks)


def create_role(*, boundary: str | None = "{boundary}", owner: str | None = "{owner}") -> dict:
    """The condition keys of the broker's CreateRole (and the TagRole it implies): the boundary
    it asks for and the tags it writes (jit_broker.grants)."""
    tags = {
        documents.TAG_GRANT: GRANT_ID,
        documents.TAG_REQUESTER: "arn:aws:iam::123456789012:user/alice",
        documents.TAG_EXPIRES: "1900000000",
        documents.TAG_PROFILE: "s3-read",
    }
    if owner is not None:
        tags[documents.TAG_OWNER] = owner
    context: dict[str, Any] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    context["aws:TagKeys"] = list(tags)
    if boundary is not None:
        context["iam:PermissionsBoundary"] = boundary
    return context


ON_BOUNDED_ROLE = {"iam:PermissionsBoundary": "{boundary}"}  # the role's current boundary
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
ADMINISTRATOR = "arn:aws:iam::aws:policy/AdministratorAccess"
ALLOW_LIST = (("ManagedPolicyAllowList", f"{READ_ONLY},arn:aws:iam::aws:policy/AWSSupportAccess"),)
MEMBERS = (("MemberAccountIds", f"{MEMBER},{SECOND_MEMBER}"),)


def attach(policy_arn: str) -> dict[str, str]:
    """AttachRolePolicy's keys: the policy asked for, the role's current boundary."""
    return {**ON_BOUNDED_ROLE, "iam:PolicyARN": policy_arn}


# One request per line: the table reads as a table.
# fmt: off
BROKER_ROWS = [
    # The grant path (threats 9, 32): what the broker must be able to do.
    Row("32", "broker", "iam:CreateRole", "{grant_role}", ALLOWED, "creates its grant role", create_role()),
    Row("32", "broker", "iam:TagRole", "{grant_role}", ALLOWED, "tags it as its own", create_role()),
    Row("9", "broker", "iam:PutRolePolicy", "{grant_role}", ALLOWED, "writes the grant policy", ON_BOUNDED_ROLE),
    Row("9", "broker", "iam:GetRole", "{grant_role}", ALLOWED, "reads its grant role"),
    Row("21", "broker", "iam:DeleteRolePolicy", "{grant_role}", ALLOWED, "tears down on revoke", ON_BOUNDED_ROLE),
    Row("21", "broker", "iam:DeleteRole", "{grant_role}", ALLOWED, "deletes a revoked grant role"),
    Row("9", "broker", "sts:AssumeRole", "{grant_role}", ALLOWED, "assumes the grant role"),
    Row("12", "broker", "sts:SetSourceIdentity", "{grant_role}", ALLOWED, "sets SourceIdentity"),
    Row("28", "broker", "sts:TagSession", "{grant_role}", ALLOWED, "tags the session"),
    *(
        Row("25", "broker", f"dynamodb:{action}", "{table}", ALLOWED, f"ledger {action}")
        for action in ("GetItem", "BatchGetItem", "PutItem", "UpdateItem", "ConditionCheckItem")
    ),
    Row("25", "broker", "dynamodb:Query", "{table}/index/by_requester", ALLOWED, "ledger by requester"),
    Row("8", "broker", "ssm:GetParameter", "{access_policy}", ALLOWED, "reads the access policy"),
    Row("31", "broker", "lambda:InvokeFunction", "{auditor_function}", ALLOWED, "runs the auditor"),
    Row("issue11", "broker", "events:PutEvents", "{grant_bus}", ALLOWED, "sends grant events"),
    # What a compromised broker function must not be able to do (threats 9, 32).
    Row("32", "broker", "iam:CreateRole", "{grant_role}", DENIED, "no role without the owner tag", create_role(owner=None)),
    Row("32", "broker", "iam:CreateRole", "{grant_role}", DENIED, "no role with another stacks owner tag", create_role(owner="{other_owner}")),
    Row("32", "broker", "iam:CreateRole", "{grant_role}", DENIED, "no role without a boundary", create_role(boundary=None)),
    Row("32", "broker", "iam:CreateRole", "{grant_role}", DENIED, "no role with another boundary", create_role(boundary="{other_boundary}")),
    Row("32", "broker", "iam:CreateRole", "arn:aws:iam::{account}:role{path}admin", DENIED, "no other role name under its path", create_role()),
    Row("32", "broker", "iam:CreateRole", "arn:aws:iam::{account}:role/{grant_name}", DENIED, "no role outside its path", create_role()),
    Row("32", "broker", "iam:CreateRole", "arn:aws:iam::{account}:role{path}{grant_name}/backdoor", DENIED, "no role under a deeper path", create_role()),
    Row("32", "broker", "iam:TagRole", "{grant_role}", DENIED, "never tags as another owner", create_role(owner="{other_owner}")),
    Row("32", "broker", "iam:UntagRole", "{grant_role}", EXPLICIT_DENY, "never untags", {"aws:TagKeys": ["jit:owner"]}),
    Row("32", "broker", "iam:UpdateAssumeRolePolicy", "{grant_role}", EXPLICIT_DENY, "never changes trust"),
    Row("32", "broker", "iam:PutRolePermissionsBoundary", "{grant_role}", EXPLICIT_DENY, "never changes the boundary", {"iam:PermissionsBoundary": "{other_boundary}"}),
    Row("32", "broker", "iam:DeleteRolePermissionsBoundary", "{grant_role}", EXPLICIT_DENY, "never removes the boundary", ON_BOUNDED_ROLE),
    Row("32", "broker", "iam:PutRolePolicy", "{grant_role}", DENIED, "no policy on a role without the boundary"),
    Row("32", "broker", "iam:PutRolePolicy", "{broker_role}", DENIED, "no policy on its own role"),
    Row("32", "broker", "iam:AttachRolePolicy", "{grant_role}", DENIED, "never attaches AdministratorAccess", attach(ADMINISTRATOR)),
    Row("32", "broker", "iam:AttachRolePolicy", "{grant_role}", DENIED, "attaches nothing with an empty allow list", attach(READ_ONLY)),
    Row("32", "broker", "iam:AttachRolePolicy", "{grant_role}", ALLOWED, "attaches an allow-listed policy", attach(READ_ONLY), parameters=ALLOW_LIST),
    Row("32", "broker", "iam:AttachRolePolicy", "{grant_role}", DENIED, "never AdministratorAccess past the allow list", attach(ADMINISTRATOR), parameters=ALLOW_LIST),
    Row("32", "broker", "iam:AttachRolePolicy", "{grant_role}", DENIED, "an allow-listed policy only on a bounded role", {"iam:PolicyARN": READ_ONLY}, parameters=ALLOW_LIST),
    Row("32", "broker", "iam:AttachRolePolicy", "{other_stack_grant_role}", DENIED, "an allow-listed policy only on its own roles", attach(READ_ONLY), parameters=ALLOW_LIST),
    Row("9", "broker", "iam:PassRole", "{grant_role}", DENIED, "never passes a role"),
    Row("9", "broker", "iam:CreatePolicyVersion", "{boundary}", DENIED, "never rewrites the boundary"),
    Row("9", "broker", "sts:AssumeRole", "arn:aws:iam::{account}:role/admin", DENIED, "assumes nothing outside its path"),
    Row("9", "broker", "sts:AssumeRole", "{auditor_role}", DENIED, "never the auditors role"),
    Row("25", "broker", "dynamodb:DeleteItem", "{table}", DENIED, "never deletes ledger items"),
    Row("25", "broker", "dynamodb:Scan", "{table}", DENIED, "never scans the ledger"),
    Row("25", "broker", "dynamodb:DeleteTable", "{table}", DENIED, "never deletes the ledger"),
    Row("32", "broker", "lambda:UpdateFunctionCode", "{broker_function}", DENIED, "never changes its own code"),
    Row("32", "broker", "ssm:PutParameter", "{access_policy}", DENIED, "never rewrites the access policy"),
    Row("issue8-6", "broker", "iam:CreateRole", "{other_stack_grant_role}", DENIED, "never creates under another stacks path", create_role()),
    # Issue 11: grant events on the grant bus only; no rule or target anywhere.
    Row("issue11", "broker", "events:PutEvents", "{bus}", DENIED, "never forges audit events"),
    Row("issue11", "broker", "events:PutEvents", "arn:aws:events:us-east-1:{account}:event-bus/default", DENIED, "no events on the default bus"),
    Row("issue11", "broker", "events:PutRule", "arn:aws:events:us-east-1:{account}:rule/{owner}-grants/exfiltrate", DENIED, "never makes a rule on the grant bus"),
    Row("issue11", "broker", "events:PutTargets", "arn:aws:events:us-east-1:{account}:rule/{owner}-grants/exfiltrate", DENIED, "never adds a target"),
    Row("issue8-6", "broker", "iam:DeleteRole", "{other_stack_grant_role}", DENIED, "never deletes another stacks grant role"),
    Row("issue8-6", "broker", "sts:AssumeRole", "{other_stack_grant_role}", DENIED, "never assumes another stacks grant role"),
    # Issue 9, shared roles (jit-s-<profile>) at home: made once with the boundary and the
    # owner tag, their jit-grant and jit-revoked policies written, assumed; removed by the
    # auditor only.
    Row("issue9", "broker", "iam:CreateRole", "{shared_role}", ALLOWED, "creates a shared role", create_role()),
    Row("issue9", "broker", "iam:TagRole", "{shared_role}", ALLOWED, "tags a shared role as its own", create_role()),
    Row("issue9", "broker", "iam:CreateRole", "{shared_role}", DENIED, "no shared role without a boundary", create_role(boundary=None)),
    Row("issue9", "broker", "iam:CreateRole", "{shared_role}", DENIED, "no shared role without the owner tag", create_role(owner=None)),
    Row("issue9", "broker", "iam:PutRolePolicy", "{shared_role}", ALLOWED, "writes jit-grant or jit-revoked", ON_BOUNDED_ROLE),
    Row("issue9", "broker", "iam:PutRolePolicy", "{shared_role}", DENIED, "no policy on an unbounded shared role"),
    Row("issue9", "broker", "iam:DeleteRolePolicy", "{shared_role}", ALLOWED, "removes jit-revoked", ON_BOUNDED_ROLE),
    Row("issue9", "broker", "iam:AttachRolePolicy", "{shared_role}", ALLOWED, "attaches an allow-listed policy to a shared role", attach(READ_ONLY), parameters=ALLOW_LIST),
    Row("issue9", "broker", "iam:AttachRolePolicy", "{shared_role}", DENIED, "never AdministratorAccess on a shared role", attach(ADMINISTRATOR), parameters=ALLOW_LIST),
    Row("issue9", "broker", "iam:DetachRolePolicy", "{shared_role}", ALLOWED, "detaches from a shared role", {"iam:PolicyARN": READ_ONLY}),
    Row("issue9", "broker", "iam:DeleteRole", "{shared_role}", DENIED, "never deletes a shared role"),
    Row("issue9", "broker", "iam:UpdateAssumeRolePolicy", "{shared_role}", EXPLICIT_DENY, "never changes a shared roles trust"),
    Row("issue9", "broker", "iam:UntagRole", "{shared_role}", EXPLICIT_DENY, "never untags a shared role", {"aws:TagKeys": ["jit:owner"]}),
    Row("issue9", "broker", "sts:AssumeRole", "{shared_role}", ALLOWED, "assumes a shared role"),
    Row("issue9", "broker", "sts:TagSession", "{shared_role}", ALLOWED, "tags a shared roles session"),
    Row("issue9", "broker", "sts:SetSourceIdentity", "{shared_role}", ALLOWED, "sets a shared roles SourceIdentity"),
    # Issue 9, member accounts: the listed ones only (aws:ResourceAccount), its roles there
    # directly (one hop), IAM there only through the execution role.
    Row("issue9", "broker", "sts:AssumeRole", "{member_role}", ALLOWED, "assumes a members execution role", parameters=MEMBERS),
    Row("issue9", "broker", "sts:AssumeRole", "{member_role}", DENIED, "no member execution role without members"),
    Row("issue9", "broker", "sts:AssumeRole", "{unlisted_member_role}", DENIED, "no execution role of an unlisted account", parameters=MEMBERS),
    Row("issue9", "broker", "sts:AssumeRole", "{other_stack_member_role}", DENIED, "never another stacks execution role", parameters=MEMBERS),
    *(
        Row("issue9", "broker", action, resource, ALLOWED, f"{action} on a member {kind} role", parameters=MEMBERS)
        for action in ("sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession")
        for resource, kind in (("{member_grant_role}", "grant"), ("{member_shared_role}", "shared"))
    ),
    Row("issue9", "broker", "sts:AssumeRole", "{member_grant_role}", DENIED, "no member grant role without members"),
    Row("issue9", "broker", "sts:AssumeRole", "{unlisted_grant_role}", DENIED, "no grant role of an unlisted account", parameters=MEMBERS),
    Row("issue9", "broker", "sts:AssumeRole", "arn:aws:iam::{member}:role{path}{grant_name}/backdoor", EXPLICIT_DENY, "no member role below its path", parameters=MEMBERS),
    Row("issue9", "broker", "sts:AssumeRole", "arn:aws:iam::{member}:role/admin", DENIED, "no other role of a member", parameters=MEMBERS),
    Row("issue9", "broker", "iam:CreateRole", "{member_grant_role}", DENIED, "no IAM in a member but through its execution role", create_role(), parameters=MEMBERS),
    Row("issue9", "broker", "iam:PutRolePolicy", "{member_shared_role}", DENIED, "no member policy write but through its execution role", ON_BOUNDED_ROLE, parameters=MEMBERS),
]

AUDITOR_ROWS = [
    # The sweep (threats 19-22, 31).
    Row("22", "auditor", "iam:ListRoles", "*", ALLOWED, "lists roles"),
    Row("31", "auditor", "iam:ListRoleTags", "{grant_role}", ALLOWED, "reads the owner tag"),
    Row("31", "auditor", "iam:GetRole", "arn:aws:iam::{account}:role{path}someone-elses", ALLOWED, "reads any role under the path"),
    *(
        Row("21", "auditor", f"iam:{action}", "{grant_role}", ALLOWED, f"reads a grant role ({action})")
        for action in ("ListRolePolicies", "GetRolePolicy", "ListAttachedRolePolicies", "ListInstanceProfilesForRole")
    ),
    *(
        Row("21", "auditor", f"iam:{action}", "{grant_role}", ALLOWED, f"tears down a grant role ({action})", ON_BOUNDED_ROLE)
        for action in ("PutRolePolicy", "DeleteRolePolicy", "DetachRolePolicy", "DeleteRole")
    ),
    Row("21", "auditor", "iam:RemoveRoleFromInstanceProfile", "{grant_instance_profile}", ALLOWED, "leaves instance profiles"),
    Row("25", "auditor", "dynamodb:UpdateItem", "{table}", ALLOWED, "marks grants in the ledger"),
    Row("25", "auditor", "dynamodb:Query", "{table}/index/by_expiry", ALLOWED, "finds expired grants"),
    Row("31", "auditor", "events:PutEvents", "{bus}", ALLOWED, "reports findings"),
    Row("issue11", "auditor", "events:PutEvents", "{grant_bus}", ALLOWED, "sends expired and cleaned grant events"),
    Row("31", "auditor", "sqs:SendMessage", "{dead_letters}", ALLOWED, "dead letters"),
    # What it must never do.
    Row("31", "auditor", "iam:DeleteRole", "arn:aws:iam::{account}:role{path}someone-elses", DENIED, "never deletes a role the broker did not name"),
    Row("31", "auditor", "iam:DeleteRole", "arn:aws:iam::{account}:role/{grant_name}", DENIED, "never deletes outside the path"),
    Row("31", "auditor", "iam:PutRolePolicy", "{broker_role}", DENIED, "never writes to the brokers role"),
    Row("31", "auditor", "iam:CreateRole", "{grant_role}", DENIED, "never creates a role", create_role()),
    Row("31", "auditor", "iam:UpdateAssumeRolePolicy", "{grant_role}", DENIED, "never changes trust"),
    Row("31", "auditor", "iam:DeletePolicy", "{boundary}", EXPLICIT_DENY, "never deletes the boundary"),
    Row("31", "auditor", "iam:CreatePolicyVersion", "{boundary}", EXPLICIT_DENY, "never rewrites the boundary"),
    Row("31", "auditor", "iam:DeleteRolePermissionsBoundary", "{grant_role}", EXPLICIT_DENY, "never removes a boundary", ON_BOUNDED_ROLE),
    Row("31", "auditor", "sts:AssumeRole", "{grant_role}", DENIED, "never assumes a grant role"),
    Row("25", "auditor", "dynamodb:PutItem", "{table}", DENIED, "never writes new ledger items"),
    Row("25", "auditor", "dynamodb:DeleteItem", "{table}", DENIED, "never deletes ledger items"),
    Row("31", "auditor", "events:PutEvents", "arn:aws:events:us-east-1:{account}:event-bus/default", DENIED, "reports only to its own bus"),
    Row("issue8-6", "auditor", "iam:DeleteRole", "{other_stack_grant_role}", DENIED, "never deletes another stacks grant role"),
    # Issue 9: shared roles at home (reads, jit-revoked pruned, removal) ...
    Row("issue9", "auditor", "iam:ListRoleTags", "{shared_role}", ALLOWED, "reads a shared roles tags"),
    Row("issue9", "auditor", "iam:GetRolePolicy", "{shared_role}", ALLOWED, "reads jit-revoked"),
    Row("issue9", "auditor", "iam:PutRolePolicy", "{shared_role}", ALLOWED, "prunes jit-revoked", ON_BOUNDED_ROLE),
    Row("issue9", "auditor", "iam:DeleteRolePolicy", "{shared_role}", ALLOWED, "removes an empty jit-revoked", ON_BOUNDED_ROLE),
    Row("issue9", "auditor", "iam:DetachRolePolicy", "{shared_role}", ALLOWED, "detaches from a shared role", {"iam:PolicyARN": READ_ONLY}),
    Row("issue9", "auditor", "iam:DeleteRole", "{shared_role}", ALLOWED, "removes a shared role"),
    Row("issue9", "auditor", "sts:AssumeRole", "{shared_role}", DENIED, "never assumes a shared role"),
    # ... and each listed member's execution role, nothing else there.
    Row("issue9", "auditor", "sts:AssumeRole", "{member_role}", ALLOWED, "assumes a members execution role", parameters=MEMBERS),
    Row("issue9", "auditor", "sts:AssumeRole", "{member_role}", DENIED, "no member execution role without members"),
    Row("issue9", "auditor", "sts:AssumeRole", "{unlisted_member_role}", DENIED, "no execution role of an unlisted account", parameters=MEMBERS),
    Row("issue9", "auditor", "sts:AssumeRole", "{member_grant_role}", DENIED, "never assumes a member grant role", parameters=MEMBERS),
    Row("issue9", "auditor", "iam:DeleteRole", "{member_grant_role}", DENIED, "no IAM in a member but through its execution role", parameters=MEMBERS),
]

GRANT_ROWS = [
    # The boundary lets a profile grant work (else every grant would be useless)...
    Row("17", "grant", "s3:GetObject", "arn:aws:s3:::example-bucket/reports/2026-11.csv", ALLOWED, "does what its profile allows"),
    # ... and nothing that reaches the broker, IAM, identity or the organization (threats 27, 32).
    Row("27", "grant", "execute-api:Invoke", "{api}/{stage}/POST/v1/grants", EXPLICIT_DENY, "never calls the brokers API"),
    Row("27", "grant", "execute-api:Invoke", "{api}/{stage}/GET/v1/grants", EXPLICIT_DENY, "never lists grants through the API"),
    Row("32", "grant", "iam:CreateRole", "arn:aws:iam::{account}:role/backdoor", EXPLICIT_DENY, "never creates a role"),
    Row("32", "grant", "iam:AttachRolePolicy", "arn:aws:iam::{account}:role/admin", EXPLICIT_DENY, "never attaches a policy", {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    Row("32", "grant", "iam:CreateAccessKey", "arn:aws:iam::{account}:user/admin", EXPLICIT_DENY, "never makes access keys"),
    Row("32", "grant", "iam:PassRole", "{broker_role}", EXPLICIT_DENY, "never passes the brokers role"),
    Row("32", "grant", "organizations:LeaveOrganization", "*", EXPLICIT_DENY, "never leaves the organization"),
    Row("32", "grant", "account:CloseAccount", "*", EXPLICIT_DENY, "never closes the account"),
    Row("27", "grant", "sts:AssumeRole", "{grant_role}", EXPLICIT_DENY, "never chains into a role"),
    Row("27", "grant", "sts:AssumeRole", "{broker_role}", EXPLICIT_DENY, "never assumes the brokers role"),
    Row("32", "grant", "lambda:UpdateFunctionCode", "{broker_function}", EXPLICIT_DENY, "never changes the brokers code"),
    Row("32", "grant", "lambda:UpdateFunctionConfiguration", "{auditor_function}", EXPLICIT_DENY, "never reconfigures the auditor"),
    Row("32", "grant", "lambda:InvokeFunction", "{auditor_function}", EXPLICIT_DENY, "never invokes the auditor"),
    *(
        Row("25", "grant", f"dynamodb:{action}", resource, EXPLICIT_DENY, f"never touches the ledger ({action})")
        for action, resource in (
            ("GetItem", "{table}"),
            ("PutItem", "{table}"),
            ("DeleteTable", "{table}"),
            ("Query", "{table}/index/by_requester"),
        )
    ),
    Row("32", "grant", "ssm:PutParameter", "{access_policy}", EXPLICIT_DENY, "never rewrites the access policy"),
    Row("32", "grant", "cloudformation:DeleteStack", "{stack}", EXPLICIT_DENY, "never deletes the brokers stack"),
    # Identity, organization, audit trail, code that runs as other roles, the stack's resources.
    *(
        Row("32", "grant", action, resource, EXPLICIT_DENY, why)
        for action, resource, why in (
            ("sso:CreatePermissionSet", "*", "never manages Identity Center"),
            ("identitystore:CreateUser", "*", "never manages the identity store"),
            ("ram:CreateResourceShare", "*", "never shares resources out"),
            ("ssm:SendCommand", "arn:aws:ec2:us-east-1:{account}:instance/i-0123456789abcdef0", "never runs commands on instances"),
            ("lambda:UpdateFunctionCode", "arn:aws:lambda:us-east-1:{account}:function:payments", "never changes code that runs as another role"),
            ("cloudtrail:StopLogging", "arn:aws:cloudtrail:us-east-1:{account}:trail/org", "never stops CloudTrail"),
            ("config:StopConfigurationRecorder", "*", "never stops AWS Config"),
            ("lambda:PublishLayerVersion", "{layer}", "never publishes the brokers layer"),
            ("events:PutEvents", "{bus}", "never forges audit events"),
            ("events:PutEvents", "{grant_bus}", "never forges grant events"),
            ("events:DisableRule", "{schedule_rule}", "never stops the auditors schedule"),
            ("logs:DeleteLogGroup", "{broker_log_group}", "never deletes the brokers logs"),
            ("sqs:PurgeQueue", "{dead_letters}", "never purges the auditors dead letters"),
        )
    ),
]
# fmt: on


def fill(value: Any, facts: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return value.format_map(facts)
    if isinstance(value, list):
        return [fill(v, facts) for v in value]
    return value


def base_context(who: str, facts: Mapping[str, str]) -> dict[str, str]:
    principal_arn = {
        "broker": facts["broker_role"],
        "auditor": facts["auditor_role"],
        "grant": facts["grant_role"],
    }[who]
    return {
        "aws:PrincipalArn": principal_arn,
        "aws:PrincipalAccount": ACCOUNT,
        "aws:PrincipalType": "AssumedRole",
        "aws:RequestedRegion": "us-east-1",
        "aws:CurrentTime": "2026-11-28T12:00:00Z",  # inside any grant's window: not compared to now
    }


def resource_account(resource: str) -> dict[str, str]:
    """aws:ResourceAccount, as AWS sets it: the account that owns the resource (an IAM role's
    account for sts:AssumeRole); none for a resource of no account (*, S3 buckets)."""
    parts = resource.split(":")
    return {"aws:ResourceAccount": parts[4]} if len(parts) > 5 and parts[4].isdigit() else {}


@pytest.mark.parametrize("row", [r.param() for r in BROKER_ROWS + AUDITOR_ROWS + GRANT_ROWS])
def test_deployed_role_policies_decide_as_the_threat_model_requires(row: Row, facts, principals):
    identity, boundary = principals(row.who, row.parameters)
    resource = fill(row.resource, facts)
    context = (
        base_context(row.who, facts)
        | resource_account(resource)
        | {k: fill(v, facts) for k, v in row.context.items()}
    )
    decision = decide(identity, boundary, row.action, resource, context)
    assert decision in row.expect, f"{row.action} on {resource}: {decision}"


# --------------------------------------------------------------------------- the API's policy


@dataclass(frozen=True)
class Caller:
    threat: str
    why: str
    role_arn: str  # str.format'ed with the facts: the principal's ARN (with its path)
    account: str
    expect: tuple[Decision, ...]
    allowed_accounts: str = ""  # the AllowedAccountIds parameter

    def param(self) -> Any:
        return pytest.param(self, id=f"T{self.threat}-{self.why}")


# fmt: off
API_CALLERS = [
    Caller("5", "a user of this account", "arn:aws:iam::{account}:user/JITUser", ACCOUNT, ALLOWED),
    Caller("5", "an SSO role of this account", "arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Dev_0123", ACCOUNT, ALLOWED),
    Caller("5", "a role of another account", f"arn:aws:iam::{OTHER_ACCOUNT}:role/dev", OTHER_ACCOUNT, DENIED),
    Caller("5", "an allowed other account", f"arn:aws:iam::{OTHER_ACCOUNT}:role/dev", OTHER_ACCOUNT, ALLOWED, allowed_accounts=f"111111111111,{OTHER_ACCOUNT}"),
    Caller("5", "this account once others are listed", "arn:aws:iam::{account}:user/JITUser", ACCOUNT, DENIED, allowed_accounts=f"111111111111,{OTHER_ACCOUNT}"),
    Caller("27", "a grant role session", "{grant_role}", ACCOUNT, EXPLICIT_DENY),
    Caller("27", "another stacks grant role", "{other_stack_grant_role}", ACCOUNT, EXPLICIT_DENY),
    Caller("27", "a grant role of an allowed account", f"arn:aws:iam::{OTHER_ACCOUNT}:role{{path}}{{grant_name}}", OTHER_ACCOUNT, EXPLICIT_DENY, allowed_accounts=OTHER_ACCOUNT),
    Caller("27", "the brokers own role", "{broker_role}", ACCOUNT, EXPLICIT_DENY),
    Caller("27", "the auditors role", "{auditor_role}", ACCOUNT, EXPLICIT_DENY),
]


# fmt: on


@pytest.mark.parametrize("caller", [c.param() for c in API_CALLERS])
def test_api_resource_policy_admits_allowed_accounts_and_never_jit_or_stack_sessions(
    caller: Caller, translated, facts
):
    """API Gateway evaluates the resource policy with the caller as principal: for a session
    of a role, aws:PrincipalArn is the role's ARN, path included."""
    parameters = {"AllowedAccountIds": caller.allowed_accounts} if caller.allowed_accounts else {}
    stack = Stack(translated, STACK_NAME, account=ACCOUNT, parameters=parameters)
    policy = stack.api_resource_policy("JitApi")
    role_arn = fill(caller.role_arn, facts)
    session_arn = role_arn
    if ":role/" in role_arn:
        role_name = role_arn.rsplit("/", 1)[1]
        session_arn = f"arn:aws:sts::{caller.account}:assumed-role/{role_name}/alice"
    principal = Principal(arn=session_arn, principal_arn=role_arn, account=caller.account)
    context = {"aws:PrincipalArn": role_arn, "aws:PrincipalAccount": caller.account}
    resource = fill("{api}/{stage}/POST/v1/grants", facts)
    decision = evaluate([policy], "execute-api:Invoke", resource, context, principal)
    assert decision in caller.expect, decision


# --------------------------------------------------------------------------- the table's premises


def test_the_boundary_the_functions_name_is_the_one_the_stack_creates(stack):
    """The broker creates roles with (and its CreateRole requires) JIT_BOUNDARY_POLICY_ARN: it
    must be the ARN of the stack's JitRoleBoundary, or every grant's ceiling is another policy."""
    boundary = stack.ref("JitRoleBoundary")
    assert stack.environment("BrokerFunction")["JIT_BOUNDARY_POLICY_ARN"] == boundary
    assert stack.environment("CleanupFunction")["JIT_BOUNDARY_POLICY_ARN"] == boundary


def test_the_functions_run_as_the_roles_the_table_judges(stack):
    assert stack.properties("BrokerFunction")["Role"] == stack.arn("BrokerRole")
    assert stack.properties("CleanupFunction")["Role"] == stack.arn("CleanupRole")
    env = stack.environment("BrokerFunction")
    assert env["JIT_BROKER_ROLE_ARN"] == stack.arn("BrokerRole")
    assert env["JIT_AUDITOR_ROLE_ARN"] == stack.arn("CleanupRole")


def test_the_functions_roles_have_no_boundary_and_only_known_aws_managed_policies(stack):
    """The table evaluates each role's inline policies plus its AWS managed policies (their
    documents as AWS publishes them, from moto's copy): a managed policy of unknown content,
    or a boundary on these roles, would make the table judge something else than AWS does."""
    for role in ("BrokerRole", "CleanupRole"):
        props = stack.properties(role)
        assert "PermissionsBoundary" not in props, role
        for arn in stack.managed_policy_arns(role):
            document = aws_managed_document(arn)
            actions = {a for s in document["Statement"] for a in s["Action"]}
            assert {a.split(":")[0] for a in actions} <= {"logs", "xray"}, (role, arn)


def test_two_stacks_in_one_account_have_role_paths_neither_of_which_holds_the_other(facts):
    # Issue 8 defect 6: the rows about "another stack's grant role" mean something only if the
    # two stacks' paths differ (and a ListRoles PathPrefix of one never lists the other's).
    other_path = facts["other_stack_grant_role"].split(":role", 1)[1].rsplit("/", 1)[0] + "/"
    assert not other_path.startswith(facts["path"])
    assert not facts["path"].startswith(other_path)


def test_the_grant_role_rows_use_the_path_and_name_the_broker_is_configured_with(facts, stack):
    """The rows' grant role is where the broker puts one: its JIT_ROLE_PATH and a name from
    jit_broker.naming, so a path the template changes changes the rows with it."""
    path = stack.environment("BrokerFunction")["JIT_ROLE_PATH"]
    assert path == stack.environment("CleanupFunction")["JIT_ROLE_PATH"]
    assert path.startswith("/") and path.endswith("/")
    assert facts["grant_role"] == f"arn:aws:iam::{ACCOUNT}:role{path}jit-{GRANT_ID}"
    assert naming.is_grant_role_name(facts["grant_name"])
