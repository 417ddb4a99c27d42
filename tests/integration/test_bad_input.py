"""Bad input for every field → a 4xx with a message that says what to fix; no role is
created, no session issued, no grant recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ACCOUNT, OTHER_USER, grant_body

INJECTIONS = [
    '"; DROP TABLE grants; --',
    "$(rm -rf /)",
    "{profile}{0.__class__}",
    '{"Effect":"Allow","Action":"*","Resource":"*"}',
    "%s%s%s%n",
]

CASES: list[tuple[str, Any, dict[str, Any], int, str]] = [
    # (name, body, extra call kwargs, status, text the message must contain)
    ("malformed JSON", '{"profile": "s3-read",', {}, 400, "not valid JSON"),
    ("body is a list", "[1, 2]", {}, 400, "body"),
    ("empty body", "", {}, 400, "body: a JSON object is required"),
    (
        "unknown field",
        grant_body(role_arn="arn:aws:iam::123456789012:role/Admin"),
        {},
        400,
        "role_arn: unknown field",
    ),
    (
        "forged identity in body",
        grant_body(requestContext={"identity": {"userArn": "x"}}),
        {},
        400,
        "requestContext: unknown field",
    ),
    ("unknown profile", grant_body(profile="s3-write"), {}, 404, "there is no profile 's3-write'"),
    ("profile by pattern", grant_body(profile="s3-*"), {}, 400, "body.profile"),
    ("profile near name", grant_body(profile="S3-READ"), {}, 400, "body.profile"),
    ("not entitled", grant_body(), {"user_arn": OTHER_USER}, 403, "may not request 's3-read'"),
    ("duration 899", grant_body(duration=899), {}, 400, "greater than or equal to 900"),
    (
        "duration 3601 over the profile",
        grant_body(duration=3601),
        {},
        400,
        "duration 1h1s (3601 s) is longer than profile 's3-read' allows, 1h (3600 s)",
    ),
    ("duration 43201", grant_body(duration=43201), {}, 400, "less than or equal to 43200"),
    ("duration -1", grant_body(duration=-1), {}, 400, "greater than or equal to 900"),
    ("duration as text", grant_body(duration="1h"), {}, 400, "body.duration"),
    ("duration as numeric text", grant_body(duration="1800"), {}, 400, "body.duration"),
    ("duration as float", grant_body(duration=1800.5), {}, 400, "body.duration"),
    ("missing reason", grant_body(reason=...), {}, 400, "needs a reason"),
    ("blank reason", grant_body(reason="   "), {}, 400, "needs a reason"),
    ("10 kB reason", grant_body(reason="x" * 10_000), {}, 400, "body.reason"),
    (
        "reason with newline",
        grant_body(reason="fine\nFAKE LOG LINE"),
        {},
        400,
        "control characters",
    ),
    ("reason with escape", grant_body(reason="\x1b[31mred"), {}, 400, "control characters"),
    ("ticket with NUL", grant_body(ticket="T-1\x00"), {}, 400, "control characters"),
    ("missing nonce", grant_body(nonce=...), {}, 400, "body.nonce: Field required"),
    ("short nonce", grant_body(nonce="abc"), {}, 400, "body.nonce"),
    ("nonce with symbols", grant_body(nonce="n" * 20 + "$(x)"), {}, 400, "body.nonce"),
    ("missing profile", grant_body(profile=...), {}, 400, "body.profile: Field required"),
    ("profile as number", grant_body(profile=7), {}, 400, "body.profile"),
    ("root caller", grant_body(), {"user_arn": f"arn:aws:iam::{ACCOUNT}:root"}, 403, "root"),
    (
        "caller from another account",
        grant_body(),
        {"user_arn": "arn:aws:iam::210987654321:user/JITUser"},
        403,
        "account 210987654321",
    ),
] + [
    (f"injection in profile {i}", grant_body(profile=s), {}, 400, "body.profile")
    for i, s in enumerate(INJECTIONS)
]


@pytest.mark.parametrize(
    ("name", "body", "kwargs", "status", "text"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_grant_request_is_refused_and_changes_nothing(
    stack: Any, call: Any, name: str, body: Any, kwargs: dict[str, Any], status: int, text: str
) -> None:
    got, _, answer = call("POST", "/v1/grants", body, **kwargs)
    assert got == status, answer
    assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message"}
    assert text in answer["error"]["message"]
    assert stack.calls.named("CreateRole") == []
    assert stack.calls.named("AssumeRole") == []
    assert stack.grant_items() == []


@pytest.mark.parametrize("reason", INJECTIONS)
def test_injection_strings_in_reason_are_stored_as_data_not_code(
    stack: Any, call: Any, reason: str
) -> None:
    status, _, _ = call("POST", "/v1/grants", grant_body(reason=reason))
    assert status == 201
    (put,) = stack.calls.named("PutRolePolicy")
    assert reason not in put["PolicyDocument"]
    (item,) = stack.grant_items()
    assert item["reason"]["S"] == reason


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/grants/not-a-grant/credentials", {"nonce": "n" * 20}, 404),
        ("/v1/grants/g-000000000000000000000000/credentials", {"nonce": "n" * 20}, 404),
        ("/v1/grants/g-000000000000000000000000/credentials", {}, 400),
        (
            "/v1/grants/g-000000000000000000000000/credentials",
            {"nonce": "n" * 20, "duration": 3600},
            400,
        ),
        ("/v1/grants/g-000000000000000000000000/revoke", {"reason": "a\nb"}, 400),
        ("/v1/grants/g-000000000000000000000000/revoke", "{", 400),
        ("/v1/nothing-here", {}, 404),
    ],
)
def test_bad_session_and_revoke_requests_are_refused(
    stack: Any, call: Any, path: str, body: Any, status: int
) -> None:
    got, _, answer = call("POST", path, body)
    assert got == status, answer
    assert answer["error"]["message"]
    assert stack.calls.named("AssumeRole") == [] and stack.calls.named("PutRolePolicy") == []


def test_validation_messages_do_not_echo_the_input(stack: Any, call: Any) -> None:
    secretish = "s3cr3t-" + "A" * 40
    _, _, answer = call("POST", "/v1/grants", grant_body(duration=secretish))
    assert secretish not in json.dumps(answer)
