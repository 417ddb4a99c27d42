"""Grant events through the handler and the auditor (issue 11, part 4), under moto with the
CallLog spy on the events client: Issued for a grant in each mode, Revoked with who and why,
Expired and Cleaned from audit runs with a moved clock; every detail sent validates against
docs/events.schema.json and holds no credential; a failed PutEvents leaves the grant issued
(201) and the revocation done (200), counted as EventsNotPublished."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from jsonschema import Draft202012Validator

from jit_broker import runtime
from jit_broker.adapters.events import GrantEvents, RecordedEvents, grant_bus
from jit_broker.adapters.iam_audit import IamAudit
from jit_broker.adapters.ledger import Ledger
from jit_broker.adapters.policy_source import load_policy
from jit_broker.audit import Auditor, deletable_at
from jit_broker.models.events import GRANT_EVENT_SOURCE
from jit_local.seed import GRANT_BUS
from tests.conftest import (
    ACCOUNT,
    EXAMPLE_POLICY,
    JIT_USER,
    FakeMonotonic,
    Stack,
    build_broker,
    grant_body,
)
from tests.integration.cleanup_support import audit_settings

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = Draft202012Validator(json.loads((ROOT / "docs" / "events.schema.json").read_text()))
TEAM_USER = f"arn:aws:iam::{ACCOUNT}:user/TeamUser"
KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
# (profile, requester, mode) of each grant mode in the example access policy
MODES = {
    "per-grant-role": ("s3-read", JIT_USER),
    "shared-role": ("s3-read-fast", TEAM_USER),
}

pytestmark = pytest.mark.usefixtures("frozen_clock")


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


class Bus:
    """The grant bus in moto, its client spied on, and the publisher the broker is given."""

    def __init__(self, stack: Stack, bus_name: str = GRANT_BUS, *, create: bool = True) -> None:
        self.client = stack.calls.attach(boto3.client("events", region_name="us-east-1"))
        if create:
            self.client.create_event_bus(Name=bus_name)
        self.metrics, self.logger = Metrics(), Logger()
        self.events = GrantEvents(
            grant_bus(self.client, bus_name),
            home_account=ACCOUNT,
            metrics=self.metrics,
            logger=self.logger,
        )
        self._calls = stack.calls
        self.bus_name = bus_name

    def sent(self) -> list[tuple[str, dict[str, Any]]]:
        """Every (detail-type, detail) PutEvents carried, each checked against the schema
        and the bus, source and batch size it must go with."""
        out = []
        for call in self._calls.named("PutEvents"):
            assert 1 <= len(call["Entries"]) <= 10
            for entry in call["Entries"]:
                assert entry["EventBusName"] == self.bus_name
                event = {
                    "source": entry["Source"],
                    "detail-type": entry["DetailType"],
                    "detail": json.loads(entry["Detail"]),
                }
                errors = [e.message for e in VALIDATOR.iter_errors(event)]
                assert errors == [], (entry["DetailType"], errors)
                assert event["source"] == GRANT_EVENT_SOURCE
                out.append((entry["DetailType"], event["detail"]))
        return out

    def raw(self) -> str:
        return json.dumps(self._calls.named("PutEvents"))


def wired(stack: Stack, bus: Bus) -> None:
    """The handler's broker: the stack's, with grant events on ``bus``."""
    clients = {"iam": stack.iam, "sts": stack.sts, "dynamodb": stack.dynamodb}
    runtime.set_broker(build_broker(clients, stack.seeded, stack.policy_file, events=bus.events))


@pytest.fixture
def bus(stack: Stack) -> Iterator[Bus]:
    grants = Bus(stack)
    wired(stack, grants)
    stack.calls.clear()
    yield grants


def auditor(stack: Stack, bus: Bus) -> Auditor:
    settings = audit_settings(stack)
    return Auditor(
        settings=settings,
        ledger=Ledger(stack.dynamodb, settings.table_name),
        iam=IamAudit(stack.iam, sleep=lambda _: None),
        events=RecordedEvents(),
        policy=lambda: load_policy(path=str(stack.policy_file)),
        monotonic=FakeMonotonic().monotonic,
        grant_events=bus.events,
    )


def request(call: Any, mode: str, **body: Any) -> dict[str, Any]:
    profile, user = MODES[mode]
    status, _, answer = call(
        "POST", "/v1/grants", grant_body(profile=profile, **body), user_arn=user
    )
    assert status == 201, answer
    return answer


def ledger_status(stack: Stack, grant_id: str) -> str:
    [item] = [i for i in stack.grant_items() if i["pk"]["S"].endswith(grant_id)]
    return str(item["status"]["S"])


# --------------------------------------------------------------- the broker's transitions


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_grant_sends_one_issued_event_once_it_is_active_in_each_mode(
    stack, bus, call, frozen_clock, mode
):
    answer = request(call, mode, duration=1800, ticket="OPS-7")
    grant = answer["grant"]
    [(detail_type, detail)] = bus.sent()
    assert detail_type == "Issued"
    profile, user = MODES[mode]
    assert detail == detail | {
        "schema_version": 1,
        "grant_id": grant["id"],
        "profile": profile,
        "account": ACCOUNT,
        "requester_arn": user,
        "to_status": "active",
        "at": frozen_clock.now(),
        "expires_at": frozen_clock.now() + 1800,
        "mode": mode,
        "reason": "Investigate failed export job",
        "ticket": "OPS-7",
    }
    # a grant without approvers is told as created active (issuing is the broker's own step)
    assert detail["from_status"] is None
    assert ledger_status(stack, grant["id"]) == "active"


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_revocation_sends_one_revoked_event_with_who_and_why_in_each_mode(
    stack, bus, call, frozen_clock, mode
):
    grant = request(call, mode)["grant"]
    frozen_clock.advance(120)
    _, user = MODES[mode]
    path = f"/v1/grants/{grant['id']}/revoke"
    status, _, _ = call("POST", path, {"reason": "incident over"}, user_arn=user)
    assert status == 200
    # revoking again completes a revocation; it is no second transition
    status, _, _ = call("POST", path, {"reason": "again"}, user_arn=user)
    assert status == 200
    events = bus.sent()
    assert [t for t, _ in events] == ["Issued", "Revoked"]
    revoked = events[1][1]
    assert revoked == revoked | {
        "grant_id": grant["id"],
        "from_status": "active",
        "to_status": "revoked",
        "at": frozen_clock.now(),
        "revoked_by": user,
        "revoke_reason": "incident over",
        "mode": mode,
    }


def test_requests_that_change_nothing_send_nothing(stack, bus, call):
    status, _, answer = call("POST", "/v1/grants", grant_body(dry_run=True))
    assert status == 200 and answer["would_grant"] is True
    status, _, _ = call("POST", "/v1/grants", grant_body(duration=7200))  # over the window
    assert status == 400
    assert stack.calls.named("PutEvents") == []


# --------------------------------------------------------------- a failed PutEvents


def test_a_put_events_failure_leaves_the_grant_issued_answers_201_and_is_counted(stack, call):
    grants = Bus(stack)
    stubber = Stubber(grants.client)
    stubber.add_client_error(
        "put_events", service_error_code="AccessDeniedException", http_status_code=400
    )
    wired(stack, grants)
    with stubber:
        status, headers, answer = call("POST", "/v1/grants", grant_body())
    assert status == 201, answer
    assert answer["credentials"]["secret_access_key"]
    assert headers["cache-control"] == "no-store"
    assert ledger_status(stack, answer["grant"]["id"]) == "active"
    stubber.assert_no_pending_responses()  # the PutEvents was made, and refused
    assert grants.metrics.added == [("EventsNotPublished", 1)]
    [(_, logged)] = grants.logger.warnings
    assert logged["errors"] == ["AccessDeniedException"]
    assert logged["events"] == [{"detail_type": "Issued", "grant_id": answer["grant"]["id"]}]


def test_a_missing_bus_leaves_grant_and_revocation_done_in_both_modes(stack, call):
    grants = Bus(stack, "no-such-bus", create=False)  # PutEvents: ResourceNotFoundException
    wired(stack, grants)
    for mode in sorted(MODES):
        grant = request(call, mode)["grant"]
        _, user = MODES[mode]
        status, _, _ = call("POST", f"/v1/grants/{grant['id']}/revoke", {}, user_arn=user)
        assert status == 200
        assert ledger_status(stack, grant["id"]) == "revoked"
    assert len(stack.calls.named("PutEvents")) == 4
    assert grants.metrics.added == [("EventsNotPublished", 1)] * 4
    assert {e for _, w in grants.logger.warnings for e in w["errors"]} == {
        "ResourceNotFoundException"
    }


# --------------------------------------------------------------- the auditor's transitions


def test_the_audit_sends_expired_then_cleaned_for_each_mode_as_the_clock_moves(
    stack, bus, call, frozen_clock
):
    per_grant = request(call, "per-grant-role", duration=900)["grant"]
    shared = request(call, "shared-role", duration=900)["grant"]
    issued_at = frozen_clock.now()
    audit = auditor(stack, bus)
    stack.calls.clear()

    audit.run()  # nothing is due yet
    assert bus.sent() == []

    frozen_clock.move_to(per_grant["expires_at"] + 1)
    audit.run()
    expired = bus.sent()
    assert sorted((t, d["grant_id"]) for t, d in expired) == sorted(
        [("Expired", per_grant["id"]), ("Expired", shared["id"])]
    )
    for _, detail in expired:
        assert (detail["from_status"], detail["to_status"]) == ("active", "expired")
        assert detail["at"] == frozen_clock.now() and detail["expires_at"] == issued_at + 900
    stack.calls.clear()

    settings = audit_settings(stack)
    frozen_clock.move_to(per_grant["expires_at"] + 3600 + settings.clock_skew_seconds + 2)
    audit.run()
    cleaned = bus.sent()
    assert sorted((t, d["grant_id"]) for t, d in cleaned) == sorted(
        [("Cleaned", per_grant["id"]), ("Cleaned", shared["id"])]
    )
    for _, detail in cleaned:
        assert (detail["from_status"], detail["to_status"]) == ("expired", "cleaned")
    assert ledger_status(stack, per_grant["id"]) == "cleaned"
    stack.calls.clear()

    audit.run()  # nothing moves twice
    assert bus.sent() == []


def test_a_revoked_grant_is_cleaned_by_the_audit_with_a_cleaned_event(
    stack, bus, call, frozen_clock
):
    grant = request(call, "per-grant-role")["grant"]
    call("POST", f"/v1/grants/{grant['id']}/revoke", {"reason": "done"})
    stack.calls.clear()
    frozen_clock.advance(60)
    auditor(stack, bus).run()
    [(detail_type, detail)] = bus.sent()
    assert detail_type == "Cleaned"
    assert (detail["from_status"], detail["to_status"]) == ("revoked", "cleaned")


def test_a_dry_run_audit_sends_no_grant_event(stack, bus, call, frozen_clock):
    grant = request(call, "per-grant-role", duration=900)["grant"]
    stack.calls.clear()
    frozen_clock.move_to(grant["expires_at"] + 1)
    report = auditor(stack, bus).run(dry_run=True)
    assert report.expired == [grant["id"]]
    assert stack.calls.named("PutEvents") == []


def test_a_failed_put_events_of_an_audit_is_a_finding_and_a_count_never_a_stop(
    stack, call, frozen_clock
):
    grants = Bus(stack, "no-such-bus", create=False)
    wired(stack, grants)
    grant = request(call, "per-grant-role", duration=900)["grant"]
    frozen_clock.move_to(deletable_at(_record(stack, grant["id"]), 300) + 1)
    report = auditor(stack, grants).run()
    assert report.expired == [grant["id"]] and report.cleaned == [grant["id"]]
    assert ledger_status(stack, grant["id"]) == "cleaned"
    assert [f.kind for f in report.findings] == ["events_not_sent"]
    # the grant's Issued (refused at the request), then its Expired and Cleaned in one batch
    assert [len(c["Entries"]) for c in stack.calls.named("PutEvents")] == [1, 2]
    assert grants.metrics.added == [("EventsNotPublished", 1), ("EventsNotPublished", 2)]


def _record(stack: Stack, grant_id: str) -> Any:
    record = Ledger(stack.dynamodb, stack.seeded.table_name).get_grant(grant_id)
    assert record is not None
    return record


# --------------------------------------------------------------- never a credential


def test_no_credential_reaches_any_grant_event(stack, bus, call, frozen_clock):
    secrets: list[str] = []
    ids = []
    for mode in sorted(MODES):
        answer = request(call, mode, duration=900)
        ids.append((mode, answer["grant"]["id"]))
        secrets += [answer["credentials"][k] for k in ("access_key_id", "secret_access_key")]
        secrets.append(answer["credentials"]["session_token"])
        _, user = MODES[mode]
        status, _, more = call(
            "POST",
            f"/v1/grants/{answer['grant']['id']}/credentials",
            {"nonce": f"n-{mode}-second"},
            user_arn=user,
        )
        assert status == 201, more
        secrets += [more["credentials"][k] for k in ("access_key_id", "secret_access_key")]
        secrets.append(more["credentials"]["session_token"])
    mode, gid = ids[0]
    call("POST", f"/v1/grants/{gid}/revoke", {"reason": "key AKIAIOSFODNN7EXAMPLE leaked"})
    frozen_clock.advance(900 + 3600 + 400)
    audit = auditor(stack, bus)
    audit.run()
    audit.run()

    types = [t for t, _ in bus.sent()]
    assert {"Issued", "Revoked", "Expired", "Cleaned"} <= set(types)
    text = bus.raw()
    assert len(secrets) == 12 and all(secrets)  # two modes, two sessions each, three parts
    for secret in secrets:
        assert secret not in text
    assert KEY_ID.findall(text) == []
    for _, detail in bus.sent():
        for key in detail:
            assert not re.search(r"secret|token|access_key|credential|signature", key), key


# --------------------------------------------------------------- approvals (parts 1 and 2)

APPROVER = f"arn:aws:iam::{ACCOUNT}:user/Approver1"


def test_every_event_of_the_approvals_validates_against_the_schema(stack, bus, call, frozen_clock):
    """Requested, Approved, Denied, Issued from approved, Expired (unreviewed, and approved
    but never taken up) and Cleaned, as the approvals send them: each detail checked by
    Bus.sent against docs/events.schema.json."""
    document = yaml.safe_load(EXAMPLE_POLICY.read_text())
    document["profiles"]["prod-read"] = {
        "description": "Read, one approval",
        "permissions": document["profiles"]["s3-read"]["permissions"],
        "requesters": {"users": [JIT_USER]},
        "approvers": {"users": [APPROVER]},
        "approvals_required": 1,
        "review_window": 1800,
        "max_window": 3600,
    }
    stack.policy_file.write_text(yaml.safe_dump(document))

    def ask() -> str:
        status, _, answer = call("POST", "/v1/grants", grant_body(profile="prod-read"))
        assert status == 202, answer
        return str(answer["grant"]["id"])

    def decide(gid: str, verdict: str) -> None:
        body = {"comment": f"{verdict} AKIAIOSFODNN7EXAMPLE", "nonce": "n-" + uuid.uuid4().hex}
        status, _, answer = call("POST", f"/v1/grants/{gid}/{verdict}", body, user_arn=APPROVER)
        assert status == 200, answer

    taken, denied, lapsing, unused = ask(), ask(), ask(), ask()
    decide(taken, "approve")
    decide(denied, "deny")
    decide(unused, "approve")
    status, _, answer = call(
        "POST", f"/v1/grants/{taken}/credentials", {"nonce": "n-" + uuid.uuid4().hex}
    )
    assert status == 201, answer
    frozen_clock.advance(3600 + 3600 + 400)
    audit = auditor(stack, bus)
    audit.run()
    audit.run()

    told = {(t, d["grant_id"], d["from_status"], d["to_status"]) for t, d in bus.sent()}
    assert {
        ("Requested", lapsing, None, "requested"),
        ("Approved", taken, "requested", "approved"),
        ("Denied", denied, "requested", "denied"),
        ("Issued", taken, "approved", "active"),
        ("Expired", lapsing, "requested", "expired_unreviewed"),
        ("Expired", unused, "approved", "expired"),
        ("Cleaned", unused, "expired", "cleaned"),
    } <= told
    decided = [d for t, d in bus.sent() if t in ("Approved", "Denied")]
    assert {d["approver"] for d in decided} == {APPROVER}
    assert KEY_ID.findall(bus.raw()) == []  # a key id typed into a comment is redacted
