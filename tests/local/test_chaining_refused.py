"""Threat 27 on the running local stack, as the attack did it: a grant of a profile open to a
whole account (its permissions allow execute-api:Invoke, as any broad grant does) signs
requests to the broker with its own session credentials — through the SigV4 gateway, with the
identity the gateway derives from the real STS session. Nothing is minted, on any route, and
revoking the grant leaves nothing behind."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from jit_local.server import EXAMPLE_POLICY, LocalStack

BROAD = {
    "description": "Everything the boundary leaves (a broad profile)",
    "permissions": {
        "inline": {
            "Version": "2012-10-17",
            "Statement": [{"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
    },
    "requesters": {"users": ["arn:aws:iam::123456789012:user/JITUser"]},
    "max_window": 3600,
    "max_session": 3600,
    "reason_required": True,
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    policy = yaml.safe_load(EXAMPLE_POLICY.read_text())
    policy["profiles"]["everything"] = BROAD
    path: Path = tmp_path_factory.mktemp("policy") / "access-policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    with LocalStack(port=0, policy_file=path, audit_interval=0) as running:
        yield running


def signed(
    stack: LocalStack, method: str, path: str, body: Any, creds: dict[str, Any]
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {} if data is None else {"content-type": "application/json"}
    request = AWSRequest(method=method, url=stack.api_url + path, data=data, headers=headers)
    key = Credentials(creds["access_key_id"], creds["secret_access_key"], creds["session_token"])
    SigV4Auth(key, "execute-api", stack.region).add_auth(request)
    sent = urllib.request.Request(
        request.url, data=data, headers=dict(request.headers.items()), method=method
    )
    try:
        with urllib.request.urlopen(sent, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def nonce() -> str:
    return "n-" + uuid.uuid4().hex


def grant_items(stack: LocalStack) -> list[dict[str, Any]]:
    items = stack.client("dynamodb", stack.keys["JITAdmin"]).scan(TableName="jit-grants")["Items"]
    return [i for i in items if i["sk"]["S"] == "GRANT"]


def test_threat27_a_broad_grants_session_is_refused_everywhere_and_mints_nothing(
    stack: LocalStack,
) -> None:
    status, first = stack.call(
        "POST",
        "/v1/grants",
        {"profile": "everything", "reason": "incident", "duration": 1800, "nonce": nonce()},
    )
    assert status == 201, first
    gid, creds = first["grant"]["id"], first["credentials"]
    before = grant_items(stack)

    for method, path, body in [
        ("GET", "/v1/whoami", None),
        ("GET", "/v1/profiles", None),
        ("GET", "/v1/grants", None),
        ("GET", f"/v1/grants/{gid}", None),
        ("POST", "/v1/grants", {"profile": "everything", "reason": "x", "nonce": nonce()}),
        ("POST", "/v1/grants", {"profile": "s3-read", "reason": "x", "nonce": nonce()}),
        ("POST", f"/v1/grants/{gid}/credentials", {"nonce": nonce()}),
        ("POST", f"/v1/grants/{gid}/revoke", {}),
        ("POST", f"/v1/grants/{gid}/review", {"comment": "x", "nonce": nonce()}),
        ("POST", "/v1/audit", {"dry_run": True}),
        ("GET", "/v1/openapi.json", None),
    ]:
        status, answer = signed(stack, method, path, body, creds)
        assert status == 403, (method, path, answer)
        # Refused by the broker (or, where the embedded IAM evaluates execute-api:Invoke,
        # already by the gateway with API Gateway's own message): never answered.
        if "error" in answer:
            assert answer["error"]["code"] == "broker_session_refused", (path, answer)
        else:  # API Gateway's AccessDeniedException body: {"Message": "User: … is not …"}
            assert "is not authorized to perform: execute-api:Invoke" in answer["Message"], (
                path,
                answer,
            )

    assert grant_items(stack) == before  # nothing minted
    status, revoked = stack.call("POST", f"/v1/grants/{gid}/revoke", {"reason": "done"})
    assert status == 200 and revoked["grant"]["status"] == "revoked"
    iam = stack.client("iam", stack.keys["JITAdmin"])
    assert iam.list_roles(PathPrefix="/jit/")["Roles"] == []  # nothing left behind
    status, answer = signed(stack, "GET", "/v1/whoami", None, creds)
    assert status == 403
