"""``jit console``: an AWS console sign-in URL for a session, via the federation endpoint.

1. ``GET {federation}?Action=getSigninToken&Session={"sessionId","sessionKey","sessionToken"}``
   answers ``{"SigninToken": ...}`` (no SessionDuration: role-chained sessions refuse it);
2. the URL is ``{federation}?Action=login&Issuer=...&Destination=...&SigninToken=...``.

The endpoint is JIT_FEDERATION_URL (tests point it at a local stand-in), by default AWS's;
plain http is accepted only for a loopback host. The URL signs a person in: it goes to stdout
(or the browser) only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from jit_cli.broker import send
from jit_cli.errors import CliError, ExitCode
from jit_cli.signing import is_loopback

DEFAULT_FEDERATION_URL = "https://signin.aws.amazon.com/federation"
DESTINATION = "https://console.aws.amazon.com/"
ISSUER = "jit"
TIMEOUT_SECONDS = 30.0


def federation_url(environ: Mapping[str, str]) -> str:
    url = environ.get("JIT_FEDERATION_URL") or DEFAULT_FEDERATION_URL
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and is_loopback(parts.hostname or "")
    )
    if not secure or not parts.hostname or parts.query:
        raise CliError(
            f"invalid federation URL {url!r}: https (or http to localhost) without a query",
            code="invalid_federation_url",
            exit_code=ExitCode.USAGE,
        )
    return url


def _failure(message: str) -> CliError:
    return CliError(message, code="federation_failed", exit_code=ExitCode.AWS_UNAVAILABLE)


def _unreachable(url: str, reason: str) -> CliError:
    """Not the broker: the grant was made; the AWS sign-in endpoint could not be reached."""
    return CliError(
        f"cannot reach the AWS sign-in federation endpoint at {urlsplit(url).netloc}: "
        f"{reason} (the grant itself was made)",
        code="federation_unreachable",
        exit_code=ExitCode.AWS_UNAVAILABLE,
    )


def signin_token(endpoint: str, creds: Mapping[str, Any]) -> str:
    session = json.dumps(
        {
            "sessionId": creds["access_key_id"],
            "sessionKey": creds["secret_access_key"],
            "sessionToken": creds["session_token"],
        }
    )
    query = urlencode({"Action": "getSigninToken", "Session": session})
    response = send("GET", f"{endpoint}?{query}", {}, None, TIMEOUT_SECONDS, _unreachable)
    if response.status != 200:
        raise _failure(f"the federation endpoint refused the session (HTTP {response.status})")
    try:
        token = json.loads(response.body).get("SigninToken")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise _failure("the federation endpoint answered without a SigninToken")
    return token


def login_url(endpoint: str, token: str, destination: str = DESTINATION) -> str:
    query = urlencode(
        {"Action": "login", "Issuer": ISSUER, "Destination": destination, "SigninToken": token}
    )
    return f"{endpoint}?{query}"
