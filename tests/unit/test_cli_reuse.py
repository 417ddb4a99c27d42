"""Trap 2: no silent grant reuse. exec, env and credential-process say each decision in one
stderr line; a --reason/--duration that differs from the grant that would be reused is
refused with the fix; --new takes a new grant; after a revoke, credential_process says it
makes a new one. Against the signature-checking fake broker of test_cli."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from jit_cli import cache, session
from jit_cli.errors import ExitCode
from tests.unit import test_cli, test_cli_session
from tests.unit.test_cli import FakeBroker, Reply
from tests.unit.test_cli_session import GRANT_ID, NOW, Sessions, grant

fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env
jit = test_cli_session.jit

REASON = "nightly export checks"


@pytest.fixture(autouse=True)
def no_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    """`jit exec` in-process must never replace the test process."""

    def refuse(*args: object) -> None:
        raise AssertionError(f"execvpe{args[:2]!r} reached")

    monkeypatch.setattr("os.execvpe", refuse)


def hour_grant(fake: FakeBroker, reason: str = REASON) -> Sessions:
    """Grants of one hour, made now, for ``reason``."""
    sessions = Sessions(fake)
    sessions.grant = grant(expires_at=NOW + 3600, created_at=NOW, reason=reason)
    return sessions


def decisions(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("jit: ")]


def test_a_new_grant_then_its_reuse_are_each_one_line_on_stderr(jit, fake: FakeBroker) -> None:
    hour_grant(fake)

    first = jit("env", "s3-read", "--reason", REASON)
    second = jit("env", "s3-read")

    until = session.local_time(NOW + 3600, time.time())
    assert decisions(first.err) == [f"jit: new grant {GRANT_ID} until {until}"]
    [reused] = decisions(second.err)
    assert reused.startswith(f"jit: using grant {GRANT_ID} (s3-read, ")
    assert reused.endswith(" min left)")
    assert "export AWS_ACCESS_KEY_ID" in second.out and "jit:" not in second.out


def test_a_session_in_the_cached_grant_is_announced_as_its_reuse(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = hour_grant(fake)
    sessions.grant = grant(expires_at=NOW + 7200, created_at=NOW, reason=REASON)
    assert jit("credential-process", "s3-read", "--reason", REASON).code == 0

    # 200 s before the session ends, whenever this test runs; the grant lasts 3800 s more
    monkeypatch.setenv("JIT_CLOCK_OFFSET", str(NOW + 3400 - time.time()))
    again = jit("credential-process", "s3-read", "--reason", REASON)

    assert again.code == 0, again.err
    assert decisions(again.err) == [f"jit: using grant {GRANT_ID} (s3-read, 1 h 03 min left)"]
    assert json.loads(again.out)["Version"] == 1  # stdout is the credentials only


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (("--reason", "another"), "--reason"),
        (("--duration", "15m"), "--duration"),
        (("--reason", "another", "--duration", "15m"), "--reason and --duration"),
    ],
    ids=["reason", "duration", "both"],
)
@pytest.mark.parametrize("command", ["env", "exec"])
def test_a_differing_reason_or_duration_is_refused_with_the_fix(
    jit, fake: FakeBroker, flags: tuple[str, ...], named: str, command: str
) -> None:
    sessions = hour_grant(fake)
    assert jit("env", "s3-read", "--reason", REASON, "--duration", "1h").code == 0

    tail = ("--", "true") if command == "exec" else ()
    result = jit(command, "s3-read", *flags, *tail)

    assert (result.code, result.out) == (ExitCode.USAGE, "")
    [line] = result.err.splitlines()
    assert line.startswith(f"jit: error: grant {GRANT_ID} (s3-read, ")
    assert f"pass --new for a new grant, or drop {named} to use it (grant_differs)" in line
    assert sessions.paths() == ["POST /v1/grants"]


def test_the_same_reason_and_duration_reuse_the_grant(jit, fake: FakeBroker) -> None:
    sessions = hour_grant(fake)
    assert jit("env", "s3-read", "--reason", REASON, "--duration", "1h").code == 0

    again = jit("env", "s3-read", "--reason", REASON, "--duration", "60m")

    assert again.code == 0, again.err
    assert sessions.paths() == ["POST /v1/grants"]


def test_new_takes_a_new_grant_with_the_reason_given(jit, fake: FakeBroker) -> None:
    sessions = hour_grant(fake)
    assert jit("env", "s3-read", "--reason", REASON).code == 0

    fresh = jit("env", "s3-read", "--reason", "another", "--duration", "15m", "--new")

    assert fresh.code == 0, fresh.err
    assert sessions.paths() == ["POST /v1/grants", "POST /v1/grants"]
    body = fake.requests[1].json
    assert (body["reason"], body["duration"]) == ("another", 900)
    assert decisions(fresh.err)[0].startswith(f"jit: new grant {GRANT_ID} until ")


def test_credential_process_reuses_despite_its_recorded_reason_and_says_so(
    jit, fake: FakeBroker
) -> None:
    sessions = hour_grant(fake, reason="made by jit env")
    assert jit("env", "s3-read", "--reason", "made by jit env").code == 0

    process = jit("credential-process", "s3-read", "--reason", REASON)

    assert process.code == 0, process.err
    assert sessions.paths() == ["POST /v1/grants"]
    assert decisions(process.err)[0].startswith(f"jit: using grant {GRANT_ID} (s3-read, ")


def test_at_the_active_grant_cap_a_differing_reason_is_refused_and_new_keeps_the_429(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    Sessions(fake)
    monkeypatch.setenv("JIT_CLOCK_OFFSET", str(NOW + 30 - time.time()))  # 3570 s left
    fake.routes["POST", "/v1/grants"] = Reply(
        429, {"error": {"code": "too_many_requests", "message": "one active grant at most"}}
    )
    fake.routes["GET", "/v1/grants?status=active"] = Reply(
        200, {"grants": [grant(expires_at=NOW + 3600, created_at=NOW, reason=REASON)]}
    )

    differing = jit("env", "s3-read", "--reason", "another", "--no-cache")
    new = jit("env", "s3-read", "--reason", "another", "--no-cache", "--new")
    same = jit("env", "s3-read", "--reason", REASON, "--no-cache")

    assert (differing.code, differing.out) == (ExitCode.USAGE, "")
    assert "(grant_differs)" in differing.err
    assert (new.code, new.out) == (ExitCode.RATE_LIMITED, "")
    assert same.code == 0, same.err
    assert decisions(same.err) == [
        f"jit: using grant {GRANT_ID} (s3-read, 59 min left) (the profile allows no other)"
    ]


# ---------------------------------------------------------------- after a revoke


def test_after_jit_revoke_credential_process_says_it_makes_a_new_grant(
    jit, fake: FakeBroker
) -> None:
    sessions = hour_grant(fake)
    fake.routes["POST", f"/v1/grants/{GRANT_ID}/revoke"] = Reply(
        200, {"grant": grant(status="revoked")}
    )
    assert jit("credential-process", "s3-read", "--reason", REASON).code == 0
    assert jit("revoke", GRANT_ID).code == 0
    sessions.grant = grant("g-00000000000000000000000b", NOW + 3600, created_at=NOW)
    fake.routes["POST", "/v1/grants/g-00000000000000000000000b/credentials"] = Reply(
        201, sessions._issue
    )

    after = jit("credential-process", "s3-read", "--reason", REASON)
    later = jit("credential-process", "s3-read", "--reason", REASON)

    assert after.code == 0, after.err
    [line] = decisions(after.err)
    assert line.startswith(
        f"jit: grant {GRANT_ID} was revoked or has ended: new grant g-00000000000000000000000b "
        "until "
    )
    assert json.loads(after.out)["AccessKeyId"] == "ASIASESSION000000002"
    assert decisions(later.err)[0].startswith("jit: using grant g-00000000000000000000000b")


def test_a_grant_revoked_elsewhere_is_named_when_the_new_one_is_made(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = hour_grant(fake)
    assert jit("credential-process", "s3-read", "--reason", REASON).code == 0
    fake.routes["POST", f"/v1/grants/{GRANT_ID}/credentials"] = Reply(
        409, {"error": {"code": "grant_not_active", "message": "grant is revoked"}}
    )
    sessions.grant = grant("g-00000000000000000000000b", NOW + 7200)

    monkeypatch.setenv("JIT_CLOCK_OFFSET", str(NOW + 3400 - time.time()))
    again = jit("credential-process", "s3-read", "--reason", REASON)

    assert again.code == 0, again.err
    [line] = decisions(again.err)
    assert line.startswith(
        f"jit: grant {GRANT_ID} was revoked or has ended: new grant g-00000000000000000000000b "
    )


def test_cache_clear_forgets_the_revoke_notes_too(jit, fake: FakeBroker) -> None:
    hour_grant(fake)
    fake.routes["POST", f"/v1/grants/{GRANT_ID}/revoke"] = Reply(
        200, {"grant": grant(status="revoked")}
    )
    jit("credential-process", "s3-read", "--reason", REASON)
    jit("revoke", GRANT_ID)
    folder = Path(cache.directory(dict(os.environ)))
    assert [p.suffix for p in folder.iterdir() if p.suffix != ".lock"] == [".revoked"]

    assert jit("cache", "clear").code == 0

    assert [p for p in folder.iterdir()] == []


# ---------------------------------------------------------------- the words


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 min left"),
        (59, "0 min left"),
        (42 * 60 + 5, "42 min left"),
        (3900, "1 h 05 min left"),
    ],
)
def test_time_left_in_minutes_and_hours(seconds: int, words: str) -> None:
    assert session.time_left(seconds) == words


def test_until_is_local_time_with_the_date_only_when_not_today(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        at = 1_795_000_000 - 1_795_000_000 % 86400  # a midnight UTC: 01:00 in Paris
        assert session.local_time(at + 18 * 3600 + 50 * 60, at) == "19:50"
        assert session.local_time(at + 23 * 3600 + 30 * 60, at) == time.strftime(
            "%Y-%m-%d 00:30", time.localtime(at + 86400)
        )
    finally:
        monkeypatch.undo()
        time.tzset()
