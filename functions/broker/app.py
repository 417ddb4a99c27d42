"""Broker Lambda: API routes → one domain call each. Identity comes from the request
context API Gateway verified; errors map to statuses in one place, and every answer that is
not a success is ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import base64
import binascii
import json
import traceback
from email.message import Message
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from jit_broker.errors import BadRequest, BrokerError, PolicyInvalid
from jit_broker.identity import Caller
from jit_broker.models.audit import AuditRequest, AuditResponse
from jit_broker.models.domain import Grant, Verdict
from jit_broker.models.input import (
    FIELD_NAME,
    DecisionRequest,
    GrantRequest,
    ReviewRequest,
    RevokeRequest,
    SessionRequest,
    parse_json_body,
)
from jit_broker.models.output import (
    ApprovalList,
    DenialView,
    GrantDryRun,
    GrantList,
    GrantResponse,
    GrantView,
    GrantWithCredentials,
    ProfileList,
    ProfileView,
    WhoAmI,
)
from jit_broker.observability import logger, metrics, tracer
from jit_broker.runtime import audit_gate, broker

app = APIGatewayRestResolver(enable_validation=True)
NO_STORE = {"Cache-Control": "no-store"}
GrantId = Annotated[str, Path(max_length=64)]
JSON_CHARSETS = ("utf-8", "utf8")
MAX_DESCRIBED_ERRORS = 10


def request_body() -> Any:
    """The request body, read once before the models validate it: JSON only (415
    otherwise; no Content-Type counts as JSON), UTF-8, strictly parsed (parse_json_body)."""
    event = app.current_event
    content_type = event.headers.get("content-type")
    if content_type is not None:
        header = Message()
        header["content-type"] = content_type
        charset = str(header.get_param("charset", "utf-8")).lower()
        if header.get_content_type() != "application/json" or charset not in JSON_CHARSETS:
            raise RequestUnsupportedContentType(
                "Unsupported content type",
                errors=[{"type": "unsupported_content_type", "loc": ("body",)}],
            )
    raw = event.body
    if not raw:
        return None
    if event.is_base64_encoded:
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("body: is not valid base64") from None
    else:
        try:
            data = raw.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate in the event's text
            raise BadRequest("body: is not valid UTF-8") from None
    return parse_json_body(data)


class JsonBodyValidation(OpenAPIRequestValidationMiddleware):
    """powertools' request validation, with the body read by ``request_body``: powertools
    would also parse form and multipart bodies, and its validation runs before any
    middleware the app adds, so the body step has to be its own."""

    def _get_body(self, app: Any) -> Any:
        return request_body()


app._request_validation_middleware = JsonBodyValidation()


def _caller() -> Caller:
    """The verified caller; every route asks, so the broker's own sessions get nothing."""
    return broker().identify(app.current_event.raw_event.get("requestContext"))


def _time_left() -> float:
    """Seconds until this invocation times out: the broker stops retrying AssumeRole in time
    to record what it issued and answer, whatever the retry budget says."""
    return float(app.lambda_context.get_remaining_time_in_millis()) / 1000


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=body.model_dump(mode="json") if hasattr(body, "model_dump") else body,
        headers=headers,
    )


@app.get("/v1/whoami")
def whoami() -> Response[WhoAmI]:
    c = _caller()
    return _json(
        200,
        WhoAmI(
            arn=c.arn,
            requester_id=c.requester_id,
            account_id=c.account_id,
            principal_type=c.principal_type,
            name=c.name,
        ),
    )


@app.get("/v1/profiles")
def profiles() -> Response[ProfileList]:
    found = broker().profiles_for(_caller())
    home = broker().home_account
    return _json(
        200,
        ProfileList(
            profiles=[
                ProfileView(
                    name=name,
                    description=p.description,
                    max_window=broker().window_limit(p),
                    max_session=p.max_session,
                    reason_required=p.reason_required,
                    ticket_pattern=p.ticket_pattern,
                    accounts=p.accounts_in(home),
                    mode=p.mode.value,
                    break_glass=p.break_glass,
                )
                for name, p in found.items()
            ]
        ),
    )


