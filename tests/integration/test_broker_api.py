"""The broker handler under moto, driven by the events in events/.

moto checks almost nothing of what STS and IAM are sent, so every test that creates a role
or a session asserts the exact parameters and documents through the client spy."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest

from jit_local.seed import ROLE_PATH
from tests.conftest import ACCOUNT, JIT_USER, OTHER_USER, grant_body

EXAMPLE_STATEMENTS = [
    {
        "Sid": "ListBucket",
        "Effect": "Allow",
        "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
        "Resource": "arn:aws:s3:::example-bucket",
    },
    {
        "Sid": "ReadObjects",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:GetObjectVersion"],
        "Resource": "arn:aws:s3:::example-bucket/*",
    },
]


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def digest_of(policy_document: str) -> str:
    """sha256 of the document's compact JSON with sorted keys, computed here independently."""
    text = json.dumps(json.loads(policy_document), separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def test_whoami_reports_the_identity_api_gateway_verified(stack: Any, call: Any) -> None:
    status, _, body = call("GET", "/v1/whoami")
    assert status == 200
    assert body == {
        "arn": JIT_USER,
        "requester_id": JIT_USER,
        "account_id": ACCOUNT,
        "principal_type": "user",
        "name": "JITUser",
    }


def test_identity_in_body_or_headers_is_ignored(stack: Any, call: Any) -> None:
    forged = {
        "X-Forwarded-For": "10.0.0.1",
        "x-amz-user-arn": JIT_USER,
        "x-jit-requester": JIT_USER,
    }
    status, _, body = call("GET", "/v1/profiles", user_arn=OTHER_USER, headers=forged)
    assert status == 200 and body == {"profiles": []}
    status, _, body = call(
        "POST", "/v1/grants", {**grant_body(), "requester": JIT_USER}, user_arn=OTHER_USER
    )
    assert status == 400 and "requester: unknown field" in body["error"]["message"]
    assert stack.calls.named("CreateRole") == []


def test_null_identity_is_refused(stack: Any, call: Any) -> None:
    status, _, body = call("GET", "/v1/whoami", user_arn=None, base="null-identity.json")
    assert status == 403
    assert body["error"]["code"] == "not_authenticated"


def test_profiles_lists_only_what_the_caller_may_request(stack: Any, call: Any) -> None:
    status, _, body = call("GET", "/v1/profiles")
    assert status == 200
    assert body == {
        "profiles": [
            {
                "name": "s3-read",
                "description": "Read-only access to example-bucket",
                "max_window": 3600,
                "max_session": 3600,
                "reason_required": True,
                "ticket_pattern": None,
                "accounts": [ACCOUNT],
                "mode": "per-grant-role",
                "break_glass": False,
            }
        ]
    }


def test_grant_creates_the_exact_role_and_session(stack: Any, call: Any) -> None:
    before = int(time.time())
    status, headers, body = call("POST", "/v1/grants", grant_body(duration=1800))
    after = int(time.time())
    assert status == 201, body
    assert headers["cache-control"] == "no-store"
    grant, creds = body["grant"], body["credentials"]
    gid = grant["id"]
    assert grant["status"] == "active" and grant["profile"] == "s3-read"
    assert before + 1800 <= grant["expires_at"] <= after + 1800
    expires = grant["expires_at"]
    role_name = f"jit-{gid}"

    (create,) = stack.calls.named("CreateRole")
    assert create == {
        "Path": ROLE_PATH,  # the stack's own: /jit/<stack>/
        "RoleName": role_name,
        "AssumeRolePolicyDocument": json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "BrokerOnlyWithSourceIdentity",
                        "Effect": "Allow",
                        "Principal": {"AWS": stack.seeded.broker_role_arn},
                        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
                        "Condition": {
                            "StringLike": {"sts:SourceIdentity": "?*"},
                            "DateLessThan": {"aws:CurrentTime": _iso(expires)},
                        },
                    }
                ],
            },
            separators=(",", ":"),
        ),
        "Description": f"JIT grant {gid} (s3-read)",
        "MaxSessionDuration": 3600,
        "PermissionsBoundary": stack.seeded.boundary_arn,
        "Tags": [
            {"Key": "jit:grant-id", "Value": gid},
            {"Key": "jit:requester", "Value": JIT_USER},
            {"Key": "jit:expires-at", "Value": str(expires)},
            {"Key": "jit:owner", "Value": "jit-broker-local"},
            {"Key": "jit:profile", "Value": "s3-read"},
        ],
    }
    (put,) = stack.calls.named("PutRolePolicy")
    assert put["RoleName"] == role_name and put["PolicyName"] == "jit-grant"
    assert json.loads(put["PolicyDocument"]) == {
        "Version": "2012-10-17",
        "Statement": [
            *EXAMPLE_STATEMENTS,
            {
                "Sid": "DenyAfterGrantExpiry",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateGreaterThan": {"aws:CurrentTime": _iso(expires)}},
            },
        ],
    }
    (assume,) = stack.calls.named("AssumeRole")
    assert assume == {
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role{ROLE_PATH}{role_name}",
        "RoleSessionName": "jit-JITUser",
        "SourceIdentity": "JITUser",
        "DurationSeconds": 1800,
        "Tags": [
            {"Key": "jit:grant-id", "Value": gid},
            {"Key": "jit:profile", "Value": "s3-read"},
            {"Key": "jit:requester", "Value": JIT_USER},
        ],
    }
    # the ledger: grant written before the role, session before the answer
    ops = stack.calls.operations()
    assert ops.index("TransactWriteItems") < ops.index("CreateRole") < ops.index("AssumeRole")
    assert ops[-1] == "TransactWriteItems"
    (item,) = stack.grant_items()
    assert item["status"]["S"] == "active"
    role = stack.iam.get_role(RoleName=role_name)["Role"]
    assert item["role_id"]["S"] == role["RoleId"]
    # what the role holds, recorded with the grant before the role existed (drift is judged on it)
    assert item["policy_sha256"] == {"S": digest_of(put["PolicyDocument"])}
    assert item["managed_policy_arns"] == {"L": []}
    (opened, *_) = stack.calls.named("TransactWriteItems")
    (grant_put,) = [
        i["Put"]["Item"]
        for i in opened["TransactItems"]
        if "Put" in i and "status" in i["Put"]["Item"]
    ]
    assert grant_put["status"] == {"S": "issuing"}
    assert grant_put["policy_sha256"] == item["policy_sha256"]
    assert grant_put["managed_policy_arns"] == {"L": []}
    sessions = [i for i in stack.table_items() if i["sk"]["S"].startswith("SESSION#")]
    assert [s["access_key_id"]["S"] for s in sessions] == [creds["access_key_id"]]
    dump = json.dumps(stack.table_items())
    assert creds["secret_access_key"] not in dump and creds["session_token"] not in dump


