"""One word per thing in every ``jit`` command: PROFILE is the JIT profile, ``--aws-profile``
the AWS profile to sign with, ``--aws-profile-name`` the one ``jit configure`` writes,
``--broker NAME`` a broker of jit's config file, ``--format`` a credential shape (sh, fish,
json, ini) and ``--output`` a rendering (json, text). The spellings of earlier releases
still work, each with one deprecation line on stderr naming the new one (none in
credential-process, whose stderr the AWS CLI shows), and --help shows only the new ones."""

from __future__ import annotations

import argparse
import configparser
import json
import os
import re
import shlex
from pathlib import Path

import pytest

from jit_cli import main, parser
from jit_cli.formats import FORMATS
from tests.unit import test_cli, test_cli_commands
from tests.unit.test_cli import GRANT, ISSUED, FakeBroker, Reply, Result
from tests.unit.test_cli_session import Sessions

fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env

URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"


@pytest.fixture
def jit(capsys: pytest.CaptureFixture[str], fake: FakeBroker, signer_env: None):
    def run(*args: str) -> Result:
        code = main.main(["--api-url", fake.url, *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def parsed(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    args, _ = parser.parse(argv)
    return vars(args), capsys.readouterr().err


# ---------------------------------------------------------------- old spellings


RENAMED = [
    # (new argv, old argv, the attribute both set, its value, the deprecation line)
    (
        ["--aws-profile", "work", "whoami"],
        ["--profile", "work", "whoami"],
        "aws_profile",
        "work",
        "jit: --profile is deprecated, use --aws-profile",
    ),
    (
        ["whoami", "--aws-profile", "work"],
        ["whoami", "--profile", "work"],
        "aws_profile",
        "work",
        "jit: --profile is deprecated, use --aws-profile",
    ),
    (
        ["configure", "s3-read", "--aws-profile", "work"],
        ["configure", "s3-read", "--source-profile", "work"],
        "aws_profile",
        "work",
        "jit: --source-profile is deprecated, use --aws-profile",
    ),
    (
        ["init", URL, "--aws-profile", "work"],
        ["init", URL, "--source-profile", "work"],
        "aws_profile",
        "work",
        "jit: --source-profile is deprecated, use --aws-profile",
    ),
    (
        ["configure", "s3-read", "--aws-profile-name", "mine"],
        ["configure", "s3-read", "--name", "mine"],
        "aws_profile_name",
        "mine",
        "jit: --name is deprecated, use --aws-profile-name",
    ),
    (
        ["--broker", "dev", "whoami"],
        ["--env", "dev", "whoami"],
        "broker_name",
        "dev",
        "jit: --env is deprecated, use --broker",
    ),
    (
        ["init", URL, "--broker", "dev"],
        ["init", URL, "--env", "dev"],
        "broker_name",
        "dev",
        "jit: --env is deprecated, use --broker",
    ),
    (
        ["creds", GRANT["id"], "--format", "sh"],
        ["creds", GRANT["id"], "--format", "env"],
        "format",
        "sh",
        "jit: --format env is deprecated, use --format sh",
    ),
]
RENAMED_IDS = [
    "profile",
    "profile-after-command",
    "configure-source-profile",
    "init-source-profile",
    "configure-name",
    "env",
    "init-env",
    "creds-format-env",
]


@pytest.mark.parametrize(("new", "old", "attribute", "value", "line"), RENAMED, ids=RENAMED_IDS)
def test_a_new_spelling_parses_silently_and_its_old_one_the_same_with_one_deprecation_line(
    capsys, new: list[str], old: list[str], attribute: str, value: str, line: str
) -> None:
    new_args, new_err = parsed(new, capsys)
    old_args, old_err = parsed(old, capsys)

    assert (new_args[attribute], new_err) == (value, "")
    assert old_args == new_args
    assert old_err == line + "\n"


def test_old_spellings_before_and_after_the_command_each_get_their_line(capsys) -> None:
    args, err = parsed(["--profile", "work", "configure", "s3-read", "--name", "mine"], capsys)

    assert (args["aws_profile"], args["aws_profile_name"]) == ("work", "mine")
    assert err.splitlines() == [
        "jit: --profile is deprecated, use --aws-profile",
        "jit: --name is deprecated, use --aws-profile-name",
    ]


@pytest.mark.parametrize("old", [["--source-profile", "work"], ["--profile", "work"]])
def test_credential_process_takes_the_old_spelling_silently(capsys, old: list[str]) -> None:
    """Its stderr shows inside the AWS CLI on every call, and AWS config files written by
    earlier releases say --source-profile."""
    args, err = parsed(["credential-process", "s3-read", *old], capsys)

    assert (args["aws_profile"], err) == ("work", "")


def test_an_old_credential_process_line_signs_as_its_profile_and_prints_only_the_json(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    Sessions(fake)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[work]\naws_access_key_id = {test_cli.SIGNER_KEY}\n"
        f"aws_secret_access_key = {test_cli.SIGNER_SECRET}\n"
        f"aws_session_token = {test_cli.SIGNER_TOKEN}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))

    result = jit("credential-process", "s3-read", "--reason", "r", "--source-profile", "work")

    assert result.code == 0, result.err
    assert "deprecated" not in result.err
    assert json.loads(result.out)["AccessKeyId"] == "ASIASESSION000000001"
    assert fake.requests[0].signature_error is None


def test_configure_with_the_old_flag_writes_the_new_one(jit, fake: FakeBroker) -> None:
    test_cli_commands.signs_as_work(fake)

    result = jit(
        "configure", "s3-read", "--reason", "r", "--source-profile", "work", "--name", "mine"
    )

    assert result.code == 0, result.err
    config = configparser.RawConfigParser()
    config.read(os.environ["AWS_CONFIG_FILE"])
    words = shlex.split(config["profile mine"]["credential_process"])
    assert words[words.index("--aws-profile") + 1] == "work"
    assert "--source-profile" not in words
    assert result.err.splitlines()[:2] == [
        "jit: --source-profile is deprecated, use --aws-profile",
        "jit: --name is deprecated, use --aws-profile-name",
    ]


def test_an_unknown_format_is_a_usage_error_naming_the_four(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        parser.parse(["creds", GRANT["id"], "--format", "yaml"])

    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'yaml' (choose from sh, fish, json, ini) (usage)" in err


def test_env_never_took_format_env_and_still_does_not(capsys) -> None:
    with pytest.raises(SystemExit):
        parser.parse(["env", "s3-read", "--format", "env"])

    assert "invalid choice: 'env'" in capsys.readouterr().err


# ---------------------------------------------------------------- --help and the vocabulary


def parsers() -> dict[str, argparse.ArgumentParser]:
    """The top-level parser ("jit") and every command's, by name."""
    top = parser.build_parser()
    found = {"jit": top}
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def visible_options(sub: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """(long option, dest) of every option --help shows."""
    return [
        (option, action.dest)
        for action in sub._actions
        if action.help is not argparse.SUPPRESS
        for option in action.option_strings
        if option.startswith("--")
    ]


OLD_SPELLINGS = re.compile(r"(?<![\w-])(--profile|--source-profile|--env|--name)\b|format env")


@pytest.mark.parametrize("command", sorted(set(parsers()) - {"local"}))  # local: its own flags
def test_help_shows_only_the_new_spellings(capsys, command: str) -> None:
    argv = ["--help"] if command == "jit" else [command, "--help"]

    assert main.main(argv) == 0

    out = capsys.readouterr().out
    flags = out.split("examples:")[0]  # examples may show the AWS CLI's own --profile
    assert not OLD_SPELLINGS.search(flags), OLD_SPELLINGS.search(flags)


def test_the_same_option_means_the_same_thing_in_every_command() -> None:
    meanings: dict[str, set[str]] = {}
    spellings: dict[str, set[str]] = {}
    for sub in parsers().values():
        for option, dest in visible_options(sub):
            meanings.setdefault(option, set()).add(dest)
            spellings.setdefault(dest, set()).add(option)

    assert {option: dests for option, dests in meanings.items() if len(dests) > 1} == {}
    assert {dest: options for dest, options in spellings.items() if len(options) > 1} == {}


@pytest.mark.parametrize(
    ("dest", "option"),
    [
        ("aws_profile", "--aws-profile"),
        ("aws_profile_name", "--aws-profile-name"),
        ("broker_name", "--broker"),
        ("format", "--format"),
        ("output", "--output"),
    ],
)
def test_each_thing_has_exactly_its_one_word_in_help(dest: str, option: str) -> None:
    shown = {o for sub in parsers().values() for o, d in visible_options(sub) if d == dest}

    assert shown == {option}


def test_profile_alone_is_only_ever_the_jit_profile() -> None:
    for name, sub in parsers().items():
        for option, _ in visible_options(sub):
            assert "profile" not in option or option.startswith("--aws-profile"), (name, option)
        for action in sub._actions:
            if not action.option_strings and action.metavar == "PROFILE":
                assert action.dest == "profile_name", name
                assert action.help == "the JIT profile (see jit profiles)", name


def test_every_format_takes_the_same_four_shapes(capsys) -> None:
    formats = {
        name: action
        for name, sub in parsers().items()
        for action in sub._actions
        if "--format" in action.option_strings
    }

    assert set(formats) == {"creds", "env"}
    for name, action in formats.items():
        assert action.metavar == "{sh,fish,json,ini}", name
        for shape in FORMATS:
            words = [name, GRANT["id"] if name == "creds" else "s3-read", "--format", shape]
            assert parsed(words, capsys)[0]["format"] == shape


def test_output_is_only_a_rendering() -> None:
    outputs = {
        tuple(action.choices or ())
        for sub in parsers().values()
        for action in sub._actions
        if "--output" in action.option_strings
    }

    assert outputs == {("json", "text")}


# ---------------------------------------------------------------- creds in every shape


def test_creds_prints_the_fish_and_ini_shapes_that_env_prints(jit, fake: FakeBroker) -> None:
    fake.routes["POST", f"/v1/grants/{GRANT['id']}/credentials"] = Reply(
        201, {"grant": GRANT, "credentials": ISSUED}
    )

    fish = jit("creds", GRANT["id"], "--format", "fish")
    ini = jit("creds", GRANT["id"], "--format", "ini", "--section", "tmp")
    default_section = jit("creds", GRANT["id"], "--format", "ini")

    assert (fish.code, ini.code, default_section.code) == (0, 0, 0)
    assert f"set -gx AWS_ACCESS_KEY_ID '{ISSUED['access_key_id']}'" in fish.out.splitlines()
    section = configparser.RawConfigParser()
    section.read_string(ini.out)
    assert section["tmp"]["aws_session_token"] == ISSUED["session_token"]
    assert default_section.out.startswith(f"[jit-{GRANT['id']}]\n")
