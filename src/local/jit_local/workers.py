"""Worker processes for the local gateway: the broker's handler in N processes at once, as
Lambda runs one execution environment per concurrent invocation, all against the one
embedded AWS of the stack.

``WorkerPool`` is what the gateway calls as its handler (``LocalGateway(pool, ...,
concurrent=True)``). Each worker is a process of its own (multiprocessing's ``spawn``
context: the stack's process holds moto's threads, which a fork would copy mid-flight) that
loads functions/broker/app.py and builds its own broker from the function's environment, as
the stack does in-process: a boto3 session as the broker's role through the embedded
administrator's sts:AssumeRole, refreshed before expiry (``jit_local.lambda_env``). A worker
handles one invocation at a time; a call waits for a free worker, hands it the event and the
Lambda context, and waits for its answer, all within the invocation's deadline:

* the handler's answer comes back as it is; if it raises, only the exception's type name
  crosses (messages and tracebacks may quote the event's secrets) and the call raises
  ``InvocationFailed`` (the gateway answers 502);
* past the deadline (waiting for a free worker included) the call raises
  ``InvocationTimedOut`` (the gateway has answered 504 by then); a worker still running a
  timed-out invocation is ended and replaced, as Lambda ends a timed-out environment, and
  so is a worker that died.

Clock: each invocation carries the stack clock's offset from this machine's clock at
dispatch, and the worker's broker (and its session refresh) reads ``time.time() + offset``,
so a stack whose clock is shifted moves its workers' clocks with it.

POST /v1/audit: the worker's audit gate asks the stack's process to run the auditor (over the
worker's pipe, as the broker invokes the cleanup function on AWS), so the stack's one
auditor runs it, never two at once.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from jit_broker.audit import AuditRunner
    from jit_broker.models.audit import AuditReport, AuditRequest

__all__ = [
    "BrokerWiring",
    "InvocationFailed",
    "InvocationTimedOut",
    "WorkerConfig",
    "WorkerPool",
    "WorkerStartFailed",
]

logger = logging.getLogger(__name__)

MAX_WORKERS = 64
# What the handler and its wiring import: the fork server imports these once (it has no
# threads and no state of the stack), so a worker starts by a fork instead of a fresh
# interpreter importing them all again. Nothing here reads the environment at import.
PRELOAD = (
    "jit_local.workers",
    "jit_local.lambda_env",
    "jit_local.gateway",
    "boto3",
    "botocore.credentials",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.tracing",
    "jit_broker.runtime",
    "jit_broker.access_policy",
    "jit_broker.adapters.iam",
    "jit_broker.adapters.ledger",
    "jit_broker.adapters.policy_source",
    "jit_broker.adapters.sts",
    "jit_broker.audit",
    "jit_broker.identity",
    "jit_broker.models.audit",
    "jit_broker.models.input",
    "jit_broker.models.output",
    "jit_broker.observability",
    "jit_broker.settings",
)
_STOP = None


class InvocationFailed(Exception):
    """The handler raised (its type name only), or its worker died."""


class InvocationTimedOut(Exception):
    """No answer within the invocation's deadline."""


class WorkerStartFailed(RuntimeError):
    """A worker could not load the handler or build the broker."""


@dataclass(frozen=True)
class BrokerWiring:
    """How a worker builds the broker as the stack does: the embedded AWS, the administrator's
    key (to assume the broker's role) and that role."""

    aws_url: str
    region: str
    admin_key: tuple[str, str] = field(repr=False)
    broker_role_arn: str
    policy_file: str


@dataclass(frozen=True)
class WorkerConfig:
    """One worker's start: the handler file, the function's environment and, to wire the
    broker (``runtime.set_broker`` / ``set_audit_gate``), the stack's details; without them
    the handler is called as loaded."""

    handler_file: Path
    env: dict[str, str]
    broker: BrokerWiring | None = None


@dataclass(eq=False)  # each worker is itself (hashed by identity)
class _Worker:
    process: BaseProcess
    conn: Connection


