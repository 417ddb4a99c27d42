"""Trap 1: the CLI never signs as one of the broker's own sessions by accident.

After ``eval "$(jit env ...)"``, inside ``jit exec`` or with ``AWS_PROFILE=jit-s3-read``, the
credentials in reach are a grant's session; every ``jit`` command stops with one sentence
saying what to unset, before anything is sent (or, when only the broker can tell, as soon as
it refuses). Against the signature-checking fake broker of test_cli."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jit_broker import naming
from jit_cli import guard
from jit_cli.errors import ExitCode
from tests.unit import test_cli, test_cli_session
from tests.unit.test_cli import SIGNER_KEY, SIGNER_SECRET, SIGNER_TOKEN, WHOAMI, FakeBroker, Reply
from tests.unit.test_cli_session import GRANT_ID, Sessions, issued

fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env
jit = test_cli_session.jit

GRANT_ARN = f"arn:aws:sts::111122223333:assumed-role/jit-{GRANT_ID}/alice"
SHARED_ARN = "arn:aws:sts::111122223333:assumed-role/jit-s-s3-read-fast/alice"


def assert_refused(result: test_cli.Result, *unset: str) -> None:
    assert (result.code, result.out) == (ExitCode.USAGE, "")
    [line] = result.err.splitlines()
    assert line.endswith(f"({guard.CODE})"), line
    for name in unset:
        assert name in line, line


def test_the_role_name_patterns_are_the_brokers() -> None:
    assert guard._GRANT_ROLE_NAME.pattern == naming._GRANT_ROLE_NAME.pattern
    assert guard._SHARED_ROLE_NAME.pattern == naming._SHARED_ROLE_NAME.pattern


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (GRANT_ARN, GRANT_ARN),
        (SHARED_ARN, SHARED_ARN),
        (f"User: {GRANT_ARN} is not authorized to perform: execute-api:Invoke", GRANT_ARN),
        ("arn:aws:sts::111122223333:assumed-role/jit-other/alice", None),
        ("arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123/alice", None),
        ("arn:aws:iam::111122223333:user/jit-g-0123456789abcdef01234567", None),
    ],
    ids=["grant-role", "shared-role", "in-a-message", "other-jit-name", "sso", "a-user"],
)
def test_a_session_of_a_grant_or_shared_role_is_recognised_by_its_arn(
    text: str, found: str | None
) -> None:
    assert guard.jit_session_arn(text) == found


# ---------------------------------------------------------------- from the environment


def test_after_jit_env_every_command_stops_before_sending_and_says_what_to_unset(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    Sessions(fake)
    exported = jit("env", "s3-read", "--reason", "r")
    assert exported.code == 0, exported.err
    fake.requests.clear()
    for line in exported.out.splitlines():  # what eval would do
        name, _, value = line.removeprefix("export ").partition("=")
        monkeypatch.setenv(name, value.strip("'") if name == "JIT_GRANT_ID" else value)

    for command in (["grants"], ["whoami"], ["exec", "s3-read", "--", "true"], ["env", "x"]):
        result = jit(*command)
        if command[0] == "exec":  # exec's own nesting guard, as before
            assert result.code == ExitCode.NESTED
            continue
        assert_refused(result, "JIT_GRANT_ID", "AWS_SESSION_TOKEN", "jit env --unset")

    assert fake.requests == []


def test_keys_that_are_a_cached_session_are_refused_without_jit_grant_id(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    Sessions(fake)
    assert jit("credential-process", "s3-read", "--reason", "r").code == 0
    fake.requests.clear()
    session = issued(1)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", session["access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", session["secret_access_key"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", session["session_token"])

    result = jit("grants")

    assert_refused(result, GRANT_ID, "AWS_ACCESS_KEY_ID")
    assert fake.requests == []


def test_a_profile_whose_keys_are_a_cached_session_is_refused_before_sending(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    Sessions(fake)
    assert jit("credential-process", "s3-read", "--reason", "r").code == 0
    fake.requests.clear()
    session = issued(1)
    credentials = tmp_path / "pasted-credentials"
    credentials.write_text(
        f"[pasted]\naws_access_key_id = {session['access_key_id']}\n"
        f"aws_secret_access_key = {session['secret_access_key']}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))

    result = jit("--aws-profile", "pasted", "grants")

    assert_refused(result, GRANT_ID)
    assert fake.requests == []


def test_aws_profile_naming_a_jit_credential_process_profile_is_refused_unrun(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ran = tmp_path / "credential-process-ran"
    config = tmp_path / "config-with-jit"
    config.write_text(
        "[profile jit-s3-read]\n"
        f"credential_process = /opt/bin/jit credential-process s3-read --api-url {fake.url} "
        f"--reason r\n"
        "[profile other]\n"
        f"credential_process = sh -c 'touch {ran}'\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "jit-s3-read")

    from_variable = jit("grants")
    from_flag = jit("--aws-profile", "jit-s3-read", "exec", "s3-read", "--", "true")

    assert_refused(from_variable, "unset AWS_PROFILE", "'jit-s3-read'")
    assert_refused(from_flag, "'jit-s3-read'")
    assert "unset AWS_PROFILE" not in from_flag.err
    assert fake.requests == []
    assert not ran.exists()


def test_credential_process_run_with_a_grants_keys_and_no_aws_profile_is_refused(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIT_GRANT_ID", GRANT_ID)  # inside jit exec, `aws --profile jit-other`

    result = jit("credential-process", "other", "--reason", "r")

    assert_refused(result, "JIT_GRANT_ID")
    assert fake.requests == []


def test_an_ordinary_signer_with_a_stale_grant_id_but_a_named_profile_is_not_refused(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake.routes["GET", "/v1/whoami"] = Reply(200, WHOAMI)
    credentials = tmp_path / "work-credentials"
    credentials.write_text(
        f"[work]\naws_access_key_id = {SIGNER_KEY}\naws_secret_access_key = {SIGNER_SECRET}\n"
        f"aws_session_token = {SIGNER_TOKEN}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("JIT_GRANT_ID", GRANT_ID)

    result = jit("--aws-profile", "work", "whoami")

    assert result.code == 0, result.err


# ---------------------------------------------------------------- from the broker's answer


def test_the_brokers_refusal_of_its_own_session_is_explained(jit, fake: FakeBroker) -> None:
    fake.routes["GET", "/v1/grants"] = Reply(
        403,
        {
            "error": {
                "code": "broker_session_refused",
                "message": f"{GRANT_ARN} is a session of the broker's own role",
            }
        },
    )

    result = jit("grants")

    assert_refused(result, GRANT_ARN, "AWS_ACCESS_KEY_ID", "jit env --unset")
    assert [r.path for r in fake.requests] == ["/v1/grants"]


def test_a_denial_naming_no_arn_asks_whoami_once_and_explains_a_grant_session(
    jit, fake: FakeBroker
) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(
        403, {"error": {"code": "not_entitled", "message": "may not request s3-read"}}
    )
    fake.routes["GET", "/v1/whoami"] = Reply(200, {**WHOAMI, "arn": SHARED_ARN})

    result = jit("request", "s3-read", "--reason", "r")

    assert_refused(result, SHARED_ARN)
    assert [r.path for r in fake.requests] == ["/v1/grants", "/v1/whoami"]


def test_a_denial_of_an_ordinary_caller_is_left_as_the_broker_said(jit, fake: FakeBroker) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(
        403, {"error": {"code": "not_entitled", "message": "may not request s3-read"}}
    )
    fake.routes["GET", "/v1/whoami"] = Reply(200, WHOAMI)

    result = jit("request", "s3-read", "--reason", "r")

    assert result.code == ExitCode.DENIED
    assert "may not request s3-read (not_entitled)" in result.err


# ---------------------------------------------------------------- jit env and --unset


def test_jit_env_sets_jit_grant_id_and_env_unset_clears_everything_in_sh(
    jit, fake: FakeBroker, tmp_path: Path
) -> None:
    Sessions(fake)
    exported = jit("env", "s3-read", "--reason", "r").out
    unset = jit("env", "--unset")
    assert unset.code == 0, unset.err
    script = tmp_path / "both.sh"
    script.write_text(
        f"{exported}\n"
        'printf "%s\\n" "set:$JIT_GRANT_ID:${AWS_SESSION_TOKEN:+token}"\n'
        f"eval \"$(cat <<'EOF'\n{unset.out}EOF\n)\"\n"
        'env | grep -E "^(AWS_|JIT_)" || true\n'
    )

    shell = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, check=True, cwd=tmp_path, env={}
    )

    assert shell.stdout.splitlines() == [f"set:{GRANT_ID}:token"]


def test_jit_env_fish_sets_jit_grant_id_and_its_unset_lines_name_every_variable(
    jit, fake: FakeBroker
) -> None:
    Sessions(fake)
    exported = test_cli_session.parse_fish(jit("env", "s3-read", "--format", "fish").out)
    unset = jit("env", "--unset", "--format", "fish")

    assert exported["JIT_GRANT_ID"] == GRANT_ID
    assert unset.out.splitlines() == [f"set -e {name}" for name in exported]


@pytest.mark.parametrize("form", ["json", "ini"])
def test_env_unset_in_a_format_that_sets_nothing_is_a_usage_error(jit, form: str) -> None:
    result = jit("env", "--unset", "--format", form)

    assert (result.code, result.out) == (ExitCode.USAGE, "")


def test_env_without_a_profile_or_unset_is_a_usage_error(jit, fake: FakeBroker) -> None:
    result = jit("env")

    assert (result.code, result.out) == (ExitCode.USAGE, "")
    assert fake.requests == []


def test_env_json_still_has_only_the_credential_process_fields(jit, fake: FakeBroker) -> None:
    Sessions(fake)

    document = json.loads(jit("env", "s3-read", "--format", "json").out)

    assert "JIT_GRANT_ID" not in document


def test_the_guard_does_not_import_the_brokers_domain() -> None:
    program = (
        "import sys, jit_cli.main, jit_cli.guard\n"
        "print([m for m in sys.modules if m.split('.')[0] == 'jit_broker'])"
    )

    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )

    assert done.stdout.strip() == "[]"
