"""Approvals in the CLI (issue 11): jit approvals, approve and deny; jit request for a profile
with approvers (202) and its --wait; jit creds before approval; the session commands meeting
a request and taking it up once approved; the requests in jit grants and jit status --check.

Against the signature-checking fake broker of test_cli. Waiting never sleeps: the wait's
``approval.sleep`` advances a fake clock (``approval.clock``), and the broker's answers change
over polls through a callable body."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from jit_cli import approval, cache, main
from jit_cli.errors import ExitCode
from tests.unit import test_cli
from tests.unit.test_cli import NONCE, FakeBroker, Reply, Result
from tests.unit.test_cli_session import issued

fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env

NOW = int(time.time())
REQUEST_ID = "g-0000000000000000000000f1"
ALICE = "arn:aws:iam::111122223333:user/alice"
BOB = "arn:aws:iam::111122223333:user/bob"
CAROL = "arn:aws:sts::111122223333:assumed-role/Approvers/carol"
DEADLINE = NOW + 3600


def request(status: str = "requested", *decisions: tuple[str, str, str], **extra: Any) -> dict:
    """The broker's GrantView of a request for prod-admin that needs 2 approvals."""
    return {
        "id": REQUEST_ID,
        "profile": "prod-admin",
        "status": status,
        "requester": ALICE,
        "requester_arn": ALICE,
        "reason": "INC-7 rollback",
        "ticket": "INC-7",
        "created_at": NOW,
        "expires_at": DEADLINE,
        "role_arn": None,
        "sessions_issued": 0,
        "revoked_at": None,
        "account": "111122223333",
        "mode": "per-grant-role",
        "approvals_required": 2,
        "approvals": [
            {"verdict": verdict, "by": by, "by_id": "AIDA" + by[-5:], "at": NOW, "comment": why}
            for verdict, by, why in decisions
        ],
        "review_deadline": DEADLINE,
        "window_seconds": 1800,
        "approved_at": None,
        **extra,
    }


APPROVED = request(
    "approved",
    ("approve", BOB, "ok"),
    ("approve", CAROL, "fine"),
    approved_at=NOW + 60,
    expires_at=NOW + 60 + 1800,
)


