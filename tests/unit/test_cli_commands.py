"""configure, configuration precedence, audit, --output text, completion, help and progress."""

from __future__ import annotations

import configparser
import io
import json
import os
import shlex
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from jit_cli import main, parser, progress
from jit_cli.errors import ExitCode
from tests.unit import test_cli
from tests.unit.test_cli import PROFILES, WHOAMI, FakeBroker, Reply, Result

# the fake broker and the isolated AWS environment of test_cli, as fixtures here too
fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env

OTHER_SECTIONS = (
    "# my settings\n[default]\nregion = eu-west-1   ; inline\n\n"
    "[profile work]\nsso_start_url = https://example.awsapps.com/start\n"
    "s3 =\n    max_concurrent_requests = 20\n"
)


@pytest.fixture
def jit(capsys: pytest.CaptureFixture[str], fake: FakeBroker, signer_env: None):
    def run(*args: str, api_url: str | None = "") -> Result:
        prefix = ["--api-url", api_url or fake.url] if api_url is not None else []
        code = main.main([*prefix, *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def aws_config() -> Path:
    return Path(os.environ["AWS_CONFIG_FILE"])


# ---------------------------------------------------------------- configure

S3_READ = {**PROFILES[0], "name": "s3-read"}


def signs_as_work(fake: FakeBroker) -> None:
    """AWS profile ``work`` holds the signer's keys; the broker lists s3-read."""
    fake.routes["GET", "/v1/profiles"] = Reply(200, {"profiles": [S3_READ]})
    credentials = Path(os.environ["AWS_SHARED_CREDENTIALS_FILE"])
    credentials.write_text(
        f"[work]\naws_access_key_id = {test_cli.SIGNER_KEY}\n"
        f"aws_secret_access_key = {test_cli.SIGNER_SECRET}\n"
        f"aws_session_token = {test_cli.SIGNER_TOKEN}\n"
    )


def test_configure_writes_a_credential_process_profile_and_keeps_other_sections(
    jit, fake: FakeBroker
) -> None:
    aws_config().write_text(OTHER_SECTIONS)
    aws_config().chmod(0o640)
    signs_as_work(fake)
    fake.region = "eu-west-1"  # --region below: the profile's region and the signing region

    result = jit(
        "configure",
        "s3-read",
        "--aws-profile",
        "work",
        "--reason",
        "nightly 'checks'",
        "--duration",
        "30m",
        "--region",
        "eu-west-1",
    )

    assert result.code == 0, result.err
    text = aws_config().read_text()
    assert text.startswith(OTHER_SECTIONS)
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    section = parser["profile jit-s3-read"]
    words = shlex.split(section["credential_process"])
    assert words[1:] == [
        "credential-process",
        "s3-read",
        "--api-url",
        fake.url,
        "--aws-profile",
        "work",
        "--reason",
        "nightly 'checks'",
        "--duration",
        "1800",
    ]
    assert Path(words[0]).name == "jit" and os.path.isabs(words[0])
    assert section["region"] == "eu-west-1"
    assert stat.S_IMODE(aws_config().stat().st_mode) == 0o640
    assert json.loads(result.out)["replaced"] is False
    assert [(r.path, r.signature_error) for r in fake.requests] == [("/v1/profiles", None)]


def test_configure_again_replaces_only_its_own_section(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.routes["GET", "/v1/profiles"] = Reply(200, {"profiles": [S3_READ]})
    monkeypatch.setenv("AWS_REGION", fake.region)  # not [default]'s region with its comment
    aws_config().write_text(OTHER_SECTIONS)
    jit("configure", "s3-read", "--aws-profile-name", "mine", "--reason", "first")
    with aws_config().open("a") as handle:
        handle.write("\n[profile after]\noutput = json\n")

    again = jit("configure", "s3-read", "--aws-profile-name", "mine", "--reason", "second")

    text = aws_config().read_text()
    assert json.loads(again.out)["replaced"] is True
    assert text.startswith(OTHER_SECTIONS)
    assert text.endswith("[profile after]\noutput = json\n")
    assert text.count("[profile mine]") == 1
    assert "second" in text and "first" not in text


def test_configure_refuses_a_signing_aws_profile_that_is_the_profile_itself(jit) -> None:
    result = jit("configure", "s3-read", "--aws-profile", "jit-s3-read")

    assert (result.code, result.out) == (ExitCode.USAGE, "")
    assert "(recursive_profile)" in result.err
    assert not aws_config().read_text()


def test_configure_refuses_a_reason_that_spans_lines(jit) -> None:
    result = jit("configure", "s3-read", "--reason", "one\n[profile evil]")

    assert (result.code, result.out) == (ExitCode.USAGE, "")
    assert not aws_config().read_text()


# ---------------------------------------------------------------- configuration precedence


def write_config(text: str) -> None:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "jit" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def environments(fake: FakeBroker) -> dict[str, str]:
    urls = {"prod": fake.url + "/prod", "dev": fake.url + "/dev", "env": fake.url + "/env"}
    write_config(
        'default_environment = "prod"\n'
        f'[environments.prod]\napi_url = "{urls["prod"]}"\n'
        f'[environments.dev]\napi_url = "{urls["dev"]}"\n'
    )
    for stage in ("prod", "dev", "env", "flag"):
        fake.routes["GET", f"/{stage}/v1/whoami"] = Reply(200, WHOAMI)
    return urls


@pytest.mark.parametrize(
    ("argv", "environ", "stage"),
    [
        (["--api-url", "{url}/flag", "--broker", "dev"], {"JIT_API_URL": "{url}/env"}, "flag"),
        (["--broker", "dev"], {"JIT_API_URL": "{url}/env"}, "dev"),
        ([], {"JIT_API_URL": "{url}/env", "JIT_ENV": "dev"}, "env"),
        ([], {"JIT_ENV": "dev"}, "dev"),
        ([], {}, "prod"),
    ],
    ids=["flag-wins", "broker-flag-over-variable", "variable-over-jit-env", "jit-env", "default"],
)
def test_api_url_precedence(
    jit, fake: FakeBroker, environments, monkeypatch: pytest.MonkeyPatch, argv, environ, stage
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value.format(url=fake.url))

    result = jit(*[word.format(url=fake.url) for word in argv], "whoami", api_url=None)

    assert result.code == 0, result.err
    assert [request.path for request in fake.requests] == [f"/{stage}/v1/whoami"]


def test_an_unknown_environment_is_a_usage_error_naming_the_known_ones(jit, environments) -> None:
    result = jit("--broker", "staging", "whoami", api_url=None)

    assert (result.code, result.out) == (ExitCode.USAGE, "")
    assert "known: dev, prod" in result.err


def test_a_malformed_config_file_is_a_usage_error(jit) -> None:
    write_config("default_environment = [")

    result = jit("whoami", api_url=None)

    assert (result.code, result.out) == (ExitCode.USAGE, "")
    assert "(bad_config)" in result.err


def test_aws_profile_wins_over_keys_in_the_environment(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "absent")
    fake.routes["GET", "/v1/whoami"] = Reply(200, WHOAMI)

    result = jit("whoami")

    assert result.code == ExitCode.NO_CREDENTIALS
    assert "'absent' is not configured" in result.err


# ---------------------------------------------------------------- audit (issue 3's route)


@pytest.mark.parametrize(
    ("argv", "body"),
    [
        ([], {"dry_run": False}),
        (["--dry-run"], {"dry_run": True}),
        (["--at", "1795842000"], {"dry_run": False, "at": 1795842000}),
        (["--dry-run", "--at", "2026-11-28T05:00:00Z"], {"dry_run": True, "at": 1795842000}),
        (["--at", "2026-11-28T06:00:00+01:00"], {"dry_run": False, "at": 1795842000}),
    ],
)
def test_audit_posts_dry_run_and_at_in_epoch_seconds_and_prints_the_report(
    jit, fake: FakeBroker, argv, body
) -> None:
    report = {"revoked": [], "removed_roles": ["jit-g-1"], "drift": []}
    fake.routes["POST", "/v1/audit"] = Reply(200, {"report": report})

    result = jit("audit", *argv)

    assert (result.code, json.loads(result.out)) == (0, report)
    assert [(r.method, r.path, r.json) for r in fake.requests] == [("POST", "/v1/audit", body)]


def test_audit_at_without_a_zone_is_refused_before_any_request(jit, fake: FakeBroker) -> None:
    result = jit("audit", "--at", "2026-11-28T05:00:00")

    assert (result.code, result.out) == (ExitCode.USAGE, "")
    assert fake.requests == []


@pytest.mark.parametrize(
    ("status", "code", "exit_code"),
    [(403, "not_entitled", ExitCode.DENIED), (400, "bad_request", ExitCode.USAGE)],
)
def test_audit_errors_map_to_exit_codes_with_nothing_on_stdout(
    jit, fake: FakeBroker, status, code, exit_code
) -> None:
    fake.routes["POST", "/v1/audit"] = Reply(status, {"error": {"code": code, "message": "no"}})

    result = jit("audit", "--at", "1795842000")

    assert (result.code, result.out) == (exit_code, "")


# ---------------------------------------------------------------- output, help, completion


def test_output_text_prints_a_table_of_profiles(jit, fake: FakeBroker) -> None:
    fake.routes["GET", "/v1/profiles"] = Reply(200, {"profiles": PROFILES})

    result = jit("profiles", "--output", "text")

    header, row = result.out.splitlines()
    assert header.split() == [
        "NAME",
        "ACCOUNTS",
        "MODE",
        "MAX_WINDOW",
        "MAX_SESSION",
        "REASON_REQUIRED",
        "DESCRIPTION",
    ]
    assert row.split() == [
        "read-only",
        "111122223333",
        "per-grant-role",
        "1h",
        "1h",
        "yes",
        "ReadOnlyAccess",
    ]


def test_output_text_prints_one_object_as_aligned_lines(jit, fake: FakeBroker) -> None:
    fake.routes["GET", "/v1/whoami"] = Reply(200, WHOAMI)

    result = jit("--output", "text", "whoami")

    lines = dict(line.split(None, 1) for line in result.out.splitlines())
    assert lines == WHOAMI


def subcommands() -> list[str]:
    return [name for name in parser.EXAMPLES]


@pytest.mark.parametrize("command", subcommands())
def test_every_command_has_help_with_examples(capsys, command: str) -> None:
    assert main.main([command, "--help"]) == 0

    out = capsys.readouterr().out
    examples = out.split("examples:\n", 1)[1]
    assert examples.strip() == parser.EXAMPLES[command].strip()
    assert f"jit {command}" in examples


def test_every_parser_command_has_examples() -> None:
    from jit_cli.completion import commands

    names = set(commands(main.build_parser())) - {"local"}
    assert names - set(parser.ALIASES) == set(parser.EXAMPLES)
    assert set(parser.ALIASES) <= names


def test_top_level_help_documents_the_configuration_precedence(capsys) -> None:
    assert main.main(["--help"]) == 0

    out = capsys.readouterr().out
    assert "--api-url > --broker NAME > JIT_API_URL > JIT_ENV=NAME > default_environment" in out
    assert "--aws-profile > AWS_PROFILE > AWS_ACCESS_KEY_ID" in out


def complete_in_bash(script: str, *words: str) -> list[str]:
    program = (
        f"{script}\nCOMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
        "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n_jit\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_bash_completion_completes_commands_and_their_options(jit) -> None:
    script = jit("completion", "bash").out

    assert complete_in_bash(script, "jit", "cre") == ["creds", "credential-process"]
    assert "--aws-profile-name" in complete_in_bash(script, "jit", "configure", "--aws-profile-")
    assert complete_in_bash(script, "jit", "env", "--fo") == ["--format"]


def test_zsh_and_fish_completion_name_every_command(jit) -> None:
    zsh = jit("completion", "zsh").out
    fish = jit("completion", "fish").out

    assert "bashcompinit" in zsh and "complete -F _jit jit" in zsh
    for command in parser.EXAMPLES:
        assert f"-a {command} " in fish


# ---------------------------------------------------------------- progress


class Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty
        self.written = threading.Event()

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.written.set()
        return super().write(text)


def test_progress_draws_and_then_erases_a_spinner_on_a_terminal() -> None:
    stream = Terminal(tty=True)

    with progress.progress("requesting a grant", stream=stream, delay=0):
        assert stream.written.wait(10)

    assert "requesting a grant..." in stream.getvalue()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_progress_is_silent_when_stderr_is_not_a_terminal() -> None:
    stream = Terminal(tty=False)

    with progress.progress("requesting a grant", stream=stream, delay=0):
        assert not stream.written.wait(0.3)

    assert stream.getvalue() == ""


def test_completion_offers_the_new_spellings_only(jit) -> None:
    script = jit("completion", "bash").out

    offered = complete_in_bash(script, "jit", "configure", "--")
    assert "--aws-profile" in offered and "--aws-profile-name" in offered
    assert not {"--source-profile", "--name", "--profile", "--env"} & set(offered)
