"""The IAM documents the broker writes, and times as epoch seconds (threats 16, 18)."""

from __future__ import annotations

import calendar
import time

from jit_broker import documents


def epoch(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def test_expiry_across_a_year_boundary_is_written_in_utc() -> None:
    created = epoch("2026-12-31T23:50:00Z")
    expires = created + 1800
    deny = documents.deny_after_expiry(expires)
    assert deny["Condition"] == {"DateGreaterThan": {"aws:CurrentTime": "2027-01-01T00:20:00Z"}}
    trust = documents.trust_policy("arn:aws:iam::123456789012:role/jit-broker", expires)
    condition = trust["Statement"][0]["Condition"]
    assert condition["DateLessThan"] == {"aws:CurrentTime": "2027-01-01T00:20:00Z"}


def test_expiry_across_a_dst_change_is_unaffected_by_local_time(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        # 2026-11-01 06:00 UTC is 01:00 EST, just after New York's clocks went back
        expires = epoch("2026-11-01T06:00:00Z")
        assert documents.iso8601(expires) == "2026-11-01T06:00:00Z"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_grant_policy_keeps_profile_statements_and_ends_with_the_deny() -> None:
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    doc = documents.grant_policy([statement], 1_800_000_000)
    assert doc["Statement"][0] == statement
    assert doc["Statement"][-1]["Effect"] == "Deny" and doc["Statement"][-1]["Action"] == "*"


def test_revocation_document_denies_everything_without_condition() -> None:
    (statement,) = documents.deny_all()["Statement"]
    assert statement == {"Sid": "GrantRevoked", "Effect": "Deny", "Action": "*", "Resource": "*"}