def test_session_duration_follows_the_window_left_and_the_profile(stack: Any, call: Any) -> None:
    status, _, _ = call("POST", "/v1/grants", grant_body(duration=3600))
    assert status == 201
    assert stack.calls.named("AssumeRole")[0]["DurationSeconds"] == 3600


def test_default_window_is_the_profile_maximum_capped_at_one_hour(stack: Any, call: Any) -> None:
    status, _, body = call("POST", "/v1/grants", grant_body(duration=...))
    assert status == 201
    assert body["grant"]["expires_at"] - body["grant"]["created_at"] == 3600


def test_fresh_session_inside_the_grant_and_replay_refused(stack: Any, call: Any) -> None:
    _, _, first = call("POST", "/v1/grants", grant_body())
    gid = first["grant"]["id"]
    nonce = "again-0123456789abcdef"
    status, headers, body = call("POST", f"/v1/grants/{gid}/credentials", {"nonce": nonce})
    assert status == 201 and headers["cache-control"] == "no-store"
    assert body["grant"]["sessions_issued"] == 2
    assert body["credentials"]["access_key_id"] != first["credentials"]["access_key_id"]
    status, _, body = call("POST", f"/v1/grants/{gid}/credentials", {"nonce": nonce})
    assert status == 409 and body["error"]["code"] == "replayed_request"
    assert "credentials" not in body
    sessions = [i for i in stack.table_items() if i["sk"]["S"].startswith("SESSION#")]
    assert len(sessions) == 2


def set_profile(stack: Any, **changes: Any) -> None:
    import yaml

    policy = yaml.safe_load(stack.policy_file.read_text())
    policy["profiles"]["s3-read"].update(changes)
    stack.policy_file.write_text(yaml.safe_dump(policy))


def test_replayed_grant_request_creates_no_second_role(stack: Any, call: Any) -> None:
    set_profile(stack, max_active_grants=5)
    body = grant_body()
    assert call("POST", "/v1/grants", body)[0] == 201
    status, _, answer = call("POST", "/v1/grants", body)
    assert status == 409 and answer["error"]["code"] == "replayed_request"
    assert len(stack.calls.named("CreateRole")) == 1


