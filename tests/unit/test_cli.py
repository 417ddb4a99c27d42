"""The ``jit`` CLI against a fake broker that verifies every request's SigV4 signature.

The fake broker is a real HTTP server on 127.0.0.1: it recomputes each request's signature
with botocore for the known test key from the bytes it received (so a wrong key, region,
service, header or body fails the request with 403) and answers with canned responses.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import socket
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from jit_cli import broker, main, signing
from jit_cli.commands import broker as broker_commands
from jit_cli.errors import ExitCode
from jit_cli.formats import parse_duration

SIGNER_KEY = "AKIDJITCLITEST000001"
SIGNER_SECRET = "signer/Secret+Key=JITCLITESTxxxxxxxxxxxx"
SIGNER_TOKEN = "signer-session-token-JITCLITEST//+=="

EXPIRATION = int(datetime(2026, 11, 28, 3, 35, 40, tzinfo=UTC).timestamp())
ISSUED = {
    "access_key_id": "ASIAISSUEDJITCLI0001",
    "secret_access_key": "issued/secret+key 'quoted' $HOME",
    "session_token": 'issued-token;$(touch pwned)`id`"dq"\\end',
    "expiration": EXPIRATION,
}
GRANT = {
    "id": "g-0123456789abcdef01234567",
    "profile": "read-only",
    "status": "active",
    "requester": "arn:aws:iam::111122223333:user/alice",
    "reason": "incident 42",
    "ticket": "INC-42",
    "created_at": EXPIRATION - 3600,
    "expires_at": EXPIRATION,
    "role_arn": "arn:aws:iam::111122223333:role/jit/jit-g-0123456789abcdef01234567",
    "sessions_issued": 1,
    "revoked_at": None,
    "account": "111122223333",
    "mode": "per-grant-role",
}
WHOAMI = {
    "arn": "arn:aws:iam::111122223333:user/alice",
    "requester_id": "arn:aws:iam::111122223333:user/alice",
    "account_id": "111122223333",
    "principal_type": "user",
    "name": "alice",
}
PROFILES = [
    {
        "name": "read-only",
        "description": "ReadOnlyAccess",
        "max_window": 3600,
        "max_session": 3600,
        "reason_required": True,
        "ticket_pattern": None,
        "accounts": ["111122223333"],
        "mode": "per-grant-role",
    }
]
NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


# ---------------------------------------------------------------- fake broker


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    signature_error: str | None

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def verify_sigv4(
    method: str, path: str, headers: dict[str, str], body: bytes, region: str
) -> str | None:
    """None if the request is signed by the test key for execute-api in ``region``."""
    match = AUTHORIZATION.fullmatch(headers.get("authorization", ""))
    if match is None:
        return "no SigV4 Authorization header"
    if (match["key"], match["region"], match["service"]) != (SIGNER_KEY, region, "execute-api"):
        return f"wrong credential scope {match.group(0)!r}"
    amz_date = headers.get("x-amz-date", "")
    if amz_date[:8] != match["date"]:
        return "x-amz-date does not match the credential scope date"
    signed = match["signed"].split(";")
    for required in ("host", "x-amz-date", "x-amz-security-token"):
        if required not in signed:
            return f"{required} is not signed"
    if body and "content-type" not in signed:
        return "content-type is not signed"
    if headers.get("x-amz-security-token") != SIGNER_TOKEN:
        return "wrong or missing session token"
    request = AWSRequest(
        method=method,
        url="http://" + headers["host"] + path,
        data=body,
        headers={name: headers[name] for name in signed},
    )
    request.context["timestamp"] = amz_date
    auth = SigV4Auth(
        ReadOnlyCredentials(SIGNER_KEY, SIGNER_SECRET, SIGNER_TOKEN), "execute-api", region
    )
    expected = auth.signature(
        auth.string_to_sign(request, auth.canonical_request(request)), request
    )
    if not hmac.compare_digest(expected, match["signature"]):
        return "signature does not match"
    return None


class FakeBroker:
    """Records requests, verifies their signature, answers from ``routes``."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Reply] = {}
        self.requests: list[Recorded] = []
        self.region = "us-east-1"
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                error = verify_sigv4(self.command, self.path, headers, body, fake.region)
                fake.requests.append(Recorded(self.command, self.path, headers, body, error))
                if error is not None:
                    reply = Reply(
                        403,
                        {"message": f"fake broker: {error}"},
                        {"x-amzn-ErrorType": "InvalidSignatureException"},
                    )
                else:
                    reply = fake.routes.get(
                        (self.command, self.path),
                        Reply(404, {"error": {"code": "not_found", "message": "no such route"}}),
                    )
                value = reply.body() if callable(reply.body) else reply.body
                payload = value if isinstance(value, bytes) else json.dumps(value).encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def isolated_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS/JIT/proxy variables from the developer's shell; empty AWS config files."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "JIT_")) or name.lower() in (
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
        ):
            monkeypatch.delenv(name)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "BOTO_CONFIG"):
        empty = tmp_path / name.lower()
        empty.write_text("")
        monkeypatch.setenv(name, str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def signer_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", SIGNER_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SIGNER_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SIGNER_TOKEN)


@pytest.fixture
def fake() -> Iterator[FakeBroker]:
    server = FakeBroker()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def jit(capsys: pytest.CaptureFixture[str], fake: FakeBroker, signer_env: None):
    """Run ``jit --api-url <fake> ARGS`` in-process and capture its output."""

    def run(*args: str, api_url: str | None = None) -> Result:
        code = main.main(["--api-url", api_url or fake.url, *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def only_request(fake: FakeBroker) -> Recorded:
    assert len(fake.requests) == 1, fake.requests
    request = fake.requests[0]
    assert request.signature_error is None
    return request


# ---------------------------------------------------------------- commands


def test_whoami_sends_a_signed_get_and_prints_the_identity(jit, fake: FakeBroker) -> None:
    fake.routes["GET", "/v1/whoami"] = Reply(200, WHOAMI)

    result = jit("whoami")

    assert (result.code, result.err) == (0, "")
    assert json.loads(result.out) == WHOAMI
    request = only_request(fake)
    assert (request.method, request.path, request.body) == ("GET", "/v1/whoami", b"")
    assert request.headers["user-agent"].startswith("jit-cli/")


def test_profiles_prints_the_list_pretty_with_sorted_keys(jit, fake: FakeBroker) -> None:
    fake.routes["GET", "/v1/profiles"] = Reply(200, {"profiles": PROFILES})

    result = jit("profiles")

    assert result.code == 0
    assert result.out == json.dumps(PROFILES, indent=2, sort_keys=True) + "\n"


def test_request_posts_profile_reason_ticket_duration_seconds_and_nonce(
    jit, fake: FakeBroker
) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(201, {"grant": GRANT, "credentials": ISSUED})

    result = jit(
        "request",
        "read-only",
        "--reason",
        "incident 42",
        "--duration",
        "1h30m",
        "--ticket",
        "INC-42",
    )

    assert (result.code, result.err) == (0, "")
    request = only_request(fake)
    assert (request.method, request.path) == ("POST", "/v1/grants")
    assert request.headers["content-type"] == "application/json"
    body = request.json
    assert NONCE.fullmatch(body.pop("nonce"))
    assert body == {
        "profile": "read-only",
        "reason": "incident 42",
        "ticket": "INC-42",
        "duration": 5400,
    }
    assert json.loads(result.out) == {
        "id": GRANT["id"],
        "profile": "read-only",
        "account": "111122223333",
        "status": "active",
        "expires_at": EXPIRATION,
    }
    for secret in (ISSUED["secret_access_key"], ISSUED["session_token"], ISSUED["access_key_id"]):
        assert secret not in result.out


def test_request_omits_duration_and_ticket_when_not_given_and_nonces_differ(
    jit, fake: FakeBroker
) -> None:
    fake.routes["POST", "/v1/grants"] = Reply(201, {"grant": GRANT, "credentials": ISSUED})

    assert jit("request", "read-only", "--reason", "r").code == 0
    assert jit("request", "read-only", "--reason", "r").code == 0

    first, second = (request.json for request in fake.requests)
    assert set(first) == {"profile", "reason", "nonce"}
    assert first["nonce"] != second["nonce"]


def test_creds_json_is_exactly_the_credential_process_shape(jit, fake: FakeBroker) -> None:
    path = f"/v1/grants/{GRANT['id']}/credentials"
    fake.routes["POST", path] = Reply(201, {"grant": GRANT, "credentials": ISSUED})

    result = jit("creds", GRANT["id"])

    assert (result.code, result.err) == (0, "")
    request = only_request(fake)
    assert (request.method, request.path) == ("POST", path)
    assert set(request.json) == {"nonce"} and NONCE.fullmatch(request.json["nonce"])
    document = json.loads(result.out)
    assert document == {
        "Version": 1,
        "AccessKeyId": ISSUED["access_key_id"],
        "SecretAccessKey": ISSUED["secret_access_key"],
        "SessionToken": ISSUED["session_token"],
        "Expiration": "2026-11-28T03:35:40Z",
    }
    assert type(document["Version"]) is int


def test_creds_sh_format_round_trips_through_bash_eval(
    jit, fake: FakeBroker, tmp_path: Path
) -> None:
    fake.routes["POST", f"/v1/grants/{GRANT['id']}/credentials"] = Reply(
        201, {"grant": GRANT, "credentials": ISSUED}
    )

    result = jit("creds", GRANT["id"], "--format", "sh")

    assert result.code == 0
    script = tmp_path / "creds.sh"
    script.write_text(result.out)
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
    assert shell.stdout.splitlines() == [
        ISSUED["access_key_id"],
        ISSUED["secret_access_key"],
        ISSUED["session_token"],
        "2026-11-28T03:35:40Z",
    ]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("argv", "method", "path", "body", "reply", "printed"),
    [
        (["grants"], "GET", "/v1/grants", b"", {"grants": [GRANT]}, [GRANT]),
        (["grant", GRANT["id"]], "GET", f"/v1/grants/{GRANT['id']}", b"", {"grant": GRANT}, GRANT),
        (
            ["revoke", GRANT["id"]],
            "POST",
            f"/v1/grants/{GRANT['id']}/revoke",
            b"{}",
            {"grant": GRANT},
            GRANT,
        ),
    ],
    ids=["grants", "grant", "revoke"],
)
def test_grant_commands_send_the_documented_request_and_print_json(
    jit, fake: FakeBroker, argv, method, path, body, reply, printed
) -> None:
    fake.routes[method, path] = Reply(200, reply)

    result = jit(*argv)

    assert (result.code, result.err) == (0, "")
    request = only_request(fake)
    assert (request.method, request.path, request.body) == (method, path, body)
    assert json.loads(result.out) == printed


def test_global_flags_are_accepted_after_the_command(capsys, fake: FakeBroker, signer_env) -> None:
    fake.routes["GET", "/v1/whoami"] = Reply(200, WHOAMI)

    code = main.main(["whoami", "--api-url", fake.url, "--region", "us-east-1"])

    assert code == 0
    assert json.loads(capsys.readouterr().out) == WHOAMI


def test_stage_path_in_the_api_url_is_kept_and_signed(jit, fake: FakeBroker) -> None:
    fake.routes["GET", "/prod/v1/whoami"] = Reply(200, WHOAMI)

    result = jit("whoami", api_url=fake.url + "/prod/")

    assert result.code == 0
    assert only_request(fake).path == "/prod/v1/whoami"


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("900", 900),
        ("900s", 900),
        ("30m", 1800),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2h", 7200),
        ("90m", 5400),
    ],
)
def test_duration_accepts_seconds_and_h_m_s_units(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "0", "0m", "1.5h", "-5m", "30M", " 30m", "1h 30m", "1m1h", "h", "PT1H", "٣"]
)
def test_bad_duration_is_a_usage_error_and_sends_nothing(jit, fake: FakeBroker, text: str) -> None:
    result = jit("request", "read-only", "--reason", "r", f"--duration={text}")

    assert result.code == ExitCode.USAGE
    assert "jit: error: argument --duration: invalid duration" in result.err
    assert result.out == ""
    assert fake.requests == []


