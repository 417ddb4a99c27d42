"""The local stack's AWS endpoint does not serve moto's management API: /moto-api/ would give
any local process every secret of the embedded AWS (data.json lists each IAM user's secret
access key, the administrator's included) and let it reset or replay the whole stack. Every
spelling of those paths is refused with nothing in the answer; signed AWS calls still work."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from jit_local.server import ADMIN, LocalStack

# (method, request target) as sent on the wire, unnormalised.
MANAGEMENT_REQUESTS = [
    ("GET", "/moto-api/data.json"),
    ("GET", "/moto-api/"),
    ("GET", "/moto-api"),
    ("GET", "//moto-api/data.json"),
    ("GET", "///moto-api/data.json"),
    ("GET", "/%6Doto-api/data.json"),
    ("GET", "/%6doto-api/data.json"),
    ("GET", "/moto%2Dapi/data.json"),
    ("GET", "/%256Doto-api/data.json"),
    ("GET", "/MOTO-API/data.json"),
    ("GET", "/Moto-Api/data.json"),
    ("GET", "/moto-api/./data.json"),
    ("GET", "/x/../moto-api/data.json"),
    ("GET", "/moto-api/data.json?x=1"),
    ("HEAD", "/moto-api/data.json"),
    ("POST", "/moto-api/data.json"),
    ("POST", "/moto-api/reset"),
    ("POST", "/moto-api/reset-auth"),
    ("POST", "/moto-api/seed?a=42"),
    ("GET", "/moto-api/config"),
    ("GET", "/moto-api/recorder/download-recording"),
    ("POST", "/moto-api/recorder/start-recording"),
    ("GET", "/moto-api/lib.js"),
    # No "moto-api" in the path, but moto dispatches it to its management application:
    # refused by where it would go, not by how it is spelt.
    ("GET", "/favicon.ico"),
]
REFUSAL = json.dumps(
    {
        "error": {
            "code": "forbidden",
            "message": "moto's management API is not served by the local stack",
        }
    },
    separators=(",", ":"),
).encode()


@pytest.fixture(scope="module")
def stack() -> Any:
    local = LocalStack(port=0, audit_interval=0).start()
    try:
        yield local
    finally:
        local.stop()


def raw(stack: LocalStack, method: str, target: str, headers: dict[str, str] | None = None) -> Any:
    """Send ``target`` exactly as given (no client-side normalisation) and read the answer."""
    where = urlsplit(stack.aws_url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", "0")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def secrets_of(stack: LocalStack) -> list[bytes]:
    return [secret.encode() for _, secret in stack.keys.values()]


@pytest.mark.parametrize(("method", "target"), MANAGEMENT_REQUESTS)
def test_management_api_is_refused_in_every_spelling(
    stack: LocalStack, method: str, target: str
) -> None:
    status, body = raw(stack, method, target)

    assert status == 403
    assert not any(secret in body for secret in secrets_of(stack))
    assert body == (b"" if method == "HEAD" else REFUSAL)


def test_absolute_form_request_target_is_refused(stack: LocalStack) -> None:
    status, body = raw(stack, "GET", stack.aws_url + "/moto-api/data.json")

    assert status == 403
    assert not any(secret in body for secret in secrets_of(stack))


def test_a_credential_scope_naming_the_management_service_is_refused(stack: LocalStack) -> None:
    """moto picks a backend from the credential scope's service name, prefix-matched against
    motoapi.amazonaws.com: a forged scope must not reach the management application, even
    with a path that does not name it."""
    forged = (
        "AWS4-HMAC-SHA256 Credential=AKIAFORGED/20260101/us-east-1/"
        "motoapi.amazonaws.com/aws4_request, SignedHeaders=host, Signature=00"
    )
    for target in ("/moto-api/data.json", "//moto-api/data.json", "/data.json"):
        status, body = raw(stack, "GET", target, {"Authorization": forged})

        assert (status, body) == (403, REFUSAL), target


def test_reset_through_the_endpoint_changes_nothing(stack: LocalStack) -> None:
    iam = stack.client("iam", stack.keys[ADMIN])
    before = sorted(u["UserName"] for u in iam.list_users()["Users"])

    raw(stack, "POST", "/moto-api/reset")
    raw(stack, "POST", "//moto-api/reset")

    assert sorted(u["UserName"] for u in iam.list_users()["Users"]) == before
    assert stack.answers()


def test_signed_aws_calls_still_work(stack: LocalStack) -> None:
    user = stack.client("sts", stack.keys["JITUser"]).get_caller_identity()
    assert user["Arn"].endswith(":user/JITUser")
    s3 = stack.client("s3", stack.keys[ADMIN])
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="example-bucket")["Contents"]] == [
        "README.txt",
        "reports/2026-11.csv",
    ]
    # Only paths are refused: a query that mentions the management API is an AWS call.
    assert "Contents" not in s3.list_objects_v2(Bucket="example-bucket", Prefix="moto-api/")
    dynamodb = stack.client("dynamodb", stack.keys[ADMIN])
    assert dynamodb.list_tables()["TableNames"]
    status, body = stack.call("GET", "/v1/whoami")
    assert status == 200 and body["arn"].endswith(":user/JITUser")
