"""credential-process, env, exec, console and the session cache against the signature-checking
fake broker of test_cli (a real HTTP server on 127.0.0.1), with a clock shifted by
JIT_CLOCK_OFFSET instead of waiting."""

from __future__ import annotations

import configparser
import json
import os
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from jit_cli import cache, entry, main
from jit_cli.errors import ExitCode
from tests.unit import test_cli
from tests.unit.test_cli import SIGNER_KEY, SIGNER_SECRET, SIGNER_TOKEN, FakeBroker, Reply, Result

# the fake broker and the isolated AWS environment of test_cli, as fixtures here too
fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env

NOW = int(time.time())
GRANT_ID = "g-00000000000000000000000a"


def grant(grant_id: str = GRANT_ID, expires_at: int = NOW + 7200, **extra: Any) -> dict:
    return {
        "id": grant_id,
        "profile": "s3-read",
        "status": "active",
        "expires_at": expires_at,
        **extra,
    }


def issued(number: int, expiration: int = NOW + 3600) -> dict:
    return {
        "access_key_id": f"ASIASESSION{number:09d}",
        "secret_access_key": f"secret/{number}+'quoted' $HOME",
        "session_token": f'token-{number};$(touch pwned)`id`"dq"\\end',
        "expiration": expiration,
    }


class Sessions:
    """The fake broker's grant and session routes, numbering each session it issues."""

    def __init__(self, fake: FakeBroker, grant_expires_at: int = NOW + 7200) -> None:
        self.fake = fake
        self.grant = grant(expires_at=grant_expires_at)
        self.count = 0
        fake.routes["POST", "/v1/grants"] = self.next_reply(201)
        fake.routes["POST", f"/v1/grants/{GRANT_ID}/credentials"] = self.next_reply(201)

    def next_reply(self, status: int) -> Reply:
        return Reply(status, self._issue)

    def _issue(self) -> dict[str, Any]:
        self.count += 1
        return {"grant": self.grant, "credentials": issued(self.count)}

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.fake.requests]