@pytest.mark.parametrize(
    "argv",
    [
        ["grant", "../whoami"],
        ["creds", ""],
        ["request", "read-only", "--reason", "  "],
        ["whoami", "--bogus"],
    ],
    ids=["grant-id-path", "empty-grant-id", "blank-reason", "unknown-flag"],
)
def test_bad_arguments_are_usage_errors_and_send_nothing(jit, fake: FakeBroker, argv) -> None:
    result = jit(*argv)

    assert (result.code, result.out) == (ExitCode.USAGE, "")
    assert "jit: error: " in result.err and "(usage)" in result.err
    assert fake.requests == []


# ---------------------------------------------------------------- errors


def broker_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


def gateway_error(status: int, error_type: str, message: str, key: str = "message") -> Reply:
    return Reply(status, {key: message}, {"x-amzn-ErrorType": error_type})


@pytest.mark.parametrize(
    ("reply", "exit_code", "stderr"),
    [
        (
            broker_error(400, "bad_request", "duration must be at least 900"),
            2,
            "duration must be at least 900 (bad_request)",
        ),
        (
            broker_error(403, "not_entitled", "you may not request admin"),
            4,
            "you may not request admin (not_entitled)",
        ),
        (broker_error(404, "not_found", "no grant g-1"), 5, "no grant g-1 (not_found)"),
        (
            broker_error(409, "grant_not_active", "grant is revoked"),
            6,
            "grant is revoked (grant_not_active)",
        ),
        (broker_error(409, "replayed_request", "seen that nonce"), 6, "(replayed_request)"),
        (broker_error(429, "too_many_requests", "slow down"), 7, "slow down (too_many_requests)"),
        (broker_error(503, "ledger_unavailable", "try later"), 8, "try later (ledger_unavailable)"),
        (Reply(502, {"message": "Internal server error"}), 8, "Internal server error (http_502)"),
        (Reply(504, b"<html>gateway timeout</html>"), 8, "the broker answered HTTP 504 (http_504)"),
        (Reply(413, {"message": "Request Too Long"}), 2, "Request Too Long (http_413)"),
        (
            gateway_error(
                403,
                "InvalidSignatureException",
                "Signature expired: 20260101T000000Z is now earlier than 20260101T000500Z (20260101T001000Z - 5 min.)",
            ),
            9,
            "clock",
        ),
        (
            gateway_error(
                403,
                "InvalidSignatureException",
                "Signature not yet current: 20260101T002000Z is still later than 20260101T001500Z (20260101T001000Z + 5 min.)",
            ),
            9,
            "clock",
        ),
        (
            gateway_error(
                403,
                "UnrecognizedClientException:http://internal.amazon.com/coral/",
                "The security token included in the request is invalid.",
            ),
            4,
            "your AWS credentials are invalid or expired: sign in again and retry (UnrecognizedClientException)",
        ),
        (
            gateway_error(
                403,
                "ExpiredTokenException",
                "The security token included in the request is expired",
            ),
            4,
            "your AWS credentials are invalid or expired",
        ),
        (
            gateway_error(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            ),
            4,
            "check --api-url",
        ),
        (
            gateway_error(
                403,
                "AccessDeniedException",
                "User: arn:aws:iam::1:user/bob is not authorized to perform: execute-api:Invoke",
                key="Message",
            ),
            4,
            "is not authorized to perform: execute-api:Invoke (AccessDeniedException)",
        ),
        (
            gateway_error(429, "TooManyRequestsException", "Too Many Requests"),
            7,
            "Too Many Requests",
        ),
        (
            broker_error(418, "teapot", "\x1b[31mred\x1b[0m\nsecond line"),
            1,
            "jit: error: [31mred [0m second line (teapot)",
        ),
    ],
    ids=[
        "400",
        "403-broker",
        "404",
        "409-grant-ended",
        "409-replayed",
        "429",
        "503",
        "502-gateway",
        "504-html",
        "413-gateway",
        "signature-expired",
        "signature-not-yet-current",
        "unrecognized-client",
        "expired-token",
        "missing-auth-token",
        "access-denied",
        "429-gateway",
        "control-chars",
    ],
)
def test_error_status_maps_to_exit_code_with_message_on_stderr_and_empty_stdout(
    jit, fake: FakeBroker, reply: Reply, exit_code: int, stderr: str
) -> None:
    fake.routes["GET", f"/v1/grants/{GRANT['id']}"] = reply

    result = jit("grant", GRANT["id"])

    assert result.code == exit_code
    assert result.out == ""
    assert result.err.startswith("jit: error: ")
    assert stderr in result.err
    assert "\x1b" not in result.err


