"""The sample events in events/ are what API Gateway hands the broker for IAM-authorized calls.

events/sam-aws-proxy.json is `sam local generate-event apigateway aws-proxy`, unchanged; the others
are derived from it with requestContext.identity set as API Gateway fills it after verifying a
SigV4 signature (or left empty, for null-identity.json: what a route without IAM auth gives).
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

EVENTS = Path(__file__).resolve().parents[2] / "events"
RAW_NAME = "sam-aws-proxy.json"

IAM_USER = {
    "accountId": "123456789012",
    "caller": "AIDAJITUSEREXAMPLE",
    "user": "AIDAJITUSEREXAMPLE",
    "accessKey": "AKIAJITUSEREXAMPLE00",
    "userArn": "arn:aws:iam::123456789012:user/JITUser",
}
ASSUMED_ROLE = {
    "accountId": "123456789012",
    "caller": "AROADEPLOYEXAMPLE:alice",
    "user": "AROADEPLOYEXAMPLE:alice",
    "userArn": "arn:aws:sts::123456789012:assumed-role/Deploy/alice",
}

# name -> (method, path, identity fields that must be set exactly)
DERIVED = {
    "whoami.json": ("GET", "/v1/whoami", IAM_USER),
    "profiles.json": ("GET", "/v1/profiles", IAM_USER),
    "grant-request.json": ("POST", "/v1/grants", IAM_USER),
    "grants-list.json": ("GET", "/v1/grants", IAM_USER),
    "assumed-role-whoami.json": ("GET", "/v1/whoami", ASSUMED_ROLE),
    "null-identity.json": ("GET", "/v1/whoami", {}),
}


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def test_events_folder_holds_exactly_the_raw_and_the_derived_events():
    assert {p.name for p in EVENTS.glob("*.json")} == {RAW_NAME, *DERIVED}


def test_raw_event_is_sams_unchanged_aws_proxy_sample():
    raw = load(RAW_NAME)
    # Markers of SAM's generated sample, which a hand edit would likely lose.
    assert raw["body"] == "eyJ0ZXN0IjoiYm9keSJ9"
    assert raw["isBase64Encoded"] is True
    assert raw["path"] == "/path/to/resource"
    assert raw["requestContext"]["identity"]["userArn"] is None


@pytest.mark.parametrize("name", sorted([RAW_NAME, *DERIVED]))
def test_event_parses_as_an_api_gateway_proxy_event(name):
    event = APIGatewayProxyEvent(load(name))
    assert event.http_method in {"GET", "POST"}
    assert event.request_context.identity.source_ip == "127.0.0.1"
    assert event.request_context.request_id


@pytest.mark.parametrize("name", sorted(DERIVED))
def test_derived_event_keeps_every_key_of_the_raw_sam_event(name):
    raw, derived = load(RAW_NAME), load(name)
    assert set(raw) <= set(derived)
    assert set(raw["requestContext"]) <= set(derived["requestContext"])
    assert set(raw["requestContext"]["identity"]) <= set(derived["requestContext"]["identity"])


@pytest.mark.parametrize("name", sorted(DERIVED))
def test_derived_event_is_a_proxy_route_call_of_its_method_and_path(name):
    method, path, _ = DERIVED[name]
    event = APIGatewayProxyEvent(load(name))
    assert event.http_method == method
    assert event.path == path
    assert event.resource == "/{proxy+}"
    assert event.request_context.resource_path == "/{proxy+}"
    assert event.request_context.http_method == method
    assert event.path_parameters == {"proxy": path.lstrip("/")}
    assert event.request_context.path == f"/{event.request_context.stage}{path}"
    assert event.request_context.identity.user_agent == "jit-cli/0.1.0"


@pytest.mark.parametrize("name", sorted(n for n, (_, _, ident) in DERIVED.items() if ident))
def test_iam_event_carries_the_identity_api_gateway_verified(name):
    _, _, expected = DERIVED[name]
    identity = load(name)["requestContext"]["identity"]
    for key, value in expected.items():
        assert identity[key] == value, key
    assert identity["accessKey"]
    for key in (
        "cognitoIdentityPoolId",
        "cognitoIdentityId",
        "cognitoAuthenticationType",
        "cognitoAuthenticationProvider",
    ):
        assert identity[key] is None, key
    parsed = APIGatewayProxyEvent(load(name)).request_context.identity
    assert parsed.user_arn == expected["userArn"]
    assert parsed.account_id == expected["accountId"]
    assert parsed.caller == expected["caller"]


def test_null_identity_event_has_no_caller_at_all():
    # Threat 2: what a route without IAM auth would deliver; the broker must answer 403.
    event = load("null-identity.json")
    identity = event["requestContext"]["identity"]
    for key in ("userArn", "caller", "user", "accountId", "accessKey"):
        assert identity[key] is None, key
    assert "Authorization" not in event["headers"]


def test_assumed_role_event_is_a_role_session_with_session_credentials():
    event = load("assumed-role-whoami.json")
    identity = event["requestContext"]["identity"]
    assert identity["accessKey"].startswith("ASIA")  # temporary credentials
    assert "X-Amz-Security-Token" in event["headers"]
    # The role ARN the broker keys decisions on (threat 4), independent of the session name.
    assert re.fullmatch(
        r"arn:aws:sts::123456789012:assumed-role/Deploy/[\w+=,.@-]+", identity["userArn"]
    )


def test_grant_request_body_is_the_json_grant_request():
    event = APIGatewayProxyEvent(load("grant-request.json"))
    assert event.is_base64_encoded is False
    assert event.headers["content-type"] == "application/json"
    assert event.json_body == {
        "profile": "s3-read",
        "duration": 1800,
        "reason": "Investigate failed export job",
        "nonce": "n-0123456789abcdef",
    }


@pytest.mark.parametrize("name", sorted(DERIVED))
def test_event_credentials_are_obviously_fake(name):
    text = (EVENTS / name).read_text()
    # Every access key id in the events says EXAMPLE; signatures are all zeros.
    for key_id in re.findall(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", text):
        assert "EXAMPLE" in key_id, key_id
    for signature in re.findall(r"Signature=([0-9a-f]+)", text):
        assert set(signature) == {"0"}
