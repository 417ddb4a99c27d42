"""EventBridge: one event per removal or finding of the auditor, on its own bus."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

SOURCE = "jit-broker.auditor"
BATCH = 10  # PutEvents takes at most 10 entries


class AuditEvents:
    """Collects events during a run and sends them in batches of ten at the end."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self._events = client
        self._bus = bus_name

    def publish(self, events: list[tuple[str, dict[str, Any]]]) -> int:
        """Send (detail-type, detail) pairs; returns how many were not accepted."""
        failed = 0
        for start in range(0, len(events), BATCH):
            entries = [
                {
                    "Source": SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, separators=(",", ":")),
                    "EventBusName": self._bus,
                }
                for detail_type, detail in events[start : start + BATCH]
            ]
            try:
                out = self._events.put_events(Entries=entries)
            except (ClientError, BotoCoreError):
                failed += len(entries)
                continue
            failed += int(out.get("FailedEntryCount", 0))
        return failed


class RecordedEvents:
    """Keeps the events in memory (where no bus is configured, and in tests)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def publish(self, events: list[tuple[str, dict[str, Any]]]) -> int:
        self.sent.extend(events)
        return 0