@pytest.fixture
def jit(
    capsys: pytest.CaptureFixture[str],
    fake: FakeBroker,
    signer_env: None,
    monkeypatch: pytest.MonkeyPatch,
):
    # The CLI's clock reads NOW, the instant this module's grants are dated from, however long
    # after collection the suite reaches these tests.
    monkeypatch.setenv("JIT_CLOCK_OFFSET", str(NOW - time.time()))

    def run(*args: str) -> Result:
        code = main.main(["--api-url", fake.url, *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)


def sent(fake: FakeBroker) -> list[str]:
    assert all(r.signature_error is None for r in fake.requests)
    return [f"{r.method} {r.path}" for r in fake.requests]


def answers(*bodies: dict) -> Reply:
    """GET /v1/grants/{id}: 200 with each grant in turn, the last one repeated."""
    queue = list(bodies)

    def next_body() -> dict:
        return {"grant": queue.pop(0) if len(queue) > 1 else queue[0]}

    return Reply(200, next_body)


class Clock:
    """The wait's clock and sleep: sleeping moves the clock, never the test."""

    def __init__(self) -> None:
        self.now = float(NOW)
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake_clock = Clock()
    monkeypatch.setattr(approval, "sleep", fake_clock.sleep)
    monkeypatch.setattr(approval, "clock", fake_clock.time)
    yield fake_clock


def local(epoch: int) -> str:
    return cache.local_time(epoch, NOW)


# ---------------------------------------------------------------- jit approvals


def test_approvals_piped_are_the_brokers_json(jit, fake: FakeBroker) -> None:
    waiting = request("requested", ("approve", BOB, "ok"))
    fake.routes["GET", "/v1/approvals"] = Reply(200, {"grants": [waiting]})

    result = jit("approvals")

    assert (result.code, result.err) == (0, "")
    assert json.loads(result.out) == [waiting]
    assert sent(fake) == ["GET /v1/approvals"]


def test_approvals_on_a_terminal_are_a_table_with_the_tally_and_the_deadline_left(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_a_terminal(monkeypatch)
    fake.routes["GET", "/v1/approvals"] = Reply(
        200, {"grants": [request("requested", ("approve", BOB, "ok"))]}
    )

    result = jit("approvals")

    assert result.code == 0, result.err
    header, row = result.out.splitlines()
    assert header.split() == [
        "ID",
        "PROFILE",
        "ACCOUNT",
        "REQUESTER",
        "REASON",
        "TICKET",
        "APPROVALS",
        "REVIEW_DEADLINE",
    ]
    assert row.split()[:4] == [REQUEST_ID, "prod-admin", "111122223333", "alice"]
    assert " 1/2 " in row
    assert row.endswith(f"{local(DEADLINE)} (59 min left)") or row.endswith(
        f"{local(DEADLINE)} (1 h 00 min left)"
    )
    assert str(DEADLINE) not in result.out


def test_no_request_to_decide_on_a_terminal_says_none(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_a_terminal(monkeypatch)
    fake.routes["GET", "/v1/approvals"] = Reply(200, {"grants": []})

    assert jit("approvals").out == "(none)\n"


# ---------------------------------------------------------------- jit approve / deny


@pytest.mark.parametrize("verdict", ["approve", "deny"])
def test_a_decision_posts_the_comment_and_a_fresh_nonce_each_time(
    jit, fake: FakeBroker, verdict: str
) -> None:
    after = request("denied", ("deny", BOB, "no")) if verdict == "deny" else request()
    fake.routes["POST", f"/v1/grants/{REQUEST_ID}/{verdict}"] = Reply(200, {"grant": after})

    first = jit(verdict, REQUEST_ID, "--comment", "matches INC-7")
    second = jit(verdict, REQUEST_ID, "--comment", "matches INC-7")

    assert (first.code, second.code) == (0, 0)
    assert sent(fake) == [f"POST /v1/grants/{REQUEST_ID}/{verdict}"] * 2
    bodies = [r.json for r in fake.requests]
    nonces = [body.pop("nonce") for body in bodies]
    assert all(NONCE.fullmatch(n) for n in nonces) and nonces[0] != nonces[1]
    assert bodies == [{"comment": "matches INC-7"}] * 2
    assert json.loads(first.out)["id"] == REQUEST_ID


def test_an_approval_short_of_the_quorum_says_more_are_needed(jit, fake: FakeBroker) -> None:
    fake.routes["POST", f"/v1/grants/{REQUEST_ID}/approve"] = Reply(
        200, {"grant": request("requested", ("approve", BOB, "ok"))}
    )

    result = jit("approve", REQUEST_ID, "--comment", "ok")

    assert result.err == (
        f"jit: approved {REQUEST_ID} (prod-admin, requested by alice): 1/2 approvals, "
        "it needs more\n"
    )


def test_the_approval_that_completes_the_quorum_says_until_when(jit, fake: FakeBroker) -> None:
    fake.routes["POST", f"/v1/grants/{REQUEST_ID}/approve"] = Reply(200, {"grant": APPROVED})

    result = jit("approve", REQUEST_ID, "--comment", "fine")

    assert result.err == (
        f"jit: approved {REQUEST_ID} (prod-admin, requested by alice): it is approved; its "
        f"window runs until {local(APPROVED['expires_at'])}\n"
    )


@pytest.mark.parametrize("verdict", ["approve", "deny"])
def test_a_decision_without_a_comment_is_a_usage_error_before_any_request(
    jit, fake: FakeBroker, verdict: str
) -> None:
    result = jit(verdict, REQUEST_ID)

    assert result.code == ExitCode.USAGE
    assert "--comment" in result.err
    assert fake.requests == []


@pytest.mark.parametrize(
    ("status", "code", "exit_code", "words"),
    [
        (403, "self_approval_refused", ExitCode.DENIED, "a second person must approve it"),
        (409, "already_decided", ExitCode.CONFLICT, "you already decided"),
        (409, "review_expired", ExitCode.CONFLICT, "its requester may ask again"),
        (409, "not_awaiting_approval", ExitCode.CONFLICT, f"jit grant {REQUEST_ID} shows"),
        (404, "not_found", ExitCode.NOT_FOUND, "jit approvals lists those you may decide"),
    ],
)
def test_each_refusal_of_a_decision_has_its_exit_code_and_its_fix(
    jit, fake: FakeBroker, status: int, code: str, exit_code: ExitCode, words: str
) -> None:
    fake.routes["POST", f"/v1/grants/{REQUEST_ID}/approve"] = Reply(
        status, {"error": {"code": code, "message": "the broker's words"}}
    )

    result = jit("approve", REQUEST_ID, "--comment", "ok")

    assert (result.code, result.out) == (exit_code, "")
    assert result.err.startswith("jit: error: ") and result.err.endswith(f" ({code})\n")
    assert words in result.err
    assert sent(fake) == [f"POST /v1/grants/{REQUEST_ID}/approve"]  # no whoami to explain it


# ---------------------------------------------------------------- jit request (202) and --wait


def test_a_request_for_a_profile_with_approvers_says_where_it_went_and_prints_it(
    jit, fake: FakeBroker
) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(202, {"grant": request()})

    result = jit("request", "prod-admin", "--reason", "INC-7 rollback")

    assert result.code == 0
    assert result.err == (
        f"jit: request {REQUEST_ID} sent to the approvers of prod-admin (needs 2 approvals, "
        f"review closes at {local(DEADLINE)})\n"
    )
    printed = json.loads(result.out)
    assert (printed["id"], printed["status"], printed["approvals_required"]) == (
        REQUEST_ID,
        "requested",
        2,
    )
    assert printed["review_deadline"] == DEADLINE
    assert sent(fake) == ["POST /v1/grants"]


def test_wait_polls_with_growing_pauses_until_approved_and_says_who_approved(
    jit, fake: FakeBroker, clock: Clock
) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(202, {"grant": request()})
    fake.routes["GET", f"/v1/grants/{REQUEST_ID}"] = answers(
        request(),
        request("requested", ("approve", BOB, "ok")),
        APPROVED,
    )

    result = jit("request", "prod-admin", "--reason", "INC-7 rollback", "--wait")

    assert result.code == 0, result.err
    assert json.loads(result.out)["status"] == "approved"
    assert sent(fake) == ["POST /v1/grants"] + [f"GET /v1/grants/{REQUEST_ID}"] * 3
    assert clock.pauses == [2.0, 3.0, 4.5]  # a growing pause between polls
    lines = result.err.splitlines()
    assert lines[1:] == [
        "jit: approved by bob (1/2)",
        f"jit: approved by bob, carol: take credentials with jit creds {REQUEST_ID} or "
        "jit exec/env prod-admin",
    ]


def test_wait_for_a_denied_request_exits_4_with_who_and_why(
    jit, fake: FakeBroker, clock: Clock
) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(202, {"grant": request()})
    fake.routes["GET", f"/v1/grants/{REQUEST_ID}"] = answers(
        request("denied", ("deny", BOB, "use read-only"))
    )

    result = jit("request", "prod-admin", "--reason", "r", "--wait")

    assert (result.code, result.out) == (ExitCode.DENIED, "")
    assert result.err.splitlines()[-1] == (
        f"jit: error: request {REQUEST_ID} for prod-admin was denied by bob: "
        "'use read-only' (request_denied)"
    )


def test_wait_for_a_request_nobody_decides_ends_at_its_deadline_with_exit_6(
    jit, fake: FakeBroker, clock: Clock
) -> None:
    deadline = NOW + 300  # the shortest review window
    pending = request(review_deadline=deadline, expires_at=deadline)
    fake.routes["POST", "/v1/grants"] = Reply(202, {"grant": pending})
    fake.routes["GET", f"/v1/grants/{REQUEST_ID}"] = answers(pending)  # never decided

    result = jit("request", "prod-admin", "--reason", "r", "--wait")

    assert (result.code, result.out) == (ExitCode.CONFLICT, "")
    assert "it lapsed (expired_unreviewed)" in result.err and "(review_expired)" in result.err
    assert clock.now == deadline + approval.GRACE_SECONDS  # never waits past the deadline
    assert max(clock.pauses) == approval.LONGEST_PAUSE_SECONDS
    assert len(fake.requests) == 1 + len(clock.pauses) < 30  # bounded polling


def test_wait_reports_the_lapse_the_broker_tells(jit, fake: FakeBroker, clock: Clock) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(202, {"grant": request()})
    fake.routes["GET", f"/v1/grants/{REQUEST_ID}"] = answers(request("expired_unreviewed"))

    result = jit("request", "prod-admin", "--reason", "r", "--wait")

    assert result.code == ExitCode.CONFLICT
    assert "ask again with jit request prod-admin" in result.err


def test_ctrl_c_while_waiting_leaves_the_request_standing_and_exits_130(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(approval, "sleep", interrupted)
    fake.routes["POST", "/v1/grants"] = Reply(202, {"grant": request()})

    result = jit("request", "prod-admin", "--reason", "r", "--wait")

    assert (result.code, result.out) == (ExitCode.INTERRUPTED, "")
    assert f"request {REQUEST_ID} still stands" in result.err
    assert f"jit grant {REQUEST_ID} --wait" in result.err
    assert sent(fake) == ["POST /v1/grants"]  # nothing withdrawn


def test_grant_wait_waits_on_an_existing_request(jit, fake: FakeBroker, clock: Clock) -> None:
    fake.routes["GET", f"/v1/grants/{REQUEST_ID}"] = answers(request(), APPROVED)

    result = jit("grant", REQUEST_ID, "--wait")

    assert result.code == 0, result.err
    assert json.loads(result.out)["status"] == "approved"
    assert sent(fake) == [f"GET /v1/grants/{REQUEST_ID}"] * 2


def test_explain_says_how_many_approvals_a_profile_needs(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_a_terminal(monkeypatch)
    fake.routes["POST", "/v1/grants"] = Reply(
        200,
        {
            "dry_run": True,
            "would_grant": True,
            "profile": "prod-admin",
            "account": "111122223333",
            "duration_seconds": 1800,
            "mode": "per-grant-role",
            "approvals_required": 2,
            "review_window": 3600,
            "denials": [],
        },
    )

    result = jit("request", "prod-admin", "--explain")

    assert result.code == 0
    assert result.out == (
        "prod-admin in 111122223333: you would get it (30m, per-grant-role, once 2 approvers "
        "approve it within 1h); nothing was created\n"
    )


# ---------------------------------------------------------------- jit creds before approval


def test_creds_before_approval_says_who_must_approve_and_how_to_wait(jit, fake: FakeBroker) -> None:
    fake.routes["POST", f"/v1/grants/{REQUEST_ID}/credentials"] = Reply(
        409, {"error": {"code": "approval_pending", "message": "awaits approval (1 of 2 given)"}}
    )
    fake.routes["GET", f"/v1/grants/{REQUEST_ID}"] = Reply(
        200, {"grant": request("requested", ("approve", BOB, "ok"))}
    )

    result = jit("creds", REQUEST_ID)

    assert (result.code, result.out) == (ExitCode.CONFLICT, "")
    assert result.err == (
        f"jit: error: grant {REQUEST_ID} awaits the approvers of prod-admin (1/2 approvals, "
        f"review closes at {local(DEADLINE)}): no credentials before one of them approves it "
        f"(another person than you); jit grant {REQUEST_ID} --wait waits for the decision, "
        "then run this again (approval_pending)\n"
    )


# ---------------------------------------------------------------- the session commands


ENV = ("env", "prod-admin", "--reason", "INC-7 rollback")


def test_a_session_command_meeting_approval_stops_with_exit_6_and_asks_once(
    jit, fake: FakeBroker
) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(202, {"grant": request()})

    first = jit(*ENV)

    assert (first.code, first.out) == (ExitCode.CONFLICT, "")
    assert first.err == (
        f"jit: error: prod-admin needs approval: request {REQUEST_ID} is waiting for its "
        "approvers (0/2 approvals); run this again once it is approved "
        f"(jit grant {REQUEST_ID} --wait waits for the decision) (approval_pending)\n"
    )

    # again while it awaits approval: the same request asked about, no second request
    fake.routes["POST", f"/v1/grants/{REQUEST_ID}/credentials"] = Reply(
        409, {"error": {"code": "approval_pending", "message": "awaits approval"}}
    )
    again = jit(*ENV)

    assert again.code == ExitCode.CONFLICT
    assert f"request {REQUEST_ID} is waiting" in again.err
    assert sent(fake) == ["POST /v1/grants", f"POST /v1/grants/{REQUEST_ID}/credentials"]
    assert NONCE.fullmatch(fake.requests[1].json["nonce"])


@pytest.mark.parametrize("command", ["env", "credential-process"])
def test_once_approved_the_session_command_takes_up_the_request_then_uses_the_cache(
    jit, fake: FakeBroker, command: str
) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(202, {"grant": request()})
    wanted = (command, "prod-admin", "--reason", "INC-7 rollback")
    assert jit(*wanted).code == ExitCode.CONFLICT
    active = {**APPROVED, "status": "active", "sessions_issued": 1}
    fake.routes["POST", f"/v1/grants/{REQUEST_ID}/credentials"] = Reply(
        201, {"grant": active, "credentials": issued(1, expiration=active["expires_at"])}
    )

    taken = jit(*wanted)
    cached = jit(*wanted)

    assert taken.code == 0, taken.err
    assert "ASIASESSION000000001" in taken.out
    assert f"request {REQUEST_ID} was approved: using it until " in taken.err
    assert cached.code == 0 and "ASIASESSION000000001" in cached.out
    assert sent(fake) == ["POST /v1/grants", f"POST /v1/grants/{REQUEST_ID}/credentials"]


def test_a_request_made_by_jit_request_is_taken_up_by_jit_env(jit, fake: FakeBroker) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(202, {"grant": request()})
    assert jit("request", "prod-admin", "--reason", "r").code == 0
    active = {**APPROVED, "status": "active", "sessions_issued": 1}
    fake.routes["POST", f"/v1/grants/{REQUEST_ID}/credentials"] = Reply(
        201, {"grant": active, "credentials": issued(1, expiration=active["expires_at"])}
    )

    result = jit(*ENV)

    assert result.code == 0, result.err
    assert sent(fake) == ["POST /v1/grants", f"POST /v1/grants/{REQUEST_ID}/credentials"]


def test_a_denied_request_stops_that_run_and_only_the_next_run_asks_again(
    jit, fake: FakeBroker
) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(202, {"grant": request()})
    assert jit(*ENV).code == ExitCode.CONFLICT
    fake.routes["POST", f"/v1/grants/{REQUEST_ID}/credentials"] = Reply(
        409,
        {"error": {"code": "grant_not_active", "message": f"grant {REQUEST_ID} is denied"}},
    )

    stopped = jit(*ENV)
    again = jit(*ENV)

    assert stopped.code == ExitCode.DENIED  # no new request behind the approvers' "no"
    assert f"request {REQUEST_ID} (prod-admin) will not be granted" in stopped.err
    assert "(request_not_granted)" in stopped.err
    assert again.code == ExitCode.CONFLICT  # the new request awaits its approvers in turn
    assert sent(fake)[1:] == [f"POST /v1/grants/{REQUEST_ID}/credentials", "POST /v1/grants"]


def test_without_the_cache_the_stop_says_to_take_the_credentials_with_creds(
    jit, fake: FakeBroker
) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(202, {"grant": request()})

    result = jit(*ENV, "--no-cache")

    assert result.code == ExitCode.CONFLICT
    assert f"once it is approved, jit creds {REQUEST_ID} gives its credentials" in result.err


# ---------------------------------------------------------------- jit grants and jit status


def test_grants_on_a_terminal_show_a_requests_tally_and_its_deadline_left(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_a_terminal(monkeypatch)
    fake.routes["GET", "/v1/grants"] = Reply(
        200, {"grants": [request("requested", ("approve", BOB, "ok"))]}
    )

    result = jit("grants")

    header, row = result.out.splitlines()
    assert header.split()[3:6] == ["STATUS", "EXPIRES_AT", "APPROVALS"]
    assert row.split()[3] == "requested"
    assert f"{local(DEADLINE)} (" in row and " left) " in row and " 1/2 " in row


def test_status_check_shows_requests_awaiting_approval_with_tally_and_deadline(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.routes["GET", "/v1/whoami"] = Reply(200, {"arn": ALICE})
    fake.routes["GET", "/v1/grants?status=active"] = Reply(200, {"grants": []})
    fake.routes["GET", "/v1/grants"] = Reply(
        200,
        {
            "grants": [
                request("requested", ("approve", BOB, "ok")),
                {**APPROVED, "id": "g-0000000000000000000000f2"},
                request("denied", id="g-0000000000000000000000f3"),
            ]
        },
    )

    piped = jit("status", "--check")
    on_a_terminal(monkeypatch)
    text = jit("status", "--check")

    assert [g["id"] for g in json.loads(piped.out)["requests"]] == [
        "g-0000000000000000000000f2",  # soonest end first; the denied one is not shown
        REQUEST_ID,
    ]
    lines = text.out.splitlines()
    [requested] = [line for line in lines if REQUEST_ID in line]
    assert f"requested: 1/2 approvals, review closes at {local(DEADLINE)} (" in requested
    [approved] = [line for line in lines if "g-0000000000000000000000f2" in line]
    assert "approved, not taken up: until " in approved
    assert "g-0000000000000000000000f3" not in text.out


# ---------------------------------------------------------------- jit review (break-glass)


def test_review_closes_a_break_glass_grants_review_with_the_comment_and_a_nonce(
    jit, fake: FakeBroker
) -> None:
    used = request("active", break_glass=True, review={"by": "arn:aws:iam::1:user/bob"})
    fake.routes["POST", f"/v1/grants/{REQUEST_ID}/review"] = Reply(200, {"grant": used})

    result = jit("review", REQUEST_ID, "--comment", "INC-9: the restart was needed")

    assert result.code == 0, result.err
    assert "review of " + REQUEST_ID in result.err and "closed" in result.err
    [post] = fake.requests
    body = json.loads(post.body)
    assert (post.method, post.path) == ("POST", f"/v1/grants/{REQUEST_ID}/review")
    assert body["comment"] == "INC-9: the restart was needed" and len(body["nonce"]) >= 16


@pytest.mark.parametrize(
    ("status", "code", "exit_code", "words"),
    [
        (403, "self_review_refused", ExitCode.DENIED, "another of the profile's approvers"),
        (409, "review_closed", ExitCode.CONFLICT, "already closed"),
        (404, "not_found", ExitCode.NOT_FOUND, "jit approvals"),
    ],
)
def test_each_refusal_of_a_review_has_its_exit_code_and_its_fix(
    jit, fake: FakeBroker, status: int, code: str, exit_code: ExitCode, words: str
) -> None:
    fake.routes["POST", f"/v1/grants/{REQUEST_ID}/review"] = Reply(
        status, {"error": {"code": code, "message": "the broker's words"}}
    )

    result = jit("review", REQUEST_ID, "--comment", "ok")

    assert (result.code, result.out) == (exit_code, "")
    assert words in result.err


def test_review_needs_a_comment_and_sends_nothing_without_one(jit, fake: FakeBroker) -> None:
    result = jit("review", REQUEST_ID)

    assert result.code == 2 and fake.requests == []
