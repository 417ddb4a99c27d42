"""Grant events (issue 11, part 4): the documented schema (docs/events.schema.json) and the
publisher agree; every detail-type's detail, as the publisher builds it, validates; the schema
refuses what a detail-type must not carry; no field can hold a credential and free text has
access-key-shaped words redacted; PutEvents is sent in batches of ten, and whatever PutEvents
does wrong is counted (EventsNotPublished) and logged, never raised.

The grant and revocation paths through the handler, and the auditor's Expired and Cleaned, are
tests/integration/test_grant_events.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from jsonschema import Draft202012Validator
from moto import mock_aws

from jit_broker.adapters.events import (
    AuditEvents,
    GrantEvents,
    RecordedEvents,
    grant_bus,
)
from jit_broker.models.domain import Grant, GrantMode, GrantStatus
from jit_broker.models.events import (
    DETAIL_TYPES,
    GRANT_EVENT_SOURCE,
    REDACTED,
    STATUSES,
    GrantEventDetail,
    GrantEventType,
)
from tests.conftest import ACCOUNT, CallLog

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "events.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)
USER = f"arn:aws:iam::{ACCOUNT}:user/JITUser"
APPROVER = f"arn:aws:iam::{ACCOUNT}:user/Approver"
MEMBER = "210987654321"
NOW = 1_795_000_000
KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")


class Metrics:
    def __init__(self) -> None:
        self.added: list[tuple[str, float]] = []

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.added.append((name, value))


class Logger:
    def __init__(self) -> None:
        self.warnings: list[tuple[str, dict[str, Any]]] = []

    def warning(self, message: str, extra: dict[str, Any] | None = None) -> None:
        self.warnings.append((message, extra or {}))


def a_grant(**overrides: Any) -> Grant:
    fields: dict[str, Any] = {
        "grant_id": "g-0123456789abcdef01234567",
        "profile": "s3-read",
        "requester_id": USER,
        "requester_arn": USER,
        "owner": f"{USER}|AIDAEXAMPLE",
        "account_id": ACCOUNT,
        "source_identity": "JITUser",
        "reason": "Investigate failed export job",
        "ticket": "OPS-42",
        "status": GrantStatus.ACTIVE,
        "created_at": NOW - 60,
        "expires_at": NOW + 1740,
        "role_name": "jit-g-0123456789abcdef01234567",
    }
    return Grant(**(fields | overrides))


def envelope(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge delivers it (the part the schema describes)."""
    return {"source": GRANT_EVENT_SOURCE, "detail-type": detail_type, "detail": detail}


def errors_of(event: dict[str, Any]) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(event)]


def publisher(sink: Any = None, **kwargs: Any) -> GrantEvents:
    return GrantEvents(
        sink or RecordedEvents(), home_account=ACCOUNT, clock=lambda: float(NOW), **kwargs
    )


# --------------------------------------------------------------- the schema and the publisher


def test_schema_is_a_valid_json_schema_draft_2020_12():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)


def test_schema_detail_types_are_exactly_the_publishers():
    assert SCHEMA["properties"]["detail-type"]["enum"] == list(DETAIL_TYPES)
    assert list(DETAIL_TYPES) == [t.value for t in GrantEventType]
    branches = [b["if"]["properties"]["detail-type"]["const"] for b in SCHEMA["allOf"]]
    assert branches == list(DETAIL_TYPES)
    for detail_type in DETAIL_TYPES:
        assert detail_type in SCHEMA["$defs"], detail_type
    assert SCHEMA["properties"]["source"] == {"const": GRANT_EVENT_SOURCE}


def test_schema_statuses_are_the_models_and_hold_every_ledger_status():
    assert SCHEMA["$defs"]["Status"]["enum"] == list(STATUSES)
    assert {s.value for s in GrantStatus} <= set(STATUSES)


def test_schema_fields_are_the_detail_models_fields():
    detail = SCHEMA["$defs"]["GrantDetail"]
    assert set(detail["properties"]) == set(GrantEventDetail.model_fields)
    required = {n for n, f in GrantEventDetail.model_fields.items() if f.is_required()}
    # schema_version has a default in the model but is always sent
    assert set(detail["required"]) == required | {"schema_version"}
    assert detail["additionalProperties"] is False


