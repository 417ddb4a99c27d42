"""Who runs the auditor and how: administrators through POST /v1/audit (the broker invokes
the cleanup function, holding none of the auditor's rights), the schedule, and the cleanup
function's one domain call (:func:`run_from_event`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jit_broker.errors import BadRequest, NotEntitled
from jit_broker.models.audit import AuditReport, AuditRequest

if TYPE_CHECKING:
    from jit_broker.access_policy import AccessPolicy
    from jit_broker.audit.sweep import Auditor
    from jit_broker.identity import Caller
    from jit_broker.settings import Settings

AuditRunner = Callable[[AuditRequest, str], AuditReport]


class AuditGate:
    """Who may run the auditor through the API, and with what: administrators named in the
    access policy only; ``at`` only where clock overrides are allowed (the local stack)."""

    def __init__(
        self,
        *,
        settings: Settings,
        policy: Callable[[], AccessPolicy],
        runner: AuditRunner | None,
    ) -> None:
        self._settings = settings
        self._policy = policy
        self._runner = runner

    def run(self, caller: Caller, request: AuditRequest) -> AuditReport:
        policy = self._policy()
        if not policy.is_account_allowed(caller.account_id) or not policy.is_administrator(caller):
            raise NotEntitled("only administrators named in the access policy may run the auditor")
        if request.at is not None and not self._settings.allow_clock_override:
            raise BadRequest(
                "at: evaluating the audit at another time is allowed only on the local stack "
                "(JIT_ALLOW_CLOCK_OVERRIDE); omit it to audit as of now"
            )
        if self._runner is None:
            from jit_broker.errors import AwsUnavailable

            raise AwsUnavailable("the auditor is not configured for this broker")
        return self._runner(request, caller.arn)


class LambdaAuditRunner:
    """Runs the auditor by invoking the cleanup function (RequestResponse): the broker needs
    only lambda:InvokeFunction on that one function, never the auditor's IAM rights."""

    # Inside API Gateway's 29 s and the broker's 25 s timeout; the next run picks up the rest.
    BUDGET_MS = 15_000

    def __init__(self, client: Any, function_name: str) -> None:
        self._lambda = client
        self._function = function_name

    def __call__(self, request: AuditRequest, requested_by: str) -> AuditReport:
        from botocore.exceptions import BotoCoreError, ClientError

        from jit_broker.errors import AwsUnavailable

        payload = {
            "dry_run": request.dry_run,
            "budget_ms": self.BUDGET_MS,
            "requested_by": requested_by,
        }
        if request.at is not None:
            payload["at"] = request.at
        try:
            out = self._lambda.invoke(
                FunctionName=self._function,
                InvocationType="RequestResponse",
                Payload=json.dumps(payload).encode(),
            )
            body = json.loads(out["Payload"].read() or b"null")
        except (ClientError, BotoCoreError, ValueError) as exc:
            raise AwsUnavailable("the auditor could not be run right now") from exc
        if out.get("FunctionError") or not isinstance(body, dict) or "report" not in body:
            raise AwsUnavailable("the auditor failed: see its logs")
        return AuditReport.model_validate(body["report"])


def run_from_event(auditor: Auditor, event: Any, remaining_ms: int) -> AuditReport:
    """The cleanup function's one domain call: parse the event, refuse ``at`` unless clock
    overrides are allowed here too (so no invoker can make it delete live roles early), and
    run within the smaller of the Lambda's remaining time and the event's budget."""
    from pydantic import ValidationError

    from jit_broker.models.audit import AuditEvent

    try:
        parsed = AuditEvent.model_validate(event if isinstance(event, dict) else {})
    except ValidationError as exc:
        raise BadRequest(f"invalid audit event: {exc.errors()[0].get('msg', 'invalid')}") from exc
    if parsed.at is not None and not auditor.allows_clock_override:
        raise BadRequest("at: clock overrides are not allowed for this auditor")
    budget = min(remaining_ms, parsed.budget_ms or remaining_ms)
    return auditor.run(dry_run=parsed.dry_run, at=parsed.at, budget_ms=budget)
