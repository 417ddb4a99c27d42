"""The local gateway verifies SigV4 like API Gateway's AWS_IAM authorizer and builds its event.

Requests are signed with botocore (SigV4Auth, service execute-api, us-east-1) at a frozen
time and sent over loopback with urllib or http.client. The gateway's clock is frozen too,
so the five-minute window is tested without sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from jit_local.credentials import CallerKey
from jit_local.gateway import GatewayError, LocalGateway, build_proxy_event, verify_sigv4

NOW = datetime(2026, 11, 28, 2, 15, 0, tzinfo=UTC)
ACCOUNT = "111122223333"

USER = CallerKey(
    access_key_id="AKIAALICE00000000001",
    secret_access_key="alice-secret-key",
    session_token=None,
    account_id=ACCOUNT,
    user_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
    caller="AIDAALICE0000000001",
    user="AIDAALICE0000000001",
    expires_at=None,
)
SESSION = CallerKey(
    access_key_id="ASIADEPLOYER0000001",
    secret_access_key="deployer-secret-key",
    session_token="deployer-session-token-XYZ",
    account_id=ACCOUNT,
    user_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/alice",
    caller="AROADEPLOYER0000001:alice",
    user="AROADEPLOYER0000001:alice",
    expires_at=(NOW + timedelta(hours=1)).timestamp(),
)
EXPIRED = CallerKey(
    access_key_id="ASIAEXPIRED00000001",
    secret_access_key="expired-secret-key",
    session_token="expired-session-token",
    account_id=ACCOUNT,
    user_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/bob",
    caller="AROADEPLOYER0000001:bob",
    user="AROADEPLOYER0000001:bob",
    expires_at=(NOW - timedelta(seconds=1)).timestamp(),
)
KEYS = {key.access_key_id: key for key in (USER, SESSION, EXPIRED)}

MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."


def credentials(key: CallerKey) -> Credentials:
    return Credentials(key.access_key_id, key.secret_access_key, key.session_token)


@dataclass
class RecordingHandler:
    """A Lambda handler that records what it is called with and answers a fixed response."""

    response: Any = field(
        default_factory=lambda: {"statusCode": 200, "headers": {}, "body": '{"ok":true}'}
    )
    error: Exception | None = None
    release: threading.Event | None = None
    calls: list[tuple[dict[str, Any], Any]] = field(default_factory=list)

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.calls.append((event, context))
        if self.release is not None:
            self.release.wait(10)
        if self.error is not None:
            raise self.error
        return self.response

    @property
    def event(self) -> dict[str, Any]:
        assert len(self.calls) == 1
        return self.calls[0][0]


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
def gateway(handler: RecordingHandler) -> Iterator[LocalGateway]:
    with LocalGateway(handler, KEYS.get, clock=NOW.timestamp) as running:
        yield running


def sign(
    url: str,
    *,
    key: CallerKey = USER,
    creds: Credentials | None = None,
    method: str = "GET",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    service: str = "execute-api",
    region: str = "us-east-1",
    at: datetime = NOW,
) -> AWSRequest:
    """A request signed by botocore as the CLI would sign it, at a frozen time."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    frozen = at.astimezone(UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=frozen):
        SigV4Auth(creds or credentials(key), service, region).add_auth(request)
    return request


def send(
    request: AWSRequest,
    *,
    url: str | None = None,
    body: bytes | None = None,
    drop: tuple[str, ...] = (),
    replace: dict[str, str] | None = None,
) -> Reply:
    """Send a (possibly tampered) request with urllib and return whatever comes back."""
    prepared = request.prepare()
    headers = {
        name: value
        for name, value in prepared.headers.items()
        if name.lower() not in {d.lower() for d in (*drop, "Content-Length")}
    }
    headers.update(replace or {})
    data = prepared.body if body is None else body
    outgoing = urllib.request.Request(
        url or prepared.url, data=data or None, headers=headers, method=request.method
    )
    try:
        with urllib.request.urlopen(outgoing, timeout=10) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


