"""Member accounts: IAM clients that act through the member template's execution role.

The broker and the auditor write and read roles in a member account only through that role
(``<hub stack>-jit-member``, trusted by the hub's broker and auditor roles alone). Its
sessions are cached per account and renewed five minutes before they end. Grant roles are
never assumed through it: the broker assumes them with its own role, one hop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from jit_broker.errors import AccountUnreachable

RENEW_BEFORE_SECONDS = 300
SESSION_SECONDS = 900


class MemberClients:
    """``client(account)``: a boto3 client of ``service`` in ``account``, acting as the
    execution role there. Raises AccountUnreachable when the role cannot be assumed."""

    def __init__(
        self,
        *,
        sts: Any,
        session_factory: Callable[..., Any],
        role_arn_of: Callable[[str], str],
        session_name: str,
        service: str = "iam",
        config: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sts = sts
        self._session_factory = session_factory
        self._role_arn_of = role_arn_of
        self._session_name = session_name
        self._service = service
        self._config = config
        self._clock = clock
        self._cache: dict[str, tuple[float, Any]] = {}

    def client(self, account: str) -> Any:
        cached = self._cache.get(account)
        if cached and cached[0] - RENEW_BEFORE_SECONDS > self._clock():
            return cached[1]
        role_arn = self._role_arn_of(account)
        try:
            out = self._sts.assume_role(
                RoleArn=role_arn,
                RoleSessionName=self._session_name,
                DurationSeconds=SESSION_SECONDS,
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise AccountUnreachable(
                f"account {account} cannot be reached: its execution role {role_arn} could not "
                f"be assumed ({code}); deploy templates/member-account.yaml there with this "
                "stack's role ARNs"
            ) from exc
        except BotoCoreError as exc:
            raise AccountUnreachable(f"account {account} cannot be reached (STS)") from exc
        c = out["Credentials"]
        session = self._session_factory(
            aws_access_key_id=c["AccessKeyId"],
            aws_secret_access_key=c["SecretAccessKey"],
            aws_session_token=c["SessionToken"],
        )
        client = session.client(self._service, config=self._config)
        self._cache[account] = (c["Expiration"].timestamp(), client)
        return client
