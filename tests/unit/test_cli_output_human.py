"""People on a terminal read text, scripts on a pipe read JSON (issue 10, item 9).

Without ``--output``, a terminal gets tables with local times, the time left of an active
grant and windows in human units; a pipe or a file gets the same JSON as before (epoch
seconds). ``--output`` overrides either way.
"""

from __future__ import annotations

import json
import sys
import time

import pytest

from jit_cli import cache, output
from tests.unit import test_cli
from tests.unit.test_cli import GRANT, PROFILES, FakeBroker, Reply

fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env
jit = test_cli.jit


def as_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdout is a terminal: capsys's stream, made to say so (called in the test body, where
    capsys's stream is the one in place)."""
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)


def grants_now() -> tuple[float, list[dict]]:
    at = cache.now()
    active = {**GRANT, "created_at": int(at) - 600, "expires_at": int(at) + 42 * 60 + 30}
    revoked = {
        **active,
        "id": "g-revoked000000000000000001",
        "status": "revoked",
        "revoked_at": int(at) - 60,
    }
    return at, [active, revoked]


def test_on_a_terminal_grants_are_a_table_with_local_times_and_time_left(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_terminal(monkeypatch)
    at, grants = grants_now()
    fake.routes["GET", "/v1/grants"] = Reply(200, {"grants": grants})

    result = jit("grants")

    assert result.code == 0, result.err
    header, active, revoked = result.out.splitlines()
    assert header.split()[:5] == ["ID", "PROFILE", "ACCOUNT", "STATUS", "EXPIRES_AT"]
    ends = time.strftime("%H:%M", time.localtime(grants[0]["expires_at"]))
    if time.localtime(grants[0]["expires_at"])[:3] != time.localtime(at)[:3]:
        ends = time.strftime("%Y-%m-%d %H:%M", time.localtime(grants[0]["expires_at"]))
    assert f"{ends} (42 min left)" in active
    assert "left" not in revoked and "revoked" in revoked  # a revoked grant has no time left
    assert str(grants[0]["expires_at"]) not in result.out  # no epoch seconds for people


def test_piped_grants_are_the_same_json_as_before(jit, fake: FakeBroker) -> None:
    _, grants = grants_now()
    fake.routes["GET", "/v1/grants"] = Reply(200, {"grants": grants})

    result = jit("grants")

    assert json.loads(result.out)[0]["expires_at"] == grants[0]["expires_at"]


def test_output_json_wins_on_a_terminal_and_output_text_on_a_pipe(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    fake.routes["GET", "/v1/profiles"] = Reply(200, {"profiles": PROFILES})

    piped_text = jit("profiles", "--output", "text").out
    as_terminal(monkeypatch)
    terminal_json = jit("profiles", "--output", "json").out
    terminal_default = jit("profiles").out

    assert json.loads(terminal_json)[0]["max_window"] == 3600
    assert piped_text == terminal_default
    assert piped_text.splitlines()[1].split()[3:5] == ["1h", "1h"]  # windows in human units


@pytest.mark.parametrize(
    ("status", "ends_in", "suffix"),
    [
        ("active", 90 * 60, "(1 h 30 min left)"),
        ("active", -5, "(ended)"),
        ("expired", -5, ""),
        ("revoked", 600, ""),
    ],
)
def test_an_end_says_the_time_left_only_for_an_active_grant(
    status: str, ends_in: int, suffix: str
) -> None:
    at = 1_000_000_000.0
    row = {"id": "g-1", "status": status, "expires_at": int(at) + ends_in}

    cell = output.render([row], "text", ("expires_at",), at=at).splitlines()[1]

    assert cell == f"{cache.local_time(row['expires_at'], at)} {suffix}".strip()


def test_without_a_flag_a_stream_that_is_no_terminal_gets_json() -> None:
    class Stream:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    assert output.chosen(None, Stream(True)) == "text"  # type: ignore[arg-type]
    assert output.chosen(None, Stream(False)) == "json"  # type: ignore[arg-type]
    assert output.chosen("json", Stream(True)) == "json"  # type: ignore[arg-type]
    assert output.chosen(None, object()) == "json"  # type: ignore[arg-type]
