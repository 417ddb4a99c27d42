"""Break-glass profiles (issue 11, part 3), through the handler under moto.

A break-glass grant is issued at once (201) with no approval, but only with a reason of at
least 20 characters (whatever reason_required says) and within the policy's
break_glass_max_window; every approver of its profile is told at once (BreakGlassUsed,
beside Issued, valid against docs/events.schema.json); one of them, never its requester,
closes its review afterwards (POST /v1/grants/{id}/review: the ledger's conditional write
refuses a self-review, shown by calling the ledger directly); an open review is the
auditor's finding break_glass_review_open from its due time on, not before. Times come from
the frozen test clock."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from jit_broker.documents import TAG_EXPIRES
from jit_broker.errors import SelfReviewRefused
from jit_broker.models.domain import Review
from jit_broker.models.events import GRANT_EVENT_SOURCE
from tests.conftest import (
    ACCOUNT,
    EXAMPLE_POLICY,
    JIT_USER,
    OTHER_USER,
    Stack,
    grant_body,
    unique_id_of,
)

pytestmark = pytest.mark.usefixtures("frozen_clock")

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Draft202012Validator(json.loads((ROOT / "docs" / "events.schema.json").read_text()))
APPROVER = f"arn:aws:iam::{ACCOUNT}:user/Approver1"
ONCALL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/Oncall"
BOB = f"arn:aws:sts::{ACCOUNT}:assumed-role/Oncall/bob"
PROFILE = "prod-break-glass"
CAP = 1800  # the policy's break_glass_max_window
REVIEW_WITHIN = 7200  # the policy's break_glass_review_within
REASON = "Orders API down, database locked: INC-4711"
IAM_AND_STS = {"CreateRole", "PutRolePolicy", "AttachRolePolicy", "TagRole", "AssumeRole"}


def _policy(stack: Stack, **profile: Any) -> None:
    document = yaml.safe_load(EXAMPLE_POLICY.read_text())
    document["break_glass_max_window"] = CAP
    document["break_glass_review_within"] = REVIEW_WITHIN
    document["profiles"][PROFILE] = {
        "description": "Production admin in an emergency",
        "permissions": {
            "inline": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ReadObjects",
                        "Effect": "Allow",
                        "Action": ["s3:GetObject"],
                        "Resource": "arn:aws:s3:::example-bucket/*",
                    }
                ],
            }
        },
        "requesters": {"users": [JIT_USER, APPROVER]},
        "approvers": {"users": [APPROVER], "roles": [ONCALL_ROLE]},
        "break_glass": True,
        "reason_required": False,  # break-glass needs one all the same
        "max_window": 7200,  # longer than the policy's cap: the cap wins
        **profile,
    }
    stack.policy_file.write_text(yaml.safe_dump(document))


@pytest.fixture
def sent(stack: Stack) -> Any:
    """The break-glass policy, and the handler's broker sending grant events to memory."""
    from jit_broker import runtime
    from jit_broker.adapters.events import GrantEvents, RecordedEvents
    from tests.conftest import build_broker

    _policy(stack)
    recorded = RecordedEvents()
    clients = {"iam": stack.iam, "sts": stack.sts, "dynamodb": stack.dynamodb}
    broker = build_broker(
        clients,
        stack.seeded,
        stack.policy_file,
        events=GrantEvents(recorded, home_account=ACCOUNT),
    )
    runtime.set_broker(broker)
    stack.broker = broker
    return recorded


def _break_glass(call: Any, **kw: Any) -> dict[str, Any]:
    body = {"profile": PROFILE, "duration": ..., "reason": REASON, **kw.pop("body", {})}
    status, _, answer = call("POST", "/v1/grants", grant_body(**body), **kw)
    assert status == 201, answer
    return dict(answer["grant"])


def _review(comment: str = "checked CloudTrail: only the lock was cleared") -> dict[str, str]:
    return {"comment": comment, "nonce": "n-" + uuid.uuid4().hex}


def _item(stack: Stack, pk: str, sk: str) -> dict[str, Any]:
    return dict(
        stack.dynamodb.get_item(
            TableName=stack.seeded.table_name, Key={"pk": {"S": pk}, "sk": {"S": sk}}
        ).get("Item", {})
    )


def _review_items(stack: Stack) -> list[dict[str, Any]]:
    return [i for i in stack.table_items() if i["pk"]["S"] == "BREAKGLASS"]


# ----------------------------------------------------------------- issued, reason, window


