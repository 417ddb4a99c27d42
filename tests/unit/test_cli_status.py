"""`jit status`: who the CLI signs as, the caller's active grants with time left, the cached
sessions; text on a terminal, JSON when piped or with --output json; from the cache alone
(and saying so) when the broker cannot be reached. Against the fake broker of test_cli."""

from __future__ import annotations

import json
import sys

import pytest

from jit_cli import main
from jit_cli.errors import ExitCode
from tests.unit import test_cli, test_cli_session
from tests.unit.test_cli import SIGNER_KEY, FakeBroker, Reply
from tests.unit.test_cli_session import GRANT_ID, NOW, Sessions, grant

fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env
jit = test_cli_session.jit

ARN = "arn:aws:iam::111122223333:user/alice"
OTHER_ID = "g-00000000000000000000000b"


@pytest.fixture
def broker(fake: FakeBroker) -> Sessions:
    fake.routes["GET", "/v1/whoami"] = Reply(200, {"arn": ARN, "account": "111122223333"})
    fake.routes["GET", "/v1/grants?status=active"] = Reply(
        200,
        {
            "grants": [
                grant(GRANT_ID, expires_at=NOW + 7200),
                grant(OTHER_ID, profile="ec2-admin", expires_at=NOW + 1800),
                grant("g-00000000000000000000000c", status="revoked"),
            ]
        },
    )
    return Sessions(fake)


def on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)


def test_status_piped_is_json_with_identity_active_grants_and_cached_sessions(
    jit, broker: Sessions
) -> None:
    assert jit("credential-process", "s3-read", "--reason", "r").code == 0

    result = jit("status")

    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert document["broker_answered"] is True
    assert document["whoami"]["arn"] == ARN
    assert document["signs_with"] == f"keys {SIGNER_KEY[:4]}...{SIGNER_KEY[-4:]} in the environment"
    assert [g["id"] for g in document["grants"]] == [OTHER_ID, GRANT_ID]  # soonest end first
    assert 0 < document["grants"][0]["seconds_left"] <= 1800
    [cached] = document["sessions"]
    assert (cached["profile"], cached["grant"]) == ("s3-read", GRANT_ID)
    assert "ASIASESSION" not in result.out and "secret" not in result.out  # no keys shown


def test_status_on_a_terminal_is_text_with_time_left(
    jit, broker: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert jit("credential-process", "s3-read", "--reason", "r").code == 0
    on_a_terminal(monkeypatch)

    result = jit("status")

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert f"signing as:    {ARN}" in lines
    [ec2] = [line for line in lines if OTHER_ID in line]
    assert "ec2-admin" in ec2 and " min left (until " in ec2
    assert lines[lines.index("cached sessions:") + 1].split()[:2] == ["s3-read", GRANT_ID]


def test_status_output_json_wins_over_a_terminal(
    jit, broker: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_a_terminal(monkeypatch)

    result = jit("status", "--output", "json")

    assert json.loads(result.out)["whoami"]["arn"] == ARN


def test_status_with_the_broker_unreachable_answers_from_the_cache_and_says_so(
    jit, broker: Sessions, capsys: pytest.CaptureFixture[str]
) -> None:
    assert jit("credential-process", "s3-read", "--reason", "r").code == 0
    dead = f"http://127.0.0.1:{test_cli.free_port()}"

    code = main.main(["--api-url", dead, "status"])

    captured = capsys.readouterr()
    assert code == ExitCode.OK, captured.err
    [line] = captured.err.splitlines()
    assert "cannot reach the broker" in line and line.endswith("showing the cached sessions only")
    document = json.loads(captured.out)
    assert (document["broker_answered"], document["grants"]) == (False, None)
    assert document["error"]["code"] == "broker_unreachable"
    assert [s["grant"] for s in document["sessions"]] == [GRANT_ID]


def test_status_with_the_broker_unreachable_on_a_terminal_says_it_in_the_text(
    jit, broker: Sessions, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert jit("credential-process", "s3-read", "--reason", "r").code == 0
    on_a_terminal(monkeypatch)

    code = main.main(["--api-url", f"http://127.0.0.1:{test_cli.free_port()}", "status"])

    out = capsys.readouterr().out
    assert code == ExitCode.OK
    assert "(unreachable: from the cache only)" in out.splitlines()[0]
    assert "active grants: unknown (the broker did not answer)" in out


def test_status_does_not_hide_a_denial(jit, fake: FakeBroker) -> None:
    fake.routes["GET", "/v1/whoami"] = Reply(
        403, {"error": {"code": "forbidden", "message": "not allowed"}}
    )

    result = jit("status")

    assert (result.code, result.out) == (ExitCode.DENIED, "")


def test_status_signing_as_a_grants_session_shows_the_cache_and_what_to_unset(
    jit, broker: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert jit("credential-process", "s3-read", "--reason", "r").code == 0
    monkeypatch.setenv("JIT_GRANT_ID", GRANT_ID)  # as after eval "$(jit env s3-read)"
    asked = len(broker.fake.requests)

    result = jit("status")

    assert result.code == ExitCode.OK, result.err
    assert "(signing_as_grant): showing the cached sessions only" in result.err
    assert "unset " in result.err
    assert json.loads(result.out)["error"]["code"] == "signing_as_grant"
    assert len(broker.fake.requests) == asked  # nothing was sent as the grant


def test_status_check_asks_the_broker_where_plain_status_answers_from_the_cache(
    jit, broker: Sessions, fake: FakeBroker, tmp_path
) -> None:
    from jit_cli import entry

    environ = {
        "JIT_API_URL": fake.url,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "AWS_ACCESS_KEY_ID": SIGNER_KEY,
    }
    assert entry.cached_status(["status"], environ, terminal=False) is not None
    assert entry.cached_status(["status", "--check"], environ, terminal=False) is None

    result = jit("status", "--check")

    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert document["broker_asked"] is True and document["broker_answered"] is True
    assert {r.path for r in fake.requests} >= {"/v1/whoami", "/v1/grants?status=active"}
