"""Talking to the broker: sign a JSON request, send it with urllib, map the answer.

Success is a JSON object. Failures become :class:`CliError` with the documented exit code:
the broker's own ``{"error": {"code", "message"}}``, or API Gateway's IAM-authorizer
``{"message"}`` + ``x-amzn-ErrorType`` explained in words. Gateway messages are never
echoed for signature mismatches: they quote the canonical request, session token included.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jit_cli.errors import CliError, ExitCode
from jit_cli.progress import Wait, progress

TIMEOUT_SECONDS = 30.0
MAX_MESSAGE_CHARS = 500

log = logging.getLogger("jit_cli")

Signer = Callable[[str, str, bytes | None, Mapping[str, str]], dict[str, str]]

_STATUS_EXIT = {
    400: ExitCode.USAGE,
    401: ExitCode.DENIED,
    403: ExitCode.DENIED,
    404: ExitCode.NOT_FOUND,
    409: ExitCode.CONFLICT,
    413: ExitCode.USAGE,
    429: ExitCode.RATE_LIMITED,
}

# The broker's machine-readable codes that deserve their own exit code (none yet: a grant
# that expired or was revoked is 409 grant_not_active, exit 6, which scripts rely on).
_BROKER_CODE_EXIT: dict[str, ExitCode] = {}

_BAD_TOKEN = "your AWS credentials are invalid or expired: sign in again and retry"  # a message  # nosec B105
_GATEWAY_EXPLANATIONS = {
    "UnrecognizedClientException": _BAD_TOKEN,
    "ExpiredTokenException": _BAD_TOKEN,
    "InvalidClientTokenId": _BAD_TOKEN,
    "MissingAuthenticationTokenException": (
        "API Gateway found no signature or no such route: check --api-url "
        "(it must include the stage, e.g. https://ID.execute-api.REGION.amazonaws.com/prod)"
    ),
    "IncompleteSignatureException": (
        "API Gateway received an incomplete signature: something between you and the API "
        "dropped or changed headers"
    ),
    "InvalidSignatureException": (
        "API Gateway could not verify the request signature: check that your secret key is "
        "right and that no proxy changes requests"
    ),
}


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow redirects: urllib would resend the signed headers (token) elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def send(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: float,
    unreachable: Callable[[str, str], CliError] | None = None,
) -> HttpResponse:
    """One HTTP exchange; any status is returned. A transport failure raises
    ``unreachable(url, reason)``: by default the broker's (exit 8); another endpoint passes
    its own, so the error names the party that failed."""
    unreachable = unreachable or _unreachable
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    # Scheme checked just above (and by resolve_api_url): no file: or custom schemes.
    request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)  # noqa: S310
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return HttpResponse(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return HttpResponse(error.code, dict(error.headers.items()), error.read())
    except urllib.error.URLError as error:
        reason = error.reason
        raise unreachable(url, str(reason)) from None
    except (TimeoutError, OSError, http.client.HTTPException) as error:
        raise unreachable(url, str(error) or type(error).__name__) from None


def _unreachable(url: str, reason: str) -> CliError:
    return CliError(
        f"cannot reach the broker at {urlsplit(url).netloc}: {reason}",
        code="broker_unreachable",
        exit_code=ExitCode.UNAVAILABLE,
    )


def host_header(url: str) -> str:
    """The Host value for ``url`` as SigV4 canonicalises it: lowercase, no default port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    return host if parts.port in (None, default_port) else f"{host}:{parts.port}"


def clean_text(text: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Server text made safe for a terminal: printable characters, one line, bounded."""
    flat = "".join(ch if ch.isprintable() else " " for ch in str(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), "")


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def error_from_response(response: HttpResponse, region: str) -> CliError:
    """The CliError for a non-2xx answer, from the broker or from API Gateway."""
    status = response.status
    exit_code = _STATUS_EXIT.get(status)
    if exit_code is None:
        exit_code = ExitCode.UNAVAILABLE if status >= 500 else ExitCode.UNEXPECTED
    payload = _json_object(response.body) or {}
    broker_error = payload.get("error")
    if isinstance(broker_error, dict) and broker_error.get("message"):
        code = clean_text(broker_error.get("code") or f"http_{status}", 64)
        exit_code = _BROKER_CODE_EXIT.get(code, exit_code)
        return CliError(clean_text(broker_error["message"]), code=code, exit_code=exit_code)
    error_type = _header(response.headers, "x-amzn-ErrorType").split(":", 1)[0].strip()
    gateway_message = str(payload.get("message") or payload.get("Message") or "")
    message = _gateway_message(status, error_type, gateway_message, region)
    if error_type == "InvalidSignatureException" and _is_clock_skew(gateway_message):
        exit_code = ExitCode.CLOCK_SKEW
    return CliError(
        message, code=clean_text(error_type, 64) or f"http_{status}", exit_code=exit_code
    )


def _is_clock_skew(message: str) -> bool:
    return "Signature expired" in message or "not yet current" in message


def _gateway_message(status: int, error_type: str, message: str, region: str) -> str:
    """Words for an API Gateway error; only the first line of its message is ever shown."""
    first_line = clean_text(message.splitlines()[0]) if message else ""
    if error_type == "InvalidSignatureException":
        if _is_clock_skew(message):
            return (
                "API Gateway rejected the request time: this computer's clock is off by "
                "more than 5 minutes; sync it (e.g. enable NTP) and retry"
            )
        if "scoped to a valid region" in message:
            return (
                f"the request was signed for region {region}, which is not the API's region: "
                "pass --region"
            )
    if error_type in _GATEWAY_EXPLANATIONS:
        return _GATEWAY_EXPLANATIONS[error_type]
    if error_type == "AccessDeniedException":
        return f"your AWS identity may not call this API: {first_line}"
    if 300 <= status < 400:
        return f"the broker URL answered with a redirect (HTTP {status}): check --api-url"
    return first_line or f"the broker answered HTTP {status}"


class BrokerClient:
    """Signed JSON calls to one broker base URL."""

    def __init__(
        self,
        api_url: str,
        signer: Signer,
        region: str,
        user_agent: str,
        timeout: float | None = None,
    ) -> None:
        self._api_url = api_url.rstrip("/")
        self._signer = signer
        self._region = region
        self._user_agent = user_agent
        self._timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None = None,
        *,
        wait: Wait | None = None,
    ) -> dict[str, Any]:
        """Send ``payload`` (JSON) to ``path``; the decoded JSON object of a 2xx answer.
        ``wait``: what a terminal is told if the answer is slow (default: the route)."""
        url = self._api_url + path
        body = None if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        headers = {"host": host_header(url)}
        if body is not None:
            headers["content-type"] = "application/json"
        signed = self._signer(method, url, body, headers)
        signed["user-agent"] = self._user_agent
        started = time.monotonic()
        wait = wait or Wait(f"waiting for the broker ({method} {path})")
        with progress(wait.message, delay=wait.delay):
            response = send(method, url, signed, body, self._timeout or TIMEOUT_SECONDS)
        log.debug(
            "%s %s -> %s in %.2fs (request id %s)",
            method,
            url,
            response.status,
            time.monotonic() - started,
            _header(response.headers, "x-amzn-RequestId") or "-",
        )
        if not 200 <= response.status < 300:
            raise error_from_response(response, self._region)
        result = _json_object(response.body)
        if result is None:
            raise CliError(
                f"the broker answered HTTP {response.status} without a JSON object",
                code="unexpected_response",
                exit_code=ExitCode.UNEXPECTED,
            )
        return result
