"""The auditor's names where its importers (the local stack, benchmarks, tests) take them
from; the auditor itself is the :mod:`jit_broker.audit` package."""

from jit_broker.audit import (
    AS_CURRENT_PROFILE,
    AS_WRITTEN,
    AuditGate,
    Auditor,
    AuditRunner,
    EventSink,
    LambdaAuditRunner,
    canonical,
    deletable_at,
    grant_id_of,
    run_from_event,
    shared_sessions_over_at,
)

__all__ = [
    "AS_CURRENT_PROFILE",
    "AS_WRITTEN",
    "AuditGate",
    "AuditRunner",
    "Auditor",
    "EventSink",
    "LambdaAuditRunner",
    "canonical",
    "deletable_at",
    "grant_id_of",
    "run_from_event",
    "shared_sessions_over_at",
]
