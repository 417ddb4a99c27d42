"""``jit configure`` asks the broker before writing, and ``jit init`` configures every profile
the caller may request (issue 10, trap 3). Against the signature-checking fake broker of
test_cli: a refusal exits non-zero with one sentence and leaves the AWS config untouched."""

from __future__ import annotations

import configparser
import json
import os
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from jit_cli import main
from jit_cli.errors import ExitCode
from tests.unit import test_cli
from tests.unit.test_cli import FakeBroker, Reply, Result

# the fake broker and the isolated AWS environment of test_cli, as fixtures here too
fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env

MEMBER_A = "210987654321"
MEMBER_B = "345678901234"
EXISTING = "[profile work]\nregion = eu-west-1\n"


def view(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": name,
        "max_window": 3600,
        "max_session": 3600,
        "reason_required": False,
        "ticket_pattern": None,
        "accounts": ["111122223333"],
        "mode": "per-grant-role",
        **fields,
    }


PROFILES = [
    view("s3-read"),
    view("s3-admin", reason_required=True),
    view("db-write", ticket_pattern="CHG-[0-9]+"),
    view("team-data-read", accounts=[MEMBER_A, MEMBER_B]),
]


@pytest.fixture
def jit(capsys: pytest.CaptureFixture[str], fake: FakeBroker, signer_env: None):
    fake.routes["GET", "/v1/profiles"] = Reply(200, {"profiles": PROFILES})

    def run(*args: str, api_url: str | None = "") -> Result:
        prefix = ["--api-url", api_url or fake.url] if api_url is not None else []
        code = main.main([*prefix, *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def aws_config() -> Path:
    return Path(os.environ["AWS_CONFIG_FILE"])


def sections() -> dict[str, list[str]]:
    """AWS profile name -> the credential_process words after the executable."""
    parser = configparser.RawConfigParser()
    parser.read_string(aws_config().read_text())
    return {
        name.removeprefix("profile "): shlex.split(parser[name]["credential_process"])[1:]
        for name in parser.sections()
        if "credential_process" in parser[name]
    }


# ---------------------------------------------------------------- configure


@pytest.mark.parametrize(
    ("argv", "code", "sentence"),
    [
        (
            ["s3-raed"],
            ExitCode.NOT_FOUND,
            "there is no profile 's3-raed' that you may request: did you mean 's3-read'? "
            "(you may request: db-write, s3-admin, s3-read, team-data-read) (unknown_profile)",
        ),
        (
            ["s3-admin"],
            ExitCode.USAGE,
            "profile 's3-admin' needs a reason: pass --reason (reason_required)",
        ),
        (
            ["db-write"],
            ExitCode.USAGE,
            "profile 'db-write' needs a ticket matching CHG-[0-9]+: pass --ticket (ticket_required)",
        ),
        (
            ["db-write", "--ticket", "INC-7"],
            ExitCode.USAGE,
            "ticket 'INC-7' does not match profile 'db-write''s pattern CHG-[0-9]+ "
            "(ticket_mismatch)",
        ),
        (
            ["s3-read", "--duration", "2h"],
            ExitCode.USAGE,
            "duration 2h is longer than profile 's3-read''s longest window, 1h (duration_too_long)",
        ),
        (
            ["team-data-read"],
            ExitCode.USAGE,
            f"profile 'team-data-read' names several accounts ({MEMBER_A}, {MEMBER_B}): "
            "pass --account (account_required)",
        ),
    ],
    ids=["typo", "no-reason", "no-ticket", "bad-ticket", "too-long", "no-account"],
)
def test_configure_refuses_what_the_broker_would_refuse_and_writes_nothing(
    jit, fake: FakeBroker, argv: list[str], code: ExitCode, sentence: str
) -> None:
    aws_config().write_text(EXISTING)

    result = jit("configure", *argv)

    assert (result.code, result.out) == (code, "")
    assert result.err == f"jit: error: {sentence}\n"
    assert aws_config().read_text() == EXISTING
    assert [(r.method, r.path, r.signature_error) for r in fake.requests] == [
        ("GET", "/v1/profiles", None)
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["s3-admin", "--reason", "rotate keys"],
        ["db-write", "--ticket", "CHG-12"],
        ["team-data-read", "--account", MEMBER_B],
        ["s3-read", "--duration", "1h"],
    ],
    ids=["reason", "ticket", "account", "duration"],
)
def test_configure_writes_the_profile_when_what_it_needs_is_given(jit, argv: list[str]) -> None:
    result = jit("configure", *argv)

    assert result.code == 0, result.err
    assert list(sections()) == [f"jit-{argv[0]}"]


def test_configure_checks_as_the_identity_credential_process_signs_with(
    jit, fake: FakeBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[work]\naws_access_key_id = AKIDWORKPROFILE00001\naws_secret_access_key = work/secret\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))

    jit("configure", "s3-read", "--aws-profile", "work")

    assert fake.requests[0].path == "/v1/profiles"
    assert "Credential=AKIDWORKPROFILE00001/" in fake.requests[0].headers["authorization"]


