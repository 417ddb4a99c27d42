"""Credentials for a JIT profile: from the cache, a fresh session inside the grant, or a grant.

The order (``obtain``):

1. a cached entry with more than 5 minutes left: used as is, nothing is signed;
2. a cached grant that has not ended: a fresh session inside it
   (POST /v1/grants/{id}/credentials); if the broker says the grant ended (409
   ``grant_not_active``) or is gone (404), go on;
3. a new grant (POST /v1/grants); if that is refused with 429 because an active grant of the
   profile already exists (``max_active_grants``), a fresh session inside that grant, if it
   is in the account asked for (a grant in one account never serves another).

Steps 2 and 3 run under an exclusive lock on the entry, re-reading the cache once the lock
is held: two SDK processes starting at once make one grant, not two.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jit_cli import cache
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
        "grant": {"id": grant["id"], "expires_at": expires_at},
        "credentials": {name: creds[name] for name in (*cache.CREDENTIAL_FIELDS, "expiration")},
    }


def _session_in(client: BrokerClient, grant_id: str) -> dict[str, Any] | None:
    """A fresh session inside ``grant_id``; None when the grant has ended or is gone."""
    try:
        return client.call("POST", grant_path(grant_id, "/credentials"), {"nonce": nonce()})
    except CliError as error:
        if error.code == "grant_not_active" or error.exit_code == ExitCode.NOT_FOUND:
            return None
        raise


def _active_grant(client: BrokerClient, wanted: Wanted, at: float) -> str | None:
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
    return max(active, key=lambda grant: grant["expires_at"])["id"] if active else None


def _new_grant(client: BrokerClient, wanted: Wanted, at: float) -> dict[str, Any]:
    body: dict[str, Any] = {"profile": wanted.profile, "nonce": nonce()}
    for name in ("reason", "duration", "ticket", "account"):
        if getattr(wanted, name) is not None:
            body[name] = getattr(wanted, name)
    try:
        return client.call("POST", "/v1/grants", body, wait=GRANT_WAIT)
    except CliError as error:
        if error.exit_code != ExitCode.RATE_LIMITED:
            raise
        grant_id = _active_grant(client, wanted, at)
        answer = _session_in(client, grant_id) if grant_id else None
        if answer is None:
            raise
        return answer


def fetch(
    client: BrokerClient, wanted: Wanted, api_url: str, previous: dict[str, Any] | None, at: float
) -> dict[str, Any]:
    """A new entry: a session in ``previous``'s grant while it lasts, else a new grant."""
    answer = None
    if previous is not None and previous["grant"]["expires_at"] > at:
        answer = _session_in(client, previous["grant"]["id"])
    if answer is None:
        answer = _new_grant(client, wanted, at)
    return _entry(answer, api_url, wanted.profile)


def obtain(
    connect: Callable[[], BrokerClient],
    wanted: Wanted,
    api_url: str,
    cache_key: str | None,
    environ: Mapping[str, str],
) -> dict[str, Any]:
    """Credentials for ``wanted`` (steps in the module docstring); no cache if key is None."""
    env = dict(environ)
    at = cache.now(env)
    if cache_key is None:
        return fetch(connect(), wanted, api_url, None, at)
    entry = cache.read(cache_key, env)
    if entry is not None and cache.is_fresh(entry, at):
        return entry
    with cache.Lock(cache_key, env):
        entry = cache.read(cache_key, env)
        if entry is not None and cache.is_fresh(entry, at):
            return entry
        fresh = fetch(connect(), wanted, api_url, entry, at)
        cache.write(cache_key, fresh, env)
        return fresh