def assert_rejected(reply: Reply, handler: RecordingHandler, error_type: str, message: str) -> None:
    assert reply.status == 403
    assert reply.json == {"message": message}
    assert reply.headers["x-amzn-ErrorType"] == error_type
    assert reply.headers["Content-Type"] == "application/json"
    assert handler.calls == []


# --------------------------------------------------------------------------- rejections


def test_unsigned_request_is_missing_authentication_token(gateway, handler):
    reply = send(AWSRequest(method="GET", url=gateway.url + "/v1/whoami"))

    assert_rejected(
        reply, handler, "MissingAuthenticationTokenException", "Missing Authentication Token"
    )


def test_non_sigv4_authorization_lists_every_missing_parameter(gateway, handler):
    request = AWSRequest(
        method="GET",
        url=gateway.url + "/v1/whoami",
        headers={"Authorization": "Bearer abc.def", "X-Amz-Date": "20261128T021500Z"},
    )

    reply = send(request)

    assert_rejected(
        reply,
        handler,
        "IncompleteSignatureException",
        "Authorization header requires 'Credential' parameter. "
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization=Bearer abc.def",
    )


def test_signed_request_without_x_amz_date_is_incomplete(gateway, handler):
    request = sign(gateway.url + "/v1/whoami")

    reply = send(request, drop=("X-Amz-Date",))

    assert_rejected(
        reply,
        handler,
        "IncompleteSignatureException",
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        f"Authorization={request.headers['Authorization']}",
    )


def test_credential_without_five_elements_is_incomplete(gateway, handler):
    request = sign(gateway.url + "/v1/whoami")
    authorization = request.headers["Authorization"].replace("/aws4_request", "")

    reply = send(request, replace={"Authorization": authorization})

    assert_rejected(
        reply,
        handler,
        "IncompleteSignatureException",
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/"
        f"service/term, got '{USER.access_key_id}/20261128/us-east-1/execute-api'",
    )


def test_host_missing_from_signed_headers_is_invalid_signature(gateway, handler):
    request = sign(gateway.url + "/v1/whoami")
    authorization = request.headers["Authorization"]
    assert "SignedHeaders=host;x-amz-date," in authorization

    reply = send(
        request,
        replace={"Authorization": authorization.replace("host;x-amz-date", "x-amz-date")},
    )

    assert_rejected(
        reply,
        handler,
        "InvalidSignatureException",
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    )


def test_credential_scoped_to_another_service_is_invalid_signature(gateway, handler):
    reply = send(sign(gateway.url + "/v1/whoami", service="lambda"))

    assert_rejected(
        reply,
        handler,
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'execute-api'. ",
    )


def test_credential_scoped_to_another_region_is_invalid_signature(gateway, handler):
    reply = send(sign(gateway.url + "/v1/whoami", region="eu-west-1"))

    assert_rejected(
        reply,
        handler,
        "InvalidSignatureException",
        "Credential should be scoped to a valid region. ",
    )


def test_credential_scope_date_other_than_x_amz_date_is_invalid_signature(gateway, handler):
    request = sign(gateway.url + "/v1/whoami")
    authorization = request.headers["Authorization"].replace("/20261128/", "/20261127/")

    reply = send(request, replace={"Authorization": authorization})

    assert_rejected(
        reply,
        handler,
        "InvalidSignatureException",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20261127' != '20261128', from '20261128T021500Z'.",
    )


def test_unknown_access_key_is_unrecognized_client(gateway, handler):
    creds = Credentials("AKIAUNKNOWN000000001", "whatever")

    reply = send(sign(gateway.url + "/v1/whoami", creds=creds))

    assert_rejected(reply, handler, "UnrecognizedClientException", INVALID_TOKEN)


def test_session_key_without_its_token_is_unrecognized_client(gateway, handler):
    reply = send(sign(gateway.url + "/v1/whoami", key=SESSION), drop=("X-Amz-Security-Token",))

    assert_rejected(reply, handler, "UnrecognizedClientException", INVALID_TOKEN)


