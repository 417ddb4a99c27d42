"""Fault injection for the broker's and the auditor's AWS calls (tests/integration/test_faults.py).

A :class:`Fault` names one call of a recorded fault-free run: the ``occurrence``-th call of
``operation`` during one step (a route of the API, or one auditor run). The
:class:`FaultInjector` makes that call fail on every attempt botocore makes (its own retries)
and every later call of the same operation with the same parameters in the same step (an
adapter's retries: the STS adapter's AccessDenied budget, the auditor's throttling retries),
while every other call goes through to moto. The failure is injected at botocore's
``before-send`` in moto's place (a failing attempt never reaches moto, so nothing is written),
so botocore's retry logic, error parsing and exception classes are the real ones:

- ``throttling``: ``Throttling`` (IAM, STS) / ``ProvisionedThroughputExceededException``
  (DynamoDB), HTTP 400, retried by botocore;
- ``access_denied``: ``AccessDenied`` 403 / ``AccessDeniedException`` 400, not retried;
- ``server_error``: ``InternalFailure`` / ``InternalServerError``, HTTP 500, retried;
- ``timeout``: a read timeout (``ReadTimeoutError``, a ``BotoCoreError``), retried.

The fault-free runs are recorded while the tests are collected, so the cases follow the code:
a call added to the grant path or the auditor later gets its own cases without an edit here.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

from tests.conftest import (
    FROZEN_AT,
    ROOT,
    LambdaContext,
    Stack,
    api_event,
    grant_body,
    moto_stack,
)

ALL_KINDS = ("throttling", "access_denied", "server_error", "timeout")
# For reads: one error answer botocore retries and one that is not an answer at all.
READ_KINDS = ("throttling", "timeout")
LEDGER_KINDS = ("throttling", "access_denied", "timeout")
LEDGER_WRITES = frozenset({"TransactWriteItems", "UpdateItem", "PutItem", "DeleteItem"})
READ_PREFIXES = ("Get", "List", "Query", "Scan", "BatchGet", "Describe")
MARKER = "FAULT-INJECTED-b7e1"  # in every injected error message: must never reach a caller

# (HTTP status, error code) per kind and wire protocol.
_ANSWERS = {
    "throttling": {
        "query": (400, "Throttling"),
        "json": (400, "ProvisionedThroughputExceededException"),
    },
    "access_denied": {"query": (403, "AccessDenied"), "json": (400, "AccessDeniedException")},
    "server_error": {"query": (500, "InternalFailure"), "json": (500, "InternalServerError")},
}
_JSON_SERVICES = {"dynamodb"}
_GRANT_ID = re.compile(r"g-[0-9a-f]{24}")
_ROLE_NAME = re.compile(r"jit-(g-[0-9a-f]{24})")


def is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES)


@dataclass(frozen=True)
class Fault:
    step: str  # "grant" | "session" | "revoke" | "audit"
    operation: str  # botocore's operation name, e.g. "CreateRole"
    occurrence: int  # 1-based: the n-th call of ``operation`` (about ``subject``) in the step
    kind: str  # one of ALL_KINDS
    site: str = ""  # where the recorded call was made (the domain's frames)
    subject: str | None = None  # the auditor's: the scenario's role the call is about

    @property
    def id(self) -> str:
        about = f"{self.subject}-" if self.subject else ""
        return f"{self.step}-{about}{self.operation}#{self.occurrence}-{self.kind}"


@dataclass(frozen=True)
class RecordedCall:
    operation: str
    site: str  # the jit_broker frames that made the call, outermost first
    mentions: frozenset[str] = frozenset()  # role names and grant ids in its parameters


def mentions(params: dict[str, Any]) -> set[str]:
    """The grant ids and role names a call's parameters name."""
    grants = set(_GRANT_ID.findall(json.dumps(params, default=str)))
    roles = {f"jit-{g}" for g in grants}
    if isinstance(params.get("RoleName"), str):
        roles.add(params["RoleName"])
    return grants | roles


