"""Approvals and grant states (issue 11, parts 1 and 2), through the handler under moto.

A profile with approvers answers a request with 202 and a grant in status requested: no role,
no STS call. Approvers list what they may decide and approve or deny; at the profile's
quorum it is approved, and its requester takes credentials (the role is made then, its window
running from approval). Self-approval is refused by the ledger's conditional write (shown by
calling the ledger directly, past the code's own check). Every status move the state machine
does not allow is refused by the ledger. Times come from the frozen test clock."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import yaml

from jit_broker.errors import GrantNotActive, SelfApprovalRefused
from jit_broker.models.domain import FORWARD, Decision, GrantStatus, Verdict
from tests.conftest import (
    ACCOUNT,
    EXAMPLE_POLICY,
    JIT_USER,
    OTHER_USER,
    Stack,
    grant_body,
    owner_of,
    unique_id_of,
)

pytestmark = pytest.mark.usefixtures("frozen_clock")

APPROVER_1 = f"arn:aws:iam::{ACCOUNT}:user/Approver1"
APPROVER_2 = f"arn:aws:iam::{ACCOUNT}:user/Approver2"
APPROVER_3 = f"arn:aws:iam::{ACCOUNT}:user/Approver3"
ONCALL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/Oncall"
ALICE = f"arn:aws:sts::{ACCOUNT}:assumed-role/Oncall/alice"
BOB = f"arn:aws:sts::{ACCOUNT}:assumed-role/Oncall/bob"
REVIEW_WINDOW = 1800
STATEMENTS = [
    {
        "Sid": "ReadObjects",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": "arn:aws:s3:::example-bucket/*",
    }
]
STS_AND_IAM_WRITES = {"AssumeRole", "CreateRole", "PutRolePolicy", "AttachRolePolicy", "TagRole"}


def _profile(**overrides: Any) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "description": "Production admin, two approvals",
        "permissions": {"inline": {"Version": "2012-10-17", "Statement": STATEMENTS}},
        "requesters": {"users": [JIT_USER, APPROVER_1], "roles": [ONCALL_ROLE]},
        "approvers": {"users": [APPROVER_1, APPROVER_2, APPROVER_3]},
        "approvals_required": 2,
        "review_window": REVIEW_WINDOW,
        "max_window": 3600,
    }
    profile.update(overrides)
    return profile


def _policy(stack: Stack, **profiles: dict[str, Any]) -> None:
    document = yaml.safe_load(EXAMPLE_POLICY.read_text())
    document["profiles"].update(profiles)
    stack.policy_file.write_text(yaml.safe_dump(document))


@pytest.fixture
def approvals(stack: Stack) -> Stack:
    _policy(
        stack,
        **{
            "prod-admin": _profile(),
            "oncall-fix": _profile(
                description="Fix production, one approval by another on-call person",
                requesters={"roles": [ONCALL_ROLE]},
                approvers={"roles": [ONCALL_ROLE]},
                approvals_required=1,
            ),
            "fast-approved": _profile(
                description="Shared role, one approval",
                mode="shared-role",
                approvals_required=1,
            ),
        },
    )
    return stack


def _decision(comment: str = "looks right") -> dict[str, str]:
    return {"comment": comment, "nonce": "n-" + uuid.uuid4().hex}


def _request(call: Any, profile: str = "prod-admin", **kw: Any) -> dict[str, Any]:
    status, _, body = call(
        "POST", "/v1/grants", grant_body(profile=profile, duration=1800, **kw.pop("body", {})), **kw
    )
    assert status == 202, body
    return dict(body["grant"])


def _status_in_ledger(stack: Stack, gid: str) -> str:
    item = stack.dynamodb.get_item(
        TableName=stack.seeded.table_name, Key={"pk": {"S": f"GRANT#{gid}"}, "sk": {"S": "GRANT"}}
    )["Item"]
    return str(item["status"]["S"])


def _decision_items(stack: Stack, gid: str) -> list[dict[str, Any]]:
    return [
        i
        for i in stack.table_items()
        if i["pk"]["S"] == f"GRANT#{gid}" and i["sk"]["S"].startswith("DECISION#")
    ]


def test_a_request_for_an_approval_profile_answers_202_requested_with_no_role_or_sts_call(
    approvals: Stack, call: Any, frozen_clock: Any
) -> None:
    now = frozen_clock.now()
    grant = _request(call)
    assert grant["status"] == "requested"
    assert grant["role_arn"] is None and grant["sessions_issued"] == 0
    assert grant["approvals_required"] == 2 and grant["approvals"] == []
    assert grant["review_deadline"] == now + REVIEW_WINDOW == grant["expires_at"]
    assert grant["window_seconds"] == 1800
    assert STS_AND_IAM_WRITES.isdisjoint(approvals.calls.operations())
    assert approvals.jit_roles() == []
    assert _status_in_ledger(approvals, grant["id"]) == "requested"


def test_the_dry_run_says_how_many_approvals_are_needed_without_refusing(
    approvals: Stack, call: Any
) -> None:
    status, _, body = call("POST", "/v1/grants", grant_body(profile="prod-admin", dry_run=True))
    assert status == 200, body
    assert body["would_grant"] is True and body["denials"] == []
    assert (body["approvals_required"], body["review_window"]) == (2, REVIEW_WINDOW)
    status, _, plain = call("POST", "/v1/grants", grant_body(dry_run=True))
    assert (plain["approvals_required"], plain["review_window"]) == (0, None)
    assert [i for i in approvals.grant_items()] == []  # nothing written


def test_a_request_that_could_never_be_approved_is_refused_by_the_approvals_rule(
    approvals: Stack, call: Any
) -> None:
    """Approver1 may request prod-admin too, but then only two other approvers remain: with
    three required, nobody could ever approve it."""
    _policy(approvals, **{"prod-admin": _profile(approvals_required=3)})
    status, _, body = call(
        "POST", "/v1/grants", grant_body(profile="prod-admin", dry_run=True), user_arn=APPROVER_1
    )
    assert status == 200 and body["would_grant"] is False
    assert [d["rule"] for d in body["denials"]] == ["approvals"]
    status, _, body = call(
        "POST", "/v1/grants", grant_body(profile="prod-admin"), user_arn=APPROVER_1
    )
    assert status == 403 and "other than you" in body["error"]["message"]
    assert approvals.grant_items() == []


def test_the_requester_cannot_approve_their_own_request_with_any_of_their_keys(
    approvals: Stack, call: Any
) -> None:
    grant = _request(call, user_arn=APPROVER_1)
    for unique_id in (unique_id_of(APPROVER_1), "AIDAREPLACEDUSER0000"):
        status, _, body = call(
            "POST",
            f"/v1/grants/{grant['id']}/approve",
            _decision(),
            user_arn=APPROVER_1,
            unique_id=unique_id,
        )
        assert status == 403 and body["error"]["code"] == "self_approval_refused", body
    assert _status_in_ledger(approvals, grant["id"]) == "requested"
    assert _decision_items(approvals, grant["id"]) == []


def test_another_session_of_the_same_role_session_name_cannot_approve(
    approvals: Stack, call: Any
) -> None:
    grant = _request(call, "oncall-fix", user_arn=ALICE)
    other_sessions = [
        (ALICE, "AROAANOTHERSESSION01:alice"),  # a new AssumeRole under the same name
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/Oncall/Alice", None),  # the name in another case
    ]
    for arn, unique_id in other_sessions:
        status, _, body = call(
            "POST",
            f"/v1/grants/{grant['id']}/approve",
            _decision(),
            user_arn=arn,
            unique_id=unique_id,
        )
        assert status == 403 and body["error"]["code"] == "self_approval_refused", body
    assert _status_in_ledger(approvals, grant["id"]) == "requested"
    # bob, behind the same role, is another person: his approval counts (1 of 1)
    status, _, body = call("POST", f"/v1/grants/{grant['id']}/approve", _decision(), user_arn=BOB)
    assert status == 200, body
    assert body["grant"]["status"] == "approved"
    assert [a["by"] for a in body["grant"]["approvals"]] == [BOB]


def test_the_ledger_refuses_self_approval_even_when_the_code_check_is_bypassed(
    approvals: Stack, call: Any, frozen_clock: Any
) -> None:
    """Ledger.decide called directly, as if the broker's own check had a bug: the approval's
    conditional write (requester_person <> approver's person) refuses it."""
    grant = _request(call, "oncall-fix", user_arn=ALICE)
    ledger = approvals.broker._ledger
    approvals.calls.clear()
    decision = Decision(
        verdict=Verdict.APPROVE,
        by=ALICE,
        by_id="AROAANOTHERSESSION01:alice",
        at=frozen_clock.now(),
        comment="mine",
    )
    with pytest.raises(SelfApprovalRefused):
        ledger.decide(
            grant["id"],
            decision,
            person=ALICE.lower(),
            owner=f"{ALICE}|AROAANOTHERSESSION01:alice",
            nonce="n-" + uuid.uuid4().hex,
            now=frozen_clock.now(),
        )
    (attempt,) = approvals.calls.named("TransactWriteItems")  # the write was tried, and refused
    update = attempt["TransactItems"][2]["Update"]
    assert "requester_person <> :person" in update["ConditionExpression"]
    assert update["ExpressionAttributeValues"][":person"] == {"S": ALICE.lower()}
    assert _status_in_ledger(approvals, grant["id"]) == "requested"
    assert _decision_items(approvals, grant["id"]) == []


def test_two_of_three_approvals_the_same_approver_counting_once(
    approvals: Stack, call: Any, frozen_clock: Any
) -> None:
    grant = _request(call)
    gid = grant["id"]
    status, _, body = call(
        "POST", f"/v1/grants/{gid}/approve", _decision("ok"), user_arn=APPROVER_1
    )
    assert status == 200 and body["grant"]["status"] == "requested", body
    status, _, body = call(
        "POST", f"/v1/grants/{gid}/approve", _decision("again"), user_arn=APPROVER_1
    )
    assert status == 409 and body["error"]["code"] == "already_decided", body
    assert _status_in_ledger(approvals, gid) == "requested"
    frozen_clock.advance(120)
    approved_at = frozen_clock.now()
    status, _, body = call(
        "POST", f"/v1/grants/{gid}/approve", _decision("fine by me"), user_arn=APPROVER_2
    )
    assert status == 200, body
    approved = body["grant"]
    assert approved["status"] == "approved" and approved["approved_at"] == approved_at
    assert approved["expires_at"] == approved_at + 1800  # the window starts at approval
    assert [(a["by"], a["comment"], a["verdict"]) for a in approved["approvals"]] == [
        (APPROVER_1, "ok", "approve"),
        (APPROVER_2, "fine by me", "approve"),
    ]
    assert approved["approvals"][1]["by_id"] == unique_id_of(APPROVER_2)
    assert len(_decision_items(approvals, gid)) == 2
    status, _, body = call("POST", f"/v1/grants/{gid}/approve", _decision(), user_arn=APPROVER_3)
    assert status == 409 and body["error"]["code"] == "not_awaiting_approval"


def test_one_denial_denies_the_request_for_good(approvals: Stack, call: Any) -> None:
    grant = _request(call)
    gid = grant["id"]
    status, _, body = call(
        "POST", f"/v1/grants/{gid}/deny", _decision("not during the freeze"), user_arn=APPROVER_3
    )
    assert status == 200 and body["grant"]["status"] == "denied", body
    assert body["grant"]["approvals"][0]["verdict"] == "deny"
    status, _, body = call("POST", f"/v1/grants/{gid}/approve", _decision(), user_arn=APPROVER_1)
    assert status == 409 and body["error"]["code"] == "not_awaiting_approval"
    status, _, body = call("POST", f"/v1/grants/{gid}/credentials", {"nonce": "n-" + "d" * 20})
    assert status == 409 and body["error"]["code"] == "grant_not_active"
    assert STS_AND_IAM_WRITES.isdisjoint(approvals.calls.operations())


def test_an_unreviewed_request_expires_after_the_review_window(
    approvals: Stack, call: Any, frozen_clock: Any
) -> None:
    grant = _request(call)
    gid = grant["id"]
    frozen_clock.advance(REVIEW_WINDOW - 1)
    assert call("GET", f"/v1/grants/{gid}")[2]["grant"]["status"] == "requested"
    frozen_clock.advance(1)
    status, _, body = call("GET", f"/v1/grants/{gid}")
    assert status == 200 and body["grant"]["status"] == "expired_unreviewed"
    assert call("GET", "/v1/approvals", user_arn=APPROVER_1)[2] == {"grants": []}
    status, _, body = call("POST", f"/v1/grants/{gid}/approve", _decision(), user_arn=APPROVER_1)
    assert status == 409 and body["error"]["code"] == "review_expired", body
    assert _status_in_ledger(approvals, gid) == "expired_unreviewed"
    status, _, body = call("POST", f"/v1/grants/{gid}/credentials", {"nonce": "n-" + "e" * 20})
    assert status == 409
    assert STS_AND_IAM_WRITES.isdisjoint(approvals.calls.operations())


def test_the_auditor_expires_unreviewed_requests(
    approvals: Stack, call: Any, frozen_clock: Any
) -> None:
    from jit_broker.adapters.events import RecordedEvents
    from jit_broker.adapters.iam_audit import IamAudit
    from jit_broker.audit import Auditor
    from jit_broker.settings import AuditSettings

    lapsing, fresh = _request(call), _request(call, user_arn=APPROVER_1)
    frozen_clock.advance(REVIEW_WINDOW)
    settings = AuditSettings.from_env(approvals.seeded.cleanup_env(str(approvals.policy_file)))
    auditor = Auditor(
        settings=settings,
        ledger=approvals.broker._ledger,
        iam=IamAudit(approvals.iam),
        events=RecordedEvents(),
    )
    report = auditor.run()
    assert sorted(report.unreviewed) == sorted([lapsing["id"], fresh["id"]])
    assert _status_in_ledger(approvals, lapsing["id"]) == "expired_unreviewed"
    assert STS_AND_IAM_WRITES.isdisjoint(approvals.calls.operations())
    assert auditor.run().unreviewed == []  # out of the auditor's partition: read no more


def test_credentials_only_after_approval_with_the_window_from_approval(
    approvals: Stack, call: Any, frozen_clock: Any
) -> None:
    grant = _request(call)
    gid = grant["id"]
    status, _, body = call("POST", f"/v1/grants/{gid}/credentials", {"nonce": "n-" + "a" * 20})
    assert status == 409 and body["error"]["code"] == "approval_pending", body
    for approver in (APPROVER_1, APPROVER_2):
        frozen_clock.advance(300)
        assert call("POST", f"/v1/grants/{gid}/approve", _decision(), user_arn=approver)[0] == 200
    approved_at = frozen_clock.now()
    assert STS_AND_IAM_WRITES.isdisjoint(approvals.calls.operations())
    assert approvals.jit_roles() == []
    frozen_clock.advance(60)
    taken_at = frozen_clock.now()
    status, headers, body = call(  # the refused request wrote nothing: its nonce is unspent
        "POST", f"/v1/grants/{gid}/credentials", {"nonce": "n-" + "a" * 20}
    )
    assert status == 201, body
    assert headers["cache-control"] == "no-store"
    assert body["grant"]["status"] == "active" and body["grant"]["expires_at"] == approved_at + 1800
    (create,) = approvals.calls.named("CreateRole")
    assert create["RoleName"] == f"jit-{gid}"
    assert str(approved_at + 1800) in create["AssumeRolePolicyDocument"] or (
        f'"{_iso(approved_at + 1800)}"' in create["AssumeRolePolicyDocument"]
    )
    (assume,) = approvals.calls.named("AssumeRole")
    assert assume["DurationSeconds"] == approved_at + 1800 - taken_at
    assert assume["SourceIdentity"] == "JITUser"
    assert _status_in_ledger(approvals, gid) == "active"
    status, _, body = call("POST", f"/v1/grants/{gid}/credentials", {"nonce": "n-" + "a" * 20})
    assert status == 409 and body["error"]["code"] == "replayed_request"
    status, _, body = call(
        "POST", f"/v1/grants/{gid}/credentials", {"nonce": "n-" + "c" * 20}, user_arn=APPROVER_1
    )
    assert status in (403, 404)  # an approver takes no credentials of someone else's grant


def test_an_approved_shared_role_grant_is_taken_up_with_one_assume_role(
    approvals: Stack, call: Any, frozen_clock: Any
) -> None:
    grant = _request(call, "fast-approved")
    gid = grant["id"]
    assert call("POST", f"/v1/grants/{gid}/approve", _decision(), user_arn=APPROVER_2)[0] == 200
    approvals.calls.clear()
    status, _, body = call("POST", f"/v1/grants/{gid}/credentials", {"nonce": "n-" + "f" * 20})
    assert status == 201, body
    assert body["grant"]["status"] == "active" and body["grant"]["sessions_issued"] == 1
    (assume,) = approvals.calls.named("AssumeRole")
    assert assume["RoleArn"].endswith("/jit-s-fast-approved") or "jit-s-" in assume["RoleArn"]
    assert _status_in_ledger(approvals, gid) == "active"


def test_get_approvals_shows_only_what_the_caller_may_decide(approvals: Stack, call: Any) -> None:
    mine = _request(call, user_arn=APPROVER_1)
    theirs = _request(call)
    oncall = _request(call, "oncall-fix", user_arn=ALICE)
    ids = lambda body: [g["id"] for g in body["grants"]]  # noqa: E731

    status, _, body = call("GET", "/v1/approvals", user_arn=APPROVER_1)
    assert status == 200 and ids(body) == [theirs["id"]]  # not their own, not oncall-fix's
    assert sorted(ids(call("GET", "/v1/approvals", user_arn=APPROVER_2)[2])) == sorted(
        [mine["id"], theirs["id"]]
    )
    assert ids(call("GET", "/v1/approvals", user_arn=BOB)[2]) == [oncall["id"]]
    assert ids(call("GET", "/v1/approvals", user_arn=ALICE)[2]) == []  # her own request
    assert ids(call("GET", "/v1/approvals")[2]) == []  # JITUser approves nothing
    assert ids(call("GET", "/v1/approvals", user_arn=OTHER_USER)[2]) == []

    assert (
        call("POST", f"/v1/grants/{theirs['id']}/approve", _decision(), user_arn=APPROVER_2)[0]
        == 200
    )
    assert ids(call("GET", "/v1/approvals", user_arn=APPROVER_2)[2]) == [mine["id"]]  # decided
    assert ids(call("GET", "/v1/approvals", user_arn=APPROVER_1)[2]) == [theirs["id"]]

    operations = approvals.calls.operations()
    assert "Scan" not in operations
    reviews = [q for q in approvals.calls.named("Query") if "IndexName" not in q]
    assert reviews and all(
        q["ExpressionAttributeValues"][":p"]["S"].startswith("REVIEW#") and 0 < q["Limit"] <= 100
        for q in reviews
    )


def test_an_approver_who_is_not_named_cannot_decide_and_learns_nothing(
    approvals: Stack, call: Any
) -> None:
    grant = _request(call)
    status, _, body = call(
        "POST", f"/v1/grants/{grant['id']}/approve", _decision(), user_arn=OTHER_USER
    )
    assert status == 404 and body["error"]["code"] == "not_found"
    status, _, body = call("POST", f"/v1/grants/{grant['id']}/approve", _decision(), user_arn=BOB)
    assert status == 404  # on-call approves oncall-fix only


def test_a_decision_body_is_parsed_strictly_and_its_nonce_is_spent(
    approvals: Stack, call: Any
) -> None:
    grant = _request(call)
    path = f"/v1/grants/{grant['id']}/approve"
    for bad in (
        {},
        {"comment": "x"},
        {"comment": " ", "nonce": "n-" + "z" * 20},
        {"comment": "ok", "nonce": "short"},
        {**_decision(), "approver": JIT_USER},
    ):
        status, _, body = call("POST", path, bad, user_arn=APPROVER_1)
        assert status == 400 and body["error"]["code"] == "bad_request", (bad, body)
    decision = _decision()
    assert call("POST", path, decision, user_arn=APPROVER_1)[0] == 200
    status, _, body = call("POST", path, decision, user_arn=APPROVER_1)
    assert status == 409 and body["error"]["code"] == "replayed_request"


def test_the_broker_s_own_sessions_are_refused_on_the_approval_routes(
    approvals: Stack, call: Any
) -> None:
    grant = _request(call)
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/jit-g-0123456789abcdef01234567/jit-alice"
    for method, path, body in (
        ("GET", "/v1/approvals", None),
        ("POST", f"/v1/grants/{grant['id']}/approve", _decision()),
        ("POST", f"/v1/grants/{grant['id']}/deny", _decision()),
    ):
        status, _, answer = call(method, path, body, user_arn=session)
        assert status == 403 and answer["error"]["code"] == "broker_session_refused", path
    assert _status_in_ledger(approvals, grant["id"]) == "requested"


@pytest.mark.parametrize(
    "stored",
    list(GrantStatus),
    ids=lambda s: str(s.value),
)
def test_the_ledger_refuses_every_move_the_states_do_not_allow(
    stack: Stack, stored: GrantStatus, frozen_clock: Any
) -> None:
    """A grant stored in ``stored``: each move to a status not in FORWARD[stored] is refused,
    whether the writer claims the true status (refused before writing) or any status that
    could move there (refused by DynamoDB: the item's status is not that one)."""
    from jit_broker.adapters.ledger import _to_item
    from tests.integration.test_ledger_scale import _grant

    grant = _grant(owner_of(JIT_USER), created_at=frozen_clock.now(), window=3600, status=stored)
    stack.dynamodb.put_item(TableName=stack.seeded.table_name, Item=_to_item(grant))
    ledger = stack.broker._ledger
    forbidden = [new for new in GrantStatus if new != stored and new not in FORWARD[stored]]
    assert forbidden or stored is GrantStatus.CLEANED
    for new in forbidden:
        with pytest.raises(ValueError, match="may not move"):
            ledger.move(grant.grant_id, stored, new)
        for source in GrantStatus:
            if source != stored and new in FORWARD[source]:
                with pytest.raises(GrantNotActive):
                    ledger.move(grant.grant_id, source, new)
    assert _status_in_ledger(stack, grant.grant_id) == stored.value


def _iso(epoch: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def test_each_decision_and_issue_is_sent_as_a_grant_event(
    approvals: Stack, call: Any, frozen_clock: Any
) -> None:
    """Requested, Approved, Issued (from approved) and Denied, as the grant events publisher
    sends them; a grant without approvers is Issued as created active (issuing is the
    broker's own step, never an event's status)."""
    from jit_broker import runtime
    from jit_broker.adapters.events import GrantEvents, RecordedEvents
    from tests.conftest import build_broker

    sent = RecordedEvents()
    clients = {"iam": approvals.iam, "sts": approvals.sts, "dynamodb": approvals.dynamodb}
    runtime.set_broker(
        build_broker(
            clients,
            approvals.seeded,
            approvals.policy_file,
            events=GrantEvents(sent, home_account=ACCOUNT),
        )
    )
    approved, denied = _request(call), _request(call, user_arn=APPROVER_1)
    for approver in (APPROVER_2, APPROVER_3):
        call("POST", f"/v1/grants/{approved['id']}/approve", _decision("ok"), user_arn=approver)
    call("POST", f"/v1/grants/{denied['id']}/deny", _decision("no"), user_arn=APPROVER_2)
    nonce = {"nonce": "n-" + uuid.uuid4().hex}
    assert call("POST", f"/v1/grants/{approved['id']}/credentials", nonce)[0] == 201
    status, _, plain = call("POST", "/v1/grants", grant_body())
    assert status == 201, plain
    told = [(kind, d["grant_id"], d["from_status"], d["to_status"]) for kind, d in sent.sent]
    assert told == [
        ("Requested", approved["id"], None, "requested"),
        ("Requested", denied["id"], None, "requested"),
        ("Approved", approved["id"], "requested", "approved"),
        ("Denied", denied["id"], "requested", "denied"),
        ("Issued", approved["id"], "approved", "active"),
        ("Issued", plain["grant"]["id"], None, "active"),
    ]
    (approval,) = [d for kind, d in sent.sent if kind == "Approved"]
    assert (approval["approver"], approval["comment"]) == (APPROVER_3, "ok")
    assert approval["expires_at"] == approval["at"] + 1800  # the window, from approval
