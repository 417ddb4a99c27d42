"""One Logger, Tracer and Metrics for the package (Powertools).

The event is never logged; the Tracer does not capture responses or errors (they may hold
credentials); the correlation id is the API request id.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="jit-broker")
tracer = Tracer(service="jit-broker")
metrics = Metrics(namespace="JitBroker", service="jit-broker")
