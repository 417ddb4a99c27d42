"""What a Lambda execution environment of the broker holds, built locally: the handler module
loaded from functions/broker/app.py, a boto3 session as a function's role (refreshed before
expiry, on the stack's clock), log lines on stderr. The stack builds one in its own process
(in-process mode) and each worker process builds its own (``jit_local.workers``)."""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
HANDLER_FILE = ROOT / "functions" / "broker" / "app.py"

__all__ = ["HANDLER_FILE", "load_handler", "logs_to_stderr", "role_session"]


def role_session(
    sts: Any, role_arn: str, session_name: str, *, region: str, clock: Callable[[], float]
) -> Any:
    """A boto3 session as ``role_arn`` (as in Lambda), assumed through ``sts`` (a client of
    the embedded administrator) and refreshed before expiry."""
    import boto3
    from botocore.credentials import RefreshableCredentials
    from botocore.session import get_session

    def fetch() -> dict[str, str]:
        c = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=3600)[
            "Credentials"
        ]
        return {
            "access_key": c["AccessKeyId"],
            "secret_key": c["SecretAccessKey"],
            "token": c["SessionToken"],
            "expiry_time": c["Expiration"].isoformat(),
        }

    first = fetch()
    credentials = RefreshableCredentials(
        first["access_key"],
        first["secret_key"],
        first["token"],
        datetime.fromisoformat(first["expiry_time"]).replace(tzinfo=UTC),
        fetch,
        "assume-role",
        # botocore decides when to refresh by this clock: the stack's, so a shifted clock
        # refreshes the session just as the embedded IAM expires it.
        time_fetcher=lambda: datetime.fromtimestamp(clock(), UTC),
    )
    botocore_session = get_session()
    botocore_session._credentials = credentials
    botocore_session.set_config_variable("region", region)
    return boto3.session.Session(botocore_session=botocore_session)


def load_handler(path: Path = HANDLER_FILE) -> Any:
    """The broker function's module, loaded from its file as Lambda loads it."""
    spec = importlib.util.spec_from_file_location("jit_broker_function", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load the broker handler from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def logs_to_stderr() -> None:
    """The broker's structured log lines go to stderr locally: stdout is for export lines."""
    from jit_broker.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sys.stderr)
