"""Fuzzing the running local stack (threat 30).

schemathesis generates requests for every operation of the broker's OpenAPI document
(the one GET /v1/openapi.json serves): the coverage phase (each field's bounds, missing,
unexpected and mistyped fields, odd content types, methods a path does not have), then
random valid and invalid data. Each request is signed as the seeded JITUser with
botocore's SigV4Auth (execute-api) and goes through the SigV4 gateway to the broker.

Every answer must be below 500; every refusal ``{"error": {"code", "message"}}``; and a
refused request must leave the roles under /jit/ and the ledger's grant and session records
as they were. Some bodies name the policy's real profile and some paths a real grant, so
requests also get past validation into the broker (grants made, sessions issued, revokes).

The run is bounded by example counts, not by time: the generation is derandomized with a
fixed seed and does not learn from the answers, so CI runs the same cases every time.
MAX_EXAMPLES (per operation, random phase) sets the budget.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
import schemathesis
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jit_local import seed
from jit_local.server import EXAMPLE_POLICY, HANDLER_FILE, LocalStack

MAX_EXAMPLES = 450
SEED = 20261128
TITLE = "JIT access broker"
PROFILE = "s3-read"  # the example policy's profile JITUser may request
REFUSALS = {400, 403, 404, 409, 415, 429}
CODES = {400: {"bad_request"}, 415: {"unsupported_media_type"}}

State = tuple[frozenset[str], frozenset[str]]


def _document() -> dict[str, Any]:
    """The broker's OpenAPI document, built by the handler as GET /v1/openapi.json does
    (the first test checks the stack serves exactly this): schemathesis needs it when the
    tests are collected, before any stack runs."""
    spec = importlib.util.spec_from_file_location("broker_app_for_fuzzing", HANDLER_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(json.loads(module.app.get_openapi_json_schema(title=TITLE, version="1")))


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"deterministic": True, "database": "none"},
            "phases": {
                # TRACE and QUERY are left out: the local gateway's http.server answers
                # them itself (501), before any of the gateway's code runs.
                "coverage": {
                    "unexpected-methods": ["get", "put", "post", "delete", "options", "patch"],
                    "extra-data-sources": {"responses": False},
                },
                "fuzzing": {
                    "generation": {"max-examples": MAX_EXAMPLES},
                    "extra-data-sources": {"responses": False},
                    "error-feedback": {"enabled": False},
                },
                "stateful": {"enabled": False},
            },
        }
    ),
)
REAL = {"grant_id": "g-" + "0" * 24}  # the grant the fixture makes, once it is made


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """Half of the grant requests name the real profile, so they reach the broker."""
    operation = context.operation
    is_grant_request = operation is not None and (operation.method, operation.path) == (
        "post",
        "/v1/grants",
    )
    if is_grant_request and isinstance(body, dict):
        return st.sampled_from([body, {**body, "profile": PROFILE}])
    return st.just(body)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
    """Half of the paths with a grant id name the real grant (read when the case is drawn)."""
    if isinstance(path_parameters, dict) and "grant_id" in path_parameters:
        return st.booleans().map(lambda real: REAL if real else path_parameters)
    return st.just(path_parameters)


class SignedAs(requests.auth.AuthBase):
    """Signs a prepared request as the jit CLI does: botocore's SigV4Auth, execute-api."""

    def __init__(self, key: tuple[str, str], region: str) -> None:
        self._credentials = Credentials(*key)
        self._region = region

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        # requests form-encodes a space in the query as "+" (a literal "+" is "%2B"); SigV4
        # canonicalises a space as "%20" and a "+" as itself, and API Gateway refuses a
        # signature made over "+": send the space as "%20", as a SigV4 client must.
        url = urlsplit(prepared.url or "")
        prepared.url = urlunsplit(url._replace(query=url.query.replace("+", "%20")))
        body = prepared.body or b""
        data = body.encode("utf-8") if isinstance(body, str) else body
        content_type = prepared.headers.get("Content-Type")
        request = AWSRequest(
            method=prepared.method,
            url=prepared.url,
            data=data,
            headers={} if content_type is None else {"Content-Type": content_type},
        )
        SigV4Auth(self._credentials, "execute-api", self._region).add_auth(request)
        for name in ("Authorization", "X-Amz-Date"):
            prepared.headers[name] = request.headers[name]
        return prepared