# Each detail-type as the broker, the auditor or the approvals send it.
SENT = {
    "Requested": dict(
        grant=a_grant(status=GrantStatus.REQUESTED), to_status="requested", created=True
    ),
    "Approved": dict(
        grant=a_grant(status=GrantStatus.REQUESTED),
        to_status="approved",
        approver=APPROVER,
        comment="ok for the incident",
    ),
    "Denied": dict(
        grant=a_grant(status=GrantStatus.REQUESTED),
        to_status="denied",
        approver=APPROVER,
        comment="use the read-only profile",
    ),
    "Issued": dict(grant=a_grant(status=GrantStatus.REQUESTED), to_status="active", created=True),
    "BreakGlassUsed": dict(
        grant=a_grant(status=GrantStatus.ACTIVE, mode=GrantMode.SHARED_ROLE),
        to_status="active",
        created=True,
        event=GrantEventType.BREAK_GLASS_USED,
        approvers=[APPROVER, f"arn:aws:iam::{ACCOUNT}:role/Oncall"],
        review_due=NOW + 86400,
    ),
    "Revoked": dict(
        grant=a_grant(target_account=MEMBER),
        to_status="revoked",
        revoked_by=APPROVER,
        revoke_reason="incident over",
    ),
    "Expired": dict(grant=a_grant(), to_status="expired"),
    "Cleaned": dict(grant=a_grant(status=GrantStatus.EXPIRED), to_status="cleaned"),
}


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_every_detail_type_as_the_publisher_builds_it_validates(detail_type):
    kwargs = dict(SENT[detail_type])
    built_type, detail = publisher().event(kwargs.pop("grant"), kwargs.pop("to_status"), **kwargs)
    assert built_type == detail_type
    assert errors_of(envelope(built_type, detail)) == []
    assert detail["schema_version"] == 1
    assert detail["at"] == NOW


def test_a_grant_in_a_member_account_names_that_account_and_an_old_record_the_hub():
    _, member = publisher().event(a_grant(target_account=MEMBER), "expired")
    _, old = publisher().event(a_grant(target_account=None), "expired")
    assert (member["account"], old["account"]) == (MEMBER, ACCOUNT)


def test_an_approved_grant_taken_up_is_issued_from_approved():
    grant = a_grant(status=GrantStatus.APPROVED)
    detail_type, detail = publisher().event(grant, "active")
    assert (detail_type, detail["from_status"]) == ("Issued", "approved")
    assert errors_of(envelope(detail_type, detail)) == []


def test_an_unreviewed_request_expires_as_expired_with_its_own_status():
    detail_type, detail = publisher().event(
        a_grant(status=GrantStatus.REQUESTED), "expired_unreviewed"
    )
    assert detail_type == "Expired"
    assert (detail["from_status"], detail["to_status"]) == ("requested", "expired_unreviewed")
    assert errors_of(envelope(detail_type, detail)) == []


@pytest.mark.parametrize(
    "detail_type, change",
    [
        ("Approved", lambda d: d.pop("approver")),
        ("Denied", lambda d: d.pop("approver")),
        ("Issued", lambda d: d.update(approver=APPROVER)),
        ("Issued", lambda d: d.update(to_status="revoked")),
        ("Issued", lambda d: d.update(from_status="active")),
        ("Revoked", lambda d: d.pop("revoked_by")),
        ("Revoked", lambda d: d.update(from_status="expired")),
        ("BreakGlassUsed", lambda d: d.pop("reason")),
        ("BreakGlassUsed", lambda d: d.pop("approvers")),  # every approver is told
        ("BreakGlassUsed", lambda d: d.update(approvers=[])),
        ("BreakGlassUsed", lambda d: d.pop("review_due")),
        ("Issued", lambda d: d.update(approvers=[APPROVER])),  # break-glass's own fields
        ("Requested", lambda d: d.update(from_status="active")),
        ("Cleaned", lambda d: d.update(session_token="FwoGZXIvYXdzEXAMPLE")),
        ("Expired", lambda d: d.update(access_key_id="ASIAEXAMPLEEXAMPLE00")),
        ("Expired", lambda d: d.update(at="2026-11-18T08:26:40Z")),  # epoch seconds only
    ],
)
def test_schema_refuses_what_a_detail_type_must_not_carry(detail_type, change):
    kwargs = dict(SENT[detail_type])
    _, detail = publisher().event(kwargs.pop("grant"), kwargs.pop("to_status"), **kwargs)
    assert errors_of(envelope(detail_type, detail)) == []
    change(detail)
    assert errors_of(envelope(detail_type, detail)) != []


@pytest.mark.parametrize(
    "field", ["secret_access_key", "session_token", "access_key_id", "credentials"]
)
def test_no_detail_can_carry_a_credential_field(field):
    with pytest.raises(ValueError, match=field):
        publisher().event(a_grant(), "expired", **{field: "x"})


def test_an_access_key_id_typed_into_free_text_never_leaves_the_broker():
    typed = "my key AKIAIOSFODNN7EXAMPLE leaked, session ASIAJEXAMPLEXEG2JICEA"
    _, detail = publisher().event(
        a_grant(reason=typed, ticket=typed),
        "revoked",
        revoked_by=USER,
        revoke_reason=typed,
    )
    _, approved = publisher().event(
        a_grant(status=GrantStatus.REQUESTED), "approved", approver=APPROVER, comment=typed
    )
    text = json.dumps([detail, approved])
    assert KEY_ID.findall(text) == []
    assert detail["reason"] == f"my key {REDACTED} leaked, session {REDACTED}"
    assert approved["comment"] == detail["revoke_reason"] == detail["ticket"] == detail["reason"]


