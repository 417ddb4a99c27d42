"""Credentials for a JIT profile: from the cache, a fresh session inside the grant, or a grant.

The order (``obtain``):

1. a cached entry with more than 5 minutes left: used as is, nothing is signed;
2. a cached grant that has not ended: a fresh session inside it
   (POST /v1/grants/{id}/credentials); if the broker says the grant ended (409
   ``grant_not_active``) or is gone (404), go on;
3. a new grant (POST /v1/grants); if that is refused with 429 because an active grant of the
   profile already exists (``max_active_grants``), a fresh session inside that grant, if it
   is in the account asked for (a grant in one account never serves another).

A profile with approvers answers step 3 with a request awaiting them (202, no credentials):
it is remembered under the cache key and the command stops (exit 6, saying so). Until then,
each run first takes up that request (POST /v1/grants/{id}/credentials): still pending, the
same stop without a new request; approved, its first session; denied or lapsed, that run stops
(exit 4) and the next one asks again; gone, it is
forgotten (said on stderr) and the steps go on.

Steps 2 and 3 run under an exclusive lock on the entry, re-reading the cache once the lock
is held: two SDK processes starting at once make one grant, not two.

Every decision is one line through ``say`` (stderr): ``using grant g-… (s3-read, 42 min
left)`` or ``new grant g-… until 19:50`` (local time), naming the grant it replaces when one
was revoked or ended. ``Wanted.new`` skips steps 1 and 2 (and never falls back to an active
grant in step 3); ``Wanted.strict`` refuses to reuse a grant whose reason or window differs
from the ``--reason``/``--duration`` given, saying to pass ``--new`` or drop the flag.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jit_cli import approval, cache
from jit_cli.broker import BrokerClient
from jit_cli.errors import CliError, ExitCode
from jit_cli.formats import credentials_from, grant_from
from jit_cli.progress import GRANT_WAIT


@dataclass(frozen=True)
class Wanted:
    """What to ask for when a new grant is needed."""

    profile: str
    reason: str | None = None
    duration: int | None = None
    ticket: str | None = None
    account: str | None = None  # None: the profile's only account (the broker refuses if several)
    new: bool = False  # --new: always a new grant
    strict: bool = False  # refuse to reuse a grant whose reason or window differs from these


Say = Callable[[str], None]


def _silent(line: str) -> None:
    return None


ACTIVE_GRANTS_PATH = "/v1/grants?status=active"  # the caller's active grants only


def nonce() -> str:
    return secrets.token_urlsafe(24)


def grant_path(grant_id: str, action: str = "") -> str:
    return f"/v1/grants/{quote(grant_id, safe='')}{action}"


def _entry(answer: Mapping[str, Any], api_url: str, profile: str) -> dict[str, Any]:
    creds = credentials_from(answer)
    grant = grant_from(answer)
    expires_at = grant.get("expires_at")
    if not isinstance(expires_at, int) or isinstance(expires_at, bool):
        expires_at = creds["expiration"]
    return {
        "api_url": api_url,
        "profile": profile,
        "grant": {"id": grant["id"], "expires_at": expires_at, **_terms(grant)},
        "credentials": {name: creds[name] for name in (*cache.CREDENTIAL_FIELDS, "expiration")},
    }


def _terms(grant: Mapping[str, Any]) -> dict[str, Any]:
    """What a reuse is checked against: the grant's reason and window (seconds)."""
    terms: dict[str, Any] = {}
    if isinstance(grant.get("window"), int):
        terms["window"] = grant["window"]
    if isinstance(grant.get("reason"), str):
        terms["reason"] = grant["reason"]
    created, expires = grant.get("created_at"), grant.get("expires_at")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in (created, expires)):
        terms["window"] = expires - created  # type: ignore[operator]
    return terms


# Words for people, shared with the fast path's jit status (which may not import this module).
time_left = cache.time_left
local_time = cache.local_time


