"""Accounts in the CLI (issue 9): ``--account`` on every command that may request a grant, a
configured profile that pins one, a cache that never serves one account's session for
another, and the accounts and mode of profiles and grants in both outputs. Against the
signature-checking fake broker of test_cli."""

from __future__ import annotations

import configparser
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from jit_cli import entry, main
from jit_cli.errors import ExitCode
from tests.unit import test_cli, test_cli_session
from tests.unit.test_cli import GRANT, FakeBroker, Reply, Result

# the fake broker and the isolated AWS environment of test_cli, as fixtures here too
fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env

NOW = int(time.time())
MEMBER_A = "210987654321"
MEMBER_B = "345678901234"
BAD_ACCOUNTS = ["21098765432", "2109876543210", "21098765432x", "", "-210987654321"]


@pytest.fixture
def jit(capsys: pytest.CaptureFixture[str], fake: FakeBroker, signer_env: None):
    def run(*args: str) -> Result:
        code = main.main(["--api-url", fake.url, *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


class Grants:
    """POST /v1/grants answered with a grant in the account the request named (its own id and
    session per account), and sessions inside those grants."""

    def __init__(self, fake: FakeBroker) -> None:
        self.fake = fake
        self.made: list[str | None] = []
        fake.routes["POST", "/v1/grants"] = Reply(201, self._grant)

    @staticmethod
    def grant_id(account: str | None) -> str:
        return f"g-{(account or '0'):0>24}"

    def _grant(self) -> dict[str, Any]:
        account = self.fake.requests[-1].json.get("account")
        self.made.append(account)
        number = len(self.made)
        return {
            "grant": {
                "id": self.grant_id(account),
                "profile": "s3-read",
                "status": "active",
                "expires_at": NOW + 7200,
                "account": account,
                "mode": "per-grant-role",
            },
            "credentials": test_cli_session.issued(number),
        }

    def posted_accounts(self) -> list[str | None]:
        return [
            r.json.get("account")
            for r in self.fake.requests
            if (r.method, r.path) == ("POST", "/v1/grants")
        ]


def key_id(result: Result) -> str:
    assert result.code == 0, result.err
    return str(json.loads(result.out)["AccessKeyId"])


# ---------------------------------------------------------------- --account


def test_request_sends_the_account_and_prints_the_grants_account(jit, fake: FakeBroker) -> None:
    granted = {**GRANT, "account": MEMBER_A}
    fake.routes["POST", "/v1/grants"] = Reply(201, {"grant": granted, "credentials": {}})

    result = jit("request", "read-only", "--reason", "r", "--account", MEMBER_A)

    assert result.code == 0, result.err
    (request,) = fake.requests
    assert request.json["account"] == MEMBER_A
    assert json.loads(result.out)["account"] == MEMBER_A


@pytest.mark.parametrize("bad", BAD_ACCOUNTS)
@pytest.mark.parametrize(
    "command",
    [
        ["request", "s3-read", "--reason", "r"],
        ["credential-process", "s3-read"],
        ["env", "s3-read"],
        ["exec", "s3-read", "--", "true"],
        ["console", "s3-read"],
        ["configure", "s3-read"],
    ],
    ids=lambda argv: argv[0] if isinstance(argv, list) else argv,
)
def test_an_account_that_is_not_12_digits_is_a_usage_error_and_sends_nothing(
    jit, fake: FakeBroker, command: list[str], bad: str
) -> None:
    words = [*command[:2], f"--account={bad}", *command[2:]]

    result = jit(*words)

    assert (result.code, result.out) == (ExitCode.USAGE, "")
    assert "is 12 digits (usage)" in result.err
    assert fake.requests == []
    assert Path(os.environ["AWS_CONFIG_FILE"]).read_text() == ""


@pytest.mark.parametrize("command", ["credential-process", "env"])
def test_commands_that_request_a_grant_ask_for_the_account_given(
    jit, fake: FakeBroker, command: str
) -> None:
    grants = Grants(fake)

    result = jit(command, "s3-read", "--reason", "r", "--account", MEMBER_B)

    assert result.code == 0, result.err
    assert grants.posted_accounts() == [MEMBER_B]


# ---------------------------------------------------------------- the cache


def test_a_session_cached_for_one_account_is_never_served_for_another(
    jit, fake: FakeBroker
) -> None:
    grants = Grants(fake)

    in_a = key_id(jit("credential-process", "s3-read", "--reason", "r", "--account", MEMBER_A))
    in_b = key_id(jit("credential-process", "s3-read", "--reason", "r", "--account", MEMBER_B))
    unnamed = key_id(jit("credential-process", "s3-read", "--reason", "r"))
    again_a = key_id(jit("credential-process", "s3-read", "--reason", "r", "--account", MEMBER_A))

    assert grants.posted_accounts() == [MEMBER_A, MEMBER_B, None]
    assert len({in_a, in_b, unnamed}) == 3
    assert again_a == in_a  # from the cache: no fourth request


def test_the_fast_path_answers_each_account_from_its_own_entry(jit, fake: FakeBroker) -> None:
    Grants(fake)
    in_a = key_id(jit("credential-process", "s3-read", "--reason", "r", "--account", MEMBER_A))
    in_b = key_id(jit("credential-process", "s3-read", "--reason", "r", "--account", MEMBER_B))
    argv = ["s3-read", "--api-url", fake.url, "--reason", "r"]

    hit_a = entry.cached_credential_process([*argv, "--account", MEMBER_A])
    hit_b = entry.cached_credential_process([*argv, f"--account={MEMBER_B}"])
    miss = entry.cached_credential_process([*argv, "--account", "456789012345"])

    assert hit_a is not None and json.loads(hit_a)["AccessKeyId"] == in_a
    assert hit_b is not None and json.loads(hit_b)["AccessKeyId"] == in_b
    assert miss is None
    assert len(fake.requests) == 2


def test_a_pinned_account_is_answered_by_the_light_fast_path(
    jit, fake: FakeBroker, tmp_path: Path
) -> None:
    Grants(fake)
    argv = ["credential-process", "s3-read", "--api-url", fake.url, "--account", MEMBER_A]
    first = key_id(jit(*argv))
    program = (
        "import sys\n"
        "from jit_cli import entry\n"
        f"sys.argv = ['jit', *{argv!r}]\n"
        "try:\n"
        "    entry.entry()\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'pydantic', 'argparse', 'urllib') "
        "or m in ('jit_cli.main', 'jit_cli.broker'))\n"
        "print(repr(heavy), file=sys.stderr)\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", program],
        env=test_cli_session.child_env(fake, tmp_path),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["AccessKeyId"] == first
    assert done.stderr.strip() == "[]"
    assert len(fake.requests) == 1


def test_at_the_active_grant_cap_a_grant_in_another_account_is_not_reused(
    jit, fake: FakeBroker
) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(
        429, {"error": {"code": "too_many_requests", "message": "one active grant at most"}}
    )
    in_a = test_cli_session.grant(Grants.grant_id(MEMBER_A), account=MEMBER_A)
    fake.routes["GET", "/v1/grants?status=active"] = Reply(200, {"grants": [in_a]})
    fake.routes["POST", f"/v1/grants/{in_a['id']}/credentials"] = Reply(
        201, {"grant": in_a, "credentials": test_cli_session.issued(1)}
    )

    refused = jit("credential-process", "s3-read", "--no-cache", "--account", MEMBER_B)
    reused = jit("credential-process", "s3-read", "--no-cache", "--account", MEMBER_A)

    assert (refused.code, refused.out) == (ExitCode.RATE_LIMITED, "")
    assert reused.code == 0, reused.err
    assert [f"{r.method} {r.path}" for r in fake.requests] == [
        "POST /v1/grants",
        "GET /v1/grants?status=active",
        "POST /v1/grants",
        "GET /v1/grants?status=active",
        f"POST /v1/grants/{in_a['id']}/credentials",
    ]


# ---------------------------------------------------------------- configure


def test_configure_pins_the_account_in_the_credential_process_line(jit, fake: FakeBroker) -> None:
    s3_read = {
        **test_cli.PROFILES[0],
        "name": "s3-read",
        "accounts": [MEMBER_A, MEMBER_B],
        "reason_required": False,
    }
    fake.routes["GET", "/v1/profiles"] = Reply(200, {"profiles": [s3_read]})

    result = jit(
        "configure", "s3-read", "--aws-profile-name", "jit-s3-read-a", "--account", MEMBER_A
    )

    assert result.code == 0, result.err
    parser = configparser.RawConfigParser()
    parser.read(os.environ["AWS_CONFIG_FILE"])
    words = shlex.split(parser["profile jit-s3-read-a"]["credential_process"])
    assert words[1:] == [
        "credential-process",
        "s3-read",
        "--api-url",
        fake.url,
        "--account",
        MEMBER_A,
    ]
    assert entry._parse(words[2:]) == {
        "profile": "s3-read",
        "--api-url": fake.url,
        "--account": MEMBER_A,
    }
    assert [r.path for r in fake.requests] == ["/v1/profiles"]  # checked, nothing else


# ---------------------------------------------------------------- profiles and grants

PROFILES = [
    {**test_cli.PROFILES[0], "accounts": [MEMBER_A, MEMBER_B], "mode": "shared-role"},
    {**test_cli.PROFILES[0], "name": "home-only"},
]


def test_profiles_show_each_profiles_accounts_and_mode_as_text_and_json(
    jit, fake: FakeBroker
) -> None:
    fake.routes["GET", "/v1/profiles"] = Reply(200, {"profiles": PROFILES})

    header, *rows = jit("profiles", "--output", "text").out.splitlines()
    listed = json.loads(jit("profiles").out)

    assert header.split()[:3] == ["NAME", "ACCOUNTS", "MODE"]
    assert [row.split()[:3] for row in rows] == [
        ["read-only", f"{MEMBER_A},{MEMBER_B}", "shared-role"],
        ["home-only", "111122223333", "per-grant-role"],
    ]
    assert [(p["accounts"], p["mode"]) for p in listed] == [
        ([MEMBER_A, MEMBER_B], "shared-role"),
        (["111122223333"], "per-grant-role"),
    ]


def test_grants_text_shows_each_grants_account(jit, fake: FakeBroker) -> None:
    fake.routes["GET", "/v1/grants"] = Reply(200, {"grants": [{**GRANT, "account": MEMBER_A}]})

    header, row = jit("grants", "--output", "text").out.splitlines()

    assert header.split()[:3] == ["ID", "PROFILE", "ACCOUNT"]
    assert row.split()[:3] == [GRANT["id"], "read-only", MEMBER_A]


def test_grants_active_asks_the_broker_for_the_active_view(jit, fake: FakeBroker) -> None:
    ended = {**GRANT, "id": "g-ended", "status": "expired"}
    fake.routes["GET", "/v1/grants?status=active"] = Reply(200, {"grants": [GRANT, ended]})

    result = jit("grants", "--active")

    assert result.code == 0, result.err
    (request,) = fake.requests
    assert request.signature_error is None  # the query string is signed
    assert [g["id"] for g in json.loads(result.out)] == [GRANT["id"]]
