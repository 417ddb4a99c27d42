"""Caller keys for the local gateway, found in moto's in-process backends.

The local gateway (``jit_local.gateway``) verifies SigV4 the way API Gateway's AWS_IAM
authorizer does. To do that it needs, for an access key id, the secret that signs with
it, the session token that must accompany it and the identity API Gateway would report
for it. On AWS that knowledge lives in IAM and STS; on the embedded local stack it lives
in moto's backends, which this module reads directly (the same way moto's own
``moto.iam.access_control`` finds keys):

* IAM user access keys: ``iam_backends[account][partition].users[name].access_keys``;
* STS sessions from AssumeRole: ``sts_backends[account][partition].assumed_roles``
  (moto stores a session in the backend of the role's account).

Keys of every moto account are found (AWS accepts a signature from any account; which
accounts may use the broker is the broker's decision), the given account first.
Sessions from GetSessionToken / GetFederationToken are not stored by moto and so are
never found.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["CallerKey", "moto_key_lookup"]


@dataclass(frozen=True)
class CallerKey:
    """A signing key and the identity API Gateway reports for requests signed with it."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(repr=False)  # None for IAM user keys
    account_id: str
    user_arn: str  # arn:aws:iam::ACCT:user/NAME or arn:aws:sts::ACCT:assumed-role/ROLE/SESSION
    caller: str  # requestContext.identity.caller: user id, or "ROLEID:SESSION"
    user: str  # requestContext.identity.user: same conventions as caller
    expires_at: float | None  # epoch seconds, for session credentials


def moto_key_lookup(
    account_id: str = "123456789012", partition: str = "aws"
) -> Callable[[str], CallerKey | None]:
    """Return ``lookup(access_key_id)`` reading moto's backends at each call.

    Unknown keys, inactive user keys and inactive session keys give ``None``.
    Call it while moto is active (``mock_aws`` or the in-process moto server).
    """

    def lookup(access_key_id: str) -> CallerKey | None:
        if not access_key_id:
            return None
        for account in _accounts(account_id):
            found = _user_key(account, partition, access_key_id) or _session_key(
                account, partition, access_key_id
            )
            if found is not None:
                return found
        return None

    return lookup


def _accounts(preferred: str) -> Iterator[str]:
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    yield preferred
    # dict.keys: the accounts moto already holds, without creating new ones.
    others = set(dict.keys(iam_backends)) | set(dict.keys(sts_backends))
    yield from sorted(others - {preferred})


def _user_key(account: str, partition: str, access_key_id: str) -> CallerKey | None:
    from moto.iam.models import iam_backends

    backend = iam_backends[account][partition]
    for user in list(backend.users.values()):
        for key in list(user.access_keys):
            if key.access_key_id != access_key_id:
                continue
            if key.status != "Active":
                return None
            return CallerKey(
                access_key_id=key.access_key_id,
                secret_access_key=key.secret_access_key,
                session_token=None,
                account_id=user.account_id,
                user_arn=user.arn,
                caller=user.id,
                user=user.id,
                expires_at=None,
            )
    return None


def _session_key(account: str, partition: str, access_key_id: str) -> CallerKey | None:
    from moto.sts.models import sts_backends

    backend = sts_backends[account][partition]
    for session in list(backend.assumed_roles):
        if session.access_key_id != access_key_id:
            continue
        if session.access_key.status != "Active":
            return None
        caller = f"{_role_id(session)}:{session.session_name}"
        return CallerKey(
            access_key_id=session.access_key_id,
            secret_access_key=session.secret_access_key,
            session_token=session.session_token,
            account_id=session.account_id,
            user_arn=session.arn,
            caller=caller,
            user=caller,
            expires_at=_epoch(session.expiration),
        )
    return None


def _role_id(session: Any) -> str:
    """The role's unique id (AROA...), stable even when the role no longer exists.

    On AWS the role id travels inside the session token, so it outlives the role; moto
    invents a fresh random id each time for a missing role, which would make the same
    session look like a different caller on each request. A missing role gets an id
    derived from its ARN instead.
    """
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import iam_backends

    role_arn: str = session.role_arn
    try:
        role = iam_backends[session.account_id][session.partition].get_role_by_arn(role_arn)
    except NotFoundException:
        digest = hashlib.sha256(role_arn.encode("utf-8")).digest()
        return "AROA" + base64.b32encode(digest).decode("ascii")[:17]
    return str(role.id)


def _epoch(moment: datetime) -> float:
    """moto keeps naive datetimes in UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
