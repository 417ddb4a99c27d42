"""The auditor: compares the ledger with IAM in every account of the stack and leaves no JIT
role older than its grant allows, no revoked grant on a shared role's deny longer than its
sessions can live, removes orphans, reports drift, and reconciles what a crash in the grant
path left.

- :mod:`~jit_broker.audit.sweep`: one run over the hub and the member accounts (budgets,
  events, metrics, the run's report);
- :mod:`~jit_broker.audit.account`: one account's sweep (what is done to each role and grant);
- :mod:`~jit_broker.audit.drift`: what a role is judged on;
- :mod:`~jit_broker.audit.gate`: who runs it (POST /v1/audit, the cleanup function's event).

Removal = deny → inline policies → managed policies → instance profiles → delete
(:meth:`IamAudit.teardown`); a run removes at most ``max_deletions_per_run`` roles (each
account its share) and stops cleanly before its time budget, saving where each account's
sweep resumes. Shared roles are never removed. A dry run reports what it would do and writes
nothing (IAM, ledger, events, cursors).
"""

from jit_broker.audit.account import deletable_at, grant_id_of, shared_sessions_over_at
from jit_broker.audit.drift import AS_CURRENT_PROFILE, AS_WRITTEN, canonical
from jit_broker.audit.gate import AuditGate, AuditRunner, LambdaAuditRunner, run_from_event
from jit_broker.audit.sweep import Auditor, EventSink

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
