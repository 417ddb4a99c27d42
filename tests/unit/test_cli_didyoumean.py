"""Did-you-mean for a mistyped ``jit`` command: one sentence naming the nearest command
(difflib on the parser's own command names), exit 2, instead of argparse's list of choices."""

from __future__ import annotations

import pytest

from jit_cli import main
from jit_cli.errors import ExitCode


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
        action for action in parser._actions if isinstance(action, main.argparse._SubParsersAction)
    )
    assert "grants" in commands.choices
    args, _ = parser.parse_known_args(["grants"])
    assert args.command == "grants"