def snapshot() -> State:
    """Role names under /jit/, and the ledger's grant and session records as written, read
    from the embedded AWS's own state (moto runs in this process): an authorized call would
    cost more than the request under test, through the IAM evaluator."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.iam.models import iam_backends

    roles = iam_backends[seed.ACCOUNT_ID]["aws"].roles.values()
    table = dynamodb_backends[seed.ACCOUNT_ID][seed.REGION].get_table(seed.TABLE_NAME)
    items = (item.to_json()["Attributes"] for item in table.all_items())
    return (
        frozenset(role.name for role in roles if role.path.startswith("/jit/")),
        frozenset(
            json.dumps(item, sort_keys=True)
            for item in items
            if item["sk"]["S"] == "GRANT" or item["sk"]["S"].startswith("SESSION#")
        ),
    )


@dataclass
class Fuzzed:
    stack: LocalStack
    auth: SignedAs
    statuses: dict[int, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """The local stack on the example policy, with a rate limit no run reaches (so what a
    case gets does not depend on how fast the cases go), and one real grant of JITUser's."""
    policy = yaml.safe_load(EXAMPLE_POLICY.read_text(encoding="utf-8"))
    policy["limits"]["requests_per_minute"] = 1000
    policy_file = Path(tmp_path_factory.mktemp("fuzz")) / "access-policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy), encoding="utf-8")
    stack = LocalStack(port=0, policy_file=policy_file, audit_interval=0).start()
    try:
        status, made = stack.call(
            "POST",
            "/v1/grants",
            {"profile": PROFILE, "reason": "fuzzing", "nonce": uuid.uuid4().hex},
        )
        assert status == 201, made
        REAL["grant_id"] = made["grant"]["id"]
        yield Fuzzed(stack, SignedAs(stack.keys["JITUser"], stack.region))
    finally:
        stack.stop()


def test_the_fuzzed_document_is_the_one_the_stack_serves(fuzzed: Fuzzed) -> None:
    status, served = fuzzed.stack.call("GET", "/v1/openapi.json")
    assert status == 200
    assert served == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_5xx_an_unshaped_error_or_leaves_anything_behind(
    case: Any, fuzzed: Fuzzed
) -> None:
    before = snapshot()
    response = case.call(base_url=fuzzed.stack.api_url, auth=fuzzed.auth, timeout=60)
    status = response.status_code
    fuzzed.statuses[status] = fuzzed.statuses.get(status, 0) + 1
    assert status < 500, (status, response.text[:500])
    if status < 400:
        return
    assert status in REFUSALS, (status, response.text[:500])
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, response.text[:500]
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, error
    assert isinstance(error["code"], str) and isinstance(error["message"], str), error
    assert error["message"], error
    assert error["code"] in CODES.get(status, {error["code"]}), (status, error)
    assert snapshot() == before, f"{case.method} {case.path} left something: {error}"


header_values = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"),
    max_size=120,
)
sigv4_like = st.builds(
    lambda c, h, s: f"AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={s}",
    header_values,
    header_values,
    header_values,
)


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(
    authorization=st.none() | header_values | sigv4_like,
    amz_date=st.none() | header_values | st.from_regex(r"\A[0-9]{8}T[0-9]{6}Z\Z"),
    date=st.none() | header_values,
)
def test_malformed_authorization_and_date_headers_are_refused_by_the_gateway_never_a_5xx(
    fuzzed: Fuzzed, authorization: str | None, amz_date: str | None, date: str | None
) -> None:
    headers = {
        name: value
        for name, value in (
            ("Authorization", authorization),
            ("X-Amz-Date", amz_date),
            ("Date", date),
        )
        if value is not None
    }
    connection = http.client.HTTPConnection(
        fuzzed.stack.api_url.removeprefix("http://"), timeout=30
    )
    try:
        connection.request("GET", "/v1/whoami", headers=headers)
        response = connection.getresponse()
        status, body = response.status, response.read()
    finally:
        connection.close()
    assert status == 403, (status, body[:300])
    assert set(json.loads(body)) == {"message"}  # API Gateway's own refusal, handler not called


def test_the_fuzzing_reached_the_broker_and_its_refusals(fuzzed: Fuzzed) -> None:
    """The run above made grants and sessions and met each kind of refusal: a run that
    only ever got, say, signature errors would prove nothing."""
    if not fuzzed.statuses:
        pytest.skip("runs after the fuzzing test of this module")
    assert {200, 201, 400, 403, 404, 409, 415} <= set(fuzzed.statuses), fuzzed.statuses
    assert sum(fuzzed.statuses.values()) >= 1500, fuzzed.statuses
