"""``jit status``: who the CLI signs as, the caller's active grants, the cached sessions.

The broker answers the first two (``whoami``, ``GET /v1/grants?status=active``); the cached
sessions come from the cache alone, so ``jit status`` still says something useful when the
broker cannot be reached (it says so). Nothing secret is shown: a session is its profile,
grant and end, never its keys.

The installed ``jit status`` (no flag but ``--output``) is answered by :mod:`jit_cli.entry`
from the cache alone (:func:`cached_document`): asking the broker means signing, and signing
loads botocore, several times the cost of starting Python. That document says the broker was
not asked. Standard library and :mod:`jit_cli.cache` only, and nothing slow to import.
"""

from __future__ import annotations

import os

from jit_cli import cache
from jit_cli.cache import local_time, time_left

TYPE_CHECKING = False  # typing costs milliseconds on the fast path (jit_cli.entry)
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

NOT_ASKED_WHO = "not asked (jit status --check or jit whoami asks the broker)"
NOT_ASKED_GRANTS = "active grants: not asked (jit status --check asks the broker)"


def signs_with(profile: str | None, environ: Mapping[str, str]) -> str:
    """Where the signing keys come from, as the CLI resolves them (no AWS call)."""
    if profile:
        return f"AWS profile {profile}"
    access_key = environ.get("AWS_ACCESS_KEY_ID", "")
    if access_key:
        return f"keys {access_key[:4]}...{access_key[-4:]} in the environment"
    return "the default credential chain"


def cached_document(
    api_url: str, profile: str | None, environ: Mapping[str, str], at: float
) -> dict[str, Any]:
    """The status from the cache alone: where the keys come from and the cached sessions;
    ``broker_asked`` false (who the keys are and the active grants are the broker's)."""
    return {
        "api_url": api_url,
        "signs_with": signs_with(profile, environ),
        "broker_asked": False,
        "broker_answered": False,
        "whoami": None,
        "grants": None,
        "sessions": sessions(environ, at),
    }


def sessions(environ: Mapping[str, str], at: float) -> list[dict[str, Any]]:
    """The cached sessions that still work at ``at``, soonest end first (no secrets)."""
    env = dict(environ)
    try:
        names = os.listdir(cache.directory(env))
    except OSError:
        return []
    found = []
    for name in names:
        if not name.endswith(".json") or name.startswith(".tmp-"):
            continue
        entry = cache.read(name.removesuffix(".json"), env)
        if entry is None or cache.ends_at(entry) <= at:
            continue
        found.append(
            {
                "profile": entry.get("profile"),
                "grant": entry["grant"]["id"],
                "api_url": entry.get("api_url"),
                "ends_at": cache.ends_at(entry),
                "seconds_left": int(cache.ends_at(entry) - at),
            }
        )
    return sorted(found, key=lambda row: row["ends_at"])


def active_grants(grants: Sequence[Any], at: float) -> list[dict[str, Any]]:
    """The active grants that have not ended at ``at``, with their seconds left."""
    rows = []
    for grant in grants:
        if not isinstance(grant, dict) or grant.get("status") != "active":
            continue
        expires_at = grant.get("expires_at")
        if not isinstance(expires_at, int) or isinstance(expires_at, bool) or expires_at <= at:
            continue
        rows.append({**grant, "seconds_left": int(expires_at - at)})
    return sorted(rows, key=lambda row: row["expires_at"])


AWAITING = ("requested", "approved")  # a request awaiting its approvers; approved, not taken up


def requests(grants: Sequence[Any], at: float) -> list[dict[str, Any]]:
    """The caller's requests awaiting approval (requested, deadline ahead) and approved grants
    not yet taken up, soonest end first; approvals given counted in ``approvals_given``."""
    rows = []
    for grant in grants:
        if not isinstance(grant, dict) or grant.get("status") not in AWAITING:
            continue
        expires_at = grant.get("expires_at")
        if not isinstance(expires_at, int) or isinstance(expires_at, bool) or expires_at <= at:
            continue
        given = sum(
            1
            for decision in grant.get("approvals") or []
            if isinstance(decision, dict) and decision.get("verdict") == "approve"
        )
        rows.append({**grant, "approvals_given": given, "seconds_left": int(expires_at - at)})
    return sorted(rows, key=lambda row: row["expires_at"])


def _request_state(grant: Mapping[str, Any], at: float) -> str:
    ends = f"{local_time(grant['expires_at'], at)} ({time_left(grant['seconds_left'])})"
    if grant.get("status") == "approved":
        return f"approved, not taken up: until {ends}"
    required = grant.get("approvals_required")
    tally = f"{grant['approvals_given']}/{required} approvals, " if required else ""
    return f"requested: {tally}review closes at {ends}"


def _lines(title: str, rows: list[list[str]]) -> list[str]:
    if not rows:
        return [f"{title}: none"]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [f"{title}:"] + [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def human(document: Mapping[str, Any], at: float) -> str:
    """The status for a person: local times and time left."""
    whoami = document.get("whoami") or {}
    who = whoami.get("arn") if isinstance(whoami, dict) else None
    asked = document.get("broker_asked", True)
    if document["broker_answered"]:
        broker_note = ""
    else:
        broker_note = " (unreachable: from the cache only)" if asked else " (from the cache)"
    unanswered = "(the broker did not answer)" if asked else NOT_ASKED_WHO
    lines = [
        f"broker:        {document['api_url']}{broker_note}",
        f"signing as:    {who or unanswered}",
        f"signs with:    {document['signs_with']}",
    ]
    if document["grants"] is None:
        lines.append(
            "active grants: unknown (the broker did not answer)" if asked else NOT_ASKED_GRANTS
        )
    else:
        lines += _lines(
            "active grants",
            [
                [
                    str(grant.get("id")),
                    str(grant.get("profile")),
                    str(grant.get("account") or "-"),
                    f"{time_left(grant['seconds_left'])} (until "
                    f"{local_time(grant['expires_at'], at)})",
                ]
                for grant in document["grants"]
            ],
        )
    if document.get("requests") is not None:
        lines += _lines(
            "requests",
            [
                [
                    str(grant.get("id")),
                    str(grant.get("profile")),
                    str(grant.get("account") or "-"),
                    _request_state(grant, at),
                ]
                for grant in document["requests"]
            ],
        )
    lines += _lines(
        "cached sessions",
        [
            [
                str(row["profile"]),
                str(row["grant"]),
                f"{time_left(row['seconds_left'])} (until {local_time(row['ends_at'], at)})",
            ]
            for row in document["sessions"]
        ],
    )
    return "\n".join(lines)
