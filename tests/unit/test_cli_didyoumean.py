"""Did-you-mean for a mistyped ``jit`` command: one sentence naming the nearest command
(difflib on the parser's own command names), exit 2, instead of argparse's list of choices;
and for a profile the broker answers not_found for: the nearest one from one GET
/v1/profiles, against the signature-checking fake broker of test_cli."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from jit_cli import main
from jit_cli.errors import ExitCode
from tests.unit import test_cli
from tests.unit.test_cli import FakeBroker, Reply


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_mistyped_command_gets_the_nearest_command_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _run(["grnats"], capsys)

    assert code == ExitCode.USAGE == 2
    assert out == ""
    assert err == "jit: 'grnats' is not a jit command; did you mean 'grants'?\n"


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("cofigure", "configure"), ("whoam", "whoami"), ("exce", "exec"), ("profile", "profiles")],
)
def test_the_suggestion_is_taken_from_the_parsers_command_names(
    typed: str, meant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run([typed, "x"], capsys)

    assert code == ExitCode.USAGE
    assert err == f"jit: '{typed}' is not a jit command; did you mean '{meant}'?\n"


def test_global_flags_before_a_mistyped_command_do_not_hide_the_suggestion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = _run(["--output", "json", "--debug", "grnats"], capsys)

    assert code == ExitCode.USAGE
    assert err == "jit: 'grnats' is not a jit command; did you mean 'grants'?\n"


def test_a_word_near_no_command_points_to_help_instead_of_listing_every_choice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = _run(["zzzz"], capsys)

    assert code == ExitCode.USAGE
    assert err == "jit: 'zzzz' is not a jit command; see 'jit --help'\n"
    assert "invalid choice" not in err


def test_every_command_name_still_parses_as_itself() -> None:
    parser = main.build_parser()
    commands = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    assert "grants" in commands.choices
    args, _ = parser.parse_known_args(["grants"])
    assert args.command == "grants"


# ------------------------------------------------ profile names (the broker's not_found)

fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env
jit = test_cli.jit

PROFILES = {"profiles": [{"name": "s3-read"}, {"name": "s3-write"}, {"name": "ec2-admin"}]}


def _unknown_profile(name: str) -> Reply:
    message = f"there is no profile {name!r}; you may request: s3-read, s3-write, ec2-admin"
    return Reply(404, {"error": {"code": "not_found", "message": message}})


@pytest.mark.parametrize(
    "argv",
    [
        ["request", "s3-raed", "--reason", "debugging"],
        ["env", "s3-raed", "--reason", "debugging", "--no-cache"],
    ],
)
def test_an_unknown_profile_gets_the_nearest_profile_from_one_profiles_listing(
    argv: list[str], fake: FakeBroker, jit: Any
) -> None:
    fake.routes[("POST", "/v1/grants")] = _unknown_profile("s3-raed")
    fake.routes[("GET", "/v1/profiles")] = Reply(200, PROFILES)

    result = jit(*argv)

    assert result.code == ExitCode.NOT_FOUND
    assert result.out == ""
    assert result.err.strip().endswith(
        "you may request: s3-read, s3-write, ec2-admin; did you mean 's3-read'? (not_found)"
    )
    asked = [(request.method, request.path) for request in fake.requests]
    assert asked == [("POST", "/v1/grants"), ("GET", "/v1/profiles")]
    assert all(request.signature_error is None for request in fake.requests)


def test_a_profile_near_none_you_may_request_keeps_the_brokers_message(
    fake: FakeBroker, jit: Any
) -> None:
    fake.routes[("POST", "/v1/grants")] = _unknown_profile("zzzz")
    fake.routes[("GET", "/v1/profiles")] = Reply(200, PROFILES)

    result = jit("request", "zzzz", "--reason", "debugging")

    assert result.code == ExitCode.NOT_FOUND
    assert "did you mean" not in result.err
    assert "there is no profile 'zzzz'; you may request: s3-read" in result.err


def test_a_refusal_other_than_not_found_does_not_list_profiles(fake: FakeBroker, jit: Any) -> None:
    refusal = {"error": {"code": "not_entitled", "message": "you may not request 's3-read'"}}
    fake.routes[("POST", "/v1/grants")] = Reply(403, refusal)
    fake.routes[("GET", "/v1/profiles")] = Reply(200, PROFILES)

    result = jit("request", "s3-read", "--reason", "debugging")

    assert "did you mean" not in result.err
    assert [request.path for request in fake.requests if request.method == "GET"] in (
        [],
        ["/v1/whoami"],  # what the guard asks to explain a 403
    )


def test_a_failing_profiles_listing_leaves_the_not_found_as_it_was(
    fake: FakeBroker, jit: Any
) -> None:
    fake.routes[("POST", "/v1/grants")] = _unknown_profile("s3-raed")
    fake.routes[("GET", "/v1/profiles")] = Reply(
        500, {"error": {"code": "internal", "message": "boom"}}
    )

    result = jit("request", "s3-raed", "--reason", "debugging")

    assert result.code == ExitCode.NOT_FOUND
    assert "did you mean" not in result.err
    assert result.err.strip().endswith("(not_found)")
