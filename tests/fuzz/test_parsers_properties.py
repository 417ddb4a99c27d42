"""Properties of every parser that reads what a caller, an operator or a client sends
(threat 30): whatever the input, the answer is the parsed value or the parser's own typed
refusal, never another exception; and what is accepted is what the rules say.

Derandomized (the same examples on every run) and bounded by example counts.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jit_broker import naming
from jit_broker.access_policy import AccessPolicy, parse_policy
from jit_broker.errors import BadRequest, NotAuthenticated, PolicyInvalid
from jit_broker.identity import caller_from_context, parse_caller
from jit_broker.models.input import MAX_JSON_DEPTH, MAX_NUMBER_CHARS, parse_json_body
from jit_cli.formats import parse_duration
from jit_local.credentials import CallerKey
from jit_local.gateway import GatewayError, verify_sigv4
from jit_local.server import EXAMPLE_POLICY

PROPERTIES = settings(max_examples=300, derandomize=True, database=None, deadline=None)
STS_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}")
TAG_VALUE = re.compile(r"[A-Za-z0-9 _.:/=+\-@]{0,256}")

# JSON-shaped values: what a YAML or JSON document, or an event, may hold.
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


# --------------------------------------------------------------------------- request bodies

finite_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**18), max_value=10**18)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\ufffd")),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=25,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@PROPERTIES
@given(finite_json)
def test_json_bodies_within_the_bounds_parse_to_what_was_sent(value: Any) -> None:
    sent = json.dumps(value, ensure_ascii=False).encode("utf-8")
    if depth(value) > MAX_JSON_DEPTH:
        with pytest.raises(BadRequest):
            parse_json_body(sent)
    else:
        assert parse_json_body(sent) == value


@PROPERTIES
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "replace")))
@example(b"[" * 100_000)
@example(b"9" * 5000)
@example(b'{"a": 1, "a": 2}')
@example(b'{"a": NaN}')
@example(b'"\\ud800"')
@example(b"\xff\xfe")
@example("caf\ufffd".encode())
def test_any_body_bytes_parse_or_are_refused_as_bad_request(data: bytes) -> None:
    try:
        parse_json_body(data)
    except BadRequest as refused:
        assert refused.message.startswith("body")


SECRET = "s3cr3t value, not a field"


@pytest.mark.parametrize(
    "template",
    [
        '{"a": "%s", "a": 1}',
        '{"a": "%s",',
        "[" * 40 + '"%s"' + "]" * 40,
        '{"a": "%s", "b": NaN}',
        '{"a": "%s", "b": 1e999}',
        '{"a": "%s", "b": ' + "1" * 100 + "}",
        '{"a": "%s\\ud800"}',
        '{"a": "%s\ufffd"}',
        '{"%s": 1, "%s": 2}',
    ],
)
def test_a_refusal_never_quotes_the_body(template: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_json_body(template.replace("%s", SECRET).encode())
    assert SECRET not in refused.value.message


@PROPERTIES
@given(
    st.dictionaries(
        st.from_regex(r"\A[a-z]{1,8}\Z"), st.integers(-999, 999), min_size=1, max_size=5
    ),
    st.data(),
)
def test_a_key_given_twice_is_refused_naming_the_key(fields: dict[str, int], data: Any) -> None:
    twice = data.draw(st.sampled_from(sorted(fields)))
    pairs = [*(f'"{k}": {v}' for k, v in fields.items()), f'"{twice}": 0']
    with pytest.raises(BadRequest, match=rf"^body\.{twice}: a key is given twice"):
        parse_json_body(("{" + ", ".join(pairs) + "}").encode())


@PROPERTIES
@given(st.integers(min_value=MAX_NUMBER_CHARS + 1, max_value=10_000))
def test_number_literals_longer_than_the_bound_are_refused(digits: int) -> None:
    with pytest.raises(BadRequest, match="numbers may have at most"):
        parse_json_body(b'{"duration": ' + b"9" * digits + b"}")


# --------------------------------------------------------------------------- identity (ARNs)

partitions = st.sampled_from(["aws", "aws-cn", "aws-us-gov", "aws-x", ""])
accounts = st.from_regex(r"\A\d{11,13}\Z")
names = st.from_regex(r"\A[\w+=,.@-]{1,70}\Z")
arns = st.one_of(
    st.builds(
        lambda p, a, path, n: f"arn:{p}:iam::{a}:user/{path}{n}",
        partitions,
        accounts,
        st.sampled_from(["", "team/", "a/b/", "/"]),
        names,
    ),
    st.builds(
        lambda p, a, r, s: f"arn:{p}:sts::{a}:assumed-role/{r}/{s}",
        partitions,
        accounts,
        names,
        names,
    ),
    st.builds(lambda p, a, n: f"arn:{p}:sts::{a}:federated-user/{n}", partitions, accounts, names),
    st.builds(lambda p, a: f"arn:{p}:iam::{a}:root", partitions, accounts),
    st.text(max_size=120),
)


@PROPERTIES
@given(arns, accounts)
def test_a_caller_arn_is_recognised_exactly_or_refused(arn: str, account: str) -> None:
    try:
        caller = parse_caller(arn, account, unique_id="AIDAEXAMPLE")
    except NotAuthenticated:
        return
    partition, arn_account = arn.split(":")[1], arn.split(":")[4]
    assert caller.account_id == arn_account == account
    assert partition in ("aws", "aws-cn", "aws-us-gov") and not arn.endswith(":root")
    assert STS_NAME.fullmatch(caller.source_identity)
    assert not caller.source_identity.lower().startswith("aws:")
    if caller.principal_type == "assumed-role":
        # Entitlement by role, never by the caller-chosen session name.
        assert caller.requester_id == f"arn:{partition}:iam::{account}:role/{caller.name}"
        other = parse_caller(arn.rsplit("/", 1)[0] + "/another-session", account, unique_id="x")
        assert other.requester_id == caller.requester_id and other.owner != caller.owner
    else:
        assert caller.requester_id == arn


@PROPERTIES
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "identity": st.none()
            | st.fixed_dictionaries(
                {},
                optional={
                    "userArn": json_values | arns,
                    "accountId": json_values | accounts,
                    "caller": json_values,
                    "accessKey": json_values,
                },
            )
        },
    )
)
def test_any_request_context_gives_a_caller_or_not_authenticated(context: dict[str, Any]) -> None:
    try:
        caller = caller_from_context(context)
    except NotAuthenticated:
        return
    assert caller.unique_id == context["identity"]["caller"]


# --------------------------------------------------------------------------- names and durations


@PROPERTIES
@given(st.text(max_size=200))
@example("aws:a")
@example("AWS")
@example("")
def test_sts_names_and_tag_values_are_always_valid_for_aws(value: str) -> None:
    name = naming.sts_name(value)
    assert STS_NAME.fullmatch(name) and not name.lower().startswith("aws:")
    assert TAG_VALUE.fullmatch(naming.tag_value(value))


@PROPERTIES
@given(
    st.from_regex(r"\A[A-Za-z0-9_+=,.@-]{2,64}\Z").filter(lambda n: not n.lower().startswith("aws"))
)
def test_a_name_that_is_already_valid_is_kept_as_it_is(name: str) -> None:
    assert naming.sts_name(name) == name


@PROPERTIES
@given(st.integers(min_value=-(10**9), max_value=10**9), st.integers(min_value=1, max_value=10**6))
def test_session_seconds_stay_within_what_role_chaining_allows(left: int, profile: int) -> None:
    seconds = naming.session_seconds(left, profile)
    assert naming.MIN_SESSION_SECONDS <= seconds <= naming.MAX_CHAINED_SESSION_SECONDS
    assert seconds == naming.MIN_SESSION_SECONDS or seconds <= min(left, profile)


@PROPERTIES
@given(st.text(max_size=80))
def test_grant_ids_are_read_back_only_from_the_broker_role_names(text: str) -> None:
    grant_id = naming.grant_id_of_role(text)
    assert grant_id is None or naming.role_name_for(grant_id) == text
    fresh = naming.new_grant_id()
    assert (
        naming.is_grant_id(fresh) and naming.grant_id_of_role(naming.role_name_for(fresh)) == fresh
    )


@PROPERTIES
@given(st.text(max_size=40))
@example("0")
@example("1h0m0s")
@example("٣")  # a digit, but not an ASCII one
def test_a_cli_duration_is_positive_seconds_or_a_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError as refused:
        assert "invalid duration" in str(refused)
        return
    assert seconds > 0


@PROPERTIES
@given(
    st.integers(min_value=0, max_value=999),
    st.integers(min_value=0, max_value=9999),
    st.integers(min_value=0, max_value=999_999),
)
def test_a_cli_duration_in_units_is_their_sum(hours: int, minutes: int, seconds: int) -> None:
    total = hours * 3600 + minutes * 60 + seconds
    text = f"{hours}h{minutes}m{seconds}s"
    if total == 0:
        with pytest.raises(ValueError):
            parse_duration(text)
    else:
        assert parse_duration(text) == total


# --------------------------------------------------------------------------- access policy

EXAMPLE = yaml.safe_load(EXAMPLE_POLICY.read_text(encoding="utf-8"))
POLICY_FIELDS = [
    ("version",),
    ("accounts",),
    ("administrators",),
    ("limits",),
    ("limits", "requests_per_minute"),
    ("profiles",),
    ("profiles", "s3-read"),
    ("profiles", "s3-read", "max_window"),
    ("profiles", "s3-read", "max_session"),
    ("profiles", "s3-read", "max_active_grants"),
    ("profiles", "s3-read", "ticket_pattern"),
    ("profiles", "s3-read", "requesters"),
    ("profiles", "s3-read", "permissions"),
    ("profiles", "s3-read", "permissions", "inline"),
    ("profiles", "s3-read", "permissions", "inline", "Statement"),
]


def with_field(path: tuple[str, ...], value: Any) -> str:
    document = copy.deepcopy(EXAMPLE)
    where = document
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = value
    return yaml.safe_dump(document)


policy_texts = st.one_of(
    st.text(max_size=300),
    json_values.map(yaml.safe_dump),
    st.builds(with_field, st.sampled_from(POLICY_FIELDS), json_values),
)


def _parses_or_is_invalid(text: str) -> None:
    try:
        policy = parse_policy(text)
    except PolicyInvalid as invalid:
        assert invalid.errors and all(isinstance(e, str) and e for e in invalid.errors)
        return
    assert isinstance(policy, AccessPolicy)


@PROPERTIES
@given(policy_texts)
def test_any_policy_document_parses_or_is_policy_invalid(text: str) -> None:
    _parses_or_is_invalid(text)


def test_a_deeply_nested_policy_document_is_policy_invalid() -> None:
    _parses_or_is_invalid("accounts: " + "[" * 5000)


# --------------------------------------------------------------------------- SigV4 headers

NOW = datetime(2026, 11, 28, 2, 15, 0, tzinfo=UTC)
KEY = CallerKey(
    access_key_id="AKIAFUZZ000000000001",
    secret_access_key="fuzz-secret-key",
    session_token=None,
    account_id="111122223333",
    user_arn="arn:aws:iam::111122223333:user/fuzz",
    caller="AIDAFUZZ0000000000001",
    user="AIDAFUZZ0000000000001",
    expires_at=None,
)
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=80)
scope = "AKIAFUZZ000000000001/20261128/us-east-1/execute-api/aws4_request"
authorizations = st.one_of(
    header_text,
    st.builds(
        lambda c, h, s: f"AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={s}",
        header_text | st.just(scope),
        header_text | st.just("host;x-amz-date"),
        header_text,
    ),
)
http_dates = st.builds(
    lambda day, month, year, clock, zone: f"{day}, 28 {month} {year} {clock} {zone}",
    st.sampled_from(["Sat", "Mon", "Xyz"]),
    st.sampled_from(["Nov", "Dec", "Foo"]),
    st.sampled_from(["0", "1", "99", "2026", "9999", "10000"]),
    st.sampled_from(["02:15:00", "23:59:59", "99:99:99"]),
    st.sampled_from(["+0000", "-2359", "+2359", "+9999", "GMT", "-0000"]),
)
amz_dates = st.from_regex(r"\A\d{8}T\d{6}Z\Z") | header_text


@PROPERTIES
@given(authorizations, st.none() | amz_dates, st.none() | http_dates | header_text)
@example(
    f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host;date, Signature=00",
    None,
    "Fri, 31 Dec 9999 23:59:59 -2359",
)
def test_a_malformed_authorization_or_date_header_is_a_403_never_a_failure(
    authorization: str, amz_date: str | None, http_date: str | None
) -> None:
    headers = [("Host", "127.0.0.1"), ("Authorization", authorization)]
    headers += [("X-Amz-Date", amz_date)] if amz_date is not None else []
    headers += [("Date", http_date)] if http_date is not None else []
    lookup = {KEY.access_key_id: KEY}.get
    with pytest.raises(GatewayError) as refused:
        verify_sigv4("GET", "/v1/whoami", "", headers, b"", lookup, "us-east-1", NOW.timestamp())
    assert refused.value.status == 403


segments = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="/?#%"),
    min_size=1,
    max_size=12,
)


@settings(PROPERTIES, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(segments, min_size=1, max_size=4),
    st.lists(st.tuples(segments, segments), max_size=3),
    st.binary(max_size=200),
)
def test_what_botocore_signs_the_gateway_verifies(
    path: list[str], query: list[tuple[str, str]], body: bytes
) -> None:
    """The other side of the property above: the verifier is not refusing everything."""
    request = AWSRequest(method="POST", url="http://127.0.0.1:5566/", data=body, params=query)
    request.url = "http://127.0.0.1:5566/" + "/".join(path)
    prepared_url = request.prepare().url
    request.url = prepared_url
    frozen = NOW.replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=frozen):
        SigV4Auth(
            Credentials(KEY.access_key_id, KEY.secret_access_key), "execute-api", "us-east-1"
        ).add_auth(request)
    sent_path, _, sent_query = prepared_url.removeprefix("http://127.0.0.1:5566").partition("?")
    headers = [(name, str(value)) for name, value in request.headers.items()]
    headers.append(("Host", "127.0.0.1:5566"))
    verified = verify_sigv4(
        "POST",
        sent_path,
        sent_query,
        headers,
        body,
        {KEY.access_key_id: KEY}.get,
        "us-east-1",
        NOW.timestamp(),
    )
    assert verified == KEY