class WorkerPool:
    """``size`` worker processes serving the handler; call it as ``handler(event, context)``."""

    def __init__(
        self,
        size: int,
        config: WorkerConfig,
        *,
        clock: Callable[[], float] = time.time,
        audit_runner: AuditRunner | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        if not 1 <= size <= MAX_WORKERS:
            raise ValueError(f"workers must be 1..{MAX_WORKERS}, not {size}")
        self._size = size
        self._config = config
        self._clock = clock
        self._audit_runner = audit_runner
        self._start_timeout = start_timeout
        self._context = multiprocessing.get_context("forkserver")
        # Imported once in the fork server, not again in each worker it forks.
        self._context.set_forkserver_preload(list(PRELOAD))
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()  # guarded by _lock
        self._lock = threading.Lock()
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    def start(self) -> Self:
        """Start every worker at once and wait until each has loaded the handler."""
        starting = [self._spawn() for _ in range(self._size)]
        try:
            for worker in starting:
                self._await_ready(worker)
        except BaseException:
            for worker in starting:
                _end(worker)
            raise
        with self._lock:
            self._all.update(starting)
        for worker in starting:
            self._idle.put(worker)
        return self

    def stop(self) -> None:
        """Ask every worker to exit, then end any that did not."""
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.conn.send(_STOP)
        for worker in workers:
            worker.process.join(timeout=5)
            _end(worker)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- one invocation ----------------------------------------------------------------
    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        deadline: float = context.deadline
        try:
            worker = self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise InvocationTimedOut("no free worker within the deadline") from None
        healthy = False
        try:
            worker.conn.send(("invoke", event, context, self._clock() - time.time()))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not worker.conn.poll(remaining):
                    raise InvocationTimedOut("the worker did not answer within the deadline")
                kind, payload = worker.conn.recv()
                if kind == "audit":
                    worker.conn.send(self._audit(*payload))
                    continue
                healthy = True
                if kind == "result":
                    return dict(payload)
                logger.error("the handler raised %s in a worker", payload)
                raise InvocationFailed(str(payload))
        except (EOFError, OSError):
            raise InvocationFailed("the worker died") from None
        finally:
            if healthy:
                self._idle.put(worker)
            else:
                self._replace(worker)

    def _audit(self, request_json: dict[str, Any], requested_by: str) -> tuple[str, Any]:
        """Run the stack's auditor for a worker: the report, or the refusal to raise there."""
        from jit_broker.errors import AwsUnavailable, BrokerError
        from jit_broker.models.audit import AuditRequest

        if self._audit_runner is None:
            return ("refused", AwsUnavailable("the auditor is not configured for this broker"))
        try:
            report = self._audit_runner(AuditRequest.model_validate(request_json), requested_by)
        except BrokerError as exc:
            return ("refused", exc)
        except Exception as exc:  # the worker's handler fails as it would in-process
            logger.error("audit run for a worker failed: %s", type(exc).__name__)
            return ("failed", type(exc).__name__)
        return ("report", report.model_dump(mode="json"))

    # --- workers -----------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main, args=(child, self._config), name="jit-broker-worker", daemon=True
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    def _await_ready(self, worker: _Worker) -> None:
        try:
            if not worker.conn.poll(self._start_timeout):
                raise WorkerStartFailed(f"a worker did not start within {self._start_timeout} s")
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            raise WorkerStartFailed("a worker exited while starting") from None
        if kind != "ready":
            raise WorkerStartFailed(f"a worker could not start: {payload}")

    def _replace(self, worker: _Worker) -> None:
        """End ``worker`` and start another in its place, in the background."""
        with self._lock:
            self._all.discard(worker)
        _end(worker)

        def renew() -> None:
            with self._lock:
                if self._closed:
                    return
            try:
                fresh = self._spawn()
                self._await_ready(fresh)
            except Exception as exc:
                logger.error("a replacement worker failed to start: %s", exc)
                return
            with self._lock:
                if self._closed:
                    closed = True
                else:
                    closed = False
                    self._all.add(fresh)
            if closed:
                _end(fresh)
            else:
                self._idle.put(fresh)

        threading.Thread(target=renew, name="jit-worker-renew", daemon=True).start()


def _end(worker: _Worker) -> None:
    worker.conn.close()
    if worker.process.is_alive():
        worker.process.terminate()
        worker.process.join(timeout=5)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join(timeout=5)


# --------------------------------------------------------------------------- the worker


class _StackClock:
    """``time.time()`` moved by the stack clock's offset, which each invocation carries."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class _StackAuditRunner:
    """The worker's audit runner: the stack's process runs the auditor (see ``_audit``)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def __call__(self, request: AuditRequest, requested_by: str) -> AuditReport:
        from jit_broker.models.audit import AuditReport

        self._conn.send(("audit", (request.model_dump(mode="json"), requested_by)))
        kind, payload = self._conn.recv()
        if kind == "report":
            return AuditReport.model_validate(payload)
        if kind == "refused":
            raise payload
        raise RuntimeError(f"the auditor failed ({payload})")


def _worker_main(conn: Connection, config: WorkerConfig) -> None:
    """A worker process: build the environment, say ready, then serve until told to stop."""
    import os

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the stack, which stops us
    try:
        os.environ.update(config.env)
        clock = _StackClock()
        if config.broker is not None:
            _wire_broker(config.broker, clock, _StackAuditRunner(conn))
        from jit_local.lambda_env import load_handler, logs_to_stderr

        handler = load_handler(config.handler_file).lambda_handler

        if config.broker is not None:
            logs_to_stderr()
    except Exception as exc:
        conn.send(("failed", type(exc).__name__))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is _STOP:
            return
        _, event, context, offset = message
        clock.offset = offset
        try:
            reply: tuple[str, Any] = ("result", handler(event, context))
        except Exception as exc:
            reply = ("error", type(exc).__name__)
        try:
            conn.send(reply)
        except Exception as exc:  # an answer that cannot be sent back (not picklable)
            conn.send(("error", type(exc).__name__))


def _wire_broker(wiring: BrokerWiring, clock: _StackClock, audit: _StackAuditRunner) -> None:
    import boto3

    from jit_broker import runtime
    from jit_broker.adapters.policy_source import load_policy
    from jit_broker.audit import AuditGate
    from jit_broker.settings import Settings
    from jit_local.lambda_env import role_session

    admin_sts = boto3.client(
        "sts",
        endpoint_url=wiring.aws_url,
        region_name=wiring.region,
        aws_access_key_id=wiring.admin_key[0],
        aws_secret_access_key=wiring.admin_key[1],
    )
    session = role_session(
        admin_sts, wiring.broker_role_arn, "jit-broker-local", region=wiring.region, clock=clock
    )
    runtime.set_broker(runtime.build_broker(session, clock=clock))
    runtime.set_audit_gate(
        AuditGate(
            settings=Settings.from_env(),
            policy=lambda: load_policy(path=wiring.policy_file),
            runner=audit,
        )
    )
