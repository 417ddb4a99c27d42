"""``jit status`` from the console script (entry.py): with no flag but ``--output`` it is
answered from the cache alone, without main, argparse or botocore, and says the broker was not
asked and what asks it; any other flag, no broker URL or a bad one goes to main (which asks
the broker: tests/unit/test_cli_status.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jit_cli import cache, entry, status
from tests.unit import test_cli_completion_dynamic
from tests.unit.test_cli_completion_dynamic import (
    API_URL,
    ENDED_GRANT,
    LIVE_GRANT,
    cached_session,
    child_env,
)

environ = test_cli_completion_dynamic.environ


def test_status_from_the_console_script_lists_cached_sessions_without_main_or_botocore(
    environ: dict[str, str],
) -> None:
    now = int(time.time())
    cached_session(environ, LIVE_GRANT, now + 1800)
    cached_session(environ, ENDED_GRANT, now - 60)
    program = (
        "import sys\n"
        "before = set(sys.modules)  # the interpreter's own (and a sitecustomize's)\n"
        "from jit_cli import entry\n"
        "sys.argv = ['jit', 'status']\n"
        "try:\n"
        "    entry.entry()\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "heavy = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
        "('boto3', 'botocore', 'pydantic', 'argparse', 'urllib', 'typing') "
        "or m in ('jit_cli.main', 'jit_cli.broker', 'jit_cli.session', 'jit_cli.config'))\n"
        "print(repr(heavy), file=sys.stderr)\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", program],
        env=child_env(environ),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # piped: JSON
    assert (document["broker_asked"], document["broker_answered"]) == (False, False)
    assert (document["whoami"], document["grants"]) == (None, None)
    assert document["api_url"] == API_URL
    assert document["signs_with"] == "keys AKIA...0001 in the environment"
    [session] = document["sessions"]  # the ended one is not listed
    assert (session["grant"], session["profile"]) == (LIVE_GRANT, "s3-read")
    assert 0 < session["seconds_left"] <= 1800
    assert "ASIA" not in done.stdout and "session-secret" not in done.stdout
    assert done.stderr.strip() == "[]"


def test_status_text_says_the_broker_was_not_asked_and_which_commands_ask_it(
    environ: dict[str, str],
) -> None:
    cached_session(environ, LIVE_GRANT, int(time.time()) + 7200)

    text = entry.cached_status(["status"], environ, terminal=True)

    assert text is not None
    lines = text.splitlines()
    assert lines[0] == f"broker:        {API_URL} (from the cache)"
    assert lines[1] == f"signing as:    {status.NOT_ASKED_WHO}"
    assert status.NOT_ASKED_GRANTS in lines
    assert lines[lines.index("cached sessions:") + 1].split()[:2] == ["s3-read", LIVE_GRANT]


@pytest.mark.parametrize(
    ("argv", "terminal", "shape"),
    [
        (["status"], False, "json"),
        (["status"], True, "text"),
        (["status", "--output", "json"], True, "json"),
        (["status", "--output=text"], False, "text"),
        (["--output", "text", "status"], False, "text"),
    ],
)
def test_status_output_is_json_when_piped_text_on_a_terminal_and_output_wins(
    environ: dict[str, str], argv: list[str], terminal: bool, shape: str
) -> None:
    text = entry.cached_status(argv, environ, terminal=terminal)

    assert text is not None
    assert text.startswith("{" if shape == "json" else "broker:")


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--api-url", API_URL],
        ["status", "--aws-profile", "admin"],
        ["status", "--profile", "admin"],
        ["status", "--debug"],
        ["status", "--output", "yaml"],
        ["status", "--output", "json", "--output", "text"],
        ["status", "extra"],
        ["grants"],
        [],
    ],
)
def test_status_with_any_other_flag_or_word_is_left_to_main(
    environ: dict[str, str], argv: list[str]
) -> None:
    assert entry.cached_status(argv, environ, terminal=False) is None


def test_status_without_a_usable_broker_url_is_left_to_main(environ: dict[str, str]) -> None:
    no_url = {k: v for k, v in environ.items() if k != "JIT_API_URL"}
    plain_http = {**environ, "JIT_API_URL": "http://broker.example/prod"}

    assert entry.cached_status(["status"], no_url, terminal=False) is None
    assert entry.cached_status(["status"], plain_http, terminal=False) is None


def test_status_finds_the_broker_in_the_config_file_like_main(
    environ: dict[str, str], tmp_path: Path
) -> None:
    del environ["JIT_API_URL"]
    config = Path(environ["XDG_CONFIG_HOME"]) / "jit" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        'default_environment = "prod"\n[environments.prod]\napi_url = "https://cfg.example/prod/"\n'
    )

    text = entry.cached_status(["status"], environ, terminal=False)

    assert text is not None and json.loads(text)["api_url"] == "https://cfg.example/prod"


def test_status_with_a_bad_config_file_goes_to_main_which_reports_it(
    environ: dict[str, str], tmp_path: Path
) -> None:
    del environ["JIT_API_URL"]
    config = Path(environ["XDG_CONFIG_HOME"]) / "jit" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("default_environment = [\n")
    env = child_env(environ)

    done = subprocess.run(
        [sys.executable, "-c", "from jit_cli.entry import entry; entry()", "status"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert done.returncode == 2 and "(bad_config)" in done.stderr
    assert done.stdout == ""


def test_status_signs_with_the_aws_profile_of_the_environment(environ: dict[str, str]) -> None:
    text = entry.cached_status(["status"], {**environ, "AWS_PROFILE": "admin"}, terminal=False)

    assert text is not None and json.loads(text)["signs_with"] == "AWS profile admin"


def test_time_left_and_local_time_need_nothing_but_the_cache_module() -> None:
    at = time.time()

    assert cache.time_left(65 * 60) == "1 h 05 min left"
    assert cache.time_left(-5) == "0 min left"
    assert cache.local_time(at, at) == time.strftime("%H:%M", time.localtime(at))