def test_revoke_writes_the_ledger_first_then_denies_everything(stack: Any, call: Any) -> None:
    _, _, first = call("POST", "/v1/grants", grant_body())
    gid = first["grant"]["id"]
    stack.calls.clear()
    status, _, body = call("POST", f"/v1/grants/{gid}/revoke", {})
    assert status == 200 and body["grant"]["status"] == "revoked"
    ops = stack.calls.operations()
    assert ops.index("TransactWriteItems") < ops.index("PutRolePolicy")
    (deny,) = stack.calls.named("PutRolePolicy")
    assert deny["RoleName"] == f"jit-{gid}" and deny["PolicyName"] == "jit-revoked"
    assert json.loads(deny["PolicyDocument"]) == {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "GrantRevoked", "Effect": "Deny", "Action": "*", "Resource": "*"}],
    }
    stack.calls.clear()
    status, _, body = call(
        "POST", f"/v1/grants/{gid}/credentials", {"nonce": "after-revoke-000000"}
    )
    assert status == 409 and body["error"]["code"] == "grant_not_active"
    assert stack.calls.named("AssumeRole") == []


def test_revoking_again_completes_a_revocation_that_stopped_half_way(stack: Any, call: Any) -> None:
    from botocore.exceptions import ClientError

    _, _, first = call("POST", "/v1/grants", grant_body())
    gid = first["grant"]["id"]

    def delete_role_fails(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ServiceFailure", "Message": "x"}}, "DeleteRole")

    stack.iam.meta.events.register("before-call.iam.DeleteRole", delete_role_fails, "stop")
    assert call("POST", f"/v1/grants/{gid}/revoke", {})[0] == 200  # revoked, role still there
    assert [r["RoleName"] for r in stack.jit_roles()] == [f"jit-{gid}"]
    stack.iam.meta.events.unregister("before-call.iam.DeleteRole", unique_id="stop")
    stack.calls.clear()
    status, _, body = call("POST", f"/v1/grants/{gid}/revoke", {})
    assert status == 200 and body["grant"]["status"] == "revoked"
    assert [p["PolicyName"] for p in stack.calls.named("PutRolePolicy")] == ["jit-revoked"]
    assert stack.jit_roles() == []
    # and once the role is gone, a further revoke touches nothing
    stack.calls.clear()
    assert call("POST", f"/v1/grants/{gid}/revoke", {})[0] == 200
    assert stack.calls.named("PutRolePolicy") == [] and stack.calls.named("DeleteRole") == []


def test_someone_elses_grant_is_not_found(stack: Any, call: Any) -> None:
    _, _, first = call("POST", "/v1/grants", grant_body())
    gid = first["grant"]["id"]
    for method, path, body in [
        ("GET", f"/v1/grants/{gid}", None),
        ("POST", f"/v1/grants/{gid}/credentials", {"nonce": "other-user-00000000"}),
        ("POST", f"/v1/grants/{gid}/revoke", {}),
    ]:
        status, _, answer = call(method, path, body, user_arn=OTHER_USER)
        assert status == 404, (method, path, answer)
    assert len(stack.calls.named("AssumeRole")) == 1


def test_list_and_get_my_grants(stack: Any, call: Any) -> None:
    _, _, first = call("POST", "/v1/grants", grant_body())
    status, _, listed = call("GET", "/v1/grants")
    assert status == 200 and [g["id"] for g in listed["grants"]] == [first["grant"]["id"]]
    status, _, one = call("GET", f"/v1/grants/{first['grant']['id']}")
    assert status == 200 and one["grant"]["status"] == "active"
    assert call("GET", "/v1/grants", user_arn=OTHER_USER)[2] == {"grants": []}


def test_active_grant_cap_refuses_before_any_iam_call(stack: Any, call: Any) -> None:
    assert call("POST", "/v1/grants", grant_body())[0] == 201
    stack.calls.clear()
    status, _, body = call("POST", "/v1/grants", grant_body())
    assert status == 429 and "active grant" in body["error"]["message"]
    assert stack.calls.named("CreateRole") == [] and stack.calls.named("AssumeRole") == []


def test_role_quota_refuses_with_429_and_no_create_role(stack: Any, call: Any) -> None:
    from jit_broker import runtime
    from tests.conftest import build_broker

    clients = {"iam": stack.iam, "sts": stack.sts, "dynamodb": stack.dynamodb}
    set_profile(stack, max_active_grants=5)
    runtime.set_broker(
        build_broker(clients, stack.seeded, stack.policy_file, env={"JIT_MAX_ROLES": "1"})
    )
    assert call("POST", "/v1/grants", grant_body())[0] == 201
    stack.calls.clear()
    status, _, body = call("POST", "/v1/grants", grant_body())
    assert status == 429 and "cap of 1 live grant roles" in body["error"]["message"]
    assert stack.calls.named("CreateRole") == []


def test_ledger_failure_returns_503_and_no_credentials(
    stack: Any, call: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    real = stack.dynamodb.transact_write_items
    seen = {"n": 0}

    def failing_second_write(**kwargs: Any) -> Any:
        seen["n"] += 1
        if seen["n"] == 2:
            raise ClientError(
                {"Error": {"Code": "InternalServerError", "Message": "boom"}}, "TransactWriteItems"
            )
        return real(**kwargs)

    monkeypatch.setattr(stack.dynamodb, "transact_write_items", failing_second_write)
    status, _, body = call("POST", "/v1/grants", grant_body())
    assert status == 503 and body["error"]["code"] == "ledger_unavailable"
    assert "credentials" not in body
    (assume,) = stack.calls.named("AssumeRole")
    # the discarded session's role is denied at once
    assert [p["PolicyName"] for p in stack.calls.named("PutRolePolicy")] == [
        "jit-grant",
        "jit-revoked",
    ]
    assert assume["RoleArn"].startswith(f"arn:aws:iam::{ACCOUNT}:role{ROLE_PATH}")


def test_access_denied_right_after_creation_is_retried(
    stack: Any, call: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    real = stack.sts.assume_role
    attempts = {"n": 0}

    def eventually_consistent(**kwargs: Any) -> Any:
        attempts["n"] += 1
        if attempts["n"] <= 2:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "not yet"}}, "AssumeRole"
            )
        return real(**kwargs)

    monkeypatch.setattr(stack.sts, "assume_role", eventually_consistent)
    status, _, body = call("POST", "/v1/grants", grant_body())
    assert status == 201, body
    assert attempts["n"] == 3


