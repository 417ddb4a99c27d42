"""Real concurrency on the local stack: the gateway runs the broker's handler in 4 worker
processes at once (as Lambda runs many environments), all against the one embedded AWS.
200 signed grant requests from 20 requesters, all in flight together, leave the ledger and
IAM agreeing exactly: no error beyond the configured limits, no grant sharing a role or a
nonce, one active ledger grant per /jit/ role and one role per active grant, and the role
quota counter equal to the roles that exist. The workers keep the stack's clock (shifted
here) and reach the stack's auditor. (Speed figures are in bench/load.py.)"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from boto3.dynamodb.types import TypeDeserializer

from jit_local.seed import ROLE_PATH
from jit_local.server import ADMIN, EXAMPLE_POLICY, LocalStack

ACCOUNT = "123456789012"
REQUESTERS = tuple(f"LoadUser{i:02d}" for i in range(20))
PER_REQUESTER = 10
MAX_ACTIVE = 5  # each requester asks for twice what the profile allows
WORKERS = 4
# Requests in flight at once. The embedded AWS answers one request at a time, so more in
# flight only queue longer at the gateway, against its 29 s timeout.
IN_FLIGHT = len(REQUESTERS)
PROFILE = "s3-read"
SHIFT = 120.0  # the stack's clock runs this far ahead of the machine's


def load_policy(folder: Path) -> Path:
    """The example policy with the load's requesters on s3-read, five active grants each."""
    policy = yaml.safe_load(EXAMPLE_POLICY.read_text())
    profile = policy["profiles"][PROFILE]
    profile["requesters"] = {"users": [f"arn:aws:iam::{ACCOUNT}:user/{u}" for u in REQUESTERS]}
    profile["max_active_grants"] = MAX_ACTIVE
    # The requests of one requester all fit in a minute: the per-slot cap is what refuses.
    policy.setdefault("limits", {})["requests_per_minute"] = PER_REQUESTER
    path = folder / "load-policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A 4-worker stack, after 200 grant requests sent at once:
    (stack, [(user, status, body)], machine time when the load began)."""
    stack = LocalStack(
        port=0,
        clock=lambda: time.time() + SHIFT,
        policy_file=load_policy(tmp_path_factory.mktemp("load")),
        audit_interval=0,
        workers=WORKERS,
        extra_users=REQUESTERS,
    ).start()
    try:

        def request(user: str) -> tuple[str, int, Any]:
            body = {
                "profile": PROFILE,
                "duration": 900,
                "reason": "load test",
                "nonce": uuid.uuid4().hex,
            }
            status, answer = stack.call("POST", "/v1/grants", body, user=user)
            return user, status, answer

        users = [user for _ in range(PER_REQUESTER) for user in REQUESTERS]
        random.Random(4).shuffle(users)  # a requester's requests overlap each other's too
        began = time.time()
        with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
            results = list(pool.map(request, users))
        yield stack, results, began
    finally:
        stack.stop()


def granted(results: list[tuple[str, int, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(user, answer["grant"]) for user, status, answer in results if status == 201]


def table_items(stack: LocalStack) -> list[dict[str, Any]]:
    dynamodb = stack.client("dynamodb", stack.keys[ADMIN])
    table = dynamodb.list_tables()["TableNames"][0]
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(page["Items"])
    plain = TypeDeserializer()
    return [{k: plain.deserialize(v) for k, v in item.items()} for item in items]


def jit_roles(stack: LocalStack) -> list[dict[str, Any]]:
    iam = stack.client("iam", stack.keys[ADMIN])
    roles: list[dict[str, Any]] = []
    for page in iam.get_paginator("list_roles").paginate(PathPrefix=ROLE_PATH):
        roles.extend(r for r in page["Roles"] if r["Path"] == ROLE_PATH)
    return roles


def test_every_answer_is_a_grant_or_a_configured_limit_refusal(loaded: Any) -> None:
    _, results, _ = loaded
    assert len(results) == len(REQUESTERS) * PER_REQUESTER
    statuses = Counter(status for _, status, _ in results)
    assert set(statuses) <= {201, 429}, statuses
    for _, status, answer in results:
        if status == 429:
            assert set(answer) == {"error"}
            assert answer["error"]["code"] == "too_many_requests"
            assert isinstance(answer["error"]["message"], str) and answer["error"]["message"]


def test_each_requester_gets_a_grant_and_none_more_than_the_profile_allows(loaded: Any) -> None:
    _, results, _ = loaded
    per_user = Counter(user for user, _ in granted(results))
    assert set(per_user) == set(REQUESTERS)  # nobody was starved by the others
    assert max(per_user.values()) <= MAX_ACTIVE


def test_no_two_grants_share_an_id_a_role_or_a_nonce(loaded: Any) -> None:
    stack, results, _ = loaded
    grants = [grant for _, grant in granted(results)]
    assert len({g["id"] for g in grants}) == len(grants)
    assert len({g["role_arn"] for g in grants}) == len(grants)
    items = table_items(stack)
    nonces = [item["pk"] for item in items if item["sk"] == "NONCE"]
    # One nonce recorded per grant opened (a refused request writes none), none twice.
    assert len(nonces) == len(set(nonces)) == len(grants)


def test_ledger_holds_exactly_the_granted_requests_all_active(loaded: Any) -> None:
    stack, results, _ = loaded
    answered = {grant["id"]: grant for _, grant in granted(results)}
    ledger = {item["grant_id"]: item for item in table_items(stack) if item["sk"] == "GRANT"}
    assert set(ledger) == set(answered)
    assert {item["status"] for item in ledger.values()} == {"active"}
    assert all(ledger[g]["role_arn"] == answered[g]["role_arn"] for g in answered)


def test_every_jit_role_has_exactly_one_active_grant_and_each_grant_one_role(loaded: Any) -> None:
    stack, _, _ = loaded
    active = [
        item for item in table_items(stack) if item["sk"] == "GRANT" and item["status"] == "active"
    ]
    roles = Counter(role["Arn"] for role in jit_roles(stack))
    held = Counter(item["role_arn"] for item in active)
    assert max(roles.values()) == 1 and max(held.values()) == 1
    assert set(roles) == set(held)


def test_role_quota_counter_equals_the_live_roles(loaded: Any) -> None:
    stack, _, _ = loaded
    quota = next(
        item for item in table_items(stack) if item["pk"] == "QUOTA#roles" and item["sk"] == "QUOTA"
    )
    assert quota["live_roles"] == len(jit_roles(stack))


def test_each_held_slot_belongs_to_one_active_grant_of_its_requester(loaded: Any) -> None:
    stack, results, _ = loaded
    items = table_items(stack)
    active = {item["grant_id"] for item in items if item["sk"] == "GRANT"}
    slots = [item for item in items if item["sk"] == "SLOT"]
    assert Counter(slot["grant_id"] for slot in slots) == Counter(active)
    assert len(slots) == len(granted(results))


def test_workers_date_grants_by_the_stack_clock_not_the_machines(loaded: Any) -> None:
    _, results, began = loaded
    created = [grant["created_at"] for _, grant in granted(results)]
    # Dated by the stack's clock, SHIFT (120 s) ahead, not the machine's: a worker on the
    # machine's clock would date them about 118 s earlier. Under `make test-future` every
    # process starts its own moved clock, and those agree to about a second, not exactly.
    assert min(created) >= int(began + SHIFT) - 2


def test_audit_route_in_a_worker_runs_the_stacks_auditor_for_administrators_only(
    loaded: Any,
) -> None:
    stack, _, _ = loaded
    status, body = stack.call("POST", "/v1/audit", {"dry_run": True}, user=ADMIN)
    assert status == 200 and set(body) == {"report"}

    status, body = stack.call("POST", "/v1/audit", {"dry_run": True}, user=REQUESTERS[0])
    assert status == 403 and body["error"]["code"] == "not_entitled"
