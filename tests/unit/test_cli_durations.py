"""Durations in human units on every command that takes one, refused out of the broker's range
with the range in human units, and network failures blamed on the right party (issue 10,
trap 5). Against the signature-checking fake broker of test_cli."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jit_cli import main
from jit_cli.errors import ExitCode
from jit_cli.formats import check_duration, human_duration, parse_duration
from tests.unit import test_cli, test_cli_session
from tests.unit.test_cli import GRANT, ISSUED, FakeBroker, Reply, Result

# the fake broker and the isolated AWS environment of test_cli, as fixtures here too
fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env

COMMANDS_WITH_A_DURATION = [
    ["request", "read-only", "--reason", "r"],
    ["configure", "read-only", "--reason", "r"],
    ["credential-process", "read-only", "--reason", "r"],
    ["exec", "read-only", "--reason", "r", "--", "true"],
    ["env", "read-only", "--reason", "r"],
    ["console", "read-only", "--reason", "r"],
]


@pytest.fixture
def jit(capsys: pytest.CaptureFixture[str], fake: FakeBroker, signer_env: None):
    def run(*args: str) -> Result:
        code = main.main(["--api-url", fake.url, *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def with_duration(command: list[str], text: str) -> list[str]:
    cut = command.index("--") if "--" in command else len(command)
    return [*command[:cut], f"--duration={text}", *command[cut:]]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("90min", 5400), ("1h30m", 5400), ("1h30min", 5400), ("1d", 86400)],
)
def test_durations_read_minutes_as_min_and_days_as_d(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(43200, "12h"), (5400, "1h30m"), (900, "15m"), (45, "45s"), (3661, "1h1m1s")],
)
def test_a_duration_is_shown_in_the_largest_units(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_the_cli_range_is_the_brokers_range() -> None:
    from jit_broker import naming

    assert check_duration("15m", naming.MIN_SESSION_SECONDS) == naming.MIN_SESSION_SECONDS
    assert check_duration("12h", naming.MAX_WINDOW_SECONDS) == naming.MAX_WINDOW_SECONDS
    for seconds in (naming.MIN_SESSION_SECONDS - 1, naming.MAX_WINDOW_SECONDS + 1):
        with pytest.raises(ValueError):
            check_duration("x", seconds)


@pytest.mark.parametrize("command", COMMANDS_WITH_A_DURATION, ids=lambda argv: argv[0])
@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("1d", "duration 1d is longer than the longest window, 12h"),
        ("5m", "duration 5m is shorter than the shortest window, 15m"),
        ("12h1s", "duration 12h1s is longer than the longest window, 12h"),
    ],
)
def test_an_out_of_range_duration_is_refused_with_the_range_in_human_units_before_anything(
    jit, fake: FakeBroker, command: list[str], text: str, sentence: str
) -> None:
    result = jit(*with_duration(command, text))

    assert (result.code, result.out) == (ExitCode.USAGE, "")
    assert result.err.endswith(f"jit: error: argument --duration: {sentence} (usage)\n")
    assert "invalid _duration value" not in result.err and "Input should" not in result.err
    assert fake.requests == []


def test_a_duration_in_minutes_as_min_is_sent_as_seconds(jit, fake: FakeBroker) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(201, {"grant": GRANT, "credentials": ISSUED})

    result = jit("request", "read-only", "--reason", "r", "--duration", "90min")

    assert result.code == 0, result.err
    assert json.loads(fake.requests[-1].body)["duration"] == 5400


# ---------------------------------------------------------------- who failed


def test_each_party_that_fails_has_its_own_exit_code() -> None:
    assert len({ExitCode.UNAVAILABLE, ExitCode.AWS_UNAVAILABLE, ExitCode.NO_CREDENTIALS}) == 3


def test_a_federation_endpoint_that_cannot_be_reached_is_not_blamed_on_the_broker(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    test_cli_session.Sessions(fake)
    monkeypatch.setenv("JIT_FEDERATION_URL", f"http://127.0.0.1:{test_cli.free_port()}/federation")

    result = jit("console", "s3-read", "--reason", "r")

    assert (result.code, result.out) == (ExitCode.AWS_UNAVAILABLE, "")
    assert "cannot reach the AWS sign-in federation endpoint at 127.0.0.1:" in result.err
    assert "(federation_unreachable)" in result.err
    assert "broker" not in result.err.replace("not the broker", "")


def test_a_federation_endpoint_that_refuses_is_its_own_failure(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    test_cli_session.Sessions(fake)
    refusing = RefusingServer()
    monkeypatch.setenv("JIT_FEDERATION_URL", refusing.url)
    try:
        result = jit("console", "s3-read", "--reason", "r")
    finally:
        refusing.stop()

    assert (result.code, result.out) == (ExitCode.AWS_UNAVAILABLE, "")
    assert "the federation endpoint refused the session (HTTP 503)" in result.err


def test_an_sts_endpoint_that_cannot_be_reached_is_not_blamed_on_the_broker(
    capsys, fake: FakeBroker, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[base]\naws_access_key_id = {test_cli.SIGNER_KEY}\n"
        f"aws_secret_access_key = {test_cli.SIGNER_SECRET}\n"
    )
    config = tmp_path / "config"
    config.write_text(
        "[profile assumer]\nrole_arn = arn:aws:iam::111122223333:role/Dev\n"
        "source_profile = base\nregion = us-east-1\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{test_cli.free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")

    code = main.main(["--api-url", fake.url, "--aws-profile", "assumer", "whoami"])

    captured = capsys.readouterr()
    assert (code, captured.out) == (ExitCode.AWS_UNAVAILABLE, "")
    assert "cannot reach the AWS endpoint that issues your credentials" in captured.err
    assert "(credentials_endpoint_unreachable)" in captured.err
    assert fake.requests == []


def test_a_broker_that_cannot_be_reached_is_named_as_the_broker(capsys, signer_env) -> None:
    code = main.main(["--api-url", f"http://127.0.0.1:{test_cli.free_port()}", "whoami"])

    captured = capsys.readouterr()
    assert (code, captured.out) == (ExitCode.UNAVAILABLE, "")
    assert "cannot reach the broker at 127.0.0.1:" in captured.err


class RefusingServer:
    """An HTTP endpoint that answers every GET with 503."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(503)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/federation"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
