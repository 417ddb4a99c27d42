"""``jit console`` (and its alias ``jit login``) lands where it is asked: a service's page
(--service), in a region (--console-region, never the broker's signing --region), or a
console URL given whole (--destination, on the console's own hosts only), with the
federation endpoint a local stand-in and the broker the signature-checking fake of
test_cli. The sign-in URL's Destination is asserted exactly."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from jit_cli.errors import ExitCode
from tests.unit import test_cli, test_cli_session
from tests.unit.test_cli import FakeBroker, Result
from tests.unit.test_cli_session import FederationStandIn, Sessions

fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env
jit = test_cli_session.jit


@pytest.fixture
def federation(monkeypatch: pytest.MonkeyPatch):
    stand_in = FederationStandIn()
    monkeypatch.setenv("JIT_FEDERATION_URL", stand_in.url)
    try:
        yield stand_in
    finally:
        stand_in.stop()


def login_query(result: Result) -> dict[str, list[str]]:
    assert result.code == 0, result.err
    return parse_qs(urlsplit(result.out.strip()).query)


@pytest.mark.parametrize(
    ("flags", "page"),
    [
        ([], "https://console.aws.amazon.com/"),
        (["--service", "s3"], "https://console.aws.amazon.com/s3/home"),
        (["--service", "cloudwatch"], "https://console.aws.amazon.com/cloudwatch/home"),
        (
            ["--service", "ec2", "--console-region", "eu-west-1"],
            "https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1",
        ),
        (
            ["--console-region", "us-gov-west-1"],
            "https://us-gov-west-1.console.aws.amazon.com/console/home?region=us-gov-west-1",
        ),
        (
            ["--destination", "https://console.aws.amazon.com/cloudwatch/home#logsV2:"],
            "https://console.aws.amazon.com/cloudwatch/home#logsV2:",
        ),
        (
            [
                "--destination",
                "https://eu-central-1.console.aws.amazon.com/lambda/home?region=eu-central-1#/functions",
            ],
            "https://eu-central-1.console.aws.amazon.com/lambda/home?region=eu-central-1#/functions",
        ),
    ],
    ids=["home", "s3", "cloudwatch", "ec2-in-a-region", "home-in-a-region", "url", "regional-url"],
)
def test_console_signs_in_to_exactly_the_page_asked_for(
    jit, fake: FakeBroker, federation: FederationStandIn, flags: list[str], page: str
) -> None:
    Sessions(fake)

    query = login_query(jit("console", "s3-read", "--reason", "r", *flags))

    assert query == {
        "Action": ["login"],
        "Issuer": ["jit"],
        "Destination": [page],
        "SigninToken": ["token+/=from-stand-in"],
    }
    assert len(federation.sessions) == 1


def test_login_is_console(jit, fake: FakeBroker, federation: FederationStandIn) -> None:
    Sessions(fake)

    query = login_query(jit("login", "s3-read", "--reason", "r", "--service", "iam"))

    assert query["Destination"] == ["https://console.aws.amazon.com/iam/home"]
    assert [r.path for r in fake.requests] == ["/v1/grants"]


def test_the_signing_region_does_not_move_the_console_page(
    jit, fake: FakeBroker, federation: FederationStandIn
) -> None:
    Sessions(fake)

    query = login_query(jit("--region", fake.region, "console", "s3-read", "--reason", "r"))

    assert query["Destination"] == ["https://console.aws.amazon.com/"]
    assert fake.requests[0].signature_error is None


@pytest.mark.parametrize(
    ("flags", "code"),
    [
        (["--destination", "https://evil.example.com/"], "invalid_destination"),
        (["--destination", "http://console.aws.amazon.com/"], "invalid_destination"),
        (["--destination", "https://console.aws.amazon.com.evil.example/"], "invalid_destination"),
        (["--destination", "https://evil.example/console.aws.amazon.com/"], "invalid_destination"),
        (["--destination", "https://user@console.aws.amazon.com/"], "invalid_destination"),
        (["--destination", "https://console.aws.amazon.com:8443/"], "invalid_destination"),
        (["--destination", "https://signin.aws.amazon.com/federation"], "invalid_destination"),
        (["--destination", "https://x.eu-west-1.console.aws.amazon.com/"], "invalid_destination"),
        (["--destination", "javascript:alert(1)"], "invalid_destination"),
        (["--destination", "https://console.aws.amazon.com/\n"], "invalid_destination"),
        (["--service", "S3/../../x"], "invalid_service"),
        (["--console-region", "mars"], "invalid_region"),
        (["--service", "s3", "--destination", "https://console.aws.amazon.com/"], "usage"),
        (
            ["--console-region", "eu-west-1", "--destination", "https://console.aws.amazon.com/"],
            "usage",
        ),
    ],
)
def test_a_page_off_the_console_is_refused_before_any_grant_or_sign_in(
    jit, fake: FakeBroker, federation: FederationStandIn, flags: list[str], code: str
) -> None:
    Sessions(fake)

    result = jit("console", "s3-read", "--reason", "r", *flags)

    assert (result.code, result.out) == (ExitCode.USAGE, "")
    [line] = result.err.splitlines()
    assert line.startswith("jit: error: ") and line.endswith(f"({code})")
    assert fake.requests == [] and federation.sessions == []


def test_open_hands_the_url_to_the_browser_and_prints_nothing(
    jit, fake: FakeBroker, federation: FederationStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    Sessions(fake)
    opened: list[str] = []

    def browser(url: str) -> bool:
        opened.append(url)
        return True

    monkeypatch.setattr("webbrowser.open", browser)

    result = jit("console", "s3-read", "--reason", "r", "--open", "--service", "s3")

    assert (result.code, result.out) == (0, "")
    assert "opened the AWS console in your browser" in result.err
    [url] = opened
    assert parse_qs(urlsplit(url).query)["Destination"] == [
        "https://console.aws.amazon.com/s3/home"
    ]


def test_open_without_a_browser_prints_the_url_instead(
    jit, fake: FakeBroker, federation: FederationStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    Sessions(fake)
    monkeypatch.setattr("webbrowser.open", lambda url: False)

    query = login_query(jit("console", "s3-read", "--reason", "r", "--open"))

    assert query["Destination"] == ["https://console.aws.amazon.com/"]
