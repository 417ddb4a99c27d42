"""The ledger at organization scale (issue 9, item 5): no request route scans the table, and
"my grants" and "active grants" cost what the caller has, not what the table holds.

The DynamoDB client is spied on (tests/conftest.py CallLog: the exact parameters the broker
sends; plus each Query's answer, whose ScannedCount is the number of items DynamoDB read,
before any filter). Other people's grants are written straight into the table in the
ledger's own item format, many more than the caller's."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from jit_broker import naming, runtime
from jit_broker.adapters.ledger import _to_item
from jit_broker.models.domain import Grant, GrantMode, GrantStatus
from tests.conftest import (
    ACCOUNT,
    EXAMPLE_POLICY,
    FROZEN_AT,
    JIT_USER,
    LambdaContext,
    Stack,
    api_event,
    grant_body,
    moto_stack,
    owner_of,
)

# Times are compared with what the broker computes from its clock: one frozen test clock.
pytestmark = pytest.mark.usefixtures("frozen_clock")
ADMIN = f"arn:aws:iam::{ACCOUNT}:user/JITAdmin"
OWNER = owner_of(JIT_USER)
OTHERS = 10  # other people...
GRANTS_EACH = 20  # ...with this many live grants each: 200 items the caller must not pay for
MOST_READ = 100  # the largest Limit a request route may ask for
# Operations that read without a key: never on a request route.
UNKEYED_READS = {"Scan", "ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"}
# What tests/conftest.py's autouse fixture sets for each test, for the class's one stack.
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_SERVICE_NAME": "jit-broker",
    "POWERTOOLS_METRICS_NAMESPACE": "JitBroker",
}
FAST = {
    "description": "Read example-bucket, fast",
    "mode": "shared-role",
    "permissions": {
        "inline": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadObjects",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject"],
                    "Resource": "arn:aws:s3:::example-bucket/*",
                }
            ],
        }
    },
    "requesters": {"users": [JIT_USER]},
}


class Answers:
    """Each Query's answer as the client parsed it (operation, Count, ScannedCount)."""

    def __init__(self, client: Any) -> None:
        self.queries: list[dict[str, Any]] = []
        client.meta.events.register("after-call.dynamodb.Query", self._record)

    def _record(self, parsed: dict[str, Any], **_: Any) -> None:
        self.queries.append(parsed)

    def scanned(self) -> list[int]:
        return [int(answer["ScannedCount"]) for answer in self.queries]

    def clear(self) -> None:
        self.queries.clear()


@pytest.fixture
def answers(stack: Stack) -> Answers:
    return Answers(stack.dynamodb)


def _api(handler: Any) -> Any:
    """api(method, path, body=None, query=None, user_arn=...) -> (status, json body)."""

    def _call(
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        **kw: Any,
    ) -> tuple[int, Any]:
        event = api_event(method, path, body, **kw)
        if query:
            event["queryStringParameters"] = query
            event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
        response = handler.lambda_handler(event, LambdaContext())
        return response["statusCode"], json.loads(response.get("body") or "null")

    return _call


@pytest.fixture
def api(handler: Any) -> Any:
    return _api(handler)


def _with_fast_profile(stack: Stack) -> None:
    document = yaml.safe_load(EXAMPLE_POLICY.read_text())
    document["profiles"]["s3-read"]["max_active_grants"] = None
    document["profiles"]["s3-fast"] = FAST
    stack.policy_file.write_text(yaml.safe_dump(document))


def _grant(owner: str, *, created_at: int, window: int, status: GrantStatus) -> Grant:
    gid = naming.new_grant_id()
    arn = owner.split("|", 1)[0]
    return Grant(
        grant_id=gid,
        profile="s3-read",
        requester_id=arn,
        requester_arn=arn,
        owner=owner,
        account_id=ACCOUNT,
        source_identity=arn.rsplit("/", 1)[-1],
        reason="filler",
        status=status,
        created_at=created_at,
        expires_at=created_at + window,
        role_name=naming.role_name_for(gid),
        target_account=ACCOUNT,
        mode=GrantMode.PER_GRANT_ROLE,
    )


