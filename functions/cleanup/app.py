"""Cleanup (auditor) Lambda: the EventBridge schedule, ``{"dry_run": true}``, or the broker's
invocation for POST /v1/audit → one audit run → its report."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jit_broker.audit import run_from_event
from jit_broker.observability import logger, metrics, tracer
from jit_broker.runtime import auditor


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = run_from_event(auditor(), event, context.get_remaining_time_in_millis())
    return {"report": report.model_dump(mode="json")}
