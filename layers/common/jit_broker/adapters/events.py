"""EventBridge: the stack's two buses. The auditor's removals and findings go to the audit bus
(source ``jit-broker.auditor``); every grant transition goes to the grant bus (source
``jit-broker.grants``, docs/events.md), through :class:`GrantEvents`.

Events are best-effort notifications, the ledger is the record: a PutEvents that fails (the
call, or some of its entries) never fails the grant, the revocation or the audit run that
sent it. It is logged and counted (metric ``EventsNotPublished``), and nothing retries it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from jit_broker.models.events import GRANT_EVENT_SOURCE, GrantEventType, grant_event

if TYPE_CHECKING:
    from jit_broker.models.domain import Grant, GrantStatus

SOURCE = "jit-broker.auditor"
BATCH = 10  # PutEvents takes at most 10 entries
NOT_PUBLISHED_METRIC = "EventsNotPublished"

Event = tuple[str, dict[str, Any]]  # (detail-type, detail)


class EventBus:
    """PutEvents to one bus under one source, in batches of ten. ``publish`` returns how many
    events were not accepted and never raises for an AWS error; ``last_errors`` holds the
    error codes of the last call (what was refused, and why)."""

    def __init__(self, client: Any, bus_name: str, source: str) -> None:
        self._events = client
        self._bus = bus_name
        self._source = source
        self.last_errors: list[str] = []

    def publish(self, events: list[Event]) -> int:
        """Send (detail-type, detail) pairs; returns how many were not accepted."""
        failed = 0
        self.last_errors = []
        for start in range(0, len(events), BATCH):
            entries = [
                {
                    "Source": self._source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, separators=(",", ":")),
                    "EventBusName": self._bus,
                }
                for detail_type, detail in events[start : start + BATCH]
            ]
            try:
                out = self._events.put_events(Entries=entries)
            except ClientError as exc:
                failed += len(entries)
                self.last_errors.append(str(exc.response.get("Error", {}).get("Code", "?")))
                continue
            except BotoCoreError as exc:
                failed += len(entries)
                self.last_errors.append(type(exc).__name__)
                continue
            refused = int(out.get("FailedEntryCount", 0))
            failed += refused
            if refused:
                self.last_errors.extend(
                    str(e["ErrorCode"]) for e in out.get("Entries", []) if e.get("ErrorCode")
                )
        return failed


class AuditEvents(EventBus):
    """The auditor's bus: one event per removal or finding, sent at the end of a run."""

    def __init__(self, client: Any, bus_name: str) -> None:
        super().__init__(client, bus_name, SOURCE)


class RecordedEvents:
    """Keeps the events in memory (where no bus is configured, and in tests)."""

    def __init__(self) -> None:
        self.sent: list[Event] = []
        self.last_errors: list[str] = []

    def publish(self, events: list[Event]) -> int:
        self.sent.extend(events)
        return 0


class EventSink(Protocol):
    last_errors: list[str]

    def publish(self, events: list[Event]) -> int: ...


def grant_bus(client: Any, bus_name: str) -> EventBus:
    """The grant bus: every grant transition, source ``jit-broker.grants``."""
    return EventBus(client, bus_name, GRANT_EVENT_SOURCE)


class GrantEvents:
    """The one publisher of grant events. The broker calls :meth:`transition` once a
    transition is in the ledger; the auditor collects its run's events and sends them with
    :meth:`publish` at the end. Neither ever raises for a PutEvents that failed.

    ``home_account``: the account of a grant whose record names none (the hub's)."""

    def __init__(
        self,
        sink: EventSink,
        *,
        home_account: str,
        clock: Callable[[], float] = time.time,
        logger: Any = None,
        metrics: Any = None,
    ) -> None:
        self._sink = sink
        self._home = home_account
        self._clock = clock
        self._logger = logger
        self._metrics = metrics

    def event(
        self,
        grant: Grant,
        to_status: GrantStatus | str,
        *,
        at: int | None = None,
        from_status: GrantStatus | str | None = None,
        created: bool = False,
        event: GrantEventType | None = None,
        **extra: Any,
    ) -> Event:
        """The (detail-type, detail) of a transition, not sent (models.events.grant_event)."""
        return grant_event(
            grant,
            to_status,
            at=int(self._clock()) if at is None else at,
            account=grant.target_account or self._home,
            from_status=from_status,
            created=created,
            event=event,
            **extra,
        )

    def transition(
        self,
        grant: Grant,
        to_status: GrantStatus | str,
        *,
        at: int | None = None,
        from_status: GrantStatus | str | None = None,
        created: bool = False,
        event: GrantEventType | None = None,
        **extra: Any,
    ) -> bool:
        """Send the event of ``grant`` (the record as it was before the move) moving to
        ``to_status``; call it after the ledger recorded the move. ``at``: when (default:
        now); ``from_status``: default the grant's status; ``created``: the record did not
        exist before (from_status null; always for Requested); ``event``: a detail-type the
        status does not name (BreakGlassUsed); ``extra``: approver, comment (Approved,
        Denied), revoked_by, revoke_reason (Revoked), approvers, review_due (BreakGlassUsed).
        True when it was accepted. A detail
        that does not fit the schema is a bug and raises (ValueError)."""
        built = self.event(
            grant,
            to_status,
            at=at,
            from_status=from_status,
            created=created,
            event=event,
            **extra,
        )
        return self.publish([built]) == 0

    def publish(self, events: list[Event]) -> int:
        """Send ``events`` in batches of ten; returns how many were not published (logged
        and counted as ``EventsNotPublished``, never raised)."""
        if not events:
            return 0
        errors: list[str]
        try:
            failed = self._sink.publish(events)
            errors = list(self._sink.last_errors)
        except Exception as exc:  # best-effort: nothing an event does may fail its caller
            failed, errors = len(events), [type(exc).__name__]
        if failed:
            self._not_published(events, failed, errors)
        return failed

    def _not_published(self, events: list[Event], failed: int, errors: list[str]) -> None:
        if self._metrics is not None:
            from aws_lambda_powertools.metrics import MetricUnit

            self._metrics.add_metric(name=NOT_PUBLISHED_METRIC, unit=MetricUnit.Count, value=failed)
        if self._logger is not None:
            self._logger.warning(
                "grant events not published",
                extra={
                    "events_not_published": failed,
                    "errors": sorted(set(errors)),
                    "events": [
                        {"detail_type": t, "grant_id": d.get("grant_id")} for t, d in events
                    ],
                },
            )
