"""The verified caller, from ``requestContext.identity`` only (never from body or headers).

API Gateway's IAM authorizer fills ``userArn``, ``accountId`` and ``caller`` after checking the
SigV4 signature. Accepted principals: IAM users, assumed-role sessions and federated users.
Root and anything unrecognised are refused. An assumed-role caller is identified by its role
(``arn:aws:iam::ACCOUNT:role/NAME``): the session name is chosen by the caller, so no
entitlement depends on it.

Ownership is another question: a grant belongs to the exact caller that requested it
(:attr:`Caller.owner`): the principal's unique id as the request context reports it
(``AIDA…`` for a user, ``AROA…:SESSION`` for a role session). Two people behind one role
(an Identity Center permission set, a team role) are entitled alike but own nothing in
common, and a principal deleted and re-created under the same ARN (a new unique id) owns
none of the old one's grants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jit_broker import naming
from jit_broker.errors import BrokerSessionRefused, NotAuthenticated
from jit_broker.naming import sts_name

_ACCOUNT = r"(?P<account>\d{12})"
_PARTITION = r"(?P<partition>aws|aws-cn|aws-us-gov)"
_USER = re.compile(
    rf"^arn:{_PARTITION}:iam::{_ACCOUNT}:user/(?:[\w+=,.@/-]*/)?(?P<name>[\w+=,.@-]{{1,64}})$"
)
_ASSUMED = re.compile(
    rf"^arn:{_PARTITION}:sts::{_ACCOUNT}:assumed-role/(?P<role>[\w+=,.@-]{{1,64}})/(?P<session>[\w+=,.@-]{{2,64}})$"
)
_FEDERATED = re.compile(
    rf"^arn:{_PARTITION}:sts::{_ACCOUNT}:federated-user/(?P<name>[\w+=,.@-]{{2,64}})$"
)
_ROOT = re.compile(rf"^arn:{_PARTITION}:iam::{_ACCOUNT}:root$")


@dataclass(frozen=True)
class Caller:
    arn: str  # the ARN API Gateway verified
    requester_id: str  # what entitlements and the ledger key on
    account_id: str
    principal_type: str  # "user" | "assumed-role" | "federated-user"
    name: str  # user name, role name or federated user name
    session_name: str | None = None
    access_key: str | None = None
    # requestContext.identity.caller: "AIDA…" (user), "AROA…:SESSION" (role session). The
    # unique id survives nothing: a principal re-created under the same ARN gets a new one.
    unique_id: str = ""

    @property
    def owner(self) -> str:
        """Who a grant belongs to: the exact caller, unique id included (never shared by two
        sessions of one role, nor by a deleted principal and its namesake)."""
        return f"{self.arn}|{self.unique_id}"

    @property
    def person(self) -> str:
        """Who this is, for self-approval (issue 11): the caller's ARN in lower case. Every
        session of one user, and every session of one role under one session name (in any
        case), is the same person; the unique id is left out, so a principal re-created
        under the same ARN is the same person too. The ledger refuses an approval whose
        approver's person is its requester's."""
        return self.arn.lower()

    @property
    def source_identity(self) -> str:
        """SourceIdentity for sessions issued to this caller (kept by CloudTrail)."""
        if self.session_name:
            return sts_name(f"{self.name}@{self.session_name}")
        return sts_name(self.name)


def caller_from_context(request_context: dict[str, Any] | None) -> Caller:
    identity = (request_context or {}).get("identity") or {}
    arn = identity.get("userArn")
    account = identity.get("accountId")
    unique_id = identity.get("caller")
    if not arn or not account or not unique_id or not isinstance(unique_id, str):
        raise NotAuthenticated("the request carries no verified IAM identity: sign it with SigV4")
    return parse_caller(
        str(arn), str(account), access_key=identity.get("accessKey"), unique_id=unique_id
    )


def refuse_broker_principals(caller: Caller, broker_role_names: frozenset[str]) -> Caller:
    """Threat 27: a session of one of the broker's own roles is never a caller. A grant's
    session (its role is named like the broker's grant roles, ``jit-g-*``, or shared roles,
    ``jit-s-*``) could otherwise mint grants
    that outlive its own revocation; the broker's and the auditor's roles act only as
    themselves, never through the API."""
    if caller.principal_type == "assumed-role" and (
        naming.is_grant_role_name(caller.name)
        or naming.is_shared_role_name(caller.name)
        or caller.name in broker_role_names
    ):
        raise BrokerSessionRefused(
            f"{caller.arn} is a session of the broker's own role {caller.name!r}: the broker "
            "takes no requests from its grants' sessions or from itself. Call it with your "
            "own credentials (unset the grant's AWS_* variables or AWS_PROFILE)"
        )
    return caller


def parse_caller(
    arn: str, account_id: str, *, access_key: str | None = None, unique_id: str = ""
) -> Caller:
    if _ROOT.fullmatch(arn):
        raise NotAuthenticated(
            "the account root user may not use the broker: sign in as an IAM principal"
        )
    if m := _USER.fullmatch(arn):
        caller = Caller(
            arn, arn, m["account"], "user", m["name"], access_key=access_key, unique_id=unique_id
        )
    elif m := _ASSUMED.fullmatch(arn):
        role_arn = f"arn:{m['partition']}:iam::{m['account']}:role/{m['role']}"
        caller = Caller(
            arn,
            role_arn,
            m["account"],
            "assumed-role",
            m["role"],
            m["session"],
            access_key,
            unique_id,
        )
    elif m := _FEDERATED.fullmatch(arn):
        caller = Caller(
            arn,
            arn,
            m["account"],
            "federated-user",
            m["name"],
            access_key=access_key,
            unique_id=unique_id,
        )
    else:
        raise NotAuthenticated("unrecognised caller identity")
    if caller.account_id != account_id:
        raise NotAuthenticated("the caller's account does not match its identity")
    return caller
