"""A local stand-in for API Gateway (REST API, AWS_IAM authorization) in front of the broker.

``LocalGateway`` serves ``http://127.0.0.1:PORT/<path>`` and, for every request:

1. reads the body (more than 10 MB: 413, as API Gateway);
2. verifies the SigV4 signature the way API Gateway's AWS_IAM authorizer does
   (``verify_sigv4``): signatures are recomputed with botocore's ``SigV4Auth`` from the
   received method, path, query, signed headers and body, with the secret of the access
   key named in the credential scope; any failure is a 403 with API Gateway's own message
   and ``x-amzn-ErrorType``, and the handler is not called;
3. with ``identity_policies`` (the local stack's: ``jit_local.execute_api``, the embedded
   IAM), authorizes ``execute-api:Invoke`` on the method's ARN as API Gateway does: a caller
   of the API's account needs its identity-based policies to allow it (there is no API
   resource policy here, so callers of other accounts are refused); otherwise 403
   ``AccessDeniedException`` with API Gateway's message, and the handler is not called;
4. builds the REST proxy event (payload 1.0, the ``aws-proxy`` shape) whose identity comes
   only from the verified key and the socket peer (``build_proxy_event``);
5. calls the broker's Lambda handler with a Lambda-like context and writes its proxy
   response back (502 ``Internal server error`` if it raises or answers something
   malformed, 504 ``Endpoint request timed out`` past ``timeout_seconds``). By default
   the handler runs in this process, one invocation at a time as in a single Lambda
   execution environment; with ``concurrent=True`` the handler is called for every
   request at once (``jit_local.workers.WorkerPool``: one process per invocation in
   flight, as Lambda runs one environment per concurrent invocation).

One access line per request goes to the ``jit_local.gateway`` logger (method, path,
status, milliseconds). Headers, query strings and bodies are never logged: they carry
signatures and session tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from jit_local.credentials import CallerKey
from jit_local.execute_api import IdentityPolicyCheck

__all__ = [
    "GatewayError",
    "LocalGateway",
    "LocalLambdaContext",
    "build_proxy_event",
    "verify_sigv4",
]

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
KeyLookup = Callable[[str], CallerKey | None]
# Request headers: a mapping, an email/http.client message (duplicates kept) or pairs.
Headers = Mapping[str, str] | Message | Iterable[tuple[str, str]]

MAX_BODY_BYTES = 10 * 1024 * 1024
SIGNATURE_WINDOW_SECONDS = 5 * 60
SERVICE = "execute-api"
ALGORITHM = "AWS4-HMAC-SHA256"
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
LOCAL_API_ID = "local0api1"
LOCAL_RESOURCE_ID = "proxy0"
PROXY_RESOURCE = "/{proxy+}"
FUNCTION_NAME = "jit-broker"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")

# API Gateway's error types and messages.
MISSING_TOKEN = "MissingAuthenticationTokenException"  # an API Gateway message  # nosec B105
INCOMPLETE_SIGNATURE = "IncompleteSignatureException"
INVALID_SIGNATURE = "InvalidSignatureException"
UNRECOGNIZED_CLIENT = "UnrecognizedClientException"
EXPIRED_TOKEN = "ExpiredTokenException"  # an API Gateway message  # nosec B105
MSG_MISSING_TOKEN = "Missing Authentication Token"  # an API Gateway message  # nosec B105
MSG_DATE_REQUIRED = (
    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
)
MSG_HOST_NOT_SIGNED = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
MSG_WRONG_REGION = "Credential should be scoped to a valid region. "
MSG_WRONG_SERVICE = f"Credential should be scoped to correct service: '{SERVICE}'. "
MSG_INVALID_TOKEN = (
    "The security token included in the request is invalid."  # an API Gateway message  # nosec B105
)
MSG_EXPIRED_TOKEN = (
    "The security token included in the request is expired"  # an API Gateway message  # nosec B105
)
MSG_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
MSG_INTERNAL_ERROR = "Internal server error"
MSG_TIMEOUT = "Endpoint request timed out"
MSG_TOO_LARGE = "Request Too Long"
ACCESS_DENIED = "AccessDeniedException"
INVOKE = "execute-api:Invoke"


class GatewayError(Exception):
    """A request the gateway answers itself, without calling the handler."""

    def __init__(self, status: int, error_type: str | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


# --------------------------------------------------------------------------- SigV4


class _SignedHeadersOnly(SigV4Auth):
    """botocore's SigV4 with the canonical headers taken as given.

    The request holds exactly the headers the client listed in SignedHeaders; botocore's
    own selection would drop some (user-agent, expect, ...) and add a missing host.
    """

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            header_map[name.lower()] = value  # HTTPMessage appends: repeated headers stay
        return header_map


def verify_sigv4(
    method: str,
    path: str,
    query: str,
    headers: Headers,
    body: bytes,
    lookup: KeyLookup,
    region: str,
    now: float,
) -> CallerKey:
    """Verify a header-signed SigV4 request as API Gateway's AWS_IAM authorizer does.

    ``path`` and ``query`` are as received (percent-encoded, query without "?"); ``now``
    is epoch seconds. Returns the verified key; raises ``GatewayError`` (403) otherwise.
    """
    pairs = _header_pairs(headers)
    authorization = _first(pairs, "authorization")
    if authorization is None:
        if any(name == "X-Amz-Signature" for name, _ in _decoded_query(query)):
            raise GatewayError(
                403,
                INCOMPLETE_SIGNATURE,
                "Query-string (presigned) SigV4 authentication is not supported by the "
                "local gateway; sign with the Authorization header.",
            )
        raise GatewayError(403, MISSING_TOKEN, MSG_MISSING_TOKEN)

    params = _authorization_parameters(authorization)
    amz_date = _first(pairs, "x-amz-date")
    http_date = _first(pairs, "date")
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if name not in params
    ]
    if amz_date is None and http_date is None:
        problems.append(MSG_DATE_REQUIRED)
    if problems:
        raise GatewayError(
            403, INCOMPLETE_SIGNATURE, " ".join(problems) + f" Authorization={authorization}"
        )

    credential = params["Credential"]
    scope = credential.split("/")
    if len(scope) != 5:
        raise GatewayError(
            403,
            INCOMPLETE_SIGNATURE,
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{credential}'",
        )
    access_key_id, scope_date, scope_region, scope_service, terminator = scope
    request_time, timestamp = _request_time(amz_date, http_date)

    signed_headers = [name.strip().lower() for name in params["SignedHeaders"].split(";")]
    if "host" not in signed_headers:
        raise GatewayError(403, INVALID_SIGNATURE, MSG_HOST_NOT_SIGNED)

    scope_errors: list[str] = []
    if scope_region != region:
        scope_errors.append(MSG_WRONG_REGION)
    if scope_service != SERVICE:
        scope_errors.append(MSG_WRONG_SERVICE)
    if terminator != "aws4_request":
        scope_errors.append(
            f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
        )
    if scope_date != timestamp[:8]:
        scope_errors.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{scope_date}' != '{timestamp[:8]}', from '{timestamp}'."
        )
    if scope_errors:
        raise GatewayError(403, INVALID_SIGNATURE, "".join(scope_errors))

    _check_time_window(request_time, timestamp, now)
    key = _check_key(lookup(access_key_id), _values(pairs, "x-amz-security-token"), now)

    payload_hash = hashlib.sha256(body).hexdigest()
    if "x-amz-content-sha256" in signed_headers and _values(pairs, "x-amz-content-sha256") != [
        payload_hash
    ]:
        raise GatewayError(403, INVALID_SIGNATURE, MSG_SIGNATURE_MISMATCH)

    expected = _expected_signature(
        method, path, query, pairs, set(signed_headers), body, timestamp, key, region
    )
    provided = params["Signature"].encode("utf-8", "replace")
    if not hmac.compare_digest(expected.encode("ascii"), provided):
        raise GatewayError(403, INVALID_SIGNATURE, MSG_SIGNATURE_MISMATCH)
    return key


def _authorization_parameters(authorization: str) -> dict[str, str]:
    """Credential, SignedHeaders and Signature of an ``AWS4-HMAC-SHA256 ...`` header."""
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        return {}
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep and name in ("Credential", "SignedHeaders", "Signature"):
            params.setdefault(name, value.strip())
    return params


def _request_time(amz_date: str | None, http_date: str | None) -> tuple[float, str]:
    """The request's time (epoch seconds) and its SigV4 timestamp (X-Amz-Date, else Date).

    Any date that cannot be read, or that lies outside what a datetime holds once moved to
    UTC (year 9999 at -23:59), is API Gateway's 403, never a failure of the gateway.
    """
    given = amz_date if amz_date is not None else http_date
    try:
        if amz_date is not None:
            if not _AMZ_DATE.fullmatch(amz_date):
                raise ValueError(amz_date)
            moment = datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
        elif http_date is not None:
            moment = parsedate_to_datetime(http_date)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        else:
            raise ValueError("no date")
        return moment.timestamp(), moment.astimezone(UTC).strftime(SIGV4_TIMESTAMP)
    except (TypeError, ValueError, OverflowError):
        raise GatewayError(
            403,
            INCOMPLETE_SIGNATURE,
            f"Date must be in ISO-8601 'basic format'. Got '{given}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601",
        ) from None


def _check_time_window(request_time: float, timestamp: str, now: float) -> None:
    current = int(now)
    earliest = current - SIGNATURE_WINDOW_SECONDS
    latest = current + SIGNATURE_WINDOW_SECONDS
    if request_time < earliest:
        raise GatewayError(
            403,
            INVALID_SIGNATURE,
            f"Signature expired: {timestamp} is now earlier than {_sigv4_time(earliest)} "
            f"({_sigv4_time(current)} - 5 min.)",
        )
    if request_time > latest:
        raise GatewayError(
            403,
            INVALID_SIGNATURE,
            f"Signature not yet current: {timestamp} is still later than {_sigv4_time(latest)} "
            f"({_sigv4_time(current)} + 5 min.)",
        )


def _check_key(key: CallerKey | None, tokens: list[str], now: float) -> CallerKey:
    """The key exists, carries exactly its own session token (if any) and has not expired."""
    if key is None:
        raise GatewayError(403, UNRECOGNIZED_CLIENT, MSG_INVALID_TOKEN)
    if key.session_token is None:
        if tokens:
            raise GatewayError(403, UNRECOGNIZED_CLIENT, MSG_INVALID_TOKEN)
    elif len(tokens) != 1 or not hmac.compare_digest(
        tokens[0].encode("utf-8", "replace"), key.session_token.encode("utf-8")
    ):
        raise GatewayError(403, UNRECOGNIZED_CLIENT, MSG_INVALID_TOKEN)
    if key.expires_at is not None and now >= key.expires_at:
        raise GatewayError(403, EXPIRED_TOKEN, MSG_EXPIRED_TOKEN)
    return key


def _expected_signature(
    method: str,
    path: str,
    query: str,
    pairs: list[tuple[str, str]],
    signed_headers: set[str],
    body: bytes,
    timestamp: str,
    key: CallerKey,
    region: str,
) -> str:
    """Recompute the signature with botocore from what was received."""
    request = AWSRequest(
        method=method.upper(),
        url="http://local-gateway" + (path if path.startswith("/") else "/" + path),
        data=body,
        params=_decoded_query(query),  # botocore re-encodes these canonically
    )
    for name, value in pairs:
        if name.lower() in signed_headers:
            request.headers[name.lower()] = value
    request.context["timestamp"] = timestamp
    credentials = Credentials(key.access_key_id, key.secret_access_key, key.session_token)
    signer = _SignedHeadersOnly(credentials, SERVICE, region)
    canonical_request = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical_request)
    return str(signer.signature(string_to_sign, request))


# --------------------------------------------------------------------------- event


def build_proxy_event(
    method: str,
    path: str,
    query_pairs: Iterable[tuple[str, str]],
    headers: Headers,
    body: bytes,
    caller: CallerKey,
    *,
    stage: str,
    api_account_id: str,
    source_ip: str,
    now: float,
) -> dict[str, Any]:
    """The REST proxy event (payload 1.0) API Gateway sends for an IAM-authorized request.

    ``path`` is the request path as received (it is percent-decoded here), ``query_pairs``
    the decoded query parameters in order. Identity fields come only from ``caller`` (the
    verified key), ``source_ip`` (the socket peer) and the User-Agent header, as API
    Gateway fills them. As API Gateway does, the peer address is appended to
    X-Forwarded-For.
    """
    pairs = _with_forwarded_for(_header_pairs(headers), source_ip)
    single_headers, multi_headers = _single_and_multi(pairs)
    single_query, multi_query = _single_and_multi(list(query_pairs))
    request_path = unquote(path) if path.startswith("/") else "/" + unquote(path)
    proxy = request_path.lstrip("/")
    resource = PROXY_RESOURCE if proxy else "/"
    when = datetime.fromtimestamp(now, UTC)
    return {
        "resource": resource,
        "path": request_path,
        "httpMethod": method,
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": proxy} if proxy else None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": LOCAL_RESOURCE_ID,
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": base64.b64encode(os.urandom(10)).decode("ascii"),
            "requestTime": (
                f"{when.day:02d}/{_MONTHS[when.month - 1]}/{when.year}:"
                f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} +0000"
            ),
            "path": f"/{stage}{request_path}",
            "accountId": api_account_id,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "requestTimeEpoch": int(now * 1000),
            "requestId": str(uuid.uuid4()),
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": caller.account_id,
                "cognitoIdentityId": None,
                "caller": caller.caller,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": caller.access_key_id,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": caller.user_arn,
                "userAgent": _first(pairs, "user-agent"),
                "user": caller.user,
                "apiKey": None,
                "apiKeyId": None,
                "clientCert": None,
            },
            "domainName": _first(pairs, "host"),
            "apiId": LOCAL_API_ID,
        },
        "body": body.decode("utf-8", errors="replace") if body else None,
        "isBase64Encoded": False,
    }


@dataclass(frozen=True)
class LocalLambdaContext:
    """The parts of the Lambda context object the broker (and powertools) read."""

    aws_request_id: str
    invoked_function_arn: str
    deadline: float  # time.monotonic() at which the invocation times out
    function_name: str = FUNCTION_NAME
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    log_group_name: str = f"/aws/lambda/{FUNCTION_NAME}"
    log_stream_name: str = "local"
    identity: None = None
    client_context: None = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


# --------------------------------------------------------------------------- server


@dataclass(frozen=True)
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    request_id: str


class _MalformedResponse(Exception):
    """The handler's answer is not a valid proxy response."""


