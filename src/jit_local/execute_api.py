"""execute-api:Invoke for the local gateway: the caller's identity-based policies, read from
the embedded IAM (moto's backends) and judged by ``jit_local.iam_eval``.

API Gateway's AWS_IAM authorization, once the signature is verified, asks whether the caller
may invoke ``arn:aws:execute-api:REGION:ACCOUNT:API-ID/STAGE/METHOD/PATH``. What the IAM side
of that answer needs is here: every policy that applies to the verified key's principal, as
IAM combines them — identity-based policies (an IAM user's own, attached and group policies; a
role session's role policies), the role's permissions boundary and the session's policies: an
explicit Deny in any wins, otherwise each that applies must allow. The request context holds
what IAM knows of the principal (ARN, account, type, user id, user name, principal tags, the
session's SourceIdentity and issue time), the embedded IAM's current time (its clock, as
``iam_eval`` uses it) and the request keys the gateway gives (``aws:SourceIp``,
``aws:SecureTransport``). Which account may rely on identity policies alone is API Gateway's
rule, applied by the gateway (``jit_local.gateway.LocalGateway``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jit_local.credentials import CallerKey

__all__ = ["IdentityPolicyCheck", "moto_identity_policies"]

IdentityPolicyCheck = Callable[[CallerKey, str, str, Mapping[str, str]], str]
"""(verified caller, action, resource, request keys) -> "allow", "deny" (an explicit deny)
or "neutral" (nothing allows it)."""

_DENY_ALL: dict[str, Any] = {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class _Principal:
    arn: str  # the user's ARN, or the session's role ARN (aws:PrincipalArn)
    kind: str  # aws:PrincipalType: "User" or "AssumedRole"
    username: str | None
    tags: dict[str, str]
    policy_sets: list[list[dict[str, Any]]]  # identity; boundary; session policies
    source_identity: str | None = None
    issued_at: float | None = None


def moto_identity_policies(partition: str = "aws") -> IdentityPolicyCheck:
    """The check for the local gateway, reading moto's IAM and STS at each call (while moto is
    active: the embedded stack's server or ``mock_aws``)."""

    def check(caller: CallerKey, action: str, resource: str, request: Mapping[str, str]) -> str:
        from jit_local import iam_eval

        principal = _principal(caller, partition)
        if principal is None:  # gone since the signature was verified: nothing allows it
            return iam_eval.Decision.NEUTRAL.value
        context = _context(caller, principal, iam_eval.get_clock()()) | {
            key.lower(): value for key, value in request.items()
        }
        verdicts = [
            iam_eval.evaluate(documents, action, resource, context)
            for documents in principal.policy_sets
        ]
        if iam_eval.Decision.DENY in verdicts:
            return iam_eval.Decision.DENY.value
        if all(v is iam_eval.Decision.ALLOW for v in verdicts):
            return iam_eval.Decision.ALLOW.value
        return iam_eval.Decision.NEUTRAL.value

    return check


def _principal(caller: CallerKey, partition: str) -> _Principal | None:
    from moto.iam.models import iam_backends

    iam = iam_backends[caller.account_id][partition]
    if caller.session_token is None:
        return _user(iam, caller.access_key_id)
    return _session(iam, caller, partition)


def _user(iam: Any, access_key_id: str) -> _Principal | None:
    user = iam.get_user_from_access_key_id(access_key_id)
    if user is None:
        return None
    identity = _inline(user.policies) + _managed(user.managed_policies)
    for group in iam.get_groups_for_user(user.name):
        identity += _inline(group.policies) + _managed(group.managed_policies)
    return _Principal(
        arn=user.arn,
        kind="User",
        username=user.name,
        tags={tag["Key"]: tag["Value"] for tag in iam.list_user_tags(user.name)},
        policy_sets=[identity],  # moto keeps no permissions boundary for users
    )


def _session(iam: Any, caller: CallerKey, partition: str) -> _Principal | None:
    from moto.iam.exceptions import IAMException
    from moto.sts.models import sts_backends

    from jit_local import iam_eval

    assumed = sts_backends[caller.account_id][partition].get_assumed_role_from_access_key(
        caller.access_key_id
    )
    if assumed is None:
        return None
    try:
        role = iam.get_role_by_arn(assumed.role_arn)
    except IAMException:
        return None  # the role is gone: its sessions can do nothing
    policy_sets = [_inline(role.policies) + _managed(role.managed_policies)]
    if role.permissions_boundary_arn:
        policy_sets.append([_policy_document(iam, role.permissions_boundary_arn)])
    info = iam_eval.session_context(caller.access_key_id)
    if info is not None and (info.session_policy or info.session_policy_arns):
        session = [_policy_document(iam, arn) for arn in info.session_policy_arns]
        if info.session_policy:
            session.append(_document(info.session_policy))
        policy_sets.append(session)
    tags = {tag["Key"]: tag["Value"] for tag in role.tags}
    return _Principal(
        arn=role.arn,
        kind="AssumedRole",
        username=None,
        tags=tags | (dict(info.tags) if info else {}),
        policy_sets=policy_sets,
        source_identity=info.source_identity if info else None,
        issued_at=info.issued_at if info else None,
    )


def _context(caller: CallerKey, principal: _Principal, now: float) -> dict[str, str]:
    context = {
        "aws:currenttime": _iso(now),
        "aws:epochtime": str(int(now)),
        "aws:principalarn": principal.arn,
        "aws:principalaccount": caller.account_id,
        "aws:principaltype": principal.kind,
        "aws:principalisawsservice": "false",
        "aws:viaawsservice": "false",
        "aws:userid": caller.caller,
    }
    if principal.username:
        context["aws:username"] = principal.username
    if principal.source_identity:
        context["aws:sourceidentity"] = principal.source_identity
    if principal.issued_at is not None:
        context["aws:tokenissuetime"] = _iso(principal.issued_at)
    context.update({f"aws:principaltag/{k}".lower(): v for k, v in principal.tags.items()})
    return context


def _inline(policies: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [_document(text) for text in list(dict(policies).values())]


def _managed(policies: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [_default_version(policy) for policy in list(dict(policies).values())]


def _default_version(policy: Any) -> dict[str, Any]:
    default = next((v for v in policy.versions if v.is_default), None)
    return _document(default.document if default else None)


def _policy_document(iam: Any, arn: str) -> dict[str, Any]:
    """A managed policy's document; a policy that does not exist allows nothing."""
    from moto.iam.exceptions import IAMException

    try:
        return _default_version(iam.get_policy(arn))
    except IAMException:
        return {"Statement": []}


def _document(text: Any) -> dict[str, Any]:
    """A stored policy document; one that cannot be read denies everything (fails closed)."""
    if isinstance(text, dict):
        return text
    try:
        document = json.loads(text or "")
    except ValueError:
        return _DENY_ALL
    return document if isinstance(document, dict) else _DENY_ALL


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