@app.post(
    "/v1/grants",
    description="Request a grant and its first session (201). For a profile with approvers, "
    "202: the request is recorded awaiting them (status requested), with no role and no "
    "credentials; once approved, its requester takes them with POST "
    "/v1/grants/{grant_id}/credentials. A break-glass profile is granted at once (201, "
    "break_glass true) with a mandatory reason (at least 20 characters) and a capped window; "
    "its approvers are told at once and one of them must close its review (POST "
    "/v1/grants/{grant_id}/review) by review_due. With dry_run true, nothing is granted or "
    "written: 200 says whether the request would be granted, how many approvals it would need "
    "(approvals_required; needing them is not a denial), whether it is break-glass (and "
    "review_within) and every rule that refuses it.",
    responses={
        201: {
            "description": "The grant and its first session's credentials.",
            "content": {"application/json": {"model": GrantWithCredentials}},
        },
        202: {
            "description": "A request awaiting approval: the grant, status requested.",
            "content": {"application/json": {"model": GrantResponse}},
        },
        200: {
            "description": "dry_run: whether the request would be granted, and why not.",
            "content": {"application/json": {"model": GrantDryRun}},
        },
    },
)
def request_grant(
    body: Annotated[GrantRequest, Body()],
) -> Response[GrantWithCredentials | GrantResponse | GrantDryRun]:
    caller = _caller()  # first: a broker session is refused here, dry run or not (threat 27)
    if body.dry_run:
        return _dry_run(caller, body)
    issued = broker().request_grant(caller, body, time_left=_time_left)
    if isinstance(issued, Grant):
        metrics.add_metric(name="GrantsRequested", unit=MetricUnit.Count, value=1)
        logger.info(
            "grant requested, awaiting approval",
            extra={
                "grant_id": issued.grant_id,
                "profile": body.profile,
                "requester": caller.requester_id,
                "review_deadline": issued.review_deadline,
            },
        )
        return _json(202, GrantResponse(grant=GrantView.of(issued)), NO_STORE)
    metrics.add_metric(name="GrantsIssued", unit=MetricUnit.Count, value=1)
    if issued.grant.break_glass:
        metrics.add_metric(name="BreakGlassGrantsIssued", unit=MetricUnit.Count, value=1)
    logger.info(
        "grant issued",
        extra={
            "grant_id": issued.grant.grant_id,
            "profile": body.profile,
            "account": issued.grant.target_account,
            "mode": issued.grant.mode.value,
            "requester": caller.requester_id,
            "access_key_id": issued.credentials.access_key_id,
            "expires_at": issued.grant.expires_at,
            "break_glass": bool(issued.grant.break_glass),
        },
    )
    return _json(
        201,
        GrantWithCredentials(grant=GrantView.of(issued.grant), credentials=issued.credentials),
        NO_STORE,
    )


def _dry_run(caller: Caller, body: GrantRequest) -> Response:
    assessed = broker().explain(caller, body)
    metrics.add_metric(name="GrantDryRuns", unit=MetricUnit.Count, value=1)
    logger.info(
        "grant dry run",
        extra={
            "profile": body.profile,
            "requester": caller.requester_id,
            "would_grant": assessed.would_grant,
            "denials": [d.rule.value for d in assessed.denials],
        },
    )
    return _json(
        200,
        GrantDryRun(
            dry_run=True,
            would_grant=assessed.would_grant,
            profile=assessed.profile_name,
            account=assessed.account,
            duration_seconds=assessed.window,
            mode=assessed.mode,
            approvals_required=assessed.profile.required_approvals if assessed.profile else None,
            review_window=(
                assessed.profile.review_window
                if assessed.profile and assessed.profile.required_approvals
                else None
            ),
            break_glass=assessed.profile.break_glass if assessed.profile else None,
            review_within=assessed.review_within,
            denials=[
                DenialView(rule=d.rule, limit=d.limit, code=d.error.code, message=d.error.message)
                for d in assessed.denials
            ],
        ),
        NO_STORE,
    )


@app.get("/v1/grants")
def list_grants(
    status: Annotated[
        Literal["active"] | None, Query(description="active: only those active now")
    ] = None,
) -> Response[GrantList]:
    grants = broker().grants_of(_caller(), active_only=status == "active")
    return _json(200, GrantList(grants=[GrantView.of(g) for g in grants]))


@app.get("/v1/grants/<grant_id>")
def get_grant(grant_id: GrantId) -> Response[GrantResponse]:
    return _json(200, GrantResponse(grant=GrantView.of(broker().grant(_caller(), grant_id))))