def test_a_break_glass_grant_is_issued_at_once_with_no_approval_and_its_window_capped(
    stack: Stack, sent: Any, call: Any, frozen_clock: Any
) -> None:
    now = frozen_clock.now()
    grant = _break_glass(call)  # no duration: the longest it may have, the policy's cap
    assert grant["status"] == "active" and grant["break_glass"] is True
    assert grant["approvals_required"] is None and grant["approvals"] == []
    assert grant["expires_at"] == now + CAP  # not the profile's 7200
    assert grant["review_due"] == now + REVIEW_WITHIN and grant["review"] is None
    (create,) = stack.calls.named("CreateRole")
    tags = {t["Key"]: t["Value"] for t in create["Tags"]}
    assert tags[TAG_EXPIRES] == str(now + CAP)
    (assume,) = stack.calls.named("AssumeRole")
    assert assume["DurationSeconds"] == CAP
    # the open review the auditor reads, written with the grant
    (review,) = _review_items(stack)
    assert review["sk"]["S"] == f"{now + REVIEW_WITHIN:012d}#{grant['id']}"
    assert "closed_at" not in review


def test_a_duration_beyond_the_cap_is_refused_before_anything_is_written(
    stack: Stack, sent: Any, call: Any
) -> None:
    status, _, body = call(
        "POST", "/v1/grants", grant_body(profile=PROFILE, duration=3600, reason=REASON)
    )
    assert status == 400 and body["error"]["code"] == "bad_request", body
    assert "break-glass profile" in body["error"]["message"]
    assert f"({CAP} s)" in body["error"]["message"]
    assert stack.grant_items() == [] and _review_items(stack) == []
    assert IAM_AND_STS.isdisjoint(stack.calls.operations())
    assert sent.sent == []


@pytest.mark.parametrize("reason", [..., "", "   ", "db down INC-1"])
def test_a_reason_is_mandatory_and_long_enough_even_where_reason_required_is_false(
    stack: Stack, sent: Any, call: Any, reason: Any
) -> None:
    status, _, body = call(
        "POST", "/v1/grants", grant_body(profile=PROFILE, duration=..., reason=reason)
    )
    assert status == 400 and body["error"]["code"] == "bad_request", body
    assert "is break-glass: it needs a reason of at least 20 characters" in body["error"]["message"]
    assert stack.grant_items() == [] and _review_items(stack) == []
    assert IAM_AND_STS.isdisjoint(stack.calls.operations())
    assert sent.sent == []


def test_the_dry_run_explains_break_glass_and_its_review_obligation(
    stack: Stack, sent: Any, call: Any
) -> None:
    status, _, body = call(
        "POST", "/v1/grants", grant_body(profile=PROFILE, duration=..., reason=REASON, dry_run=True)
    )
    assert status == 200, body
    assert body["would_grant"] is True and body["denials"] == []
    assert body["break_glass"] is True and body["approvals_required"] == 0
    assert (body["duration_seconds"], body["review_within"]) == (CAP, REVIEW_WITHIN)
    status, _, body = call(
        "POST", "/v1/grants", grant_body(profile=PROFILE, duration=3600, reason="x", dry_run=True)
    )
    assert body["would_grant"] is False
    assert [d["rule"] for d in body["denials"]] == ["duration", "reason"]
    assert stack.table_items() == [] and sent.sent == []


def test_the_profile_list_shows_break_glass_with_its_capped_window(
    stack: Stack, sent: Any, call: Any
) -> None:
    _, _, body = call("GET", "/v1/profiles")
    (listed,) = [p for p in body["profiles"] if p["name"] == PROFILE]
    assert (listed["break_glass"], listed["max_window"]) == (True, CAP)


# ----------------------------------------------------------------- every approver told


def test_break_glass_used_names_every_approver_and_fits_the_schema(
    stack: Stack, sent: Any, call: Any, frozen_clock: Any
) -> None:
    grant = _break_glass(call)
    assert [kind for kind, _ in sent.sent] == ["Issued", "BreakGlassUsed"]
    for kind, detail in sent.sent:
        event = {"source": GRANT_EVENT_SOURCE, "detail-type": kind, "detail": detail}
        assert [e.message for e in SCHEMA.iter_errors(event)] == [], kind
    (used,) = [d for kind, d in sent.sent if kind == "BreakGlassUsed"]
    assert used["grant_id"] == grant["id"] and used["reason"] == REASON
    assert used["approvers"] == [APPROVER, ONCALL_ROLE]
    assert used["review_due"] == frozen_clock.now() + REVIEW_WITHIN
    assert (used["from_status"], used["to_status"]) == (None, "active")