def test_session_key_with_another_token_is_unrecognized_client(gateway, handler):
    creds = Credentials(SESSION.access_key_id, SESSION.secret_access_key, "another-token")

    reply = send(sign(gateway.url + "/v1/whoami", creds=creds))

    assert_rejected(reply, handler, "UnrecognizedClientException", INVALID_TOKEN)


def test_session_token_sent_with_a_user_key_is_unrecognized_client(gateway, handler):
    creds = Credentials(USER.access_key_id, USER.secret_access_key, "a-token")

    reply = send(sign(gateway.url + "/v1/whoami", creds=creds))

    assert_rejected(reply, handler, "UnrecognizedClientException", INVALID_TOKEN)


def test_session_past_its_expiry_is_expired_token(gateway, handler):
    reply = send(sign(gateway.url + "/v1/whoami", key=EXPIRED))

    assert_rejected(
        reply,
        handler,
        "ExpiredTokenException",
        "The security token included in the request is expired",
    )


def test_request_signed_more_than_five_minutes_ago_is_expired(gateway, handler):
    signed_at = datetime(2026, 11, 28, 2, 0, 0, tzinfo=UTC)

    reply = send(sign(gateway.url + "/v1/whoami", at=signed_at))

    assert_rejected(
        reply,
        handler,
        "InvalidSignatureException",
        "Signature expired: 20261128T020000Z is now earlier than 20261128T021000Z "
        "(20261128T021500Z - 5 min.)",
    )


def test_request_signed_more_than_five_minutes_ahead_is_not_yet_current(gateway, handler):
    signed_at = datetime(2026, 11, 28, 2, 21, 0, tzinfo=UTC)

    reply = send(sign(gateway.url + "/v1/whoami", at=signed_at))

    assert_rejected(
        reply,
        handler,
        "InvalidSignatureException",
        "Signature not yet current: 20261128T022100Z is still later than 20261128T022000Z "
        "(20261128T021500Z + 5 min.)",
    )


@pytest.mark.parametrize("offset", [-300, 300], ids=["five-minutes-old", "five-minutes-ahead"])
def test_request_exactly_at_the_edge_of_the_window_is_accepted(gateway, handler, offset):
    reply = send(sign(gateway.url + "/v1/whoami", at=NOW + timedelta(seconds=offset)))

    assert reply.status == 200
    assert len(handler.calls) == 1


def _tampered_body(gateway: LocalGateway) -> Reply:
    request = sign(gateway.url + "/v1/grants", method="POST", body=b'{"profile":"readonly"}')
    return send(request, body=b'{"profile":"admin"}')


def _tampered_path(gateway: LocalGateway) -> Reply:
    return send(sign(gateway.url + "/v1/whoami"), url=gateway.url + "/v1/grants")


def _tampered_query(gateway: LocalGateway) -> Reply:
    request = sign(gateway.url + "/v1/grants?profile=readonly")
    return send(request, url=gateway.url + "/v1/grants?profile=admin")


def _tampered_signed_header(gateway: LocalGateway) -> Reply:
    request = sign(gateway.url + "/v1/grants", headers={"X-Jit-Profile": "readonly"})
    assert "x-jit-profile" in request.headers["Authorization"]
    return send(request, replace={"X-Jit-Profile": "admin"})


def _wrong_secret(gateway: LocalGateway) -> Reply:
    creds = Credentials(USER.access_key_id, "not-alice-secret")
    return send(sign(gateway.url + "/v1/whoami", creds=creds))


def _content_sha256_of_another_body(gateway: LocalGateway) -> Reply:
    # botocore signs the declared X-Amz-Content-SHA256 as the payload hash: a verifier that
    # trusted it would accept any body. The received body's own hash must be used.
    declared = hashlib.sha256(b'{"profile":"readonly"}').hexdigest()
    request = sign(
        gateway.url + "/v1/grants",
        method="POST",
        body=b'{"profile":"admin"}',
        headers={"X-Amz-Content-SHA256": declared},
    )
    return send(request)


