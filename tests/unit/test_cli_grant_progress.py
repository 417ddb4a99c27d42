"""A new grant is slow on AWS (IAM makes its role assumable after several seconds): on a
terminal the CLI says what it waits for once the request has taken 1.5 s, and says nothing
otherwise. A fake broker answers only when the test lets it."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from jit_cli import main
from tests.unit import test_cli
from tests.unit.test_cli import GRANT, ISSUED, FakeBroker, Reply
from tests.unit.test_cli_commands import Terminal

WAITING = "waiting for AWS to make the role usable..."
ANSWER_SECONDS_WITHOUT_A_TERMINAL = 2.0  # longer than the 1.5 s after which a terminal is told


# The CLI tests' own fixtures: isolation from the developer's shell (autouse), the test
# signer's keys and the fake broker.
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env
fake = test_cli.fake


def slow_grant(release: threading.Event) -> Reply:
    """The broker's 201, sent only once ``release`` is set (at most 20 s)."""

    def answer() -> dict[str, Any]:
        release.wait(20)
        return {"grant": GRANT, "credentials": ISSUED}

    return Reply(201, answer)


REQUEST = ("request", "read-only", "--reason", "incident 42")
ENV = ("env", "read-only", "--reason", "incident 42", "--no-cache")  # the session path


def request(fake: FakeBroker, command: tuple[str, ...] = REQUEST) -> int:
    return main.main(["--api-url", fake.url, *command])


@pytest.mark.parametrize("command", [REQUEST, ENV], ids=["request", "env"])
def test_a_slow_grant_on_a_terminal_says_it_waits_for_aws_then_erases_the_line(
    fake: FakeBroker, signer_env: None, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    stderr = Terminal(tty=True)
    monkeypatch.setattr("sys.stderr", stderr)
    fake.routes["POST", "/v1/grants"] = slow_grant(stderr.written)  # answers once told

    code = request(fake, command)

    assert code == 0
    assert WAITING in stderr.getvalue()
    erased_then = stderr.getvalue().rsplit("\r\x1b[K", 1)[-1]  # the progress line is erased;
    assert all(line.startswith("jit: ") for line in erased_then.splitlines())  # decisions follow


def test_a_slow_grant_says_nothing_when_stderr_is_not_a_terminal(
    fake: FakeBroker, signer_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr = Terminal(tty=False)
    monkeypatch.setattr("sys.stderr", stderr)
    release = threading.Event()
    fake.routes["POST", "/v1/grants"] = slow_grant(release)
    timer = threading.Timer(ANSWER_SECONDS_WITHOUT_A_TERMINAL, release.set)
    timer.start()
    try:
        code = request(fake)
    finally:
        timer.cancel()

    assert code == 0
    assert stderr.getvalue() == ""


def test_a_quick_grant_on_a_terminal_draws_nothing(
    fake: FakeBroker, signer_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr = Terminal(tty=True)
    monkeypatch.setattr("sys.stderr", stderr)
    fake.routes["POST", "/v1/grants"] = Reply(201, {"grant": GRANT, "credentials": ISSUED})

    assert request(fake) == 0
    assert stderr.getvalue() == ""


def test_other_requests_keep_the_generic_message(
    fake: FakeBroker, signer_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr = Terminal(tty=True)
    monkeypatch.setattr("sys.stderr", stderr)
    fake.routes["GET", "/v1/grants"] = slow_grant(stderr.written)

    assert main.main(["--api-url", fake.url, "grants"]) == 0
    assert "waiting for the broker (GET /v1/grants)..." in stderr.getvalue()
    assert WAITING not in stderr.getvalue()
