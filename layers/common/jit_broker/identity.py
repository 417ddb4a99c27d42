"""The verified caller, from ``requestContext.identity`` only (never from body or headers).

API Gateway's IAM authorizer fills ``userArn``, ``accountId`` and ``caller`` after checking the
SigV4 signature. Accepted principals: IAM users, assumed-role sessions and federated users.
Root and anything unrecognised are refused. An assumed-role caller is identified by its role
(``arn:aws:iam::ACCOUNT:role/NAME``): the session name is chosen by the caller, so no
entitlement depends on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jit_broker.errors import NotAuthenticated
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
    if not arn or not account or not identity.get("caller"):
        raise NotAuthenticated("the request carries no verified IAM identity: sign it with SigV4")
    return parse_caller(str(arn), str(account), access_key=identity.get("accessKey"))


def parse_caller(arn: str, account_id: str, *, access_key: str | None = None) -> Caller:
    if _ROOT.fullmatch(arn):
        raise NotAuthenticated(
            "the account root user may not use the broker: sign in as an IAM principal"
        )
    if m := _USER.fullmatch(arn):
        caller = Caller(arn, arn, m["account"], "user", m["name"], access_key=access_key)
    elif m := _ASSUMED.fullmatch(arn):
        role_arn = f"arn:{m['partition']}:iam::{m['account']}:role/{m['role']}"
        caller = Caller(
            arn, role_arn, m["account"], "assumed-role", m["role"], m["session"], access_key
        )
    elif m := _FEDERATED.fullmatch(arn):
        caller = Caller(arn, arn, m["account"], "federated-user", m["name"], access_key=access_key)
    else:
        raise NotAuthenticated("unrecognised caller identity")
    if caller.account_id != account_id:
        raise NotAuthenticated("the caller's account does not match its identity")
    return caller