@pytest.mark.parametrize(
    "tamper",
    [
        _tampered_body,
        _tampered_path,
        _tampered_query,
        _tampered_signed_header,
        _wrong_secret,
        _content_sha256_of_another_body,
    ],
)
def test_any_change_to_what_was_signed_is_signature_mismatch(gateway, handler, tamper):
    reply = tamper(gateway)

    assert_rejected(reply, handler, "InvalidSignatureException", MISMATCH)


def test_body_over_ten_megabytes_is_refused_with_413_before_verification(gateway, handler):
    connection = http.client.HTTPConnection(
        "127.0.0.1", int(gateway.url.rsplit(":", 1)[1]), timeout=10
    )
    try:
        connection.putrequest("POST", "/v1/grants")
        connection.putheader("Content-Length", str(10 * 1024 * 1024 + 1))
        connection.endheaders()
        response = connection.getresponse()
        status, body = response.status, response.read()
    finally:
        connection.close()

    assert status == 413
    assert json.loads(body) == {"message": "Request Too Long"}
    assert handler.calls == []


def test_presigned_query_string_authentication_is_refused():
    query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc"

    with pytest.raises(GatewayError) as raised:
        verify_sigv4("GET", "/v1/whoami", query, {}, b"", KEYS.get, "us-east-1", NOW.timestamp())

    assert raised.value.status == 403
    assert raised.value.error_type == "IncompleteSignatureException"


def test_date_header_stands_in_for_x_amz_date():
    # botocore signs with the Date header when the request already has one.
    request = sign(
        "http://127.0.0.1:8080/v1/whoami", headers={"Date": "Thu, 01 Jan 1970 00:00:00 GMT"}
    )
    assert "X-Amz-Date" not in request.headers
    headers = [*request.prepare().headers.items(), ("Host", "127.0.0.1:8080")]

    caller = verify_sigv4(
        "GET", "/v1/whoami", "", headers, b"", KEYS.get, "us-east-1", NOW.timestamp()
    )

    assert caller == USER


# --------------------------------------------------------------------------- accepted requests