def test_sts_failing_past_the_budget_rolls_the_role_back(
    stack: Any, call: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    def always_denied(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "AssumeRole")

    monkeypatch.setattr(stack.sts, "assume_role", always_denied)
    status, _, body = call("POST", "/v1/grants", grant_body())
    assert status == 503 and "credentials" not in body
    assert stack.jit_roles() == []
    (item,) = stack.grant_items()
    assert item["status"]["S"] == "failed"


def test_assumed_role_decisions_do_not_depend_on_the_session_name(stack: Any, call: Any) -> None:
    stack.policy_file.write_text(
        stack.policy_file.read_text().replace(
            "      users:\n",
            f"      roles:\n        - arn:aws:iam::{ACCOUNT}:role/Deploy\n      users:\n",
            1,  # s3-read's requesters only
        )
    )
    answers = []
    for session in ("alice", "bob", "admin", "JITUser"):
        arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/Deploy/{session}"
        status, _, body = call("GET", "/v1/profiles", user_arn=arn)
        answers.append((status, [p["name"] for p in body["profiles"]]))
    assert answers == [(200, ["s3-read"])] * 4
    arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/Other/JITUser"
    assert call("GET", "/v1/profiles", user_arn=arn)[2] == {"profiles": []}


def test_openapi_document_is_served(stack: Any, call: Any) -> None:
    status, _, body = call("GET", "/v1/openapi.json")
    assert status == 200
    assert "/v1/grants" in body["paths"] and body["info"]["title"] == "JIT access broker"


def test_revoking_frees_the_active_grant_slot(stack: Any, call: Any) -> None:
    _, _, first = call("POST", "/v1/grants", grant_body())
    assert call("POST", "/v1/grants", grant_body())[0] == 429
    assert call("POST", f"/v1/grants/{first['grant']['id']}/revoke", {})[0] == 200
    status, _, body = call("POST", "/v1/grants", grant_body())
    assert status == 201, body


def test_an_expired_grant_no_longer_counts_against_the_cap(stack: Any, call: Any) -> None:
    from jit_broker import runtime
    from tests.conftest import build_broker

    clients = {"iam": stack.iam, "sts": stack.sts, "dynamodb": stack.dynamodb}
    now = {"t": time.time()}
    runtime.set_broker(
        build_broker(clients, stack.seeded, stack.policy_file, clock=lambda: now["t"])
    )
    _, _, first = call("POST", "/v1/grants", grant_body(duration=900))
    now["t"] = first["grant"]["expires_at"] - 1
    assert call("POST", "/v1/grants", grant_body())[0] == 429
    now["t"] = first["grant"]["expires_at"]
    assert call("POST", "/v1/grants", grant_body())[0] == 201


def test_profile_allowing_two_active_grants_refuses_the_third(stack: Any, call: Any) -> None:
    set_profile(stack, max_active_grants=2)
    assert call("POST", "/v1/grants", grant_body())[0] == 201
    assert call("POST", "/v1/grants", grant_body())[0] == 201
    stack.calls.clear()
    status, _, body = call("POST", "/v1/grants", grant_body())
    assert status == 429 and "already hold 2 active grant(s)" in body["error"]["message"]
    assert stack.calls.named("CreateRole") == []
    assert {i["slot"]["N"] for i in stack.grant_items()} == {"0", "1"}


def test_the_sam_generated_grant_event_is_served_as_is(stack: Any, handler: Any) -> None:
    from tests.conftest import EVENTS, LambdaContext

    event = json.loads((EVENTS / "grant-request.json").read_text())
    response = handler.lambda_handler(event, LambdaContext())
    assert response["statusCode"] == 201, response["body"]
    assert json.loads(response["body"])["grant"]["requester"] == JIT_USER


@pytest.mark.usefixtures("frozen_clock")  # the limit is per minute: no minute may roll over
def test_rate_limit_refuses_before_any_iam_call(stack: Any, call: Any) -> None:
    import yaml

    policy = yaml.safe_load(stack.policy_file.read_text())
    policy["limits"]["requests_per_minute"] = 2
    policy["profiles"]["s3-read"]["max_active_grants"] = None
    stack.policy_file.write_text(yaml.safe_dump(policy))
    assert call("POST", "/v1/grants", grant_body())[0] == 201
    assert call("POST", "/v1/grants", grant_body())[0] == 201
    stack.calls.clear()
    status, _, body = call("POST", "/v1/grants", grant_body())
    assert (
        status == 429
        and "too many credential requests this minute (limit 2)" in body["error"]["message"]
    )
    assert stack.calls.named("CreateRole") == [] and stack.calls.named("AssumeRole") == []


def test_administrator_may_see_and_revoke_anyones_grant(stack: Any, call: Any) -> None:
    admin = f"arn:aws:iam::{ACCOUNT}:user/JITAdmin"
    _, _, first = call("POST", "/v1/grants", grant_body())
    gid = first["grant"]["id"]
    assert call("GET", f"/v1/grants/{gid}", user_arn=admin)[0] == 200
    status, _, body = call(
        "POST", f"/v1/grants/{gid}/revoke", {"reason": "incident"}, user_arn=admin
    )
    assert status == 200 and body["grant"]["status"] == "revoked"
    (item,) = stack.grant_items()
    assert item["revoked_by"]["S"] == admin
    # an administrator may not take sessions of someone else's grant
    status, _, _ = call(
        "POST", f"/v1/grants/{gid}/credentials", {"nonce": "admin-session-000001"}, user_arn=admin
    )
    assert status == 403


def test_managed_policies_are_attached_and_recorded_sorted_with_the_grant(
    stack: Any, call: Any
) -> None:
    import yaml

    arns = [
        stack.iam.create_policy(
            PolicyName=name,
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
                    ],
                }
            ),
        )["Policy"]["Arn"]
        for name in ("zz-listing", "aa-listing")
    ]
    policy = yaml.safe_load(stack.policy_file.read_text())
    policy["managed_policy_allow_list"] = arns
    policy["profiles"]["s3-read"]["permissions"]["managed"] = arns
    stack.policy_file.write_text(yaml.safe_dump(policy))

    status, _, body = call("POST", "/v1/grants", grant_body())
    assert status == 201, body
    role_name = f"jit-{body['grant']['id']}"
    assert [(a["RoleName"], a["PolicyArn"]) for a in stack.calls.named("AttachRolePolicy")] == [
        (role_name, arn) for arn in arns
    ]
    (item,) = stack.grant_items()
    assert item["managed_policy_arns"] == {"L": [{"S": arn} for arn in sorted(arns)]}
    (put,) = stack.calls.named("PutRolePolicy")
    assert item["policy_sha256"] == {"S": digest_of(put["PolicyDocument"])}