def test_gateway_signature_mismatch_never_echoes_the_canonical_request(
    jit, fake: FakeBroker
) -> None:
    leaked = (
        "The request signature we calculated does not match the signature you provided.\n\n"
        "The Canonical String for this request should have been\n'GET\n/v1/whoami\n\n"
        f"host:x\nx-amz-security-token:{SIGNER_TOKEN}\n'"
    )
    fake.routes["GET", "/v1/whoami"] = gateway_error(403, "InvalidSignatureException", leaked)

    result = jit("whoami")

    assert result.code == ExitCode.DENIED
    assert SIGNER_TOKEN not in result.err
    assert "could not verify the request signature" in result.err


def test_fake_broker_rejects_a_signature_made_with_the_wrong_secret(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-test-secret")
    fake.routes["GET", "/v1/whoami"] = Reply(200, WHOAMI)

    result = jit("whoami")

    assert (result.code, result.out) == (ExitCode.DENIED, "")
    assert fake.requests[0].signature_error == "signature does not match"


def test_signing_region_from_the_environment_reaches_the_signature(
    jit, fake: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    fake.region = "eu-west-1"
    fake.routes["GET", "/v1/whoami"] = Reply(200, WHOAMI)

    assert jit("whoami").code == 0
    assert only_request(fake).headers["authorization"].count("/eu-west-1/execute-api/") == 1


def test_redirect_is_not_followed_so_signed_headers_stay_with_the_broker(
    jit, fake: FakeBroker
) -> None:
    elsewhere = FakeBroker()
    elsewhere.start()
    try:
        fake.routes["GET", "/v1/whoami"] = Reply(
            302, b"", {"location": elsewhere.url + "/v1/whoami"}
        )

        result = jit("whoami")

        assert (result.code, result.out) == (ExitCode.UNEXPECTED, "")
        assert "redirect" in result.err
        assert elsewhere.requests == []
    finally:
        elsewhere.stop()


def test_a_2xx_answer_that_is_not_json_is_an_unexpected_error(jit, fake: FakeBroker) -> None:
    fake.routes["GET", "/v1/whoami"] = Reply(200, b"<html>login page</html>")

    result = jit("whoami")

    assert (result.code, result.out) == (ExitCode.UNEXPECTED, "")
    assert "(unexpected_response)" in result.err


def test_creds_answer_without_a_session_token_is_an_unexpected_error(jit, fake: FakeBroker) -> None:
    partial = {key: value for key, value in ISSUED.items() if key != "session_token"}
    fake.routes["POST", f"/v1/grants/{GRANT['id']}/credentials"] = Reply(
        201, {"grant": GRANT, "credentials": partial}
    )

    result = jit("creds", GRANT["id"])

    assert (result.code, result.out) == (ExitCode.UNEXPECTED, "")
    assert "credentials.session_token (unexpected_response)" in result.err
    assert ISSUED["secret_access_key"] not in result.err


def test_a_bug_exits_1_with_the_traceback_only_under_debug(jit, monkeypatch) -> None:
    def broken(client: Any, args: Any) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(broker_commands, "cmd_whoami", broken)

    plain = jit("whoami")
    debug = jit("whoami", "--debug")

    assert (plain.code, plain.out) == (ExitCode.UNEXPECTED, "")
    assert plain.err == "jit: error: unexpected RuntimeError: boom (internal)\n"
    assert "Traceback" not in plain.err and "Traceback" in debug.err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_refused_exits_8(capsys, signer_env) -> None:
    code = main.main(["--api-url", f"http://127.0.0.1:{free_port()}", "whoami"])

    captured = capsys.readouterr()
    assert (code, captured.out) == (ExitCode.UNAVAILABLE, "")
    assert "cannot reach the broker" in captured.err and "(broker_unreachable)" in captured.err


def test_a_broker_that_never_answers_times_out_with_exit_8(capsys, signer_env, monkeypatch) -> None:
    monkeypatch.setattr(broker, "TIMEOUT_SECONDS", 0.2)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        code = main.main(["--api-url", f"http://127.0.0.1:{silent.getsockname()[1]}", "whoami"])

    captured = capsys.readouterr()
    assert (code, captured.out) == (ExitCode.UNAVAILABLE, "")
    assert "timed out" in captured.err


# ---------------------------------------------------------------- configuration


def test_missing_credentials_exit_3_with_how_to_sign_in(capsys, fake: FakeBroker) -> None:
    code = main.main(["--api-url", fake.url, "whoami"])

    captured = capsys.readouterr()
    assert (code, captured.out) == (ExitCode.NO_CREDENTIALS, "")
    assert "no AWS credentials found" in captured.err
    assert "aws sso login" in captured.err and "(no_credentials)" in captured.err
    assert fake.requests == []


def test_unknown_aws_profile_exits_3(capsys, fake: FakeBroker) -> None:
    code = main.main(["--api-url", fake.url, "--aws-profile", "nope", "whoami"])

    captured = capsys.readouterr()
    assert (code, captured.out) == (ExitCode.NO_CREDENTIALS, "")
    assert "'nope' is not configured" in captured.err


def test_aws_profile_flag_signs_with_that_profiles_keys_and_region_not_the_grant_profile(
    capsys, fake: FakeBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[dev]\naws_access_key_id = {SIGNER_KEY}\naws_secret_access_key = {SIGNER_SECRET}\n"
        f"aws_session_token = {SIGNER_TOKEN}\n"
    )
    config = tmp_path / "config"
    config.write_text("[profile dev]\nregion = ap-southeast-2\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    fake.region = "ap-southeast-2"
    fake.routes["POST", "/v1/grants"] = Reply(201, {"grant": GRANT, "credentials": ISSUED})

    code = main.main(
        ["--api-url", fake.url, "request", "read-only", "--aws-profile", "dev", "--reason", "r"]
    )

    assert code == 0, capsys.readouterr().err
    assert only_request(fake).json["profile"] == "read-only"


def test_missing_api_url_exits_2_before_looking_for_credentials(capsys, signer_env) -> None:
    code = main.main(["whoami"])

    captured = capsys.readouterr()
    assert (code, captured.out) == (ExitCode.USAGE, "")
    assert captured.err.startswith("jit: error: no broker URL: pass --api-url or --broker, ")
    assert captured.err.endswith("(missing_api_url)\n")


def test_api_url_falls_back_to_jit_api_url(
    capsys, fake: FakeBroker, signer_env, monkeypatch
) -> None:
    monkeypatch.setenv("JIT_API_URL", fake.url)
    fake.routes["GET", "/v1/whoami"] = Reply(200, WHOAMI)

    assert main.main(["whoami"]) == 0
    assert only_request(fake).path == "/v1/whoami"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://broker.example.com", "insecure_api_url"),
        ("ftp://127.0.0.1/", "invalid_api_url"),
        ("https://user:pw@broker.example.com", "invalid_api_url"),
        ("broker.example.com", "invalid_api_url"),
    ],
)
def test_unsafe_or_malformed_api_url_is_a_usage_error(
    capsys, signer_env, url: str, code: str
) -> None:
    exit_code = main.main(["--api-url", url, "whoami"])

    captured = capsys.readouterr()
    assert (exit_code, captured.out) == (ExitCode.USAGE, "")
    assert captured.err.rstrip().endswith(f"({code})")


@pytest.mark.parametrize(
    ("flag", "url", "environ", "profile_region", "expected"),
    [
        (
            "eu-north-1",
            "https://a1.execute-api.us-west-2.amazonaws.com/prod",
            {"AWS_REGION": "eu-west-1"},
            "ap-south-1",
            ("eu-north-1", "--region"),
        ),
        (
            None,
            "https://a1.execute-api.us-west-2.amazonaws.com/prod",
            {"AWS_REGION": "eu-west-1"},
            "ap-south-1",
            ("us-west-2", "api url"),
        ),
        (
            None,
            "https://api.example.com",
            {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-2"},
            "ap-south-1",
            ("eu-west-1", "AWS_REGION"),
        ),
        (
            None,
            "https://api.example.com",
            {"AWS_DEFAULT_REGION": "eu-west-2"},
            "ap-south-1",
            ("eu-west-2", "AWS_DEFAULT_REGION"),
        ),
        (None, "https://api.example.com", {}, "ap-south-1", ("ap-south-1", "profile")),
        (None, "http://127.0.0.1:8080", {}, None, ("us-east-1", "default")),
        (
            None,
            "https://x.execute-api.cn-north-1.amazonaws.com.cn/v",
            {},
            None,
            ("cn-north-1", "api url"),
        ),
        (None, "https://x.execute-api.evil.com/v", {}, None, ("us-east-1", "default")),
    ],
)
def test_signing_region_precedence(flag, url, environ, profile_region, expected) -> None:
    assert signing.resolve_region(flag, url, environ, profile_region) == expected


def test_sigv4_signer_matches_the_aws_published_get_vanilla_vector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda *a, **k: datetime(2015, 8, 30, 12, 36)
    )
    credentials = ReadOnlyCredentials(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None
    )

    headers = signing.sign(
        "GET",
        "https://example.amazonaws.com/",
        None,
        {"host": broker.host_header("https://example.amazonaws.com/")},
        credentials,
        "us-east-1",
        service="service",
    )

    assert headers["X-Amz-Date"] == "20150830T123600Z"
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )


