"""STS: AssumeRole into a grant's role, retrying IAM's eventual consistency within a budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from jit_broker.errors import AwsUnavailable, BadRequest
from jit_broker.models.domain import Credentials


class Sts:
    def __init__(
        self,
        client: Any,
        *,
        retry_budget_seconds: float = 18.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sts = client
        self._budget = retry_budget_seconds
        self._sleep = sleep
        self._monotonic = monotonic

    def assume(
        self,
        *,
        role_arn: str,
        session_name: str,
        source_identity: str,
        duration_seconds: int,
        tags: dict[str, str],
        time_left: float | None = None,
        session_policy: str | None = None,
        policy_arns: tuple[str, ...] = (),
    ) -> Credentials:
        """AssumeRole; AccessDenied right after the role was made is retried with backoff
        (0.25 s doubling, capped at 2 s) until the budget is spent, or ``time_left`` (the
        seconds the caller can still wait, when it is less) is: no retry starts past it.
        ``session_policy`` (compact JSON) and ``policy_arns`` scope the session (shared roles)."""
        scope: dict[str, Any] = {}
        if session_policy is not None:
            scope["Policy"] = session_policy
        if policy_arns:
            scope["PolicyArns"] = [{"arn": arn} for arn in policy_arns]
        budget = self._budget if time_left is None else max(0.0, min(self._budget, time_left))
        deadline = self._monotonic() + budget
        delay = 0.25
        while True:
            try:
                out = self._sts.assume_role(
                    RoleArn=role_arn,
                    RoleSessionName=session_name,
                    SourceIdentity=source_identity,
                    DurationSeconds=duration_seconds,
                    Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                    **scope,
                )
                break
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "AccessDenied" and self._monotonic() + delay < deadline:
                    self._sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                if code == "PackedPolicyTooLarge":
                    raise BadRequest("the session's policy and tags are too large for STS") from exc
                raise AwsUnavailable(f"STS did not issue a session ({code})") from exc
            except BotoCoreError as exc:
                raise AwsUnavailable("STS could not be reached") from exc
        c = out["Credentials"]
        return Credentials(
            access_key_id=c["AccessKeyId"],
            secret_access_key=c["SecretAccessKey"],
            session_token=c["SessionToken"],
            expiration=int(c["Expiration"].timestamp()),
        )
