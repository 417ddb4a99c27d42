"""Wiring: the one Broker of a Lambda execution environment, built on first use (not at
import), from settings and boto3 clients. Tests replace it with ``set_broker``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from jit_broker.grants import Broker

_broker: Broker | None = None


def broker() -> Broker:
    global _broker
    if _broker is None:
        _broker = build_broker()
    return _broker


def set_broker(value: Broker | None) -> None:
    global _broker
    _broker = value


def build_broker(session: Any = None, clock: Callable[[], float] | None = None) -> Broker:
    """The broker for this environment: settings from the environment, clients from
    ``session`` (the Lambda role's credentials by default)."""
    import boto3
    from botocore.config import Config

    from jit_broker.adapters.iam import Iam
    from jit_broker.adapters.ledger import Ledger
    from jit_broker.adapters.policy_source import load_policy
    from jit_broker.adapters.sts import Sts
    from jit_broker.settings import get_settings

    settings = get_settings()
    config = Config(
        retries={"mode": "adaptive", "max_attempts": 5}, connect_timeout=3, read_timeout=8
    )
    session = session or boto3.session.Session()
    return Broker(
        settings=settings,
        policy=lambda: load_policy(parameter=settings.policy_parameter, path=settings.policy_file),
        ledger=Ledger(session.client("dynamodb", config=config), settings.table_name),
        iam=Iam(session.client("iam", config=config)),
        clock=clock or time.time,
        sts=Sts(
            session.client("sts", config=config),
            retry_budget_seconds=settings.assume_retry_budget_seconds,
        ),
    )