# ---------------------------------------------------------------- secrets, help, start-up


def test_secrets_never_reach_stderr_even_with_debug(jit, fake: FakeBroker) -> None:
    fake.routes["POST", f"/v1/grants/{GRANT['id']}/credentials"] = Reply(
        201, {"grant": GRANT, "credentials": ISSUED}
    )
    fake.routes["GET", f"/v1/grants/{GRANT['id']}"] = broker_error(
        503, "aws_unavailable", "IAM is slow"
    )

    ok = jit("--debug", "creds", GRANT["id"], "--format", "sh")
    failed = jit("--debug", "grant", GRANT["id"])

    assert (ok.code, failed.code) == (0, ExitCode.UNAVAILABLE)
    assert "jit: debug: POST" in ok.err
    signatures = [r.headers["authorization"].rsplit("Signature=", 1)[1] for r in fake.requests]
    secrets = [
        SIGNER_SECRET,
        SIGNER_TOKEN,
        ISSUED["secret_access_key"],
        ISSUED["session_token"],
        *signatures,
    ]
    for secret in secrets:
        assert secret not in ok.err + failed.err


def test_help_epilog_lists_every_exit_code(capsys) -> None:
    assert main.main(["--help"]) == 0

    out = capsys.readouterr().out
    for code in ExitCode:
        assert re.search(rf"^ +{int(code)}  \S", out, re.MULTILINE), code