def test_a_move_no_detail_type_names_is_a_bug_not_an_event():
    with pytest.raises(ValueError, match="failed"):
        publisher().event(a_grant(status=GrantStatus.REQUESTED), "failed")


# --------------------------------------------------------------- sending


@pytest.fixture
def events_client() -> Any:
    with mock_aws():
        client = boto3.client("events", region_name="us-east-1")
        client.create_event_bus(Name="jit-test-grants")
        yield client


def test_events_go_in_batches_of_at_most_ten_to_the_grant_bus_under_the_grant_source(
    events_client,
):
    calls = CallLog()
    calls.attach(events_client)
    events = [publisher().event(a_grant(grant_id=f"g-{i:024x}"), "expired") for i in range(23)]
    metrics = Metrics()
    sender = publisher(grant_bus(events_client, "jit-test-grants"), metrics=metrics)
    assert sender.publish(events) == 0
    batches = calls.named("PutEvents")
    assert [len(b["Entries"]) for b in batches] == [10, 10, 3]
    entries = [e for b in batches for e in b["Entries"]]
    assert {(e["Source"], e["EventBusName"]) for e in entries} == {
        (GRANT_EVENT_SOURCE, "jit-test-grants")
    }
    assert [json.loads(e["Detail"]) for e in entries] == [d for _, d in events]
    assert metrics.added == []


def test_the_auditors_events_keep_their_own_source():
    client = boto3.client("events", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response(
        "put_events",
        {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]},
        {
            "Entries": [
                {
                    "Source": "jit-broker.auditor",
                    "DetailType": "JIT role removed",
                    "Detail": '{"a":1}',
                    "EventBusName": "audit",
                }
            ]
        },
    )
    with stubber:
        assert AuditEvents(client, "audit").publish([("JIT role removed", {"a": 1})]) == 0
    stubber.assert_no_pending_responses()


def test_a_refused_put_events_is_counted_and_logged_never_raised():
    client = boto3.client("events", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error(
        "put_events", service_error_code="AccessDeniedException", http_status_code=400
    )
    metrics, logger = Metrics(), Logger()
    sender = publisher(grant_bus(client, "jit-test-grants"), metrics=metrics, logger=logger)
    with stubber:
        accepted = sender.transition(a_grant(status=GrantStatus.REQUESTED), "active")
    assert accepted is False
    assert metrics.added == [("EventsNotPublished", 1)]
    [(message, extra)] = logger.warnings
    assert message == "grant events not published"
    assert extra["events_not_published"] == 1
    assert extra["errors"] == ["AccessDeniedException"]
    assert extra["events"] == [{"detail_type": "Issued", "grant_id": a_grant().grant_id}]


def test_entries_refused_inside_an_answered_put_events_are_counted():
    client = boto3.client("events", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response(
        "put_events",
        {
            "FailedEntryCount": 1,
            "Entries": [{"EventId": "1"}, {"ErrorCode": "InternalFailure", "ErrorMessage": "x"}],
        },
    )
    metrics, logger = Metrics(), Logger()
    sender = publisher(grant_bus(client, "jit-test-grants"), metrics=metrics, logger=logger)
    events = [publisher().event(a_grant(), "expired"), publisher().event(a_grant(), "revoked")]
    with stubber:
        assert sender.publish(events) == 1
    assert metrics.added == [("EventsNotPublished", 1)]
    assert logger.warnings[0][1]["errors"] == ["InternalFailure"]


def test_a_sink_that_raises_anything_is_counted_not_raised():
    class Broken:
        def __init__(self) -> None:
            self.last_errors: list[str] = []

        def publish(self, events: list[Any]) -> int:
            raise RuntimeError("endpoint gone")

    metrics, logger = Metrics(), Logger()
    sender = publisher(Broken(), metrics=metrics, logger=logger)
    events = [publisher().event(a_grant(), "expired")] * 3
    assert sender.publish(events) == 3
    assert metrics.added == [("EventsNotPublished", 3)]
    assert logger.warnings[0][1]["errors"] == ["RuntimeError"]


def test_nothing_to_send_makes_no_call():
    client = boto3.client("events", region_name="us-east-1")
    with Stubber(client):  # any call would fail: no response is queued
        assert publisher(grant_bus(client, "jit-test-grants")).publish([]) == 0


# --------------------------------------------------------------- the documentation


def test_docs_describe_every_detail_type_and_the_publishers_signature():
    text = (ROOT / "docs" / "events.md").read_text()
    for detail_type in DETAIL_TYPES:
        assert f"### {detail_type}" in text, detail_type
    assert "GrantEvents.transition(" in text
    assert "EventsNotPublished" in text
    assert GRANT_EVENT_SOURCE in text