@app.get(
    "/v1/approvals",
    description="The requests you may decide now: of the profiles naming you (your user "
    "ARN, or your session's role ARN) among their approvers, those awaiting approval whose "
    "review deadline is ahead, not requested by you and not yet decided by you.",
)
def approvals() -> Response[ApprovalList]:
    grants = broker().approvals_for(_caller())
    return _json(200, ApprovalList(grants=[GrantView.of(g) for g in grants]))


def _decide(grant_id: str, body: DecisionRequest, verdict: Verdict) -> Response:
    caller = _caller()
    grant = broker().decide(caller, grant_id, body, verdict)
    metrics.add_metric(name=f"Grants_{verdict.value}", unit=MetricUnit.Count, value=1)
    logger.info(
        "grant decided",
        extra={
            "grant_id": grant_id,
            "verdict": verdict.value,
            "approver": caller.arn,
            "status": grant.status.value,
        },
    )
    return _json(200, GrantResponse(grant=GrantView.of(grant)))


@app.post(
    "/v1/grants/<grant_id>/approve",
    description="Approve a request you may decide (one approval per approver; never your "
    "own request, nor one of another of your sessions). At the profile's approvals_required "
    "the grant is approved and its window starts; 403 self_approval_refused, 409 "
    "already_decided / review_expired / not_awaiting_approval / replayed_request.",
)
def approve(grant_id: GrantId, body: Annotated[DecisionRequest, Body()]) -> Response[GrantResponse]:
    return _decide(grant_id, body, Verdict.APPROVE)


@app.post(
    "/v1/grants/<grant_id>/deny",
    description="Deny a request you may decide: it is denied at once (final). The same "
    "refusals as approve.",
)
def deny(grant_id: GrantId, body: Annotated[DecisionRequest, Body()]) -> Response[GrantResponse]:
    return _decide(grant_id, body, Verdict.DENY)


@app.post(
    "/v1/grants/<grant_id>/review",
    description="Close the review of a break-glass grant, as one of its profile's approvers "
    "(never its requester, nor another session of them): recorded with who, when and your "
    "comment, whatever the grant's status. 403 self_review_refused; 404 not_found (no such "
    "break-glass grant, or you are not one of its approvers); 409 review_closed / "
    "replayed_request.",
)
def review(grant_id: GrantId, body: Annotated[ReviewRequest, Body()]) -> Response[GrantResponse]:
    caller = _caller()  # first: a broker session is refused here (threat 27)
    grant = broker().review(caller, grant_id, body)
    metrics.add_metric(name="BreakGlassReviewsClosed", unit=MetricUnit.Count, value=1)
    logger.info(
        "break-glass review closed",
        extra={"grant_id": grant_id, "reviewer": caller.arn, "status": grant.status.value},
    )
    return _json(200, GrantResponse(grant=GrantView.of(grant)))


@app.post(
    "/v1/grants/<grant_id>/credentials",
    description="A session of your active grant (201), or the first one of your approved "
    "grant: its role is made then, and it becomes active. 409 approval_pending before it "
    "is approved.",
)
def issue_session(
    grant_id: GrantId, body: Annotated[SessionRequest, Body()]
) -> Response[GrantWithCredentials]:
    issued = broker().issue_session(_caller(), grant_id, body, time_left=_time_left)
    metrics.add_metric(name="SessionsIssued", unit=MetricUnit.Count, value=1)
    logger.info(
        "session issued",
        extra={"grant_id": grant_id, "access_key_id": issued.credentials.access_key_id},
    )
    return _json(
        201,
        GrantWithCredentials(grant=GrantView.of(issued.grant), credentials=issued.credentials),
        NO_STORE,
    )


@app.post("/v1/grants/<grant_id>/revoke")
def revoke(grant_id: GrantId, body: Annotated[RevokeRequest, Body()]) -> Response[GrantResponse]:
    grant = broker().revoke(_caller(), grant_id, body)
    metrics.add_metric(name="GrantsRevoked", unit=MetricUnit.Count, value=1)
    logger.info("grant revoked", extra={"grant_id": grant_id, "reason": body.reason})
    return _json(200, GrantResponse(grant=GrantView.of(grant)))