def test_help_and_argument_errors_do_not_import_botocore() -> None:
    program = """
import sys
from jit_cli import main
assert main.main(["--help"]) == 0
assert main.main(["request", "p", "--reason", "r", "--duration", "1d"]) == 2
assert main.main(["whoami"]) == 2
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("botocore", "boto3"))
assert not loaded, loaded
"""
    environ = {key: value for key, value in os.environ.items() if key != "JIT_API_URL"}
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=environ
    )

    assert done.returncode == 0, done.stderr


def test_local_passes_the_remaining_arguments_to_the_local_stack(monkeypatch, capsys) -> None:
    calls: list[list[str]] = []
    server = types.ModuleType("jit_local.server")

    def local_main(argv: list[str]) -> int:
        calls.append(argv)
        return 0

    server.main = local_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "jit_local.server", server)

    code = main.main(["local", "--port", "8080", "--help", "serve"])

    assert (code, calls) == (0, [["--port", "8080", "--help", "serve"]])


def test_local_without_the_local_stack_says_how_to_get_it_in_one_line_and_exits_2(
    monkeypatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "jit_local.server", None)  # a CLI-only install

    code = main.main(["local", "serve"])

    captured = capsys.readouterr()
    assert (code, captured.out) == (ExitCode.USAGE, "")
    assert captured.err == (
        "jit: error: jit local needs the local stack: in the repository run `make demo`, "
        "or install the jit-local package (local_unavailable)\n"
    )