def _minutes(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def using_line(grant: Mapping[str, Any], profile: str, at: float) -> str:
    return f"using grant {grant['id']} ({profile}, {time_left(grant['expires_at'] - at)})"


def check_reuse(wanted: Wanted, grant: Mapping[str, Any], at: float) -> None:
    """Refuse (``strict``) to reuse ``grant`` when the asked reason or window differs."""
    if not wanted.strict:
        return
    differences = []
    if wanted.reason is not None and grant.get("reason") not in (None, wanted.reason):
        differences.append(("--reason", f"its reason is {grant['reason']!r}"))
    window = grant.get("window")
    if wanted.duration is not None and window is not None and window != wanted.duration:
        differences.append(("--duration", f"its window is {_minutes(int(window))}"))
    if not differences:
        return
    flags = " and ".join(flag for flag, _ in differences)
    raise CliError(
        f"grant {grant['id']} ({wanted.profile}, {time_left(grant['expires_at'] - at)}) would "
        f"be reused, but {' and '.join(why for _, why in differences)}: pass --new for a new "
        f"grant, or drop {flags} to use it",
        code="grant_differs",
        exit_code=ExitCode.USAGE,
    )


def _session_in(client: BrokerClient, grant_id: str) -> dict[str, Any] | None:
    """A fresh session inside ``grant_id``; None when the grant has ended or is gone."""
    try:
        return client.call("POST", grant_path(grant_id, "/credentials"), {"nonce": nonce()})
    except CliError as error:
        if error.code == "grant_not_active" or error.exit_code == ExitCode.NOT_FOUND:
            return None
        raise


def _active_grant(client: BrokerClient, wanted: Wanted, at: float) -> dict[str, Any] | None:
    """The caller's latest active grant of the wanted profile (and account, if named)."""
    grants = client.call("GET", ACTIVE_GRANTS_PATH).get("grants", [])
    active = [
        grant
        for grant in grants
        if isinstance(grant, dict)
        and grant.get("profile") == wanted.profile
        and (wanted.account is None or grant.get("account") == wanted.account)
        and grant.get("status") == "active"
        and isinstance(grant.get("expires_at"), int)
        and grant["expires_at"] > at
    ]
    if not active:
        return None
    latest = max(active, key=lambda grant: grant["expires_at"])
    return {"id": latest["id"], "expires_at": latest["expires_at"], **_terms(latest)}


def _new_grant(
    client: BrokerClient, wanted: Wanted, at: float, say: Say
) -> tuple[dict[str, Any], bool]:
    """A new grant's answer, or (at the profile's active-grant cap) a session in the active
    grant; and whether it is that reused grant."""
    body: dict[str, Any] = {"profile": wanted.profile, "nonce": nonce()}
    for name in ("reason", "duration", "ticket", "account"):
        if getattr(wanted, name) is not None:
            body[name] = getattr(wanted, name)
    try:
        return client.call("POST", "/v1/grants", body, wait=GRANT_WAIT), False
    except CliError as error:
        if error.exit_code != ExitCode.RATE_LIMITED or wanted.new:
            raise
        active = _active_grant(client, wanted, at)
        if active is None:
            raise
        check_reuse(wanted, active, at)
        answer = _session_in(client, active["id"])
        if answer is None:
            raise
        say(using_line(active, wanted.profile, at) + " (the profile allows no other)")
        return answer, True


def fetch(
    client: BrokerClient,
    wanted: Wanted,
    api_url: str,
    previous: dict[str, Any] | None,
    at: float,
    say: Say = _silent,
    revoked: str | None = None,
    remember: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """A new entry: a session in ``previous``'s grant while it lasts, else a new grant
    (a request awaiting approval instead: ``remember``-ed, then a CliError, exit 6)."""
    answer = None
    known: dict[str, Any] = {}
    if previous is not None and not wanted.new and previous["grant"]["expires_at"] > at:
        check_reuse(wanted, previous["grant"], at)
        answer = _session_in(client, previous["grant"]["id"])
        if answer is not None:
            say(using_line(previous["grant"], wanted.profile, at))
            known = _terms(previous["grant"])
        else:
            revoked = previous["grant"]["id"]
    if answer is None:
        answer, reused = _new_grant(client, wanted, at, say)
        if approval.is_request(answer):
            request = grant_from(answer)
            if remember is not None:
                remember(request["id"])
            raise approval.waiting_error(request, wanted.profile, remembered=remember is not None)
        if not reused:
            _say_new(say, grant_from(answer), at, revoked)
        return _entry(answer, api_url, wanted.profile)
    fresh = _entry(answer, api_url, wanted.profile)
    fresh["grant"] = {**known, **fresh["grant"]}  # what the session's answer may omit
    return fresh


def _say_new(say: Say, grant: Mapping[str, Any], at: float, replaced: str | None) -> None:
    expires_at = grant.get("expires_at")
    until = (
        f" until {local_time(expires_at, at)}"
        if isinstance(expires_at, int) and not isinstance(expires_at, bool)
        else ""
    )
    line = f"new grant {grant['id']}{until}"
    if replaced is not None and replaced != grant["id"]:
        line = f"grant {replaced} was revoked or has ended: {line}"
    say(line)


def obtain(
    connect: Callable[[], BrokerClient],
    wanted: Wanted,
    api_url: str,
    cache_key: str | None,
    environ: Mapping[str, str],
    say: Say = _silent,
) -> dict[str, Any]:
    """Credentials for ``wanted`` (steps in the module docstring); no cache if key is None."""
    env = dict(environ)
    at = cache.now(env)
    if cache_key is None:
        return fetch(connect(), wanted, api_url, None, at, say)
    entry = None if wanted.new else cache.read(cache_key, env)
    if entry is not None and cache.is_fresh(entry, at):
        return _hit(entry, wanted, at, say)
    with cache.Lock(cache_key, env):
        entry = cache.read(cache_key, env)
        if entry is not None and not wanted.new and cache.is_fresh(entry, at):
            return _hit(entry, wanted, at, say)
        revoked = cache.revoked_grant(cache_key, env)
        client = connect()
        fresh = None if wanted.new else _approved(client, wanted, api_url, cache_key, env, say)
        if fresh is None:

            def remember(grant_id: str) -> None:
                cache.note_pending(cache_key, grant_id, env)

            fresh = fetch(client, wanted, api_url, entry, at, say, revoked, remember)
        cache.write(cache_key, fresh, env)
        if revoked is not None:
            cache.forget_revoked(cache_key, env)
        return fresh


def _hit(entry: dict[str, Any], wanted: Wanted, at: float, say: Say) -> dict[str, Any]:
    check_reuse(wanted, entry["grant"], at)
    say(using_line(entry["grant"], wanted.profile, at))
    return entry


def _approved(
    client: BrokerClient,
    wanted: Wanted,
    api_url: str,
    cache_key: str,
    env: dict[str, str],
    say: Say,
) -> dict[str, Any] | None:
    """The first session of the request remembered under ``cache_key``, once approved; a
    CliError (exit 6) while it awaits approval; None when there is none or it will never be
    approved (forgotten, and said)."""
    grant_id = cache.pending_request(cache_key, env)
    if grant_id is None:
        return None
    try:
        answer = client.call(
            "POST", grant_path(grant_id, "/credentials"), {"nonce": nonce()}, wait=GRANT_WAIT
        )
    except CliError as error:
        if error.code == "approval_pending":
            raise approval.waiting_error(
                {"id": grant_id}, wanted.profile, remembered=True
            ) from None
        if error.exit_code not in (ExitCode.CONFLICT, ExitCode.NOT_FOUND):
            raise
        cache.forget_pending(cache_key, env)
        if error.exit_code == ExitCode.CONFLICT:
            # Denied or lapsed: this run stops and says so. Asking the approvers again at once
            # would let an SDK that retries credential_process re-ask them after every "no".
            raise CliError(
                f"request {grant_id} ({wanted.profile}) will not be granted: {error.message}; "
                "run this again to send a new request to its approvers",
                code="request_not_granted",
                exit_code=ExitCode.DENIED,
            ) from None
        say(f"request {grant_id} ({wanted.profile}) is gone: {error.message}")
        return None
    cache.forget_pending(cache_key, env)
    fresh = _entry(answer, api_url, wanted.profile)
    expires_at = fresh["grant"]["expires_at"]
    say(f"request {grant_id} was approved: using it until {local_time(expires_at, cache.now(env))}")
    return fresh