@pytest.fixture
def jit(capsys: pytest.CaptureFixture[str], fake: FakeBroker, signer_env: None):
    def run(*args: str) -> Result:
        code = main.main(["--api-url", fake.url, *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def process_args(fake: FakeBroker) -> list[str]:
    return ["credential-process", "s3-read", "--api-url", fake.url, "--reason", "r"]


# ---------------------------------------------------------------- credential-process


def test_credential_process_requests_a_grant_then_answers_from_the_cache(
    jit, fake: FakeBroker
) -> None:
    sessions = Sessions(fake)

    first = jit("credential-process", "s3-read", "--reason", "nightly checks")
    second = jit("credential-process", "s3-read", "--reason", "nightly checks")

    assert (first.code, second.code) == (0, 0)
    assert first.out == second.out
    document = json.loads(first.out)
    assert document["AccessKeyId"] == "ASIASESSION000000001"
    assert document["Version"] == 1
    assert sessions.paths() == ["POST /v1/grants"]
    body = fake.requests[0].json
    assert (body["profile"], body["reason"]) == ("s3-read", "nightly checks")


def test_credential_process_expiration_is_the_grant_end_when_that_comes_first(
    jit, fake: FakeBroker
) -> None:
    Sessions(fake, grant_expires_at=NOW + 1800)

    result = jit("credential-process", "s3-read", "--reason", "r")

    assert json.loads(result.out)["Expiration"] == cache.iso_utc(NOW + 1800)


def test_within_five_minutes_of_expiry_a_fresh_session_comes_from_the_same_grant(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = Sessions(fake)
    assert jit("credential-process", "s3-read", "--reason", "r").code == 0

    monkeypatch.setenv("JIT_CLOCK_OFFSET", str(NOW + 3600 - 299 - time.time()))
    refreshed = jit("credential-process", "s3-read", "--reason", "r")

    assert refreshed.code == 0
    assert json.loads(refreshed.out)["AccessKeyId"] == "ASIASESSION000000002"
    assert sessions.paths() == ["POST /v1/grants", f"POST /v1/grants/{GRANT_ID}/credentials"]


def test_more_than_five_minutes_left_is_still_a_hit(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = Sessions(fake)
    assert jit("credential-process", "s3-read", "--reason", "r").code == 0

    # 310 s before the session's end, whenever this test runs
    monkeypatch.setenv("JIT_CLOCK_OFFSET", str(NOW + 3600 - 310 - time.time()))
    assert jit("credential-process", "s3-read", "--reason", "r").code == 0

    assert sessions.paths() == ["POST /v1/grants"]


def test_an_ended_grant_leads_to_a_new_grant(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = Sessions(fake, grant_expires_at=NOW + 3600)
    assert jit("credential-process", "s3-read", "--reason", "r").code == 0

    monkeypatch.setenv("JIT_CLOCK_OFFSET", str(NOW + 3700 - time.time()))
    again = jit("credential-process", "s3-read", "--reason", "r")

    assert again.code == 0
    assert sessions.paths() == ["POST /v1/grants", "POST /v1/grants"]


def test_a_revoked_grant_answered_409_leads_to_a_new_grant(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = Sessions(fake)
    assert jit("credential-process", "s3-read", "--reason", "r").code == 0
    fake.routes["POST", f"/v1/grants/{GRANT_ID}/credentials"] = Reply(
        409, {"error": {"code": "grant_not_active", "message": "grant is revoked"}}
    )

    monkeypatch.setenv("JIT_CLOCK_OFFSET", str(NOW + 3400 - time.time()))
    again = jit("credential-process", "s3-read", "--reason", "r")

    assert again.code == 0, again.err
    assert sessions.paths() == [
        "POST /v1/grants",
        f"POST /v1/grants/{GRANT_ID}/credentials",
        "POST /v1/grants",
    ]


def test_an_active_grant_cap_reuses_the_existing_grant(jit, fake: FakeBroker) -> None:
    sessions = Sessions(fake)
    fake.routes["POST", "/v1/grants"] = Reply(
        429, {"error": {"code": "too_many_requests", "message": "one active grant at most"}}
    )
    fake.routes["GET", "/v1/grants?status=active"] = Reply(200, {"grants": [grant()]})

    result = jit("credential-process", "s3-read", "--no-cache")

    assert result.code == 0, result.err
    assert sessions.paths() == [
        "POST /v1/grants",
        "GET /v1/grants?status=active",
        f"POST /v1/grants/{GRANT_ID}/credentials",
    ]


def test_no_cache_neither_reads_nor_writes_the_cache(jit, fake: FakeBroker) -> None:
    sessions = Sessions(fake)

    jit("credential-process", "s3-read", "--reason", "r", "--no-cache")
    jit("credential-process", "s3-read", "--reason", "r", "--no-cache")

    assert sessions.paths() == ["POST /v1/grants", "POST /v1/grants"]
    assert not Path(cache.directory(os.environ)).exists()


def test_credential_process_never_signs_with_the_callers_aws_profile(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    Sessions(fake)
    monkeypatch.setenv("AWS_PROFILE", "jit-s3-read")  # the profile that runs us: would recurse

    result = jit("credential-process", "s3-read", "--reason", "r")

    assert result.code == 0, result.err
    assert fake.requests[0].signature_error is None


def test_credential_process_signs_with_the_recorded_aws_profile(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    Sessions(fake)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    credentials = tmp_path / "source-credentials"
    credentials.write_text(
        f"[work]\naws_access_key_id = {SIGNER_KEY}\naws_secret_access_key = {SIGNER_SECRET}\n"
        f"aws_session_token = {SIGNER_TOKEN}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))

    unsigned = jit("credential-process", "s3-read", "--reason", "r")
    signed = jit("credential-process", "s3-read", "--reason", "r", "--aws-profile", "work")

    assert unsigned.code == ExitCode.NO_CREDENTIALS and unsigned.out == ""
    assert signed.code == 0, signed.err


# ---------------------------------------------------------------- the cache itself


def cache_files() -> list[Path]:
    return sorted(Path(cache.directory(os.environ)).glob("*.json"))


def test_cache_directory_is_0700_and_files_0600(jit, fake: FakeBroker) -> None:
    Sessions(fake)
    jit("credential-process", "s3-read", "--reason", "r")

    [written] = cache_files()
    assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert [p.name for p in written.parent.iterdir() if p.name.startswith(".tmp-")] == []


@pytest.mark.parametrize(
    "spoil",
    [
        lambda path: path.write_text("{not json"),
        lambda path: path.write_text(json.dumps({**json.loads(path.read_text()), "version": 99})),
        lambda path: path.write_text(json.dumps({**json.loads(path.read_text()), "key": "0" * 64})),
        lambda path: path.write_text(
            json.dumps({**json.loads(path.read_text()), "credentials": {}})
        ),
        lambda path: path.chmod(0o644),
    ],
    ids=["corrupt", "other-version", "other-key", "no-credentials", "readable-by-others"],
)
def test_a_corrupt_or_foreign_cache_file_is_a_miss_and_is_replaced(
    jit, fake: FakeBroker, spoil: Any
) -> None:
    sessions = Sessions(fake)
    jit("credential-process", "s3-read", "--reason", "r")
    [written] = cache_files()
    spoil(written)

    again = jit("credential-process", "s3-read", "--reason", "r")

    assert again.code == 0, again.err
    assert json.loads(again.out)["AccessKeyId"] == "ASIASESSION000000002"
    assert sessions.count == 2
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_a_cache_file_that_is_a_symlink_is_a_miss(jit, fake: FakeBroker, tmp_path: Path) -> None:
    Sessions(fake)
    jit("credential-process", "s3-read", "--reason", "r")
    [written] = cache_files()
    elsewhere = tmp_path / "planted.json"
    elsewhere.write_bytes(written.read_bytes())
    elsewhere.chmod(0o600)
    written.unlink()
    written.symlink_to(elsewhere)

    assert cache.read(written.stem, dict(os.environ)) is None


def test_the_key_separates_api_url_identity_and_profile() -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKIA1"}
    identity = cache.signing_identity(None, env)
    base = cache.key("https://a/prod", identity, "profile", "s3-read")

    assert base == cache.key("https://a/prod/", identity, "profile", "s3-read")
    assert base != cache.key("https://b/prod", identity, "profile", "s3-read")
    assert base != cache.key("https://a/prod", identity, "profile", "s3-write")
    assert identity != cache.signing_identity(None, {"AWS_ACCESS_KEY_ID": "AKIA2"})
    assert identity != cache.signing_identity("work", env)


def test_editing_the_aws_credentials_file_changes_a_profiles_identity(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("[work]\naws_access_key_id = AKIA1\n")
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_CONFIG_FILE": "/nonexistent"}
    before = cache.signing_identity("work", env)

    credentials.write_text("[work]\naws_access_key_id = AKIA2222\n")

    assert cache.signing_identity("work", env) != before


def test_cache_clear_removes_every_entry(jit, fake: FakeBroker) -> None:
    sessions = Sessions(fake)
    jit("credential-process", "s3-read", "--reason", "r")
    assert len(cache_files()) == 1

    cleared = jit("cache", "clear")
    jit("credential-process", "s3-read", "--reason", "r")

    assert (cleared.code, json.loads(cleared.out)["removed"]) == (0, 1)
    assert sessions.count == 2


def test_revoke_forgets_the_cached_sessions_of_that_grant(jit, fake: FakeBroker) -> None:
    Sessions(fake)
    fake.routes["POST", f"/v1/grants/{GRANT_ID}/revoke"] = Reply(
        200, {"grant": grant(status="revoked")}
    )
    jit("credential-process", "s3-read", "--reason", "r")

    assert jit("revoke", GRANT_ID).code == 0
    assert cache_files() == []


def child_env(fake: FakeBroker, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "JIT_"))}
    env.update(
        AWS_ACCESS_KEY_ID=SIGNER_KEY,
        AWS_SECRET_ACCESS_KEY=SIGNER_SECRET,
        AWS_SESSION_TOKEN=SIGNER_TOKEN,
        AWS_CONFIG_FILE=str(tmp_path / "aws_config_file"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "aws_shared_credentials_file"),
        AWS_EC2_METADATA_DISABLED="true",
        XDG_CACHE_HOME=os.environ["XDG_CACHE_HOME"],
        XDG_CONFIG_HOME=os.environ["XDG_CONFIG_HOME"],
        **extra,
    )
    return env


JIT_ENTRY = [sys.executable, "-c", "from jit_cli.entry import entry; entry()"]


def test_two_concurrent_credential_processes_make_one_grant_and_agree(
    fake: FakeBroker, tmp_path: Path
) -> None:
    sessions = Sessions(fake)
    env = child_env(fake, tmp_path)
    procs = [
        subprocess.Popen(
            [*JIT_ENTRY, *process_args(fake)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]

    assert [proc.returncode for proc in procs] == [0, 0], outputs
    first, second = (json.loads(out) for out, _ in outputs)
    assert first == second
    assert sessions.paths() == ["POST /v1/grants"]
    [written] = cache_files()
    assert json.loads(written.read_text())["credentials"]["access_key_id"] == first["AccessKeyId"]


def test_the_cache_hit_path_imports_neither_boto3_botocore_nor_pydantic(
    jit, fake: FakeBroker, tmp_path: Path
) -> None:
    Sessions(fake)
    assert jit(*process_args(fake)[:2], "--reason", "r").code == 0
    program = (
        "import sys\n"
        "from jit_cli import entry\n"
        f"sys.argv = ['jit', *{process_args(fake)!r}]\n"
        "try:\n"
        "    entry.entry()\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'pydantic', 'jit_cli.main', 'argparse', 'urllib'))\n"
        "heavy += [m for m in sys.modules if m in ('jit_cli.main', 'jit_cli.broker')]\n"
        "print(repr(heavy), file=sys.stderr)\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", program],
        env=child_env(fake, tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["AccessKeyId"] == "ASIASESSION000000001"
    assert done.stderr.strip() == "[]"
    assert len(fake.requests) == 1


def test_the_fast_path_declines_what_it_does_not_understand() -> None:
    assert entry._parse(["s3-read", "--api-url", "u"]) == {"profile": "s3-read", "--api-url": "u"}
    assert entry._parse(["s3-read", "--reason=a b"]) == {"profile": "s3-read", "--reason": "a b"}
    assert entry._parse(["s3-read", "--no-cache"]) is None
    assert entry._parse(["s3-read", "--debug"]) is None
    assert entry._parse(["s3-read", "other"]) is None
    assert entry._parse(["--reason", "r"]) is None


# ---------------------------------------------------------------- env formats


def parse_sh(text: str, tmp_path: Path) -> list[str]:
    script = tmp_path / "env.sh"
    script.write_text(text)
    shell = subprocess.run(
        [
            "bash",
            "-c",
            'eval "$(cat "$1")"; printf "%s\\n" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" '
            '"$AWS_SESSION_TOKEN" "$AWS_CREDENTIAL_EXPIRATION"',
            "bash",
            str(script),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    return shell.stdout.splitlines()


def parse_fish(text: str) -> dict[str, str]:
    """fish's rules for `set -gx NAME 'word'`: inside single quotes only \\\\ and \\' escape."""
    values = {}
    for line in text.splitlines():
        assert line.startswith("set -gx "), line
        _, _, name, rest = line.split(" ", 3)
        assert rest.startswith("'") and rest.endswith("'"), rest
        body, value, index = rest[1:-1], [], 0
        while index < len(body):
            char = body[index]
            if char == "\\" and index + 1 < len(body) and body[index + 1] in "\\'":
                value.append(body[index + 1])
                index += 2
                continue
            assert char != "'", f"unescaped quote in {rest!r}"
            value.append(char)
            index += 1
        values[name] = "".join(value)
    return values


def test_env_sh_is_read_back_by_bash_without_running_anything(
    jit, fake: FakeBroker, tmp_path: Path
) -> None:
    Sessions(fake)

    result = jit("env", "s3-read", "--reason", "r", "--format", "sh")

    session = issued(1)
    assert parse_sh(result.out, tmp_path) == [
        session["access_key_id"],
        session["secret_access_key"],
        session["session_token"],
        cache.iso_utc(session["expiration"]),
    ]
    assert not (tmp_path / "pwned").exists()


def test_env_fish_quotes_every_value_by_fishs_rules(jit, fake: FakeBroker) -> None:
    Sessions(fake)

    result = jit("env", "s3-read", "--reason", "r", "--format", "fish")

    values = parse_fish(result.out)
    assert values["AWS_SESSION_TOKEN"] == issued(1)["session_token"]
    assert values["AWS_SECRET_ACCESS_KEY"] == issued(1)["secret_access_key"]


def test_env_json_is_the_credential_process_shape(jit, fake: FakeBroker) -> None:
    Sessions(fake)

    document = json.loads(jit("env", "s3-read", "--reason", "r", "--format", "json").out)

    assert set(document) == {
        "Version",
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
    }
    assert document["SessionToken"] == issued(1)["session_token"]


def test_env_ini_is_a_credentials_file_section_configparser_reads(jit, fake: FakeBroker) -> None:
    Sessions(fake)

    result = jit("env", "s3-read", "--reason", "r", "--format", "ini", "--section", "tmp")

    parser = configparser.RawConfigParser()
    parser.read_string(result.out)
    assert dict(parser["tmp"]) == {
        "aws_access_key_id": issued(1)["access_key_id"],
        "aws_secret_access_key": issued(1)["secret_access_key"],
        "aws_session_token": issued(1)["session_token"],
    }


# ---------------------------------------------------------------- exec


def run_exec(fake: FakeBroker, tmp_path: Path, *command: str, **extra: str):
    return subprocess.run(
        [*JIT_ENTRY, "exec", "s3-read", "--api-url", fake.url, "--reason", "r", "--", *command],
        env=child_env(fake, tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_exec_puts_credentials_region_and_grant_in_the_environment_without_aws_profile(
    fake: FakeBroker, tmp_path: Path
) -> None:
    Sessions(fake)
    fake.region = "eu-west-1"
    show = (
        "import json, os; print(json.dumps({k: os.environ.get(k) for k in ("
        "'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_REGION', "
        "'AWS_DEFAULT_REGION', 'JIT_GRANT_ID', 'AWS_PROFILE', 'AWS_CREDENTIAL_EXPIRATION')}))"
    )
    (tmp_path / "aws_shared_credentials_file").write_text(
        f"[work]\naws_access_key_id = {SIGNER_KEY}\naws_secret_access_key = {SIGNER_SECRET}\n"
        f"aws_session_token = {SIGNER_TOKEN}\n"
    )

    done = run_exec(
        fake, tmp_path, sys.executable, "-c", show, AWS_PROFILE="work", AWS_REGION="eu-west-1"
    )

    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {
        "AWS_ACCESS_KEY_ID": issued(1)["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": issued(1)["secret_access_key"],
        "AWS_SESSION_TOKEN": issued(1)["session_token"],
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "JIT_GRANT_ID": GRANT_ID,
        "AWS_PROFILE": None,
        "AWS_CREDENTIAL_EXPIRATION": cache.iso_utc(issued(1)["expiration"]),
    }


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (["sh", "-c", "exit 0"], 0),
        (["sh", "-c", "exit 7"], 7),
        (["sh", "-c", "kill -TERM $$"], -15),
        (["no-such-command-for-jit-tests"], ExitCode.COMMAND_NOT_FOUND),
        (["/etc/hostname"], ExitCode.NOT_EXECUTABLE),
    ],
    ids=["zero", "seven", "signal", "not-found", "not-executable"],
)
def test_exec_passes_the_commands_exit_status_through(
    fake: FakeBroker, tmp_path: Path, command: list[str], code: int
) -> None:
    Sessions(fake)
    if command[0].startswith("/") and not Path(command[0]).is_file():
        pytest.skip(f"{command[0]} does not exist here")

    done = run_exec(fake, tmp_path, *command)

    assert done.returncode == code, done.stderr
    assert done.stdout == ""


def test_exec_refuses_to_nest_inside_another_jit_exec(fake: FakeBroker, tmp_path: Path) -> None:
    Sessions(fake)

    done = run_exec(fake, tmp_path, "true", JIT_GRANT_ID="g-outer")

    assert (done.returncode, done.stdout) == (ExitCode.NESTED, "")
    assert "already inside `jit exec`" in done.stderr
    assert fake.requests == []


# ---------------------------------------------------------------- console


class FederationStandIn:
    """A local stand-in for signin.aws.amazon.com/federation."""

    def __init__(self) -> None:
        self.sessions: list[dict[str, str]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                if query.get("Action") == ["getSigninToken"]:
                    stand_in.sessions.append(json.loads(query["Session"][0]))
                    body = json.dumps({"SigninToken": "token+/=from-stand-in"}).encode()
                    self.send_response(200)
                else:
                    body = b"{}"
                    self.send_response(400)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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


def test_console_prints_a_login_url_built_through_the_federation_endpoint(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    Sessions(fake)
    federation = FederationStandIn()
    monkeypatch.setenv("JIT_FEDERATION_URL", federation.url)
    try:
        result = jit("console", "s3-read", "--reason", "r")
    finally:
        federation.stop()

    assert result.code == 0, result.err
    assert federation.sessions == [
        {
            "sessionId": issued(1)["access_key_id"],
            "sessionKey": issued(1)["secret_access_key"],
            "sessionToken": issued(1)["session_token"],
        }
    ]
    url = urlsplit(result.out.strip())
    assert f"{url.scheme}://{url.netloc}{url.path}" == federation.url
    assert parse_qs(url.query) == {
        "Action": ["login"],
        "Issuer": ["jit"],
        "Destination": ["https://console.aws.amazon.com/"],
        "SigninToken": ["token+/=from-stand-in"],
    }
    assert issued(1)["secret_access_key"] not in result.err


def test_console_refuses_a_plain_http_federation_endpoint_elsewhere(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIT_FEDERATION_URL", "http://signin.example.com/federation")

    result = jit("console", "s3-read", "--reason", "r")

    assert (result.code, result.out) == (ExitCode.USAGE, "")
    assert fake.requests == []
