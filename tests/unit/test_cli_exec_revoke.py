"""`jit exec PROFILE` without a command opens a subshell; a forgotten `--` gets a one-line
hint; `jit revoke PROFILE`, `--all` and `--reason`. Against the signature-checking fake
broker of test_cli, with `os.execvpe` recorded instead of run."""

from __future__ import annotations

import os
from typing import Any

import pytest

from jit_cli import cache
from jit_cli.errors import ExitCode
from tests.unit import test_cli, test_cli_session
from tests.unit.test_cli import FakeBroker, Reply
from tests.unit.test_cli_session import GRANT_ID, NOW, Sessions, grant

fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env
jit = test_cli_session.jit

OTHER_ID = "g-00000000000000000000000b"
THIRD_ID = "g-00000000000000000000000c"


class Exec:
    """What `jit exec` would have run."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str], dict[str, str]]] = []

    def __call__(self, program: str, argv: list[str], environment: dict[str, str]) -> Any:
        self.calls.append((program, list(argv), dict(environment)))
        raise SystemExit(0)  # execvpe never returns


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> Exec:
    recorder = Exec()
    monkeypatch.setattr("os.execvpe", recorder)
    return recorder


# ---------------------------------------------------------------- exec


def test_exec_without_a_command_opens_shell_with_the_credentials_and_a_prompt_variable(
    jit, fake: FakeBroker, execs: Exec, monkeypatch: pytest.MonkeyPatch
) -> None:
    Sessions(fake)
    monkeypatch.setenv("SHELL", "/usr/bin/zsh")

    with pytest.raises(SystemExit):
        jit("exec", "s3-read", "--reason", "look")

    [(program, argv, environment)] = execs.calls
    assert (program, argv) == ("/usr/bin/zsh", ["/usr/bin/zsh"])
    assert environment["JIT_PROMPT"] == "jit:s3-read"
    assert environment["JIT_GRANT_ID"] == GRANT_ID
    assert environment["AWS_ACCESS_KEY_ID"] == "ASIASESSION000000001"


def test_exec_without_a_command_and_without_shell_runs_bin_sh(
    jit, fake: FakeBroker, execs: Exec, monkeypatch: pytest.MonkeyPatch
) -> None:
    Sessions(fake)
    monkeypatch.delenv("SHELL", raising=False)

    with pytest.raises(SystemExit):
        jit("exec", "s3-read", "--reason", "look")

    assert [call[:2] for call in execs.calls] == [("/bin/sh", ["/bin/sh"])]


def test_exec_with_a_command_sets_no_prompt_variable(jit, fake: FakeBroker, execs: Exec) -> None:
    Sessions(fake)

    with pytest.raises(SystemExit):
        jit("exec", "s3-read", "--reason", "look", "--", "aws", "s3", "ls")

    [(program, argv, environment)] = execs.calls
    assert (program, argv) == ("aws", ["aws", "s3", "ls"])
    assert "JIT_PROMPT" not in environment


@pytest.mark.parametrize(
    ("words", "fixed"),
    [
        (("s3-read", "aws", "s3", "ls"), "exec s3-read -- aws s3 ls"),
        # argparse alone would choke on --output table (not one of jit's outputs)
        (("s3-read", "aws", "s3", "ls", "--output", "table"), "-- aws s3 ls --output table"),
        (("s3-read", "--reason", "R", "aws", "s3", "ls"), "exec s3-read --reason R -- aws s3 ls"),
    ],
    ids=["plain", "an-option-of-the-command", "after-jit-flags"],
)
def test_a_forgotten_separator_is_one_line_naming_the_command_to_type(
    jit, fake: FakeBroker, execs: Exec, words: tuple[str, ...], fixed: str
) -> None:
    result = jit("exec", *words)

    assert (result.code, result.out) == (ExitCode.USAGE, "")
    [line] = result.err.splitlines()
    assert line.startswith("jit: error: put -- before the command to run: jit --api-url ")
    assert line.endswith(f"{fixed} (usage)")
    assert fake.requests == [] and execs.calls == []


# ---------------------------------------------------------------- revoke


def active_grants(fake: FakeBroker, *grants: dict) -> None:
    fake.routes["GET", "/v1/grants?status=active"] = Reply(200, {"grants": list(grants)})
    for one in grants:
        fake.routes["POST", f"/v1/grants/{one['id']}/revoke"] = Reply(
            200, {"grant": {**one, "status": "revoked", "revoked_at": NOW}}
        )


def revoked_paths(fake: FakeBroker) -> list[str]:
    return [r.path for r in fake.requests if r.method == "POST"]


def test_revoke_profile_revokes_only_your_active_grants_of_that_profile(
    jit, fake: FakeBroker
) -> None:
    active_grants(
        fake,
        grant(GRANT_ID),
        grant(OTHER_ID, profile="ec2-admin"),
        grant(THIRD_ID, expires_at=NOW + 600),
    )

    result = jit("revoke", "s3-read")

    assert result.code == 0, result.err
    assert revoked_paths(fake) == [
        f"/v1/grants/{GRANT_ID}/revoke",
        f"/v1/grants/{THIRD_ID}/revoke",
    ]
    assert fake.requests[0].path == "/v1/grants?status=active"
    assert result.err.splitlines() == [
        f"jit: revoked grant {GRANT_ID} (s3-read)",
        f"jit: revoked grant {THIRD_ID} (s3-read)",
    ]


def test_revoke_all_revokes_every_active_grant_and_passes_the_reason(jit, fake: FakeBroker) -> None:
    active_grants(fake, grant(GRANT_ID), grant(OTHER_ID, profile="ec2-admin"))

    result = jit("revoke", "--all", "--reason", "end of shift")

    assert result.code == 0, result.err
    posts = [r for r in fake.requests if r.method == "POST"]
    assert [r.path for r in posts] == [
        f"/v1/grants/{GRANT_ID}/revoke",
        f"/v1/grants/{OTHER_ID}/revoke",
    ]
    assert [r.json for r in posts] == [{"reason": "end of shift"}] * 2


def test_revoke_grant_id_sends_the_reason_in_the_body(jit, fake: FakeBroker) -> None:
    active_grants(fake, grant(GRANT_ID))

    result = jit("revoke", GRANT_ID, "--reason", "done")

    assert result.code == 0, result.err
    [request] = fake.requests
    assert (request.path, request.json) == (f"/v1/grants/{GRANT_ID}/revoke", {"reason": "done"})


def test_revoke_profile_forgets_its_cached_sessions(jit, fake: FakeBroker) -> None:
    Sessions(fake)
    assert jit("credential-process", "s3-read", "--reason", "r").code == 0
    active_grants(fake, grant(GRANT_ID))

    assert jit("revoke", "s3-read").code == 0

    assert cache.grant_of_access_key("ASIASESSION000000001", dict(os.environ)) is None


def test_revoke_profile_without_an_active_grant_is_not_found_and_revokes_nothing(
    jit, fake: FakeBroker
) -> None:
    active_grants(fake, grant(OTHER_ID, profile="ec2-admin"))

    result = jit("revoke", "s3-read")

    assert (result.code, result.out) == (ExitCode.NOT_FOUND, "")
    assert "no active grant of profile 's3-read'" in result.err
    assert revoked_paths(fake) == []


@pytest.mark.parametrize("argv", [(), ("s3-read", "--all")], ids=["nothing", "both"])
def test_revoke_needs_exactly_one_of_a_target_or_all(jit, fake: FakeBroker, argv) -> None:
    result = jit("revoke", *argv)

    assert (result.code, result.out) == (ExitCode.USAGE, "")
    assert fake.requests == []