@app.post("/v1/audit")
def audit(body: Annotated[AuditRequest, Body()]) -> Response[AuditResponse]:
    """Administrators only. In AWS the broker invokes the cleanup function (it holds only
    lambda:InvokeFunction on it, none of the auditor's IAM rights); see runtime.audit_gate."""
    caller = _caller()
    report = audit_gate().run(caller, body)
    logger.info(
        "audit run on request",
        extra={"requester": caller.requester_id, "dry_run": body.dry_run, "at": body.at},
    )
    return _json(200, AuditResponse(report=report))


@app.get("/v1/openapi.json")
def openapi() -> Response[dict[str, Any]]:
    _caller()
    schema = app.get_openapi_json_schema(title="JIT access broker", version="1")
    return _json(200, json.loads(schema))


def _error(status: int, code: str, message: str) -> Response:
    return _json(status, {"error": {"code": code, "message": message}})


@app.exception_handler(BrokerError)
def broker_error(exc: BrokerError) -> Response:
    if exc.status == 403:
        metrics.add_metric(name="GrantsDenied", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=f"Refused_{exc.code}", unit=MetricUnit.Count, value=1)
    logger.warning("request refused", extra={"status": exc.status, "code": exc.code})
    return _error(exc.status, exc.code, exc.message)


@app.exception_handler(RequestValidationError)
def invalid_request(exc: RequestValidationError) -> Response:
    metrics.add_metric(name="Refused_bad_request", unit=MetricUnit.Count, value=1)
    return _error(400, "bad_request", describe_validation_errors(exc.errors()))


@app.exception_handler(RequestUnsupportedContentType)
def unsupported_media_type(_: RequestUnsupportedContentType) -> Response:
    metrics.add_metric(name="Refused_unsupported_media_type", unit=MetricUnit.Count, value=1)
    return _error(
        415,
        "unsupported_media_type",
        "the body must be JSON: send it as Content-Type: application/json (UTF-8)",
    )


@app.exception_handler(PolicyInvalid)
def policy_unavailable(exc: PolicyInvalid) -> Response:
    metrics.add_metric(name="PolicyUnavailable", unit=MetricUnit.Count, value=1)
    logger.error("access policy cannot be loaded", extra={"policy_errors": exc.errors})
    return _error(
        503,
        "policy_unavailable",
        "the broker's access policy cannot be loaded; try again later or ask its administrators",
    )


@app.exception_handler(Exception)
def unexpected_error(exc: Exception) -> Response:
    """Anything else: 500 with only a request id to quote. The log has the exception's type
    and where it was raised, never its message (it may quote the request or a secret)."""
    metrics.add_metric(name="UnexpectedErrors", unit=MetricUnit.Count, value=1)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
    logger.error("unexpected error", extra={"error_type": type(exc).__name__, "where": where})
    return _error(
        500,
        "internal_error",
        f"internal error; quote request id {_request_id()} to the broker's administrators",
    )


def _request_id() -> str:
    context = app.current_event.raw_event.get("requestContext")
    request_id = context.get("requestId") if isinstance(context, dict) else None
    return str(request_id or app.lambda_context.aws_request_id)


@app.not_found
def not_found(_: Exception) -> Response:
    return _error(
        404, "no_such_route", f"no route {app.current_event.http_method} {app.current_event.path}"
    )


def describe_validation_errors(errors: Any) -> str:
    """'body.duration: Input should be ...; body.nonce: Field required' (values never echoed;
    a key that does not look like a field name is shown as '?'; at most 10 errors)."""
    parts = []
    errors = list(errors)
    for err in errors[:MAX_DESCRIBED_ERRORS]:
        loc = ".".join(
            str(p) if FIELD_NAME.fullmatch(str(p)) else "?"
            for p in err.get("loc", ())
            if p not in ("function-after",)
        )
        if loc == "body" and err.get("type") == "missing":
            parts.append("body: a JSON object is required")
        elif err.get("type") == "json_invalid":
            parts.append("body: is not valid JSON")
        elif err.get("type") == "extra_forbidden":
            parts.append(f"{loc}: unknown field")
        else:
            parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    if len(errors) > MAX_DESCRIBED_ERRORS:
        parts.append(f"and {len(errors) - MAX_DESCRIBED_ERRORS} more")
    return "; ".join(parts) or "invalid request"


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False
)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