class _Raw(io.BytesIO):
    """The raw body botocore reads an injected answer from."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


def _answer(kind: str, service: str, url: str) -> AWSResponse:
    protocol = "json" if service in _JSON_SERVICES else "query"
    status, code = _ANSWERS[kind][protocol]
    message = f"{MARKER}: {kind}"
    if protocol == "json":
        body = json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
        ).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault"}
    else:
        body = (
            '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>fault</RequestId></ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml", "x-amzn-RequestId": "fault"}
    return AWSResponse(url, status, headers, _Raw(body))  # type: ignore[arg-type]


@dataclass
class _Target:
    fault: Fault
    seen: int = 0
    params: dict[str, Any] | None = None  # the faulted call's, once made


class FaultInjector:
    """Makes the calls ``faults`` name fail, and their retries. Counts calls only while armed
    and, given ``about`` (a role's name and grant id), only the calls that name it."""

    def __init__(self, *faults: Fault, about: set[str] | None = None) -> None:
        self.targets = [_Target(f) for f in faults]
        self.about = about
        self.failed_calls = 0  # API calls that failed (the calls and the adapters' retries)
        self.failed_attempts = 0  # HTTP attempts answered with a fault (botocore's retries)
        self._armed = False
        self._failing: Fault | None = None
        self._uid = f"fault-{id(self)}"

    @property
    def fault(self) -> Fault:
        return self.targets[0].fault

    @property
    def hit(self) -> list[bool]:
        """For each fault: whether its call was made (and failed)."""
        return [t.params is not None for t in self.targets]

    def attach(self, *clients: Any) -> FaultInjector:
        """Counts the clients' calls, and takes moto's place in their ``before-send``: a
        failing attempt never reaches moto (nothing is written), any other goes to moto."""
        from moto.core.models import botocore_stubber

        for client in clients:
            client.meta.events.register(
                "provide-client-params", self._on_call, unique_id=self._uid + "-call"
            )
            client.meta.events.unregister("before-send", botocore_stubber)
            client.meta.events.register("before-send", self._on_send, unique_id=self._uid)
        return self

    def detach(self, *clients: Any) -> None:
        """Gives moto its place back."""
        from moto.core.models import botocore_stubber

        for client in clients:
            client.meta.events.unregister("provide-client-params", unique_id=self._uid + "-call")
            client.meta.events.unregister("before-send", unique_id=self._uid)
            client.meta.events.register("before-send", botocore_stubber)

    @contextmanager
    def armed(self) -> Iterator[FaultInjector]:
        self._armed = True
        try:
            yield self
        finally:
            self._armed = False
            self._failing = None

    def subjects(self) -> set[str]:
        """The role names and grant ids the (first) faulted call was about."""
        params = self.targets[0].params
        return mentions(params) if params is not None else set()

    def _on_call(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self._failing = None
        if not self._armed:
            return None
        for t in self.targets:
            if model.name != t.fault.operation:
                continue
            if t.params is not None:
                if params == t.params:  # the same call again: an adapter's retry
                    self._failing = self._failing or t.fault
            elif self.about is None or mentions(params) & self.about:
                t.seen += 1
                if t.seen == t.fault.occurrence:
                    t.params = copy.deepcopy(params)
                    self._failing = self._failing or t.fault
        self.failed_calls += self._failing is not None
        return None

    def _on_send(self, request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
        from moto.core.models import botocore_stubber

        if self._failing is None:
            return botocore_stubber(event_name=event_name, request=request, **kwargs)
        self.failed_attempts += 1
        if self._failing.kind == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        return _answer(self._failing.kind, event_name.split(".")[1], request.url)


class _NoWait:
    """Stands in for the ``time`` module botocore's endpoint sleeps with between retries."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@contextmanager
def retries_without_waiting() -> Iterator[_NoWait]:
    """botocore's retries (each attempt of a failing call) without waiting between them."""
    import botocore.endpoint

    clock = _NoWait()
    with mock.patch.object(botocore.endpoint, "time", clock):
        yield clock


@contextmanager
def one_service_model_loader() -> Iterator[None]:
    """Every botocore session shares one data loader (service models are read-only data).

    moto gives each test a fresh boto3 default session, and each session would otherwise read
    and parse the IAM, STS, DynamoDB and S3 models again: most of a stack's set-up time."""
    import botocore.loaders
    import botocore.session

    loaders: dict[Any, Any] = {}
    create = botocore.loaders.create_loader

    def shared(search_path_string: Any = None) -> Any:
        key = search_path_string
        if key not in loaders:
            loaders[key] = create(search_path_string)
        return loaders[key]

    with mock.patch.object(botocore.session, "create_loader", shared):
        yield


# ------------------------------------------------------------------ where a call is made
def call_site() -> str:
    """The domain's frames (jit_broker) of the current call, outermost first."""
    import sys

    frames = []
    frame = sys._getframe(1)
    while frame is not None:
        if f"{os.sep}jit_broker{os.sep}" in frame.f_code.co_filename:
            frames.append(frame.f_code.co_qualname)
        frame = frame.f_back  # type: ignore[assignment]
    return ">".join(reversed(frames))


class SiteLog:
    """Every call with the domain's frames that made it."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.recording = False

    def attach(self, *clients: Any) -> SiteLog:
        for client in clients:
            client.meta.events.register(
                "provide-client-params", self._record, unique_id=f"sites-{id(self)}"
            )
        return self

    @contextmanager
    def step(self) -> Iterator[list[RecordedCall]]:
        self.calls = []
        self.recording = True
        try:
            yield self.calls
        finally:
            self.recording = False

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.recording:
            self.calls.append(RecordedCall(model.name, call_site(), frozenset(mentions(params))))


def broker_faults(
    step: str, calls: list[RecordedCall], covered: Collection[str] = ()
) -> list[Fault]:
    """Every call of one route made to fail in turn, with a ClientError and a timeout (the two
    ways botocore raises), and with every kind the first time an operation is met in the grant
    path (``covered``: operations met in an earlier route): throttling and a 5xx (retried by
    botocore), access denied (not retried). For DynamoDB writes the 5xx is left out (the
    ledger handles it as it does throttling); a read fails with throttling and a timeout; a
    call made again from the same place (a teardown's second DeleteRolePolicy) with one kind,
    taking turns."""
    seen: Counter[str] = Counter()
    places: Counter[tuple[str, str]] = Counter()
    faults = []
    for call in calls:
        seen[call.operation] += 1
        places[(call.operation, call.site)] += 1
        kinds: tuple[str, ...]
        if is_read(call.operation):
            kinds = READ_KINDS
        elif call.operation in covered or seen[call.operation] > 1:
            kinds = (("throttling", "access_denied")[seen[call.operation] % 2], "timeout")
        elif call.operation in LEDGER_WRITES:
            kinds = LEDGER_KINDS
        else:
            kinds = ALL_KINDS
        repeat = places[(call.operation, call.site)] - 1
        if repeat:
            kinds = (kinds[repeat % len(kinds)],)
        faults += [Fault(step, call.operation, seen[call.operation], k, call.site) for k in kinds]
    return faults


def grant_path_faults(rec: Recording) -> list[Fault]:
    """``broker_faults`` of every route, in the order of the recorded run."""
    faults: list[Fault] = []
    covered: set[str] = set()
    for step in STEPS:
        faults += broker_faults(step, rec.broker[step], covered)
        covered |= {c.operation for c in rec.broker[step]}
    return faults


def audit_faults(calls: list[RecordedCall], roles: dict[str, str]) -> list[Fault]:
    """Every call of the auditor's run made to fail in turn, named by the scenario's role it
    is about (``None``: the run's own reads, before any role). A call made from a place
    already covered for an earlier role of ``AUDIT_LABELS`` (the same teardown for another
    grant) is left out, but for the decoys (a fault must not make them removable). One kind
    per call, each operation taking turns through the kinds (the auditor's adapters turn
    every error of a call into the same finding, throttling aside)."""
    owner = {}
    for label, name in roles.items():
        owner[name] = label
        if grant := grant_id_of(name):
            owner[grant] = label
    by_label: dict[str | None, list[RecordedCall]] = {}
    for call in calls:
        labels = {owner[m] for m in call.mentions if m in owner}
        assert len(labels) <= 1, (call, labels)
        by_label.setdefault(labels.pop() if labels else None, []).append(call)
    faults: list[Fault] = []
    covered: set[tuple[str, str]] = set()
    turns: Counter[str] = Counter()
    for subject in (None, *AUDIT_LABELS):
        seen: Counter[str] = Counter()
        here: set[tuple[str, str]] = set()
        for call in by_label.get(subject, []):
            seen[call.operation] += 1
            place = (call.operation, call.site)
            here.add(place)
            if place in covered and subject not in DECOYS:
                continue
            kinds = READ_KINDS if is_read(call.operation) else ALL_KINDS
            kind = kinds[turns[call.operation] % len(kinds)]
            turns[call.operation] += 1
            faults.append(
                Fault("audit", call.operation, seen[call.operation], kind, call.site, subject)
            )
        covered |= here
    return faults


# ------------------------------------------------------------------ the broker's steps
STEPS = ("grant", "session", "revoke")
SUCCESS = {"grant": 201, "session": 201, "revoke": 200}
BEFORE = {"grant": (), "session": ("grant",), "revoke": ("grant",)}  # what a route needs first


def take_step(call: Callable[..., Any], step: str, grant_id: str | None) -> tuple[int, Any]:
    """One route of the API, as the requester: (status, body)."""
    if step == "grant":
        status, _, body = call("POST", "/v1/grants", grant_body())
    elif step == "session":
        nonce = {"nonce": grant_body()["nonce"]}
        status, _, body = call("POST", f"/v1/grants/{grant_id}/credentials", nonce)
    else:
        status, _, body = call("POST", f"/v1/grants/{grant_id}/revoke", {"reason": "done"})
    return status, body


# ------------------------------------------------------------------ the auditor's scenario
AUDIT_AT = FROZEN_AT + 4 * 3600  # every role is old enough; expired grants can be removed
PAST = AUDIT_AT - 3600 - 300 - 100  # an expiry whose sessions are all over at AUDIT_AT
# One role (or grant) per branch of the auditor, then three it cannot prove the broker made.
AUDIT_LABELS = (
    "via-api",  # a grant the broker made (with its slot), expired: deny, expire, remove, clean
    "revoked",  # revoked and over: teardown from the deny, clean
    "crashed",  # left "requested" with its role: deny, reconcile to failed, remove, clean
    "vanished",  # active and expired, its role already gone: expire and clean from the ledger
    "live",  # active: drift checks (reads only)
    "orphan",  # cleaned in the ledger, its role still there (a listing missed it): remove
    "mismatch",  # a grant whose role has another RoleId: reported, its role left alone
    "stray",  # a grant role's name and owner tag, no ledger record: reported, left alone
    "untagged",  # a grant role's name without the owner tag: reported, left alone
)
DECOYS = ("mismatch", "stray", "untagged")  # what the auditor cannot prove the broker made


@contextmanager
def deterministic_grant_ids() -> Iterator[None]:
    """Grant ids in creation order, so the recorded auditor meets the roles (sorted by name)
    in the same order in every session and the cases keep their names."""
    from jit_broker import naming

    counter = iter(range(1, 10_000))
    with mock.patch.object(naming, "new_grant_id", lambda: f"g-{next(counter):024x}"):
        yield


def build_audit_scenario(
    stack: Stack, call: Callable[..., Any], labels: tuple[str, ...] = AUDIT_LABELS
) -> dict[str, str]:
    """The roles and grants of ``labels``; label → role name."""
    from jit_broker import naming
    from jit_broker.adapters.ledger import Ledger
    from jit_broker.models.domain import GrantStatus
    from tests.integration.cleanup_support import make_grant, plain_role

    made: dict[str, dict[str, Any]] = {
        "revoked": {"expires_at": PAST, "status": GrantStatus.REVOKED},
        "crashed": {"expires_at": PAST, "status": GrantStatus.REQUESTED},
        "vanished": {"expires_at": PAST, "with_role": False},
        "live": {"expires_at": AUDIT_AT + 1800},
        "orphan": {"expires_at": PAST, "status": GrantStatus.EXPIRED},
        "mismatch": {"expires_at": PAST, "role_id": "AROAOTHERROLEID000000"},
    }
    roles: dict[str, str] = {}
    with deterministic_grant_ids():
        for label in AUDIT_LABELS:
            if label not in labels:
                continue
            if label == "via-api":
                status, _, body = call("POST", "/v1/grants", grant_body())
                assert status == 201, body
                roles[label] = naming.role_name_for(body["grant"]["id"])
            elif label in ("stray", "untagged"):
                roles[label] = naming.role_name_for(naming.new_grant_id())
                if label == "stray":
                    plain_role(stack, roles[label])
                else:
                    plain_role(stack, roles[label], owner=None)
            else:
                grant = make_grant(stack, **made[label])
                roles[label] = grant.role_name
                if label == "orphan":
                    ledger = Ledger(stack.dynamodb, stack.seeded.table_name)
                    ledger.mark_cleaned(grant, now=PAST, release_quota=True)
    return roles


def about(role_name: str) -> set[str]:
    """What names a role in a call: its name and its grant id."""
    grant = grant_id_of(role_name)
    return {role_name, grant} if grant else {role_name}


@dataclass(frozen=True)
class RoleState:
    status: str | None  # the grant's status in the ledger (None: no record)
    exists: bool
    denied: bool  # carries the deny-all (jit-revoked)
    inline: tuple[str, ...] = ()


def role_state(stack: Stack, role_name: str) -> RoleState:
    from jit_broker import documents
    from jit_broker.adapters.ledger import Ledger

    gid = grant_id_of(role_name)
    grant = Ledger(stack.dynamodb, stack.seeded.table_name).get_grant(gid) if gid else None
    try:
        names = stack.iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    except stack.iam.exceptions.NoSuchEntityException:
        return RoleState(grant.status.value if grant else None, False, False)
    denied = False
    if documents.REVOKED_POLICY_NAME in names:
        doc = stack.iam.get_role_policy(
            RoleName=role_name, PolicyName=documents.REVOKED_POLICY_NAME
        )["PolicyDocument"]
        denied = _document(doc) == documents.deny_all()
    return RoleState(grant.status.value if grant else None, True, denied, tuple(sorted(names)))


def _document(value: Any) -> Any:
    if isinstance(value, str):
        from urllib.parse import unquote

        return json.loads(unquote(value))
    return value


def scenario_state(stack: Stack, roles: dict[str, str]) -> dict[str, RoleState]:
    return {label: role_state(stack, name) for label, name in roles.items()}


def quotas(stack: Stack) -> tuple[dict[str, int], dict[str, int]]:
    """The role quota counters (the stack's and each owner's), and what the ledger says they
    should hold: one unit for every grant that may still have its role (not failed, not
    cleaned, not revoked with its role removed). Equal whenever nothing is half way."""
    counters, holders = {}, Counter[str]()
    for item in stack.table_items():
        pk = item["pk"]["S"]
        if pk.startswith("QUOTA#") and int(item.get("live_roles", {"N": "0"})["N"]):
            counters[pk] = int(item["live_roles"]["N"])
        if item["sk"]["S"] == "GRANT" and item["status"]["S"] in HOLDING:
            if item["status"]["S"] == "revoked" and "role_removed_at" in item:
                continue
            holders["QUOTA#roles"] += 1
            holders[f"QUOTA#owner#{item['owner']['S']}"] += 1
    return counters, dict(holders)


HOLDING = frozenset({"requested", "active", "expired", "revoked"})


def assumable_outside_the_ledger(stack: Stack) -> list[str]:
    """Roles under the broker's path that are neither backed by an active grant with the same
    RoleId nor denied everything: what could still be assumed without the ledger saying so."""
    from jit_broker.adapters.ledger import Ledger
    from jit_broker.models.domain import GrantStatus

    ledger = Ledger(stack.dynamodb, stack.seeded.table_name)
    loose = []
    for page in stack.iam.get_paginator("list_roles").paginate(PathPrefix="/jit/"):
        for role in page["Roles"]:
            name = role["RoleName"]
            gid = grant_id_of(name)
            grant = ledger.get_grant(gid) if gid else None
            if grant and grant.status == GrantStatus.ACTIVE and grant.role_id == role["RoleId"]:
                continue
            if role_state(stack, name).denied:
                continue
            loose.append(f"{name} (ledger: {grant.status.value if grant else 'no record'})")
    return loose


def grant_id_of(role_name: str) -> str | None:
    match = _ROLE_NAME.fullmatch(role_name)
    return match.group(1) if match else None


# ------------------------------------------------------------------ recording at collection
@dataclass
class Recording:
    broker: dict[str, list[RecordedCall]] = field(default_factory=dict)
    # a grant request failing at one call (throttled): the calls that clean up after it
    rollback: dict[Fault, list[RecordedCall]] = field(default_factory=dict)
    audit: list[RecordedCall] = field(default_factory=list)
    audit_roles: dict[str, str] = field(default_factory=dict)  # label → role name
    audit_state: dict[str, RoleState] = field(default_factory=dict)  # label → after the run
    audit_findings: set[tuple[str, str | None]] = field(default_factory=set)  # (kind, label)


def load_handler() -> Any:
    path = ROOT / "functions" / "broker" / "app.py"
    spec = importlib.util.spec_from_file_location("broker_app_faults", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def caller_of(handler: Any) -> Callable[..., tuple[int, dict[str, str], Any]]:
    def _call(method: str, path: str, body: Any = None, **kw: Any) -> Any:
        response = handler.lambda_handler(api_event(method, path, body, **kw), LambdaContext())
        return response["statusCode"], {}, json.loads(response.get("body") or "null")

    return _call


_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_SERVICE_NAME": "jit-broker",
    "POWERTOOLS_METRICS_NAMESPACE": "JitBroker",
}


@contextmanager
def _collection_stack() -> Iterator[Stack]:
    """What the ``stack`` fixture of tests/conftest.py sets up (and its autouse fake AWS
    environment), outside a test: the cases are made while tests are collected. On the frozen
    clock the tests use."""
    import time_machine

    cleared = {k: "" for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN")}
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.dict(os.environ, cleared | _ENV),
        time_machine.travel(FROZEN_AT, tick=False),
    ):
        for name in cleared:
            os.environ.pop(name)
        with moto_stack(Path(tmp)) as running:
            yield running


def clients_of(stack: Stack) -> tuple[Any, ...]:
    return (stack.iam, stack.sts, stack.dynamodb)


def record() -> Recording:
    """The fault-free runs: grant → session → revoke; a grant request failing at each of its
    writes (what cleans up after it); one auditor run on the whole scenario."""
    from tests.integration.cleanup_support import make_auditor

    out = Recording()
    handler = load_handler()
    call = caller_of(handler)
    with _collection_stack() as stack:
        sites = SiteLog().attach(*clients_of(stack))
        grant_id = None
        for step in STEPS:
            with sites.step() as calls:
                status, body = take_step(call, step, grant_id)
            assert status == SUCCESS[step], (step, status, body)
            grant_id = grant_id or body["grant"]["id"]
            out.broker[step] = list(calls)
        # each write of a grant request throttled in turn (each failed request gives its slot
        # back, but for the last: the grant's activation)
        for fault in broker_faults("grant", out.broker["grant"]):
            if fault.kind != "throttling" or is_read(fault.operation):
                continue
            injector = FaultInjector(fault).attach(*clients_of(stack))
            with retries_without_waiting(), injector.armed(), sites.step() as calls:
                status, body = take_step(call, "grant", None)
            injector.detach(*clients_of(stack))
            assert status == 503, (fault.id, status, body)
            out.rollback[fault] = after_the_fault(calls, fault)
    with _collection_stack() as stack:
        roles = build_audit_scenario(stack, call)
        sites = SiteLog().attach(*clients_of(stack))
        with sites.step() as calls:
            report = audit_run(make_auditor, stack)
        out.audit = list(calls)
        out.audit_roles = roles
        out.audit_state = scenario_state(stack, roles)
        out.audit_findings = findings_by_label(report, roles)
    return out


def after_the_fault(calls: list[RecordedCall], fault: Fault) -> list[RecordedCall]:
    """The calls made after the faulted one, but its retries."""
    seen = 0
    for i, c in enumerate(calls):
        seen += c.operation == fault.operation
        if c.operation == fault.operation and seen == fault.occurrence:
            return [d for d in calls[i + 1 :] if (d.operation, d.site) != (c.operation, c.site)]
    raise AssertionError(f"{fault.id}: the call was never made")


def rollback_faults(rec: Recording) -> list[tuple[Fault, Fault]]:
    """A grant request failing at one call (throttled), then one of the calls that clean up
    after it failing too: each such call once (the same clean-up after another failure is
    left out), with a timeout or access denied, taking turns."""
    pairs: list[tuple[Fault, Fault]] = []
    covered: set[tuple[str, str]] = set()
    for first, calls in rec.rollback.items():
        before = Counter(c.operation for c in rec.broker["grant"][: _index(rec, first) + 1])
        seen: Counter[str] = Counter()
        for c in calls:
            seen[c.operation] += 1
            if (c.operation, c.site) in covered:
                continue
            kind = ("timeout", "access_denied")[len(pairs) % 2]
            occurrence = before[c.operation] + seen[c.operation]
            pairs.append((first, Fault("grant", c.operation, occurrence, kind, c.site)))
        covered |= {(c.operation, c.site) for c in calls}
    return pairs


def _index(rec: Recording, fault: Fault) -> int:
    seen = 0
    for i, c in enumerate(rec.broker["grant"]):
        seen += c.operation == fault.operation
        if c.operation == fault.operation and seen == fault.occurrence:
            return i
    raise AssertionError(fault.id)


def findings_by_label(report: Any, roles: dict[str, str]) -> set[tuple[str, str | None]]:
    label = {name: key for key, name in roles.items()}
    return {(f.kind, label.get(f.role_name or "", f.role_name)) for f in report.findings}


def audit_run(make_auditor: Callable[..., Any], stack: Stack, at: int = AUDIT_AT) -> Any:
    """One auditor run at ``at`` with deep drift checks (the live role's reads)."""
    return make_auditor(stack, deep_drift_checks_per_run=25).run(at=at)
