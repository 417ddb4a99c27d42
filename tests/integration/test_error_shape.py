"""Every answer that is not a success is ``{"error": {"code", "message"}}`` with the right
status (threat 30): bodies that are not strict JSON, content types other than JSON, an
access policy that cannot be loaded and anything unexpected. Nothing is changed by a refused
request, and no message quotes the body or an exception's text."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest

from tests.conftest import LambdaContext, api_event, grant_body

SECRET = "s3cr3t-in-the-body-" + "Z" * 20


def assert_error(answer: Any, code: str) -> str:
    assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message"}, answer
    assert answer["error"]["code"] == code, answer
    message = answer["error"]["message"]
    assert isinstance(message, str) and message
    return message


def assert_nothing_changed(stack: Any) -> None:
    assert stack.calls.named("CreateRole") == []
    assert stack.calls.named("AssumeRole") == []
    assert stack.grant_items() == []


def grant_text(**overrides: Any) -> str:
    return json.dumps(grant_body(**overrides), ensure_ascii=False)


# --------------------------------------------------------------------------- strict JSON


@pytest.mark.parametrize(
    ("name", "body", "text"),
    [
        ("nested 100 000 deep", "[" * 100_000 + "]" * 100_000, "nested deeper than 16 levels"),
        ("nested 17 deep", '{"profile": ' + "[" * 17 + "]" * 17 + "}", "nested deeper than 16"),
        (
            "integer of 5000 digits",
            grant_text()[:-1] + ', "duration": ' + "9" * 5000 + "}",
            "numbers may have at most 24 characters",
        ),
        ("NaN", grant_text()[:-1] + ', "duration": NaN}', "NaN and Infinity are not JSON"),
        ("Infinity", grant_text()[:-1] + ', "duration": -Infinity}', "NaN and Infinity"),
        ("1e999", grant_text()[:-1] + ', "duration": 1e999}', "numbers must be finite"),
        (
            "duplicate key, the second one wins elsewhere",
            grant_text(profile="no-such-profile")[:-1] + ', "profile": "s3-read"}',
            "body.profile: a key is given twice in one object; give it once",
        ),
        ("lone surrogate escape", grant_text()[:-1] + ', "ticket": "\\ud83d"}', "lone surrogates"),
        (
            "bytes replaced on the way (U+FFFD)",
            grant_text(reason="caf\ufffd au lait"),
            "body: is not valid UTF-8",
        ),
    ],
)
def test_body_that_is_not_strict_json_is_400_and_changes_nothing(
    stack: Any, call: Any, name: str, body: str, text: str
) -> None:
    status, _, answer = call("POST", "/v1/grants", body)
    assert status == 400, answer
    assert text in assert_error(answer, "bad_request")
    assert_nothing_changed(stack)


def test_base64_body_that_is_not_utf8_is_400(stack: Any, handler: Any) -> None:
    event = api_event("POST", "/v1/grants", "")
    event["body"] = base64.b64encode(b'{"profile": "s3-read", "reason": "caf\xe9"}').decode()
    event["isBase64Encoded"] = True

    response = handler.lambda_handler(event, LambdaContext())

    assert response["statusCode"] == 400
    assert "body: is not valid UTF-8" in assert_error(json.loads(response["body"]), "bad_request")
    assert_nothing_changed(stack)


def test_base64_body_of_json_is_read_like_any_other(stack: Any, handler: Any) -> None:
    event = api_event("POST", "/v1/grants", "")
    event["body"] = base64.b64encode(json.dumps(grant_body()).encode()).decode()
    event["isBase64Encoded"] = True

    response = handler.lambda_handler(event, LambdaContext())

    assert response["statusCode"] == 201, response["body"]


def test_key_that_is_not_a_field_name_is_not_quoted(stack: Any, call: Any) -> None:
    status, _, answer = call("POST", "/v1/grants", grant_body(**{SECRET + " <x>": 1}))
    assert status == 400
    message = assert_error(answer, "bad_request")
    assert "body.?: unknown field" in message and SECRET not in message


def test_many_unknown_keys_are_summed_up_not_listed(stack: Any, call: Any) -> None:
    status, _, answer = call("POST", "/v1/grants", grant_body(**{f"k{i}": i for i in range(500)}))
    assert status == 400
    message = assert_error(answer, "bad_request")
    assert message.count("unknown field") == 10 and "and 490 more" in message


# --------------------------------------------------------------------------- content types


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/xml",
        "application/json; charset=latin-1",
        "application/jsonp",
        "json",
        "",
    ],
)
def test_body_in_another_media_type_is_415_and_changes_nothing(
    stack: Any, call: Any, content_type: str
) -> None:
    status, _, answer = call(
        "POST", "/v1/grants", grant_body(), headers={"content-type": content_type}
    )
    assert status == 415, answer
    assert "application/json" in assert_error(answer, "unsupported_media_type")
    assert_nothing_changed(stack)


def test_form_body_is_not_echoed_back(stack: Any, call: Any) -> None:
    status, _, answer = call(
        "POST",
        "/v1/grants/g-000000000000000000000000/revoke",
        SECRET,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert status == 415
    assert SECRET not in assert_error(answer, "unsupported_media_type")


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON; charset=UTF-8", "application/json;charset=utf8"],
)
def test_json_in_any_spelling_of_its_media_type_is_accepted(
    stack: Any, call: Any, content_type: str
) -> None:
    status, _, answer = call(
        "POST", "/v1/grants", grant_body(), headers={"content-type": content_type}
    )
    assert status == 201, answer


def test_body_without_a_content_type_is_read_as_json(stack: Any, handler: Any) -> None:
    event = api_event("POST", "/v1/grants", grant_body())
    del event["headers"]["content-type"], event["multiValueHeaders"]["content-type"]

    response = handler.lambda_handler(event, LambdaContext())

    assert response["statusCode"] == 201, response["body"]


# --------------------------------------------------------------------------- dependencies


def test_access_policy_that_fails_to_load_is_503_policy_unavailable(stack: Any, call: Any) -> None:
    stack.policy_file.write_text("profiles: [unclosed", encoding="utf-8")
    later = stack.policy_file.stat().st_mtime + 10
    os.utime(stack.policy_file, (later, later))  # past the loader's mtime cache

    status, _, answer = call("POST", "/v1/grants", grant_body())

    assert status == 503, answer
    message = assert_error(answer, "policy_unavailable")
    assert "unclosed" not in message and "YAML" not in message
    assert_nothing_changed(stack)


def test_unexpected_exception_is_500_with_a_request_id_and_no_exception_text(
    stack: Any, handler: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise KeyError(SECRET)

    monkeypatch.setattr(stack.broker, "request_grant", broken)
    event = api_event("POST", "/v1/grants", grant_body())

    response = handler.lambda_handler(event, LambdaContext())

    assert response["statusCode"] == 500, response["body"]
    message = assert_error(json.loads(response["body"]), "internal_error")
    assert event["requestContext"]["requestId"] in message
    assert SECRET not in message and "KeyError" not in message
    (record,) = [r for r in caplog.records if r.getMessage() == "unexpected error"]
    assert record.__dict__["error_type"] == "KeyError"
    assert all(SECRET not in repr(r.__dict__) for r in caplog.records)