# --------------------------------------------------------------------------- execute-api:Invoke


def method_arn(
    region: str, account_id: str, api_id: str, stage: str, method: str, path: str
) -> str:
    """The ARN execute-api:Invoke is judged on: ``.../API-ID/STAGE/METHOD/PATH`` (decoded path)."""
    return f"arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{method}/{path.lstrip('/')}"


def _masked(arn: str) -> str:
    """The ARN as API Gateway quotes it in a denial: the account masked to its last 4 digits."""
    parts = arn.split(":", 5)
    parts[4] = "*" * 8 + parts[4][-4:]
    return ":".join(parts)


def _invoke_denied(caller: CallerKey, resource: str, explicit: bool) -> _Response:
    """API Gateway's 403 for a caller not allowed execute-api:Invoke (its body says
    ``Message``, capitalised, unlike its other errors)."""
    message = (
        f"User: {caller.user_arn} is not authorized to perform: {INVOKE} "
        f"on resource: {_masked(resource)}" + (" with an explicit deny" if explicit else "")
    )
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", ACCESS_DENIED)]
    body = json.dumps({"Message": message}, separators=(",", ":")).encode("utf-8")
    return _Response(403, headers, body, str(uuid.uuid4()))


class LocalGateway:
    """API Gateway's REST proxy with AWS_IAM auth, serving one handler on 127.0.0.1."""

    def __init__(
        self,
        handler: Handler,
        lookup: KeyLookup,
        *,
        region: str = "us-east-1",
        api_account_id: str = "123456789012",
        host: str = "127.0.0.1",
        port: int = 0,
        stage: str = "local",
        clock: Callable[[], float] = time.time,
        timeout_seconds: float = 29.0,
        concurrent: bool = False,
        identity_policies: IdentityPolicyCheck | None = None,
    ) -> None:
        """``concurrent``: the handler may be called for many requests at once (it keeps
        each invocation apart itself); otherwise one invocation runs at a time.
        ``identity_policies``: the caller's identity-based policies' verdict on
        execute-api:Invoke (the embedded IAM's); None: every verified caller may invoke."""
        address = ipaddress.ip_address(host)
        if address.version != 4 or not address.is_loopback:
            raise ValueError(f"the local gateway binds IPv4 loopback only, not {host!r}")
        self._handler = handler
        self._lookup = lookup
        self._region = region
        self._api_account_id = api_account_id
        self._host = host
        self._port = port
        self._stage = stage
        self._clock = clock
        self._timeout = timeout_seconds
        self._concurrent = concurrent
        self._identity_policies = identity_policies
        self._lock = threading.Lock()
        self._invocation_lock = threading.Lock()
        self._server: _GatewayServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> Self:
        with self._lock:
            if self._server is not None:
                raise RuntimeError("the local gateway is already running")
            server = _GatewayServer((self._host, self._port), self)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="jit-local-gateway",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
            self.url = f"http://{self._host}:{server.server_port}"
        return self

    def stop(self) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join()

    def __enter__(self) -> Self:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # One request, from what was received to what to send back.
    def _serve(
        self,
        method: str,
        path: str,
        query: str,
        headers: Message,
        read_body: Callable[[], bytes],
        source_ip: str,
    ) -> _Response:
        try:
            body = read_body()
            now = self._clock()
            caller = verify_sigv4(
                method, path, query, headers, body, self._lookup, self._region, now
            )
        except GatewayError as err:
            return _error_response(err.status, err.error_type, err.message, str(uuid.uuid4()))
        denied = self._refuse_invoke(caller, method, path, source_ip)
        if denied is not None:
            return denied
        event = build_proxy_event(
            method,
            path,
            _decoded_query(query),
            headers,
            body,
            caller,
            stage=self._stage,
            api_account_id=self._api_account_id,
            source_ip=source_ip,
            now=now,
        )
        request_id: str = event["requestContext"]["requestId"]
        context = LocalLambdaContext(
            aws_request_id=request_id,
            invoked_function_arn=(
                f"arn:aws:lambda:{self._region}:{self._api_account_id}:function:{FUNCTION_NAME}"
            ),
            deadline=time.monotonic() + self._timeout,
        )
        return self._invoke(event, context, request_id)

    def _refuse_invoke(
        self, caller: CallerKey, method: str, path: str, source_ip: str
    ) -> _Response | None:
        """API Gateway's answer when the caller may not invoke this method, else None. A
        caller of the API's own account needs an identity-based policy allowing it (no
        resource policy here to allow it instead); one of another account would need the
        resource policy too, so is refused."""
        if self._identity_policies is None:
            return None
        request_path = unquote(path) if path.startswith("/") else "/" + unquote(path)
        resource = method_arn(
            self._region, self._api_account_id, LOCAL_API_ID, self._stage, method, request_path
        )
        request = {"aws:SourceIp": source_ip, "aws:SecureTransport": "false"}
        verdict = self._identity_policies(caller, INVOKE, resource, request)
        if verdict == "allow" and caller.account_id == self._api_account_id:
            return None
        logger.info("execute-api:Invoke denied (%s) on %s", verdict, resource)
        return _invoke_denied(caller, resource, explicit=verdict == "deny")

    def _invoke(
        self, event: dict[str, Any], context: LocalLambdaContext, request_id: str
    ) -> _Response:
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                if self._concurrent:
                    outcome["result"] = self._handler(event, context)
                    return
                # One invocation at a time, as in one Lambda execution environment: the
                # handler's process-wide state (powertools logger keys, metrics) is not
                # shared between concurrent invocations on AWS either.
                if not self._invocation_lock.acquire(timeout=self._timeout):
                    return  # already answered 504: never run it late
                try:
                    outcome["result"] = self._handler(event, context)
                finally:
                    self._invocation_lock.release()
            except Exception as exc:
                outcome["error"] = exc
            finally:
                done.set()

        threading.Thread(target=run, name="jit-local-lambda", daemon=True).start()
        if not done.wait(self._timeout):
            logger.error("handler timed out after %.1fs", self._timeout)
            return _error_response(504, None, MSG_TIMEOUT, request_id)
        if "error" in outcome:
            # The type only: messages and tracebacks may quote the event's secrets.
            logger.error("handler raised %s", type(outcome["error"]).__name__)
            return _error_response(
                502, "InternalServerErrorException", MSG_INTERNAL_ERROR, request_id
            )
        try:
            status, headers, body = _proxy_response(outcome.get("result"))
        except _MalformedResponse as err:
            logger.error("malformed Lambda proxy response: %s", err)
            return _error_response(
                502, "InternalServerErrorException", MSG_INTERNAL_ERROR, request_id
            )
        return _Response(status, headers, body, request_id)