def test_user_key_get_with_query_string_reaches_the_handler_as_a_proxy_event(gateway, handler):
    request = sign(
        gateway.url + "/v1/whoami?profile=read%20only&tag=a&tag=b",
        headers={"User-Agent": "jit-cli/0.1"},
    )

    reply = send(request)

    assert reply.status == 200
    assert reply.json == {"ok": True}
    event = handler.event
    assert event["resource"] == "/{proxy+}"
    assert event["path"] == "/v1/whoami"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"proxy": "v1/whoami"}
    assert event["queryStringParameters"] == {"profile": "read only", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {
        "profile": ["read only"],
        "tag": ["a", "b"],
    }
    assert event["stageVariables"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    assert event["headers"]["User-Agent"] == "jit-cli/0.1"
    assert event["multiValueHeaders"]["User-Agent"] == ["jit-cli/0.1"]
    context = event["requestContext"]
    assert context["accountId"] == "123456789012"
    assert context["apiId"] == "local0api1"
    assert context["resourcePath"] == "/{proxy+}"
    assert context["httpMethod"] == "GET"
    assert context["stage"] == "local"
    assert context["path"] == "/local/v1/whoami"
    assert context["protocol"] == "HTTP/1.1"
    assert context["requestTime"] == "28/Nov/2026:02:15:00 +0000"
    assert context["requestTimeEpoch"] == int(NOW.timestamp() * 1000)
    assert context["domainName"] == gateway.url.removeprefix("http://")
    assert context["identity"] == {
        "cognitoIdentityPoolId": None,
        "accountId": ACCOUNT,
        "cognitoIdentityId": None,
        "caller": USER.caller,
        "sourceIp": "127.0.0.1",
        "principalOrgId": None,
        "accessKey": USER.access_key_id,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": USER.user_arn,
        "userAgent": "jit-cli/0.1",
        "user": USER.user,
        "apiKey": None,
        "apiKeyId": None,
        "clientCert": None,
    }


def test_request_without_query_string_has_null_query_parameters(gateway, handler):
    assert send(sign(gateway.url + "/v1/whoami")).status == 200

    assert handler.event["queryStringParameters"] is None
    assert handler.event["multiValueQueryStringParameters"] is None


def test_session_key_identity_is_the_assumed_role_session(gateway, handler):
    reply = send(sign(gateway.url + "/v1/whoami", key=SESSION))

    assert reply.status == 200
    identity = handler.event["requestContext"]["identity"]
    assert identity["userArn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/alice"
    assert identity["caller"] == "AROADEPLOYER0000001:alice"
    assert identity["user"] == "AROADEPLOYER0000001:alice"
    assert identity["accessKey"] == SESSION.access_key_id
    assert identity["accountId"] == ACCOUNT


def test_post_json_body_reaches_the_handler_and_its_response_is_written_back(gateway, handler):
    handler.response = {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
        "multiValueHeaders": {"X-Jit-Grant": ["g-1", "g-2"]},
        "body": '{"grant":"g-1"}',
        "isBase64Encoded": False,
    }
    body = json.dumps({"profile": "readonly", "reason": "deploy"}).encode()
    request = sign(
        gateway.url + "/v1/grants",
        method="POST",
        body=body,
        headers={"Content-Type": "application/json"},
    )

    reply = send(request)

    assert handler.event["httpMethod"] == "POST"
    assert handler.event["body"] == body.decode()
    assert handler.event["headers"]["Content-Type"] == "application/json"
    assert reply.status == 201
    assert reply.json == {"grant": "g-1"}
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers.get_all("X-Jit-Grant") == ["g-1", "g-2"]
    assert reply.headers["x-amzn-RequestId"] == handler.event["requestContext"]["requestId"]


def test_chunked_request_body_is_verified_and_delivered(gateway, handler):
    body = b'{"profile":"readonly"}'
    request = sign(gateway.url + "/v1/grants", method="POST", body=body)
    headers = {k: v for k, v in request.prepare().headers.items() if k != "Content-Length"}
    connection = http.client.HTTPConnection(
        "127.0.0.1", int(gateway.url.rsplit(":", 1)[1]), timeout=10
    )
    try:
        connection.request("POST", "/v1/grants", body=iter([body[:5], body[5:]]), headers=headers)
        status = connection.getresponse().status
    finally:
        connection.close()

    assert status == 200
    assert handler.event["body"] == body.decode()


def test_base64_flagged_response_body_is_decoded(gateway, handler):
    handler.response = {
        "statusCode": 200,
        "headers": {"Content-Type": "application/octet-stream"},
        "body": base64.b64encode(b"\x00\x01binary").decode(),
        "isBase64Encoded": True,
    }

    reply = send(sign(gateway.url + "/v1/blob"))

    assert reply.body == b"\x00\x01binary"


def test_spoofed_forwarding_headers_change_neither_source_ip_nor_identity(gateway, handler):
    request = sign(
        gateway.url + "/v1/whoami",
        headers={"X-Forwarded-For": "203.0.113.9", "X-Real-Ip": "203.0.113.9"},
    )
    assert "x-forwarded-for" in request.headers["Authorization"]  # even a signed spoof

    reply = send(request)

    assert reply.status == 200
    event = handler.event
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["identity"]["userArn"] == USER.user_arn
    assert event["headers"]["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"


def test_root_path_has_root_resource_and_no_path_parameters(gateway, handler):
    assert send(sign(gateway.url + "/")).status == 200

    assert handler.event["resource"] == "/"
    assert handler.event["pathParameters"] is None
    assert handler.event["requestContext"]["path"] == "/local/"


def test_handler_gets_a_lambda_context_tied_to_the_request(gateway, handler):
    reply = send(sign(gateway.url + "/v1/whoami"))

    event, context = handler.calls[0]
    assert context.function_name == "jit-broker"
    assert context.memory_limit_in_mb == 512
    assert (
        context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:jit-broker"
    )
    assert context.aws_request_id == event["requestContext"]["requestId"]
    assert reply.headers["x-amzn-RequestId"] == context.aws_request_id
    assert 0 < context.get_remaining_time_in_millis() <= 29_000


# --------------------------------------------------------------------------- failures


def test_handler_exception_is_502_and_logs_only_its_type(gateway, handler, caplog):
    caplog.set_level(logging.DEBUG, logger="jit_local.gateway")
    handler.error = RuntimeError(f"boom {SESSION.session_token}")
    request = sign(gateway.url + "/v1/boom", key=SESSION)

    reply = send(request)

    assert reply.status == 502
    assert reply.json == {"message": "Internal server error"}
    assert reply.headers["x-amzn-ErrorType"] == "InternalServerErrorException"
    messages = [record.getMessage() for record in caplog.records]
    assert "handler raised RuntimeError" in messages
    assert any(m.startswith("GET /v1/boom 502 ") for m in messages)
    signature = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    for secret in (SESSION.session_token, signature, SESSION.secret_access_key):
        assert all(secret not in m for m in messages)


def test_malformed_handler_response_is_502(gateway, handler):
    handler.response = {"body": "no status code"}

    reply = send(sign(gateway.url + "/v1/whoami"))

    assert reply.status == 502
    assert reply.json == {"message": "Internal server error"}


def test_response_header_with_a_line_break_is_502_not_injected(gateway, handler):
    handler.response = {"statusCode": 200, "headers": {"X-Evil": "a\r\nSet-Cookie: x=1"}}

    reply = send(sign(gateway.url + "/v1/whoami"))

    assert reply.status == 502
    assert reply.headers["Set-Cookie"] is None


def test_handler_slower_than_the_timeout_is_504():
    release = threading.Event()
    slow = RecordingHandler(release=release)
    try:
        with LocalGateway(slow, KEYS.get, clock=NOW.timestamp, timeout_seconds=0.2) as gateway:
            reply = send(sign(gateway.url + "/v1/whoami"))
    finally:
        release.set()

    assert reply.status == 504
    assert reply.json == {"message": "Endpoint request timed out"}


def test_invocations_run_one_at_a_time_like_one_lambda_environment():
    first_started, second_started, release = threading.Event(), threading.Event(), threading.Event()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event["path"] == "/v1/first":
            first_started.set()
            release.wait(10)
        else:
            second_started.set()
        return {"statusCode": 200, "body": "{}"}

    replies: dict[str, Reply] = {}

    def call(url: str, path: str) -> None:
        replies[path] = send(sign(url + path))

    with LocalGateway(handler, KEYS.get, clock=NOW.timestamp) as gateway:
        first = threading.Thread(target=call, args=(gateway.url, "/v1/first"))
        second = threading.Thread(target=call, args=(gateway.url, "/v1/second"))
        first.start()
        assert first_started.wait(5)
        second.start()
        overlapped = second_started.wait(0.5)  # never true while the first one runs
        release.set()
        first.join(10)
        second.join(10)

    assert not overlapped
    assert second_started.is_set()
    assert {path: reply.status for path, reply in replies.items()} == {
        "/v1/first": 200,
        "/v1/second": 200,
    }


# --------------------------------------------------------------------------- lifecycle


def test_stopped_gateway_refuses_connections_and_stops_twice_quietly(handler):
    gateway = LocalGateway(handler, KEYS.get, clock=NOW.timestamp).start()
    url = gateway.url
    assert send(sign(url + "/v1/whoami")).status == 200

    gateway.stop()
    gateway.stop()

    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/v1/whoami", timeout=5)


def test_gateway_binds_loopback_only(handler):
    with pytest.raises(ValueError, match="loopback"):
        LocalGateway(handler, KEYS.get, host="0.0.0.0")


def test_build_proxy_event_takes_identity_from_the_key_not_the_headers():
    event = build_proxy_event(
        "GET",
        "/v1/whoami",
        [],
        [("Host", "gw"), ("X-Amz-User-Arn", "arn:aws:iam::999999999999:user/mallory")],
        b"",
        USER,
        stage="local",
        api_account_id="123456789012",
        source_ip="127.0.0.1",
        now=NOW.timestamp(),
    )

    assert event["requestContext"]["identity"]["userArn"] == USER.user_arn
    assert event["requestContext"]["identity"]["accountId"] == ACCOUNT