# ----------------------------------------------------------------- the review


def test_an_approver_closes_the_review_recorded_with_who_when_and_why(
    stack: Stack, sent: Any, call: Any, frozen_clock: Any
) -> None:
    grant = _break_glass(call)
    frozen_clock.advance(600)
    closed_at = frozen_clock.now()
    status, _, body = call(
        "POST",
        f"/v1/grants/{grant['id']}/review",
        _review("lock cleared, nothing else"),
        user_arn=BOB,
    )
    assert status == 200, body
    assert body["grant"]["review"] == {
        "by": BOB,
        "by_id": unique_id_of(BOB),
        "at": closed_at,
        "comment": "lock cleared, nothing else",
    }
    stored = _item(stack, f"GRANT#{grant['id']}", "GRANT")
    assert stored["review"]["M"]["by"] == {"S": BOB}
    (review,) = _review_items(stack)
    assert review["closed_at"] == {"N": str(closed_at)} and review["closed_by"] == {"S": BOB}
    # once: a second review (another approver) is refused, the first one kept
    status, _, body = call("POST", f"/v1/grants/{grant['id']}/review", _review(), user_arn=APPROVER)
    assert status == 409 and body["error"]["code"] == "review_closed", body
    assert _item(stack, f"GRANT#{grant['id']}", "GRANT")["review"]["M"]["by"] == {"S": BOB}
    # the requester sees who reviewed it
    assert call("GET", f"/v1/grants/{grant['id']}")[2]["grant"]["review"]["by"] == BOB


def test_the_requester_cannot_review_their_own_grant_with_any_of_their_keys(
    stack: Stack, sent: Any, call: Any
) -> None:
    """Approver1 may request the profile too: their own grant is another approver's to
    review, whichever of their keys (a re-created user's too) they sign with."""
    grant = _break_glass(call, user_arn=APPROVER)
    for unique_id in (unique_id_of(APPROVER), "AIDAREPLACEDUSER0000"):
        status, _, body = call(
            "POST",
            f"/v1/grants/{grant['id']}/review",
            _review(),
            user_arn=APPROVER,
            unique_id=unique_id,
        )
        assert status == 403 and body["error"]["code"] == "self_review_refused", body
    assert "review" not in _item(stack, f"GRANT#{grant['id']}", "GRANT")
    assert "closed_at" not in _review_items(stack)[0]


def test_the_ledger_refuses_self_review_even_when_the_code_check_is_bypassed(
    stack: Stack, sent: Any, call: Any, frozen_clock: Any
) -> None:
    """Ledger.close_review called directly, as if the broker's own check had a bug: the
    grant's conditional write (requester_person <> reviewer's person) refuses it."""
    grant = _break_glass(call, user_arn=APPROVER)
    ledger = stack.broker._ledger
    stored = ledger.get_grant(grant["id"])
    stack.calls.clear()
    review = Review(
        by=APPROVER, by_id="AIDAREPLACEDUSER0000", at=frozen_clock.now(), comment="mine"
    )
    with pytest.raises(SelfReviewRefused):
        ledger.close_review(
            stored,
            review,
            person=APPROVER.lower(),
            owner=f"{APPROVER}|AIDAREPLACEDUSER0000",
            nonce="n-" + uuid.uuid4().hex,
            now=frozen_clock.now(),
        )
    (attempt,) = stack.calls.named("TransactWriteItems")  # the write was tried, and refused
    update = attempt["TransactItems"][1]["Update"]
    assert "requester_person <> :person" in update["ConditionExpression"]
    assert update["ExpressionAttributeValues"][":person"] == {"S": APPROVER.lower()}
    assert "review" not in _item(stack, f"GRANT#{grant['id']}", "GRANT")
    assert "closed_at" not in _review_items(stack)[0]


def test_only_an_approver_of_the_profile_may_review_and_others_learn_nothing(
    stack: Stack, sent: Any, call: Any
) -> None:
    grant = _break_glass(call)
    for path in (
        f"/v1/grants/{grant['id']}/review",
        "/v1/grants/g-0123456789abcdef01234567/review",
    ):
        status, _, body = call("POST", path, _review(), user_arn=OTHER_USER)
        assert status == 404 and body["error"]["code"] == "not_found", body
    # a grant that is not break-glass has no review, even for an approver
    status, _, plain = call("POST", "/v1/grants", grant_body())
    assert status == 201
    status, _, body = call(
        "POST", f"/v1/grants/{plain['grant']['id']}/review", _review(), user_arn=APPROVER
    )
    assert status == 404, body
    assert "closed_at" not in _review_items(stack)[0]