class _GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connecting at once wait, not retry

    def __init__(self, address: tuple[str, int], gateway: LocalGateway) -> None:
        self.gateway = gateway
        super().__init__(address, _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr; keep it to the exception type.
        logger.warning("connection error: %s", type(sys.exc_info()[1]).__name__)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _GatewayServer
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "jit-local-gateway"

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def _handle(self) -> None:
        started = time.monotonic()
        target = self.path
        if not target.startswith("/"):  # absolute-form request target
            parts = urlsplit(target)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        path, _, query = target.partition("?")
        try:
            response = self.server.gateway._serve(
                self.command, path, query, self.headers, self._read_body, self.client_address[0]
            )
        except Exception as exc:
            logger.error("local gateway failed: %s", type(exc).__name__)
            response = _error_response(500, None, MSG_INTERNAL_ERROR, str(uuid.uuid4()))
        # The access line is written before the answer, so whoever reads the answer finds it.
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.info("%s %s %d %.1fms", self.command, path, response.status, elapsed_ms)
        self._write(response)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").strip().lower() == "chunked":
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise GatewayError(400, None, "Bad Request") from None
        if length < 0:
            raise GatewayError(400, None, "Bad Request")
        if length > MAX_BODY_BYTES:
            raise GatewayError(413, None, MSG_TOO_LARGE)
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise GatewayError(400, None, "Bad Request") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise GatewayError(413, None, MSG_TOO_LARGE)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(3)  # the CRLF after the chunk

    def _write(self, response: _Response) -> None:
        self.close_connection = True
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("x-amzn-RequestId", response.request_id)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The access line is written by ``_handle``."""

    def log_message(self, format: str, *args: Any) -> None:
        # Only the template: http.server's arguments quote the request line, whose query
        # string may hold a presigned signature or token.
        logger.debug("http.server: %s", format)


# --------------------------------------------------------------------------- helpers


_HOP_BY_HOP = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive"})


def _proxy_response(result: object) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of a Lambda proxy response, merged as API Gateway does."""
    if not isinstance(result, dict):
        raise _MalformedResponse("not an object")
    status = result.get("statusCode")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise _MalformedResponse("statusCode")
    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise _MalformedResponse("headers")
    merged: list[tuple[str, str]] = []
    for name, values in multi.items():
        if not isinstance(values, list):
            raise _MalformedResponse("multiValueHeaders")
        merged.extend((name, value) for value in values)
    seen = {(name.lower(), value) for name, value in merged if isinstance(name, str)}
    merged.extend(
        (name, value) for name, value in single.items() if (str(name).lower(), value) not in seen
    )
    for name, value in merged:
        if not isinstance(name, str) or not isinstance(value, str):
            raise _MalformedResponse("header names and values must be strings")
        if any(c in name or c in value for c in "\r\n") or not name.strip():
            raise _MalformedResponse("header with a line break")
    merged = [(name, value) for name, value in merged if name.lower() not in _HOP_BY_HOP]
    if not any(name.lower() == "content-type" for name, _ in merged):
        merged.append(("Content-Type", "application/json"))

    body = result.get("body")
    if body is None:
        payload = b""
    elif not isinstance(body, str):
        raise _MalformedResponse("body")
    elif result.get("isBase64Encoded"):
        try:
            payload = base64.b64decode(body, validate=True)
        except binascii.Error:
            raise _MalformedResponse("body is not base64") from None
    else:
        payload = body.encode("utf-8")
    return status, merged, payload


def _error_response(
    status: int, error_type: str | None, message: str, request_id: str
) -> _Response:
    headers = [("Content-Type", "application/json")]
    if error_type is not None:
        headers.append(("x-amzn-ErrorType", error_type))
    body = json.dumps({"message": message}, separators=(",", ":")).encode("utf-8")
    return _Response(status, headers, body, request_id)


def _header_pairs(headers: Headers) -> list[tuple[str, str]]:
    if isinstance(headers, Mapping | Message):
        return [(str(name), str(value)) for name, value in headers.items()]
    return [(str(name), str(value)) for name, value in headers]


def _values(pairs: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in pairs if key.lower() == name]


def _first(pairs: list[tuple[str, str]], name: str) -> str | None:
    values = _values(pairs, name)
    return values[0] if values else None


def _decoded_query(query: str) -> list[tuple[str, str]]:
    """Query parameters, percent-decoded ("+" stays "+"), in order."""
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote(name), unquote(value)))
    return pairs


def _single_and_multi(
    pairs: list[tuple[str, str]],
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """API Gateway's pair of views: the last value of each name, and all of them."""
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        multi.setdefault(name, []).append(value)
    return {name: values[-1] for name, values in multi.items()}, multi


def _with_forwarded_for(pairs: list[tuple[str, str]], source_ip: str) -> list[tuple[str, str]]:
    sent = _values(pairs, "x-forwarded-for")
    name = next((key for key, _ in pairs if key.lower() == "x-forwarded-for"), "X-Forwarded-For")
    rest = [(key, value) for key, value in pairs if key.lower() != "x-forwarded-for"]
    return [*rest, (name, ", ".join([*sent, source_ip]))]


def _sigv4_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(SIGV4_TIMESTAMP)