def _write(stack: Stack, grants: list[Grant]) -> None:
    """The grants' items as the ledger writes them, 25 to a batch."""
    items = [_to_item(grant) for grant in grants]
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        out = stack.dynamodb.batch_write_item(RequestItems={stack.seeded.table_name: batch})
        assert not out.get("UnprocessedItems")


def _others_live_grants(stack: Stack, now: int, people: int = OTHERS) -> None:
    """``people`` other people with GRANTS_EACH active grants each, made in the last minutes."""
    _write(
        stack,
        [
            _grant(
                owner_of(f"arn:aws:iam::{ACCOUNT}:user/Other{person:03d}"),
                created_at=now - 60 - k,
                window=3600,
                status=GrantStatus.ACTIVE,
            )
            for person in range(people)
            for k in range(GRANTS_EACH)
        ],
    )


@pytest.fixture(scope="class")
def routes_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, Answers]]:
    """The spies hold only what the routes did (the table's filling is cleared)."""
    import time_machine

    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_ENV.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        handler = request.getfixturevalue("handler")
        with (
            time_machine.travel(FROZEN_AT, tick=False),
            moto_stack(tmp_path_factory.mktemp("routes")) as stack,
        ):
            api = _api(handler)
            answers = Answers(stack.dynamodb)
            _with_fast_profile(stack)
            _others_live_grants(stack, int(time.time()))
            stack.calls.clear()
            answers.clear()
            assert api("GET", "/v1/whoami")[0] == 200
            assert api("GET", "/v1/profiles")[0] == 200
            status, made = api("POST", "/v1/grants", grant_body())
            assert status == 201, made
            status, fast = api("POST", "/v1/grants", grant_body(profile="s3-fast"))
            assert status == 201, fast
            gid, fast_id = made["grant"]["id"], fast["grant"]["id"]
            assert api("GET", "/v1/grants")[0] == 200
            assert api("GET", "/v1/grants", query={"status": "active"})[0] == 200
            assert api("GET", f"/v1/grants/{gid}")[0] == 200
            status, issued = api(
                "POST", f"/v1/grants/{gid}/credentials", {"nonce": "n-" + "a" * 20}
            )
            assert status == 201, issued
            assert api("POST", f"/v1/grants/{gid}/revoke", {})[0] == 200
            assert api("POST", f"/v1/grants/{fast_id}/revoke", {})[0] == 200
            yield stack, answers


class TestEveryRequestRoute:
    """Every request route of the API, run once by the caller over a table holding 200 live
    grants of other people (once for the class: moto's transactions slow down as the table
    grows, and these tests only read the spies)."""

    def test_no_request_route_reads_the_table_without_a_key(
        self, routes_run: tuple[Stack, Answers]
    ) -> None:
        stack, _ = routes_run
        operations = stack.calls.operations()
        assert {"Query", "GetItem", "TransactWriteItems"} <= set(operations)  # the routes ran
        assert UNKEYED_READS.isdisjoint(operations), operations

    def test_every_query_of_a_request_route_is_the_callers_own_partition_with_a_limit(
        self, routes_run: tuple[Stack, Answers]
    ) -> None:
        stack, _ = routes_run
        queries = stack.calls.named("Query")
        assert len(queries) == 2  # GET /v1/grants and its active view
        for query in queries:
            assert query["IndexName"] == "by_requester"
            assert query["KeyConditionExpression"].split(" AND ")[0] == "gsi1pk = :o"
            assert query["ExpressionAttributeValues"][":o"] == {"S": f"OWNER#{OWNER}"}
            assert 0 < query["Limit"] <= MOST_READ

    def test_request_routes_read_none_of_the_items_of_other_people(
        self, routes_run: tuple[Stack, Answers]
    ) -> None:
        _, answers = routes_run
        owners = {item["owner"]["S"] for answer in answers.queries for item in answer["Items"]}
        assert owners == {OWNER}
        assert answers.scanned() == [2, 2]  # the caller's two grants, each time; never the 200