def test_a_review_body_is_parsed_strictly_and_its_nonce_is_spent(
    stack: Stack, sent: Any, call: Any
) -> None:
    grant = _break_glass(call)
    path = f"/v1/grants/{grant['id']}/review"
    for bad in (
        {"nonce": "n-" + uuid.uuid4().hex},
        {"comment": "   ", "nonce": "n-" + uuid.uuid4().hex},
        {**_review(), "by": APPROVER},
        {"comment": "ok"},
    ):
        status, _, body = call("POST", path, bad, user_arn=BOB)
        assert status == 400 and body["error"]["code"] == "bad_request", (bad, body)
    other = _break_glass(call, user_arn=APPROVER)
    spent = _review()
    assert call("POST", path, spent, user_arn=BOB)[0] == 200
    status, _, body = call("POST", f"/v1/grants/{other['id']}/review", spent, user_arn=BOB)
    assert status == 409 and body["error"]["code"] == "replayed_request", body


def test_the_broker_s_own_sessions_are_refused_on_the_review_route(
    stack: Stack, sent: Any, call: Any
) -> None:
    grant = _break_glass(call)
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{grant['role_arn'].rsplit('/', 1)[-1]}/jit-x"
    status, _, body = call("POST", f"/v1/grants/{grant['id']}/review", _review(), user_arn=session)
    assert status == 403 and body["error"]["code"] == "broker_session_refused", body
    assert "closed_at" not in _review_items(stack)[0]


# ----------------------------------------------------------------- the auditor


class _Metrics:
    def __init__(self) -> None:
        self.added: dict[str, float] = {}

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.added[name] = value


def test_the_auditor_reports_an_open_review_from_its_due_time_and_not_before(
    stack: Stack, sent: Any, call: Any, frozen_clock: Any
) -> None:
    from jit_broker.adapters.events import RecordedEvents
    from jit_broker.adapters.iam_audit import IamAudit
    from jit_broker.audit import Auditor
    from jit_broker.settings import AuditSettings

    grant = _break_glass(call)
    settings = AuditSettings.from_env(stack.seeded.cleanup_env(str(stack.policy_file)))
    metrics, bus = _Metrics(), RecordedEvents()
    auditor = Auditor(
        settings=settings,
        ledger=stack.broker._ledger,
        iam=IamAudit(stack.iam),
        events=bus,
        metrics=metrics,
    )

    def open_reviews() -> list[str]:
        report = auditor.run()
        found = [f.grant_id for f in report.findings if f.kind == "break_glass_review_open"]
        assert found == report.break_glass_reviews_open
        assert metrics.added["AuditBreakGlassReviewsOpen"] == len(found)
        return found

    frozen_clock.advance(REVIEW_WITHIN - 1)  # the grant's window is long over: not its review
    assert open_reviews() == []
    frozen_clock.advance(1)
    assert open_reviews() == [grant["id"]]
    (told,) = [d for _, d in bus.sent if d.get("kind") == "break_glass_review_open"]
    assert (told["grant_id"], told["review_due"]) == (grant["id"], grant["review_due"])
    frozen_clock.advance(3600)
    assert open_reviews() == [grant["id"]]  # on every run until it is closed
    assert call("POST", f"/v1/grants/{grant['id']}/review", _review(), user_arn=APPROVER)[0] == 200
    assert open_reviews() == []


def test_a_shared_role_break_glass_grant_writes_its_review_and_tells_its_approvers(
    stack: Stack, sent: Any, call: Any, frozen_clock: Any
) -> None:
    """Mode shared-role records the grant and its first session in one transaction after
    AssumeRole: the open review is in that same transaction."""
    _policy(stack, mode="shared-role")
    grant = _break_glass(call)
    assert (grant["mode"], grant["break_glass"]) == ("shared-role", True)
    assert grant["expires_at"] == frozen_clock.now() + CAP
    (review,) = _review_items(stack)
    assert review["grant_id"] == {"S": grant["id"]}
    (write,) = [
        w
        for w in stack.calls.named("TransactWriteItems")
        if any(
            i.get("Put", {}).get("Item", {}).get("pk") == {"S": "BREAKGLASS"}
            for i in w["TransactItems"]
        )
    ]
    assert any("SESSION#" in json.dumps(i) for i in write["TransactItems"])
    assert [kind for kind, _ in sent.sent] == ["Issued", "BreakGlassUsed"]
    assert sent.sent[1][1]["approvers"] == [APPROVER, ONCALL_ROLE]
