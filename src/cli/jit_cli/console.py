"""``jit console``: an AWS console sign-in URL for a session, via the federation endpoint.

1. ``GET {federation}?Action=getSigninToken&Session={"sessionId","sessionKey","sessionToken"}``
   answers ``{"SigninToken": ...}`` (no SessionDuration: role-chained sessions refuse it);
2. the URL is ``{federation}?Action=login&Issuer=...&Destination=...&SigninToken=...``.

The endpoint is JIT_FEDERATION_URL (tests point it at a local stand-in), by default AWS's;
plain http is accepted only for a loopback host. The URL signs a person in: it goes to stdout
(or the browser) only.

The Destination (:func:`destination`) is the console's home, a service's page (``--service
s3``: ``https://console.aws.amazon.com/s3/home``), either in a region (``--console-region``:
``https://REGION.console.aws.amazon.com/...?region=REGION``), or a console URL given whole
(``--destination``), which must be on the console's own hosts: a sign-in link is never made
to land anywhere else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from jit_cli.broker import clean_text, send
from jit_cli.errors import CliError, ExitCode
from jit_cli.signing import is_loopback

DEFAULT_FEDERATION_URL = "https://signin.aws.amazon.com/federation"
CONSOLE_HOST = "console.aws.amazon.com"
DESTINATION = f"https://{CONSOLE_HOST}/"
# us-east-1, eu-central-2, ap-southeast-4, us-gov-west-1, ...
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
# the path word of a service's console (s3, ec2, cloudwatch, dynamodbv2, ...)
_SERVICE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
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


def _usage(message: str, code: str) -> CliError:
    return CliError(message, code=code, exit_code=ExitCode.USAGE)


def check_destination(url: str) -> str:
    """``url`` if it is an https page of the AWS console (``console.aws.amazon.com`` or a
    region's ``REGION.console.aws.amazon.com``, no user, no port); else a usage error."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    regional = host.endswith("." + CONSOLE_HOST) and _REGION.fullmatch(
        host.removesuffix("." + CONSOLE_HOST)
    )
    if (
        parts.scheme != "https"
        or parts.netloc != host  # no user:password@, no :port, no upper case
        or not (host == CONSOLE_HOST or regional)
        or any(ch.isspace() or not ch.isprintable() for ch in url)
    ):
        raise _usage(
            f"--destination {clean_text(url, 200)!r} is not an AWS console page: give "
            f"https://{CONSOLE_HOST}/... or https://REGION.{CONSOLE_HOST}/...",
            "invalid_destination",
        )
    return url


def destination(service: str | None, region: str | None, url: str | None) -> str:
    """The page the sign-in lands on (see the module docstring); a usage error for a service
    or region that is not a name, or a --destination given with either."""
    if url is not None:
        if service is not None or region is not None:
            raise _usage(
                "--destination is a whole console URL: give it without --service or "
                "--console-region",
                "usage",
            )
        return check_destination(url)
    if service is not None and not _SERVICE.fullmatch(service):
        raise _usage(
            f"invalid service {clean_text(service, 80)!r}: the word of its console page, "
            "like s3, ec2 or cloudwatch",
            "invalid_service",
        )
    if region is not None and not _REGION.fullmatch(region):
        raise _usage(
            f"invalid console region {clean_text(region, 80)!r}: a region like eu-west-1",
            "invalid_region",
        )
    if service is None and region is None:
        return DESTINATION
    host = CONSOLE_HOST if region is None else f"{region}.{CONSOLE_HOST}"
    path = f"/{service}/home" if service is not None else "/console/home"
    return f"https://{host}{path}" + ("" if region is None else f"?region={region}")


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
