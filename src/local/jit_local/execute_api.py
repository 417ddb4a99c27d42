"""execute-api:Invoke for the local gateway: the caller's identity-based policies, read from
the embedded IAM (moto's backends) and judged by ``jit_local.iam_eval``.

API Gateway's AWS_IAM authorization, once the signature is verified, asks whether the caller
may invoke ``arn:aws:execute-api:REGION:ACCOUNT:API-ID/STAGE/METHOD/PATH``. What the IAM side
of that answer is ``jit_local.iam_eval.identity_decision``: every policy that applies to the
verified key's principal, combined as IAM combines them (identity-based policies, the role's
permissions boundary, the session's policies: an explicit Deny in any wins, otherwise each that
applies must allow), judged in the context the embedded IAM gives its own requests, with the
request keys the gateway adds (``aws:SourceIp``, ``aws:SecureTransport``). Which account may rely on identity policies alone is API Gateway's
rule, applied by the gateway (``jit_local.gateway.LocalGateway``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from jit_local.credentials import CallerKey

__all__ = ["IdentityPolicyCheck", "moto_identity_policies"]

IdentityPolicyCheck = Callable[[CallerKey, str, str, Mapping[str, str]], str]
"""(verified caller, action, resource, request keys) -> "allow", "deny" (an explicit deny)
or "neutral" (nothing allows it)."""


def moto_identity_policies() -> IdentityPolicyCheck:
    """The check for the local gateway, reading moto's IAM and STS at each call (while moto is
    active: the embedded stack's server or ``mock_aws``)."""

    def check(caller: CallerKey, action: str, resource: str, request: Mapping[str, str]) -> str:
        from jit_local import iam_eval

        region = resource.split(":")[3]  # arn:PARTITION:execute-api:REGION:ACCOUNT:...
        return iam_eval.identity_decision(caller, action, resource, request, region).value

    return check
