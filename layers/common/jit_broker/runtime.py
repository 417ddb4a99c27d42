"""Wiring: the one Broker, Auditor and audit gate of a Lambda execution environment, each
built on first use (not at import) from settings and boto3 clients. Tests and the local stack
replace them with ``set_broker`` / ``set_auditor`` / ``set_audit_gate``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jit_broker.grants import Broker

if TYPE_CHECKING:  # the auditor loads on first use, not on the broker's import path
    from jit_broker.adapters.events import GrantEvents
    from jit_broker.audit import AuditGate, Auditor, AuditRunner
    from jit_broker.settings import AuditSettings, Settings


def build_broker(session: Any = None, clock: Callable[[], float] | None = None) -> Broker:
    """The broker for this environment: settings from the environment, clients from
    ``session`` (the Lambda role's credentials by default)."""
    import boto3
    from botocore.config import Config

    from jit_broker.adapters.iam import Iam
    from jit_broker.adapters.ledger import Ledger
    from jit_broker.adapters.members import MemberClients
    from jit_broker.adapters.policy_source import load_policy
    from jit_broker.adapters.sts import Sts
    from jit_broker.settings import get_settings

    settings = get_settings()
    config = Config(
        retries={"mode": "adaptive", "max_attempts": 5}, connect_timeout=3, read_timeout=8
    )
    session = session or boto3.session.Session()
    sts_client = session.client("sts", config=config)
    members = MemberClients(
        sts=sts_client,
        session_factory=boto3.session.Session,
        role_arn_of=settings.member_role_arn,
        session_name="jit-broker",
        config=config,
        clock=clock or time.time,
    )
    return Broker(
        settings=settings,
        policy=lambda: load_policy(
            parameter=settings.policy_parameter,
            path=settings.policy_file,
            stack_managed_policies=settings.managed_policy_allow_list,
            stack_accounts=settings.stack_accounts,
        ),
        member_iam=lambda account: Iam(members.client(account)),
        ledger=Ledger(session.client("dynamodb", config=config), settings.table_name),
        iam=Iam(session.client("iam", config=config)),
        clock=clock or time.time,
        sts=Sts(
            sts_client,
            retry_budget_seconds=settings.assume_retry_budget_seconds,
        ),
        events=grant_events(session, settings, config, clock),
    )


def grant_events(
    session: Any, settings: Settings | AuditSettings, config: Any, clock: Callable[[], float] | None
) -> GrantEvents | None:
    """The publisher of grant events to the stack's grant bus (None: no bus configured).
    A PutEvents is one short call: two attempts at most, so a slow bus cannot hold the
    grant's answer (it is best-effort: logged and counted, never the caller's failure)."""
    if not settings.grant_event_bus:
        return None
    from botocore.config import Config

    from jit_broker.adapters.events import GrantEvents, grant_bus
    from jit_broker.observability import logger, metrics

    config = config.merge(Config(retries={"mode": "standard", "max_attempts": 2}))
    return GrantEvents(
        grant_bus(session.client("events", config=config), settings.grant_event_bus),
        home_account=settings.home_account,
        clock=clock or time.time,
        logger=logger,
        metrics=metrics,
    )


# --- the auditor -----------------------------------------------------------------------------
def build_auditor(
    session: Any = None,
    clock: Callable[[], float] | None = None,
    env: dict[str, str] | None = None,
    events: Any = None,
) -> Auditor:
    """The auditor for this environment: clients with adaptive retries (Throttling), events
    to the configured bus (else kept in memory), the access policy for drift checks, and IAM
    in each member account through its execution role (assumed with the auditor's own)."""
    import boto3
    from botocore.config import Config

    from jit_broker.adapters.events import AuditEvents, RecordedEvents
    from jit_broker.adapters.iam_audit import IamAudit
    from jit_broker.adapters.ledger import Ledger
    from jit_broker.adapters.members import MemberClients
    from jit_broker.adapters.policy_source import load_policy
    from jit_broker.audit import Auditor
    from jit_broker.observability import logger, metrics
    from jit_broker.settings import AuditSettings

    settings = AuditSettings.from_env(env)
    config = Config(
        retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=3, read_timeout=10
    )
    session = session or boto3.session.Session()
    if events is None:
        events = (
            AuditEvents(session.client("events", config=config), settings.event_bus_name)
            if settings.event_bus_name
            else RecordedEvents()
        )
    members = MemberClients(
        sts=session.client("sts", config=config),
        session_factory=boto3.session.Session,
        role_arn_of=settings.member_role_arn,
        session_name="jit-auditor",
        config=config,
        clock=clock or time.time,
    )

    def policy() -> Any:
        if not (settings.policy_parameter or settings.policy_file):
            return None
        return load_policy(parameter=settings.policy_parameter, path=settings.policy_file)

    return Auditor(
        settings=settings,
        ledger=Ledger(session.client("dynamodb", config=config), settings.table_name),
        iam=IamAudit(session.client("iam", config=config)),
        member_iam=lambda account: IamAudit(members.client(account)),
        events=events,
        grant_events=grant_events(session, settings, config, clock),
        policy=policy,
        clock=clock or time.time,
        logger=logger,
        metrics=metrics,
    )


def build_audit_gate(runner: AuditRunner | None = None, session: Any = None) -> AuditGate:
    """In Lambda the runner invokes the cleanup function named by JIT_AUDIT_FUNCTION; the
    local stack passes an in-process runner instead."""
    import boto3
    from botocore.config import Config

    from jit_broker.adapters.policy_source import load_policy
    from jit_broker.audit import AuditGate, LambdaAuditRunner
    from jit_broker.settings import get_settings

    settings = get_settings()
    if runner is None and settings.audit_function:
        config = Config(retries={"mode": "standard", "max_attempts": 2}, read_timeout=22)
        client = (session or boto3.session.Session()).client("lambda", config=config)
        runner = LambdaAuditRunner(client, settings.audit_function)
    return AuditGate(
        settings=settings,
        policy=lambda: load_policy(
            parameter=settings.policy_parameter,
            path=settings.policy_file,
            stack_managed_policies=settings.managed_policy_allow_list,
            stack_accounts=settings.stack_accounts,
        ),
        runner=runner,
    )


class _Lazy[T]:
    """A value built on first call and kept for the execution environment's life."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None

    def __call__(self) -> T:
        if self._value is None:
            self._value = self._build()
        return self._value

    def set(self, value: T | None) -> None:
        self._value = value


broker: _Lazy[Broker] = _Lazy(build_broker)
set_broker = broker.set
auditor: _Lazy[Auditor] = _Lazy(build_auditor)
set_auditor = auditor.set
audit_gate: _Lazy[AuditGate] = _Lazy(build_audit_gate)
set_audit_gate = audit_gate.set
