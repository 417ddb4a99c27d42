"""AWS's name and duration rules: every value the broker sends is valid, whatever it was given."""

from __future__ import annotations

import re

import pytest

from jit_broker import naming

STS_NAME = re.compile(r"^[\w+=,.@-]{2,64}$", re.ASCII)
HOSTILE = [
    "",
    "a",
    "aws:admin",
    "AWS:Admin",
    "awsadmin",
    "x" * 300,
    "Jürgen Müller",
    "名前",
    "alice@example.com",
    "a/b/c",
    "role/Deploy@session",
    "\x00\n\t",
    "'; DROP TABLE --",
    "a" * 64,
    "a" * 65,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_sts_names_are_always_valid(value: str) -> None:
    name = naming.sts_name(value)
    assert STS_NAME.fullmatch(name), name
    assert not name.lower().startswith("aws:")
    assert not name.lower().startswith("aws")


def test_clean_names_pass_unchanged() -> None:
    assert naming.sts_name("JITUser") == "JITUser"
    assert naming.sts_name("Deploy@alice") == "Deploy@alice"


def test_truncated_names_stay_distinct() -> None:
    a, b = naming.sts_name("x" * 100 + "a"), naming.sts_name("x" * 100 + "b")
    assert a != b and len(a) == len(b) == 64


def test_changed_names_stay_distinct() -> None:
    assert naming.sts_name("a b") != naming.sts_name("a/b")


@pytest.mark.parametrize("value", ["arn:aws:iam::123456789012:user/JITUser", "x" * 400, "名前\n"])
def test_tag_values_are_valid(value: str) -> None:
    tag = naming.tag_value(value)
    assert len(tag) <= 256 and re.fullmatch(r"[A-Za-z0-9 _.:/=+\-@]*", tag)


@pytest.mark.parametrize(
    ("window_left", "profile_session", "expected"),
    [
        (1800, 3600, 1800),
        (7200, 3600, 3600),
        (7200, 900, 900),
        (43200, 3600, 3600),
        (100, 3600, 900),
        (899, 3600, 900),
        (901, 1200, 901),
    ],
)
def test_session_seconds_is_min_of_window_profile_and_hour_never_below_900(
    window_left: int, profile_session: int, expected: int
) -> None:
    assert naming.session_seconds(window_left, profile_session) == expected


def test_grant_ids_are_fresh_and_role_names_fit_iam() -> None:
    ids = {naming.new_grant_id() for _ in range(1000)}
    assert len(ids) == 1000
    for gid in list(ids)[:20]:
        assert naming.is_grant_id(gid)
        role = naming.role_name_for(gid)
        assert re.fullmatch(r"[\w+=,.@-]{1,64}", role)
    assert not naming.is_grant_id("g-../../etc")


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(900, "15m"), (3600, "1h"), (3601, "1h1s"), (5400, "1h30m"), (43200, "12h"), (45, "45s")],
)
def test_windows_read_in_the_units_the_cli_takes(seconds: int, words: str) -> None:
    assert naming.human_seconds(seconds) == words
