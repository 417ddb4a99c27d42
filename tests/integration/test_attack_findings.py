"""The findings of the attack on the local stack (THREATS.md 27-29, 33 and the session
route), each proven at the handler against moto with the exact calls the broker makes.

Callers are given as API Gateway reports them: ``userArn`` and the unique id ``caller``
(``AIDA…`` for users, ``AROA…:SESSION`` for role sessions)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from jit_broker import naming
from tests.conftest import ACCOUNT, JIT_USER, OTHER_USER, build_broker, grant_body, owner_of

SSO_ROLE = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Dev_0a1b2c"
ALICE = f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Dev_0a1b2c/alice@example.com"
BOB = f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Dev_0a1b2c/bob@example.com"
ADMIN = f"arn:aws:iam::{ACCOUNT}:user/JITAdmin"
MINTING = ("CreateRole", "PutRolePolicy", "AssumeRole", "TransactWriteItems")


def nonce(label: str) -> str:
    """A valid client nonce (16..64 of [A-Za-z0-9_-]) that says which request it is."""
    return f"nonce-{label}-0000000000000000"


def edit_policy(stack: Any, change: Any) -> None:
    policy = yaml.safe_load(stack.policy_file.read_text())
    change(policy)
    stack.policy_file.write_text(yaml.safe_dump(policy))


def open_s3_read_to(stack: Any, *, users: list[str] = (), roles: list[str] = ()) -> None:
    def change(policy: dict[str, Any]) -> None:
        requesters = policy["profiles"]["s3-read"]["requesters"]
        requesters["users"] = [*requesters.get("users", []), *users]
        requesters["roles"] = [*requesters.get("roles", []), *roles]
        policy["profiles"]["s3-read"]["max_active_grants"] = None

    edit_policy(stack, change)


def rebuild(stack: Any, **env: str) -> None:
    """The handler's broker with other settings (the stack's clients, still spied on)."""
    from jit_broker import runtime

    clients = {"iam": stack.iam, "sts": stack.sts, "dynamodb": stack.dynamodb}
    runtime.set_broker(build_broker(clients, stack.seeded, stack.policy_file, env=env))


def routes(grant_id: str) -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/v1/whoami", None),
        ("GET", "/v1/profiles", None),
        ("GET", "/v1/grants", None),
        ("GET", f"/v1/grants/{grant_id}", None),
        ("POST", "/v1/grants", grant_body()),
        ("POST", f"/v1/grants/{grant_id}/credentials", {"nonce": nonce(grant_id)}),
        ("POST", f"/v1/grants/{grant_id}/revoke", {}),
        ("POST", "/v1/audit", {"dry_run": True}),
        ("GET", "/v1/openapi.json", None),
    ]


# ------------------------------------------------------------------ threat 27: chaining


def jit_session_arn(grant_id: str) -> str:
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{naming.role_name_for(grant_id)}/jit-JITUser"


def test_threat27_a_grants_own_session_is_refused_on_every_route(stack: Any, call: Any) -> None:
    status, _, first = call("POST", "/v1/grants", grant_body())
    assert status == 201, first
    gid = first["grant"]["id"]
    session_caller = jit_session_arn(gid)
    stack.calls.clear()
    for method, path, body in routes(gid):
        status, _, answer = call(method, path, body, user_arn=session_caller)
        assert status == 403, (method, path, answer)
        assert answer["error"]["code"] == "broker_session_refused", (method, path)
        assert "own credentials" in answer["error"]["message"]
    assert [op for op in stack.calls.operations() if op in MINTING] == []


@pytest.mark.parametrize("role", ["broker", "auditor"])
def test_threat27_the_brokers_and_auditors_own_roles_are_refused(
    stack: Any, call: Any, role: str
) -> None:
    arn = stack.seeded.broker_role_arn if role == "broker" else stack.seeded.cleanup_role_arn
    assert arn, "the seeded stack names both roles"
    caller = f"arn:aws:sts::{ACCOUNT}:assumed-role/{arn.rsplit('/', 1)[-1]}/session"
    for method, path, body in routes(naming.new_grant_id()):
        status, _, answer = call(method, path, body, user_arn=caller)
        assert (status, answer["error"]["code"]) == (403, "broker_session_refused"), path


def test_threat27_a_role_merely_named_like_jit_is_judged_as_any_caller(
    stack: Any, call: Any
) -> None:
    """Only the broker's exact grant-role names are refused: a team role called jit-team is
    an ordinary caller (here: entitled to nothing, so an empty list, not a refusal)."""
    caller = f"arn:aws:sts::{ACCOUNT}:assumed-role/jit-team/alice"
    status, _, body = call("GET", "/v1/profiles", user_arn=caller)
    assert (status, body) == (200, {"profiles": []})


# ------------------------------------------------------------------ threat 28: the person


def test_threat28_grants_of_a_shared_role_belong_to_the_person(stack: Any, call: Any) -> None:
    open_s3_read_to(stack, roles=[SSO_ROLE])
    status, _, first = call("POST", "/v1/grants", grant_body(), user_arn=ALICE)
    assert status == 201, first
    gid = first["grant"]["id"]

    # entitlement is the role's: bob may request a grant of his own ...
    assert [p["name"] for p in call("GET", "/v1/profiles", user_arn=BOB)[2]["profiles"]] == [
        "s3-read"
    ]
    # ... but alice's grant is not his: not listed, not found, no session, no revocation
    assert call("GET", "/v1/grants", user_arn=BOB)[2] == {"grants": []}
    stack.calls.clear()
    for method, path, body in [
        ("GET", f"/v1/grants/{gid}", None),
        ("POST", f"/v1/grants/{gid}/credentials", {"nonce": nonce("bob-1")}),
        ("POST", f"/v1/grants/{gid}/revoke", {}),
    ]:
        status, _, answer = call(method, path, body, user_arn=BOB)
        assert (status, answer["error"]["code"]) == (404, "not_found"), path
    assert stack.calls.named("AssumeRole") == [] and stack.calls.named("PutRolePolicy") == []
    assert [g["id"] for g in call("GET", "/v1/grants", user_arn=ALICE)[2]["grants"]] == [gid]


def test_threat28_each_session_names_the_caller_of_that_request(stack: Any, call: Any) -> None:
    open_s3_read_to(stack, roles=[SSO_ROLE])
    _, _, bobs = call("POST", "/v1/grants", grant_body(), user_arn=BOB)
    _, _, alices = call("POST", "/v1/grants", grant_body(), user_arn=ALICE)
    # What the grant's record holds is not what names a session: the caller of the request is.
    stack.dynamodb.update_item(
        TableName=stack.seeded.table_name,
        Key={"pk": {"S": f"GRANT#{alices['grant']['id']}"}, "sk": {"S": "GRANT"}},
        UpdateExpression="SET source_identity = :other",
        ExpressionAttributeValues={":other": {"S": "someone-else"}},
    )
    stack.calls.clear()
    status, _, body = call(
        "POST",
        f"/v1/grants/{alices['grant']['id']}/credentials",
        {"nonce": nonce("alice-2")},
        user_arn=ALICE,
    )
    assert status == 201, body
    (assume,) = stack.calls.named("AssumeRole")
    alice = naming.sts_name("AWSReservedSSO_Dev_0a1b2c@alice@example.com")
    assert "@alice@example.com" in alice and "bob" not in alice
    assert assume["SourceIdentity"] == alice
    assert assume["RoleSessionName"] == naming.sts_name(f"jit-{alice}")
    tags = {t["Key"]: t["Value"] for t in assume["Tags"]}
    assert tags["jit:requester"] == ALICE
    assert tags["jit:grant-id"] == alices["grant"]["id"] != bobs["grant"]["id"]


def test_threat28_the_ledger_keys_grants_limits_and_nonces_on_the_exact_caller(
    stack: Any, call: Any
) -> None:
    open_s3_read_to(stack, roles=[SSO_ROLE])
    stack.calls.clear()
    assert call("POST", "/v1/grants", grant_body(nonce=nonce("shared")), user_arn=ALICE)[0] == 201
    # the same nonce from another person is no replay of alice's request
    assert call("POST", "/v1/grants", grant_body(nonce=nonce("shared")), user_arn=BOB)[0] == 201
    alice_items = stack.calls.named("TransactWriteItems")[0]["TransactItems"]
    keys = [pk_of(item) for item in alice_items]
    owner = owner_of(ALICE)
    assert f"NONCE#{owner}#{nonce('shared')}" in keys
    assert any(k.startswith(f"RATE#{owner}#") for k in keys)
    assert f"QUOTA#owner#{owner}" in keys
    grant_item = alice_items[1]["Put"]["Item"]
    assert grant_item["gsi1pk"] == {"S": f"OWNER#{owner}"}
    assert grant_item["requester_id"] == {
        "S": SSO_ROLE.replace("/aws-reserved/sso.amazonaws.com", "")
    }


def pk_of(transact_item: dict[str, Any]) -> str:
    (operation,) = transact_item.values()
    return str((operation.get("Key") or operation["Item"])["pk"]["S"])


# ------------------------------------------------------------------ threat 33: unique id


def test_threat33_a_principal_recreated_under_the_same_arn_owns_none_of_the_old_grants(
    stack: Any, call: Any
) -> None:
    _, _, first = call("POST", "/v1/grants", grant_body())
    gid = first["grant"]["id"]
    reborn = {"user_arn": JIT_USER, "unique_id": "AIDANEWPRINCIPAL00001"}
    assert call("GET", "/v1/grants", **reborn)[2] == {"grants": []}
    for method, path, body in [
        ("GET", f"/v1/grants/{gid}", None),
        ("POST", f"/v1/grants/{gid}/credentials", {"nonce": nonce("reborn")}),
        ("POST", f"/v1/grants/{gid}/revoke", {}),
    ]:
        status, _, answer = call(method, path, body, **reborn)
        assert (status, answer["error"]["code"]) == (404, "not_found"), path
    # the original principal still has it
    assert call("GET", f"/v1/grants/{gid}")[0] == 200


# ------------------------------------------------------------------ threat 29: starving


def test_threat29_a_request_revoke_loop_holds_no_capacity_and_others_still_get_grants(
    stack: Any, call: Any
) -> None:
    open_s3_read_to(stack, users=[OTHER_USER])
    edit_policy(stack, lambda p: p["limits"].update(requests_per_minute=100))
    rebuild(stack, JIT_MAX_ROLES="3")
    for _ in range(8):  # well past the stack's cap of 3 live roles
        status, _, body = call("POST", "/v1/grants", grant_body())
        assert status == 201, body
        gid = body["grant"]["id"]
        status, _, body = call("POST", f"/v1/grants/{gid}/revoke", {})
        assert status == 200 and body["grant"]["status"] == "revoked"
    assert stack.jit_roles() == []  # every revoked role was torn down at once
    status, _, body = call("POST", "/v1/grants", grant_body(), user_arn=OTHER_USER)
    assert status == 201, body


def test_threat29_revocation_tears_the_role_down_deny_first_and_deny_last(
    stack: Any, call: Any
) -> None:
    _, _, first = call("POST", "/v1/grants", grant_body())
    gid = first["grant"]["id"]
    role = naming.role_name_for(gid)
    stack.calls.clear()
    call("POST", f"/v1/grants/{gid}/revoke", {})
    iam_writes = [
        (op, p.get("PolicyName"))
        for op, p in stack.calls.calls
        if op in ("PutRolePolicy", "DeleteRolePolicy", "DetachRolePolicy", "DeleteRole")
        and p.get("RoleName") == role
    ]
    assert iam_writes == [
        ("PutRolePolicy", "jit-revoked"),
        ("DeleteRolePolicy", "jit-grant"),
        ("DeleteRolePolicy", "jit-revoked"),
        ("DeleteRole", None),
    ]
    quota = stack.dynamodb.get_item(
        TableName=stack.seeded.table_name, Key={"pk": {"S": "QUOTA#roles"}, "sk": {"S": "QUOTA"}}
    )["Item"]
    assert quota["live_roles"] == {"N": "0"}
    (item,) = stack.grant_items()
    assert item["status"] == {"S": "revoked"} and "role_removed_at" in item


def test_threat29_one_owner_is_capped_before_the_stack_is(stack: Any, call: Any) -> None:
    open_s3_read_to(stack, users=[OTHER_USER])
    rebuild(stack, JIT_MAX_ROLES="5", JIT_MAX_ROLES_PER_OWNER="2")
    assert call("POST", "/v1/grants", grant_body())[0] == 201
    assert call("POST", "/v1/grants", grant_body())[0] == 201
    stack.calls.clear()
    status, _, body = call("POST", "/v1/grants", grant_body())
    assert status == 429 and "you hold 2 live grant roles" in body["error"]["message"]
    assert stack.calls.named("CreateRole") == []
    assert call("POST", "/v1/grants", grant_body(), user_arn=OTHER_USER)[0] == 201


# ------------------------------------------------------------------ the session route


@pytest.mark.usefixtures("frozen_clock")  # the limit is per minute: no minute may roll over
def test_session_requests_are_rate_limited_before_sts(stack: Any, call: Any) -> None:
    edit_policy(stack, lambda p: p["limits"].update(requests_per_minute=3))
    _, _, first = call("POST", "/v1/grants", grant_body())
    gid = first["grant"]["id"]
    for n in range(2):
        status, _, body = call("POST", f"/v1/grants/{gid}/credentials", {"nonce": nonce(f"s{n}")})
        assert status == 201, body
    stack.calls.clear()
    status, _, body = call("POST", f"/v1/grants/{gid}/credentials", {"nonce": nonce("s3")})
    assert status == 429 and body["error"]["code"] == "too_many_requests"
    assert stack.calls.named("AssumeRole") == []


def test_a_replayed_session_request_never_reaches_sts(stack: Any, call: Any) -> None:
    _, _, first = call("POST", "/v1/grants", grant_body())
    gid = first["grant"]["id"]
    assert call("POST", f"/v1/grants/{gid}/credentials", {"nonce": nonce("once")})[0] == 201
    stack.calls.clear()
    status, _, body = call("POST", f"/v1/grants/{gid}/credentials", {"nonce": nonce("once")})
    assert status == 409 and body["error"]["code"] == "replayed_request"
    assert stack.calls.named("AssumeRole") == []


def test_every_session_the_broker_takes_is_in_the_ledger(stack: Any, call: Any) -> None:
    """No STS session without its ledger record (the ledger holds each access key id)."""
    _, _, first = call("POST", "/v1/grants", grant_body())
    gid = first["grant"]["id"]
    call("POST", f"/v1/grants/{gid}/credentials", {"nonce": nonce("a")})
    call("POST", f"/v1/grants/{gid}/credentials", {"nonce": nonce("a")})  # replay: refused
    call("POST", f"/v1/grants/{gid}/credentials", {"nonce": nonce("b")})
    sessions = {
        i["access_key_id"]["S"] for i in stack.table_items() if i["sk"]["S"].startswith("SESSION#")
    }
    assert len(sessions) == 3  # the grant's first session and two further ones


def test_an_administrator_may_revoke_but_not_take_sessions_of_anothers_grant(
    stack: Any, call: Any
) -> None:
    _, _, first = call("POST", "/v1/grants", grant_body())
    gid = first["grant"]["id"]
    status, _, body = call(
        "POST", f"/v1/grants/{gid}/credentials", {"nonce": nonce("x")}, user_arn=ADMIN
    )
    assert status == 403 and body["error"]["code"] == "not_entitled"
    assert call("POST", f"/v1/grants/{gid}/revoke", {}, user_arn=ADMIN)[0] == 200


def test_revoking_a_revoked_grant_whose_role_is_gone_answers_200_and_writes_nothing(
    stack: Any, call: Any
) -> None:
    _, _, first = call("POST", "/v1/grants", grant_body())
    gid = first["grant"]["id"]
    assert call("POST", f"/v1/grants/{gid}/revoke", {})[0] == 200
    stack.calls.clear()
    status, _, body = call("POST", f"/v1/grants/{gid}/revoke", {})
    assert status == 200 and body["grant"]["status"] == "revoked"
    assert [op for op in stack.calls.operations() if op[0].isupper() and "Role" in op] == []
