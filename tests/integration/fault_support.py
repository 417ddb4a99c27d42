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

The runs are those of a hub and two member accounts (:class:`Org`): the broker grants in the
hub, in a member (its role written through the member's execution role) and with a shared role
(granted, then revoked); the auditor sweeps the hub and both members, a member's grant and a
revoked shared-role grant to take off its role's deny among its cases. A member's clients are
made when first used (MemberClients), and the injector and the recorder are handed each one as
it is made. A test makes only the members its case reaches (:func:`members_for`).

The fault-free runs are recorded while the tests are collected, so the cases follow the code:
a call added to the grant path or the auditor later gets its own cases without an edit here.
"""

from __future__ import annotations

import copy
import functools
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

from jit_local.seed import MEMBER_ACCOUNTS, MEMBER_ROLE_NAME
from tests.conftest import (
    ACCOUNT,
    FROZEN_AT,
    JIT_USER,
    ROOT,
    FakeMonotonic,
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
_SHARED_KEY = re.compile(r"SHARED#\d{12}#([^\"\\]+)")

HUB = ACCOUNT
MEMBER_A, MEMBER_B = MEMBER_ACCOUNTS
MEMBER_PROFILE = "member-read"  # per-grant roles in member A
SHARED_PROFILE = "fast"  # a shared role in member A
APPROVAL_PROFILE = "approved-read"  # one approval by APPROVER (issue 11)
BREAK_GLASS_PROFILE = "break-glass-read"  # granted at once, reviewed by APPROVER afterwards
APPROVER = f"arn:aws:iam::{ACCOUNT}:user/Approver"
_STATEMENTS = [
    {
        "Sid": "ReadTeamData",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": "arn:aws:s3:::team-data/*",
    }
]
PROFILES: dict[str, dict[str, Any]] = {
    MEMBER_PROFILE: {
        "description": "Read team data in member A",
        "accounts": [MEMBER_A],
        "permissions": {"inline": {"Version": "2012-10-17", "Statement": _STATEMENTS}},
        "requesters": {"users": [JIT_USER]},
        "max_window": 3600,
        "reason_required": False,
        "max_active_grants": 1,  # a slot not given back: the retried request is refused
    },
    SHARED_PROFILE: {
        "description": "Read team data in member A, fast",
        "mode": "shared-role",
        "accounts": [MEMBER_A],
        "permissions": {"inline": {"Version": "2012-10-17", "Statement": _STATEMENTS}},
        "requesters": {"users": [JIT_USER]},
        "max_window": 3600,
        "reason_required": False,
        "max_active_grants": 1,
    },
    APPROVAL_PROFILE: {
        "description": "Read team data in the hub, once another person approves",
        "permissions": {"inline": {"Version": "2012-10-17", "Statement": _STATEMENTS}},
        "requesters": {"users": [JIT_USER]},
        "approvers": {"users": [APPROVER]},
        "max_window": 3600,
        "reason_required": False,
    },
    BREAK_GLASS_PROFILE: {
        "description": "Read team data in the hub at once, reviewed by an approver afterwards",
        "permissions": {"inline": {"Version": "2012-10-17", "Statement": _STATEMENTS}},
        "requesters": {"users": [JIT_USER]},
        "approvers": {"users": [APPROVER]},
        "break_glass": True,
        "max_window": 3600,
    },
}
# What a call is about beyond its operation (RecordedCall.variant), so that a call the hub's
# per-grant path does not make (in a member, of the execution role, of a shared role or its
# deny list; a request awaiting approval, or an approver's decision) gets its own cases even
# where the same operation was met before.
IN_MEMBER, EXECUTION_ROLE, SHARED, REVOKED_LIST, APPROVAL, BREAK_GLASS = (
    "member",
    "execution-role",
    "shared",
    "revoked-list",
    "approval",
    "break-glass",
)


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
    account: str = HUB  # the account the client acts in
    variant: str = ""  # what it is about beyond its operation ("": the hub's per-grant path)


def mentions(params: dict[str, Any]) -> set[str]:
    """The grant ids and role names a call's parameters name (a shared role's ledger record
    names its role)."""
    from jit_broker.naming import shared_role_name

    text = json.dumps(params, default=str)
    grants = set(_GRANT_ID.findall(text))
    roles = {f"jit-{g}" for g in grants}
    roles |= {shared_role_name(profile) for profile in _SHARED_KEY.findall(text)}
    if isinstance(params.get("RoleName"), str):
        roles.add(params["RoleName"])
    return grants | roles


def variant(account: str, params: dict[str, Any]) -> str:
    """``IN_MEMBER``, ``EXECUTION_ROLE``, ``SHARED`` and ``REVOKED_LIST`` as they apply to a
    call made in ``account`` with ``params`` ("" for every call of the hub's per-grant path)."""
    text = json.dumps(params, default=str)
    parts = []
    if account != HUB:
        parts.append(IN_MEMBER)
    if MEMBER_ROLE_NAME in text:
        parts.append(EXECUTION_ROLE)
    if "jit-s-" in text or "SHARED#" in text:
        parts.append(SHARED)
        if "jit-revoked" in text:
            parts.append(REVOKED_LIST)
    if "REVIEW#" in text or "DECISION#" in text:
        parts.append(APPROVAL)
    if "BREAKGLASS" in text:  # a break-glass grant's review item (issue 11, part 3)
        parts.append(BREAK_GLASS)
    return "+".join(parts)


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
    client: int | None = None  # the client that made it (each account's its own)


class FaultInjector:
    """Makes the calls ``faults`` name fail, and their retries. Counts calls only while armed
    and, given ``about`` (a role's name and grant id), only the calls that name it; given
    ``not_about``, only those that name none of it (the run's own calls)."""

    def __init__(
        self, *faults: Fault, about: set[str] | None = None, not_about: set[str] | None = None
    ) -> None:
        self.targets = [_Target(f) for f in faults]
        self.about = about
        self.not_about = not_about
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
                "provide-client-params",
                functools.partial(self._on_call, client=id(client)),
                unique_id=self._uid + "-call",
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

    def _on_call(self, params: dict[str, Any], model: Any, client: int, **_: Any) -> None:
        self._failing = None
        if not self._armed:
            return None
        for t in self.targets:
            if model.name != t.fault.operation:
                continue
            if t.params is not None:
                if (params, client) == (t.params, t.client):  # again: an adapter's retry
                    self._failing = self._failing or t.fault
            elif self._counts(mentions(params)):
                t.seen += 1
                if t.seen == t.fault.occurrence:
                    t.params, t.client = copy.deepcopy(params), client
                    self._failing = self._failing or t.fault
        self.failed_calls += self._failing is not None
        return None

    def _counts(self, named: set[str]) -> bool:
        if self.about is not None and not named & self.about:
            return False
        return not (self.not_about is not None and named & self.not_about)

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
    """Every call with the domain's frames that made it and the account it was made in."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.recording = False

    def attach(self, account: str, client: Any) -> None:
        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            if self.recording:
                self.calls.append(
                    RecordedCall(
                        model.name,
                        call_site(),
                        frozenset(mentions(params)),
                        account,
                        variant(account, params),
                    )
                )

        client.meta.events.register("provide-client-params", record, unique_id=f"sites-{id(self)}")

    @contextmanager
    def step(self) -> Iterator[list[RecordedCall]]:
        self.calls = []
        self.recording = True
        try:
            yield self.calls
        finally:
            self.recording = False


def broker_faults(
    step: str, calls: list[RecordedCall], covered: Collection[tuple[str, str]] = ()
) -> list[Fault]:
    """Every call of one route made to fail in turn, with a ClientError and a timeout (the two
    ways botocore raises), and with every kind the first time a call is met in the grant
    path (an operation with its ``variant``; ``covered``: those met in an earlier route):
    throttling and a 5xx (retried by botocore), access denied (not retried). For DynamoDB
    writes the 5xx is left out (the ledger handles it as it does throttling); a read fails
    with throttling and a timeout; a call made again from the same place (a teardown's second
    DeleteRolePolicy) with one kind, taking turns."""
    seen: Counter[str] = Counter()
    met: Counter[tuple[str, str]] = Counter()
    places: Counter[tuple[str, str]] = Counter()
    faults = []
    for call in calls:
        seen[call.operation] += 1
        met[(call.operation, call.variant)] += 1
        places[(call.operation, call.site)] += 1
        kinds: tuple[str, ...]
        if is_read(call.operation):
            kinds = READ_KINDS
        elif (call.operation, call.variant) in covered or met[(call.operation, call.variant)] > 1:
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
    covered: set[tuple[str, str]] = set()
    for step in STEPS:
        faults += broker_faults(step, rec.broker[step], covered)
        covered |= {(c.operation, c.variant) for c in rec.broker[step]}
    return faults


def audit_faults(calls: list[RecordedCall], roles: dict[str, Subject]) -> list[Fault]:
    """Every call of the auditor's run made to fail in turn, named by the scenario's subject
    it is about (``None``: the run's own calls: the ledger's read, each account's execution
    role, cursor and listing; those of the second member, made from the same place as the
    first's, are left out). A call made from a place already covered for an earlier subject
    of ``AUDIT_LABELS`` (the same teardown for another grant, in the hub or in a member) is
    left out, but for the decoys (a fault must not make them removable). One kind per call,
    each operation taking turns through the kinds (the auditor's adapters turn every error
    of a call into the same finding, throttling aside)."""
    owner = {key: label for label, subject in roles.items() for key in subject.keys}
    by_label: dict[str | None, list[RecordedCall]] = {}
    for call in calls:
        labels = {owner[m] for m in call.mentions if m in owner}
        assert len(labels) <= 1, (call, labels)
        by_label.setdefault(labels.pop() if labels else None, []).append(call)
    faults: list[Fault] = []
    covered: set[tuple[str, str, str]] = set()  # (operation, site, hub or member)
    turns: Counter[str] = Counter()
    for subject in (None, *AUDIT_LABELS):
        seen: Counter[str] = Counter()
        here: set[tuple[str, str, str]] = set()
        for call in by_label.get(subject, []):
            seen[call.operation] += 1
            place = (call.operation, call.site, HUB if call.account == HUB else IN_MEMBER)
            if subject is None and place in here:
                continue  # the run's own call, made alike for another member
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
# Each route of the API the requester takes: a grant, a further session and a revocation in
# the hub (profile s3-read), a grant in member A (its role written through the execution role
# there), a shared-role grant in member A (its role made on first use) and its revocation.
# Then a request for a profile with an approver (202, awaiting approval) and its approval by
# the approver, a break-glass grant (201 at once, its review item written with it) and its
# review closed by the approver (issue 11).
STEPS = (
    "grant",
    "session",
    "revoke",
    "member-grant",
    "shared-grant",
    "shared-revoke",
    "approval-request",
    "approve",
    "break-glass-grant",
    "review",
)
HUB_STEPS = (
    "grant",
    "session",
    "revoke",
    "approval-request",
    "approve",
    "break-glass-grant",
    "review",
)
ROUTE = {
    "grant": "grant",
    "session": "session",
    "revoke": "revoke",
    "member-grant": "grant",
    "shared-grant": "grant",
    "shared-revoke": "revoke",
    "approval-request": "grant",
    "approve": "approve",
    "break-glass-grant": "grant",
    "review": "review",
}
PROFILE = {
    "grant": "s3-read",
    "member-grant": MEMBER_PROFILE,
    "shared-grant": SHARED_PROFILE,
    "approval-request": APPROVAL_PROFILE,
    "break-glass-grant": BREAK_GLASS_PROFILE,
}
SUCCESS = {
    step: 200 if route in ("revoke", "approve", "review") else 201 for step, route in ROUTE.items()
}
SUCCESS["approval-request"] = 202
BEFORE = {  # what a route needs first (the steps without: a broker just started)
    "grant": (),
    "session": ("grant",),
    "revoke": ("grant",),
    "member-grant": (),
    "shared-grant": (),
    "shared-revoke": ("shared-grant",),
    "approval-request": (),
    "approve": ("approval-request",),
    "break-glass-grant": (),
    "review": ("break-glass-grant",),
}


def take_step(call: Callable[..., Any], step: str, grant_id: str | None) -> tuple[int, Any]:
    """One route of the API, as the requester: (status, body)."""
    route = ROUTE[step]
    if route == "grant":
        status, _, body = call("POST", "/v1/grants", grant_body(profile=PROFILE[step]))
    elif route == "session":
        nonce = {"nonce": grant_body()["nonce"]}
        status, _, body = call("POST", f"/v1/grants/{grant_id}/credentials", nonce)
    elif route == "approve":
        decision = {"comment": "fine", "nonce": grant_body()["nonce"]}
        status, _, body = call(
            "POST", f"/v1/grants/{grant_id}/approve", decision, user_arn=APPROVER
        )
    elif route == "review":
        review = {"comment": "checked", "nonce": grant_body()["nonce"]}
        status, _, body = call("POST", f"/v1/grants/{grant_id}/review", review, user_arn=APPROVER)
    else:
        status, _, body = call("POST", f"/v1/grants/{grant_id}/revoke", {"reason": "done"})
    return status, body


# ------------------------------------------------------------------ the hub and its members
def _admin_iam(sts: Any, account: str) -> Any:
    """IAM acting in ``account`` as its administrator (moto: the credentials' account)."""
    import boto3

    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/admin", RoleSessionName="setup")[
        "Credentials"
    ]
    return boto3.client(
        "iam",
        region_name="us-east-1",
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
    )


@dataclass
class Org:
    """The hub's in-process stack and its member accounts made (``admin``'s, but the hub),
    each with the boundary under the hub's name and the execution role. The broker and the
    auditor reach a member through MemberClients (the execution role assumed with the hub's
    STS client); each client made there is handed to every watcher (the fault injector, the
    call recorder) as it is made."""

    stack: Stack
    admin: dict[str, Any]  # account → IAM acting there as its administrator (never watched)
    settings: Any  # the broker's Settings
    made: list[tuple[str, Any]] = field(default_factory=list)  # (account, client)
    watchers: dict[str, Callable[[str, Any], None]] = field(default_factory=dict)
    _auditor_members: Any = None

    @property
    def ledger(self) -> Any:
        from jit_broker.adapters.ledger import Ledger

        return Ledger(self.stack.dynamodb, self.stack.seeded.table_name)

    def clients(self) -> list[tuple[str, Any]]:
        """Every client the broker and the auditors use, made so far, with its account."""
        hub = [(HUB, c) for c in (self.stack.iam, self.stack.sts, self.stack.dynamodb)]
        return hub + self.made

    def watch(self, name: str, attach: Callable[[str, Any], None]) -> None:
        """``attach(account, client)`` for every client, and every one made from now on."""
        for account, client in self.clients():
            attach(account, client)
        self.watchers[name] = attach

    def unwatch(self, name: str) -> None:
        self.watchers.pop(name, None)

    def member_clients(self, session_name: str) -> Any:
        from jit_broker.adapters.members import MemberClients

        asked: list[str] = []  # MemberClients asks for the role's ARN just before the session

        def role_arn_of(account: str) -> str:
            asked.append(account)
            return str(self.settings.member_role_arn(account))

        def session(**credentials: Any) -> Any:
            import boto3

            account = asked[-1]
            made = boto3.session.Session(region_name="us-east-1", **credentials)
            real_client = made.client

            def client(service: str, **kw: Any) -> Any:
                new = real_client(service, **kw)  # type: ignore[call-overload]
                self.made.append((account, new))
                for attach in list(self.watchers.values()):
                    attach(account, new)
                return new

            made.client = client  # type: ignore[method-assign]
            return made

        return MemberClients(
            sts=self.stack.sts,
            session_factory=session,
            role_arn_of=role_arn_of,
            session_name=session_name,
        )

    def restart_broker(self) -> None:
        """A broker just started (nothing of a member or a shared role known yet)."""
        from jit_broker import runtime
        from jit_broker.adapters.iam import Iam
        from tests.conftest import build_broker

        members = self.member_clients("jit-broker")
        self.stack.broker = build_broker(
            {"iam": self.stack.iam, "sts": self.stack.sts, "dynamodb": self.stack.dynamodb},
            self.stack.seeded,
            self.stack.policy_file,
            member_iam=lambda account: Iam(members.client(account)),
        )
        runtime.set_broker(self.stack.broker)

    def auditor(self, **settings: Any) -> Any:
        """The auditor over the hub and the members made (a member through its execution role,
        its session kept from one run to the next as the cleanup function keeps it)."""
        from jit_broker.adapters.iam_audit import IamAudit
        from jit_broker.adapters.policy_source import load_policy
        from jit_broker.audit import Auditor
        from tests.integration.cleanup_support import Events, audit_settings

        s = audit_settings(
            self.stack,
            member_accounts=tuple(a for a in self.admin if a != HUB),
            member_role_name=MEMBER_ROLE_NAME,
            **settings,
        )
        if self._auditor_members is None:  # one per execution environment, as in Lambda
            self._auditor_members = self.member_clients("jit-auditor")
        members = self._auditor_members
        return Auditor(
            settings=s,
            ledger=self.ledger,
            iam=IamAudit(self.stack.iam, sleep=lambda _: None),
            member_iam=lambda account: IamAudit(members.client(account), sleep=lambda _: None),
            events=Events(),
            policy=lambda: load_policy(path=str(self.stack.policy_file)),
            monotonic=FakeMonotonic().monotonic,
        )

    def roles(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(account, role) of every role under the broker's path, in every account."""
        for account, iam in self.admin.items():
            for page in iam.get_paginator("list_roles").paginate(PathPrefix="/jit/"):
                for role in page["Roles"]:
                    yield account, role

    def grant_roles(self) -> list[str]:
        return [f"{a}:{r['RoleName']}" for a, r in self.roles() if grant_id_of(r["RoleName"])]


def org_of(stack: Stack, members: tuple[str, ...] = MEMBER_ACCOUNTS) -> Org:
    """``members`` of ``stack``'s hub made (boundary and execution role in each; the auditor
    sweeps these), the access policy given the member and shared profiles (and a rate no test
    reaches), and a broker that reaches the members."""
    import yaml

    from jit_broker.settings import Settings

    boundary_name = stack.seeded.boundary_arn.rsplit("/", 1)[-1]
    boundary = stack.iam.get_policy_version(PolicyArn=stack.seeded.boundary_arn, VersionId="v1")[
        "PolicyVersion"
    ]["Document"]
    admin = {HUB: stack.iam}
    for account in members:
        admin[account] = _admin_iam(stack.sts, account)
        admin[account].create_policy(PolicyName=boundary_name, PolicyDocument=json.dumps(boundary))
        admin[account].create_role(RoleName=MEMBER_ROLE_NAME, AssumeRolePolicyDocument="{}")
    policy = yaml.safe_load(stack.policy_file.read_text())
    policy["profiles"].update(copy.deepcopy(PROFILES))
    policy["limits"]["requests_per_minute"] = 1000
    stack.policy_file.write_text(yaml.safe_dump(policy))
    settings = Settings.from_env(stack.seeded.broker_env(str(stack.policy_file)))
    assert settings.member_accounts == MEMBER_ACCOUNTS, settings.member_accounts
    org = Org(stack=stack, admin=admin, settings=settings)
    org.restart_broker()
    stack.calls.clear()
    return org


def members_for(fault: Fault) -> tuple[str, ...]:
    """The member accounts a fault's test makes (and its auditor sweeps): none for the hub's
    own routes and roles, which never reach one; member A for what is there; both for the
    auditor's own calls (one member failing, the other swept all the same)."""
    if fault.step == "audit" and fault.subject is None:
        return MEMBER_ACCOUNTS
    if fault.step in HUB_STEPS or (fault.step == "audit" and fault.subject not in IN_MEMBER_A):
        return ()
    return (MEMBER_A,)


def inject(org: Org, injector: FaultInjector) -> None:
    """The injector in every client of ``org``'s, and every one made while it is in."""

    def attach(_: str, client: Any) -> None:
        injector.attach(client)

    org.watch("faults", attach)


def stop_injecting(org: Org, injector: FaultInjector) -> None:
    org.unwatch("faults")
    injector.detach(*(client for _, client in org.clients()))


# ------------------------------------------------------------------ the auditor's scenario
AUDIT_AT = FROZEN_AT + 4 * 3600  # every role is old enough; expired grants can be removed
PAST = AUDIT_AT - 3600 - 300 - 100  # an expiry whose sessions are all over at AUDIT_AT
# One role (or grant) per branch of the auditor, then three it cannot prove the broker made.
AUDIT_LABELS = (
    "via-api",  # a grant the broker made (with its slot), expired: deny, expire, remove, clean
    "revoked",  # revoked and over: teardown from the deny, clean
    "crashed",  # left "issuing" with its role: deny, reconcile to failed, remove, clean
    "vanished",  # active and expired, its role already gone: expire and clean from the ledger
    "live",  # active: drift checks (reads only)
    "orphan",  # cleaned in the ledger, its role still there (a listing missed it): remove
    "member",  # the broker's grant in member A, expired: the same, through the execution role
    "unlisted",  # a shared-role grant in member A, revoked and over: off its role's deny, clean
    "mismatch",  # a grant whose role has another RoleId: reported, its role left alone
    "stray",  # a grant role's name and owner tag, no ledger record: reported, left alone
    "untagged",  # a grant role's name without the owner tag: reported, left alone
)
DECOYS = ("mismatch", "stray", "untagged")  # what the auditor cannot prove the broker made
IN_MEMBER_A = ("member", "unlisted")  # the rest are in the hub


@dataclass(frozen=True)
class Subject:
    """What one label of the scenario is: a role (a grant role, or the shared role a grant
    is listed on) in an account, and its grant (if any)."""

    account: str
    role_name: str
    grant_id: str | None

    @property
    def keys(self) -> set[str]:
        """What names it in a call: the role's name and the grant's id."""
        return {self.role_name} | ({self.grant_id} if self.grant_id else set())

    @property
    def shared(self) -> bool:
        return self.role_name.startswith("jit-s-")


@contextmanager
def deterministic_grant_ids() -> Iterator[None]:
    """Grant ids in creation order, so the recorded auditor meets the roles (sorted by name)
    in the same order in every session and the cases keep their names."""
    from jit_broker import naming

    counter = iter(range(1, 10_000))
    with mock.patch.object(naming, "new_grant_id", lambda: f"g-{next(counter):024x}"):
        yield


def build_audit_scenario(
    org: Org, call: Callable[..., Any], labels: tuple[str, ...] = AUDIT_LABELS
) -> dict[str, Subject]:
    """The roles and grants of ``labels``; label → what it is."""
    from jit_broker import naming
    from jit_broker.models.domain import GrantStatus
    from tests.integration.cleanup_support import make_grant, plain_role

    stack = org.stack
    made: dict[str, dict[str, Any]] = {
        "revoked": {"expires_at": PAST, "status": GrantStatus.REVOKED},
        "crashed": {"expires_at": PAST, "status": GrantStatus.ISSUING},
        "vanished": {"expires_at": PAST, "with_role": False},
        "live": {"expires_at": AUDIT_AT + 1800},
        "orphan": {"expires_at": PAST, "status": GrantStatus.EXPIRED},
        "mismatch": {"expires_at": PAST, "role_id": "AROAOTHERROLEID000000"},
    }
    api_profiles = {"via-api": "s3-read", "member": MEMBER_PROFILE, "unlisted": SHARED_PROFILE}
    roles: dict[str, Subject] = {}
    with deterministic_grant_ids():
        for label in AUDIT_LABELS:
            if label not in labels:
                continue
            if label in api_profiles:
                status, _, body = call(
                    "POST", "/v1/grants", grant_body(profile=api_profiles[label])
                )
                assert status == 201, body
                granted = body["grant"]
                roles[label] = Subject(
                    granted["account"], granted["role_arn"].rsplit("/", 1)[-1], granted["id"]
                )
                if label == "unlisted":
                    status, _, body = call(
                        "POST", f"/v1/grants/{granted['id']}/revoke", {"reason": "done"}
                    )
                    assert status == 200, body
            elif label in ("stray", "untagged"):
                gid = naming.new_grant_id()  # a grant role's name; the ledger has no record
                roles[label] = Subject(HUB, naming.role_name_for(gid), gid)
                if label == "stray":
                    plain_role(stack, roles[label].role_name)
                else:
                    plain_role(stack, roles[label].role_name, owner=None)
            else:
                grant = make_grant(stack, **made[label])
                roles[label] = Subject(HUB, grant.role_name, grant.grant_id)
                if label == "orphan":
                    org.ledger.mark_cleaned(grant, now=PAST, release_quota=True)
    return roles


@dataclass(frozen=True)
class RoleState:
    status: str | None  # the grant's status in the ledger (None: no record)
    exists: bool
    denied: bool  # a grant role: carries the deny-all; a shared role: its deny lists the grant
    inline: tuple[str, ...] = ()
    listed: bool = False  # on its shared role's revoked list in the ledger


def _revoked_deny(iam: Any, role_name: str) -> Any:
    from jit_broker import documents

    try:
        doc = iam.get_role_policy(RoleName=role_name, PolicyName=documents.REVOKED_POLICY_NAME)
    except iam.exceptions.NoSuchEntityException:
        return None
    return _document(doc["PolicyDocument"])


def _denied_ids(document: Any) -> set[str]:
    """The grant ids a shared role's revocation deny lists."""
    if not document:
        return set()
    ids: set[str] = set()
    for statement in document.get("Statement", []):
        listed = statement.get("Condition", {}).get("StringEquals", {})
        value = listed.get("aws:PrincipalTag/jit:grant-id", [])
        ids |= {value} if isinstance(value, str) else set(value)
    return ids


def role_state(org: Org, subject: Subject) -> RoleState:
    from jit_broker import documents

    iam = org.admin[subject.account]
    grant = org.ledger.get_grant(subject.grant_id) if subject.grant_id else None
    status = grant.status.value if grant else None
    try:
        names = iam.list_role_policies(RoleName=subject.role_name)["PolicyNames"]
    except iam.exceptions.NoSuchEntityException:
        return RoleState(status, False, False)
    deny = _revoked_deny(iam, subject.role_name)
    if subject.shared:
        profile = subject.role_name.removeprefix("jit-s-")
        record = org.ledger.shared_role(subject.account, profile)
        return RoleState(
            status,
            True,
            subject.grant_id in _denied_ids(deny),
            tuple(sorted(names)),
            bool(record and subject.grant_id in record.revoked),
        )
    return RoleState(status, True, deny == documents.deny_all(), tuple(sorted(names)))


def _document(value: Any) -> Any:
    if isinstance(value, str):
        from urllib.parse import unquote

        return json.loads(unquote(value))
    return value


def scenario_state(org: Org, roles: dict[str, Subject]) -> dict[str, RoleState]:
    return {label: role_state(org, subject) for label, subject in roles.items()}


def quotas(items: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """The role quota counters (the stack's and each owner's), and what the ledger (``items``,
    the table's) says they should hold: one unit for every grant that may still have its role (not failed, not
    cleaned, not revoked with its role removed; a shared-role grant has none of its own).
    Equal whenever nothing is half way."""
    counters, holders = {}, Counter[str]()
    for item in items:
        pk = item["pk"]["S"]
        if pk.startswith("QUOTA#") and int(item.get("live_roles", {"N": "0"})["N"]):
            counters[pk] = int(item["live_roles"]["N"])
        if item["sk"]["S"] == "GRANT" and item["status"]["S"] in HOLDING:
            if item.get("mode", {}).get("S") == "shared-role":
                continue
            if item["status"]["S"] == "revoked" and "role_removed_at" in item:
                continue
            holders["QUOTA#roles"] += 1
            holders[f"QUOTA#owner#{item['owner']['S']}"] += 1
    return counters, dict(holders)


HOLDING = frozenset({"issuing", "active", "expired", "revoked"})


def slots_held_by_closed_grants(items: list[dict[str, Any]], now: int) -> list[str]:
    """Active-grant slots still held (not yet expired) by a grant that is not active, in the
    table's ``items``: what would refuse the owner's next grant of the profile for nothing."""
    status = {i["pk"]["S"]: i["status"]["S"] for i in items if i["sk"]["S"] == "GRANT"}
    return [
        f"{i['pk']['S']} ({status.get('GRANT#' + i['grant_id']['S'], 'no record')})"
        for i in items
        if i["sk"]["S"] == "SLOT"
        and int(i["expires_at"]["N"]) > now
        and status.get("GRANT#" + i["grant_id"]["S"]) != "active"
    ]


def assumable_outside_the_ledger(org: Org) -> list[str]:
    """What could still be assumed without the ledger saying so, in every account: a role
    under the broker's path that is neither backed by an active grant of that account with the
    same RoleId nor denied everything; a shared role without the ledger's record of it (same
    RoleId); a revoked grant its shared role's deny does not name."""
    from jit_broker.models.domain import GrantStatus

    ledger = org.ledger
    loose = []
    for account, role in org.roles():
        name = role["RoleName"]
        if name.startswith("jit-s-"):
            record = ledger.shared_role(account, name.removeprefix("jit-s-"))
            if record is None or record.role_id != role["RoleId"]:
                loose.append(f"{account}:{name} (no ledger record of this role)")
            continue
        gid = grant_id_of(name)
        grant = ledger.get_grant(gid) if gid else None
        if (
            grant
            and grant.status == GrantStatus.ACTIVE
            and grant.role_id == role["RoleId"]
            and (grant.target_account or HUB) == account
        ):
            continue
        if role_state(org, Subject(account, name, gid)).denied:
            continue
        loose.append(f"{account}:{name} (ledger: {grant.status.value if grant else 'no record'})")
    return loose + revoked_not_denied(org)


def revoked_not_denied(org: Org) -> list[str]:
    """Grants the ledger lists as revoked on a shared role that the role's deny (in IAM) does
    not name: their sessions still act."""
    missing = []
    for account, role in org.roles():
        name = role["RoleName"]
        if not name.startswith("jit-s-"):
            continue
        record = org.ledger.shared_role(account, name.removeprefix("jit-s-"))
        listed = set(record.revoked) if record else set()
        if left := listed - _denied_ids(_revoked_deny(org.admin[account], name)):
            missing.append(f"{account}:{name} (revoked, not denied: {sorted(left)})")
    return missing


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
    audit_roles: dict[str, Subject] = field(default_factory=dict)  # label → what it is
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


ROLLBACK_STEPS = ("grant", "member-grant")  # the grant requests that make a role


def record() -> Recording:
    """The fault-free runs: each step (a broker just started before each that needs no other
    first); a grant request (in the hub, in a member) failing at each of its writes (what
    cleans up after it); one auditor run over the hub and both members on the whole
    scenario."""
    out = Recording()
    handler = load_handler()
    call = caller_of(handler)
    with _collection_stack() as stack:
        org = org_of(stack)
        sites = SiteLog()
        org.watch("sites", sites.attach)
        grant_id = None
        for step in STEPS:
            if not BEFORE[step]:
                org.restart_broker()
                grant_id = None
            with sites.step() as calls:
                status, body = take_step(call, step, grant_id)
            assert status == SUCCESS[step], (step, status, body)
            grant_id = grant_id or body["grant"]["id"]
            out.broker[step] = list(calls)
            if step == "member-grant":  # its slot given back for the requests below
                assert take_step(call, "revoke", grant_id)[0] == SUCCESS["revoke"]
        # each write of a grant request throttled in turn (each failed request gives its slot
        # back, but for the last: the grant's activation)
        for step in ROLLBACK_STEPS:
            for fault in broker_faults(step, out.broker[step]):
                if fault.kind != "throttling" or is_read(fault.operation):
                    continue
                org.restart_broker()
                injector = FaultInjector(fault)
                inject(org, injector)
                with retries_without_waiting(), injector.armed(), sites.step() as calls:
                    status, body = take_step(call, step, None)
                stop_injecting(org, injector)
                assert status == 503, (fault.id, status, body)
                out.rollback[fault] = after_the_fault(calls, fault)
    with _collection_stack() as stack:
        org = org_of(stack)
        roles = build_audit_scenario(org, call)
        sites = SiteLog()
        org.watch("sites", sites.attach)
        with sites.step() as calls:
            report = audit_run(org)
        out.audit = list(calls)
        out.audit_roles = roles
        out.audit_state = scenario_state(org, roles)
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
    after it failing too: each such call once (the same clean-up in the same account after
    another failure is left out), with a timeout or access denied, taking turns."""
    pairs: list[tuple[Fault, Fault]] = []
    covered: set[tuple[str, str, str]] = set()
    for first, calls in rec.rollback.items():
        steps = rec.broker[first.step]
        before = Counter(c.operation for c in steps[: _index(steps, first) + 1])
        seen: Counter[str] = Counter()
        for c in calls:
            seen[c.operation] += 1
            if (c.operation, c.site, c.account) in covered:
                continue
            kind = ("timeout", "access_denied")[len(pairs) % 2]
            occurrence = before[c.operation] + seen[c.operation]
            pairs.append((first, Fault(first.step, c.operation, occurrence, kind, c.site)))
        covered |= {(c.operation, c.site, c.account) for c in calls}
    return pairs


def _index(calls: list[RecordedCall], fault: Fault) -> int:
    seen = 0
    for i, c in enumerate(calls):
        seen += c.operation == fault.operation
        if c.operation == fault.operation and seen == fault.occurrence:
            return i
    raise AssertionError(fault.id)


def finding_label(finding: Any, roles: dict[str, Subject]) -> str | None:
    """The label a finding names: by its role, else by its grant; else the role's name."""
    label = {key: name for name, subject in roles.items() for key in subject.keys}
    return (
        label.get(finding.role_name or "") or label.get(finding.grant_id or "") or finding.role_name
    )


def findings_by_label(report: Any, roles: dict[str, Subject]) -> set[tuple[str, str | None]]:
    return {(f.kind, finding_label(f, roles)) for f in report.findings}


def audit_run(org: Org, at: int = AUDIT_AT) -> Any:
    """One auditor run over the hub and both members at ``at`` with deep drift checks (the
    live role's reads)."""
    return org.auditor(deep_drift_checks_per_run=25).run(at=at)