def test_my_grants_costs_the_same_whatever_the_rest_of_the_table_holds(
    stack: Stack, api: Any, answers: Answers
) -> None:
    now = int(time.time())
    _write(
        stack,
        [
            _grant(OWNER, created_at=now - 86400 * k, window=1800, status=GrantStatus.EXPIRED)
            for k in range(1, 4)
        ],
    )
    status, alone = api("GET", "/v1/grants")
    assert status == 200
    read_alone = answers.scanned()

    _others_live_grants(stack, now)
    answers.clear()
    status, crowded = api("GET", "/v1/grants")

    assert status == 200 and crowded == alone
    assert answers.scanned() == read_alone == [3]
    assert len(stack.grant_items()) == 3 + OTHERS * GRANTS_EACH


def test_active_grants_read_only_the_callers_grants_of_the_longest_window(
    stack: Stack, api: Any, answers: Answers
) -> None:
    now = int(time.time())
    old = [
        _grant(
            OWNER,
            created_at=now - naming.MAX_WINDOW_SECONDS - 3600 * k,
            window=3600,
            status=GrantStatus.EXPIRED,
        )
        for k in range(1, 31)
    ]
    live = _grant(OWNER, created_at=now - 120, window=3600, status=GrantStatus.ACTIVE)
    revoked = _grant(OWNER, created_at=now - 60, window=3600, status=GrantStatus.REVOKED)
    ended = _grant(OWNER, created_at=now - 7200, window=3600, status=GrantStatus.ACTIVE)
    _write(stack, [*old, live, revoked, ended])
    _others_live_grants(stack, now)
    stack.calls.clear()

    status, body = api("GET", "/v1/grants", query={"status": "active"})

    assert status == 200, body
    assert [g["id"] for g in body["grants"]] == [live.grant_id]
    (query,) = stack.calls.named("Query")
    assert query["KeyConditionExpression"] == "gsi1pk = :o AND gsi1sk >= :since"
    assert query["ExpressionAttributeValues"][":since"] == {
        "S": f"{now - naming.MAX_WINDOW_SECONDS:012d}"
    }
    assert answers.scanned() == [3]  # live, revoked and ended: not the 30 old, not the 200


def test_the_active_view_refuses_any_other_status_with_400(stack: Stack, api: Any) -> None:
    status, body = api("GET", "/v1/grants", query={"status": "revoked"})

    assert status == 400
    assert body["error"]["code"] == "bad_request"
    assert "status" in body["error"]["message"]
    assert stack.calls.named("Query") == []


def test_the_audit_route_reads_the_ledger_by_index_and_key_only(stack: Stack, api: Any) -> None:
    from jit_broker.adapters.policy_source import load_policy
    from jit_broker.audit import AuditGate
    from jit_broker.models.audit import AuditReport, AuditRequest
    from jit_broker.settings import Settings
    from tests.integration.cleanup_support import make_auditor

    auditor = make_auditor(stack)

    def runner(request: AuditRequest, requested_by: str) -> AuditReport:
        return auditor.run(dry_run=request.dry_run)

    runtime.set_audit_gate(
        AuditGate(
            settings=Settings.from_env(stack.seeded.broker_env(str(stack.policy_file))),
            policy=lambda: load_policy(path=str(stack.policy_file)),
            runner=runner,
        )
    )
    _others_live_grants(stack, int(time.time()), people=2)  # the sweep reads every one
    stack.calls.clear()
    try:
        status, body = api("POST", "/v1/audit", {"dry_run": True}, user_arn=ADMIN)
    finally:
        runtime.set_audit_gate(None)

    assert status == 200, body
    operations = stack.calls.operations()
    assert "Query" in operations
    assert UNKEYED_READS.isdisjoint(operations), operations
    for query in stack.calls.named("Query"):
        if "IndexName" in query:
            assert query["KeyConditionExpression"].startswith("gsi")
        else:  # the base table: one partition of its own, by key (break-glass reviews due)
            assert query["KeyConditionExpression"].startswith("pk = :p AND sk")
            assert query["ExpressionAttributeValues"][":p"]["S"] in ("BREAKGLASS",), query