def test_configure_when_the_broker_is_unreachable_writes_nothing(jit) -> None:
    result = jit("configure", "s3-read", api_url=f"http://127.0.0.1:{test_cli.free_port()}")

    assert (result.code, result.out) == (ExitCode.UNAVAILABLE, "")
    assert aws_config().read_text() == ""


# ---------------------------------------------------------------- init


def cli_config() -> dict[str, Any]:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "jit" / "config.toml"
    return tomllib.loads(path.read_text())


def test_init_names_the_broker_and_configures_every_profile_the_caller_may_request(
    jit, fake: FakeBroker
) -> None:
    aws_config().write_text(EXISTING)

    result = jit("init", fake.url, "--ticket", "CHG-1", api_url=None)

    assert result.code == 0, result.err
    assert cli_config() == {
        "default_environment": "default",
        "environments": {"default": {"api_url": fake.url}},
    }
    written = sections()
    assert sorted(written) == [
        "jit-db-write",
        "jit-s3-read",
        f"jit-team-data-read-{MEMBER_A}",
        f"jit-team-data-read-{MEMBER_B}",
    ]
    assert written["jit-s3-read"][:4] == ["credential-process", "s3-read", "--api-url", fake.url]
    assert written[f"jit-team-data-read-{MEMBER_B}"][4:6] == ["--account", MEMBER_B]
    assert aws_config().read_text().startswith(EXISTING)
    answer = json.loads(result.out)
    assert answer["skipped"] == [
        {
            "aws_profile": "jit-s3-admin",
            "profile": "s3-admin",
            "why": "profile 's3-admin' needs a reason: pass --reason",
        }
    ]
    assert "jit: skipped jit-s3-admin: profile 's3-admin' needs a reason" in result.err


def test_init_with_a_reason_configures_the_profiles_that_need_one(jit, fake: FakeBroker) -> None:
    result = jit("init", fake.url, "--reason", "daily operations", api_url=None)

    assert result.code == 0, result.err
    assert "jit-s3-admin" in sections()
    assert sections()["jit-s3-admin"][-2:] == ["--reason", "daily operations"]
    assert [s["aws_profile"] for s in json.loads(result.out)["skipped"]] == ["jit-db-write"]


def test_init_adds_an_environment_to_an_existing_config_and_keeps_its_default(
    jit, fake: FakeBroker
) -> None:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "jit" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('default_environment = "prod"\n[environments.prod]\napi_url = "https://p"\n')

    result = jit("--broker", "local", "init", fake.url, api_url=None)

    assert result.code == 0, result.err
    assert cli_config()["default_environment"] == "prod"
    assert cli_config()["environments"]["local"] == {"api_url": fake.url}


def test_init_never_overwrites_an_environment_that_names_another_url(jit, fake: FakeBroker) -> None:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "jit" / "config.toml"
    path.parent.mkdir(parents=True)
    original = 'default_environment = "default"\n[environments.default]\napi_url = "https://p"\n'
    path.write_text(original)

    result = jit("init", fake.url, api_url=None)

    assert (result.code, result.out) == (ExitCode.USAGE, "")
    assert "(environment_exists)" in result.err
    assert path.read_text() == original
    assert aws_config().read_text() == ""
