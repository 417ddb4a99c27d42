"""Fast grants (mode shared-role, issue 9) through the running local stack: the example policy's
s3-read-fast makes its one shared role on first use; a grant after that costs no IAM write (one
AssumeRole, counted from the stack's CloudTrail-like record of the requests it allowed); each
session is scoped by its session policy (the role's own policy allowing more changes nothing)
and tagged with its grant; revoking a grant refuses its credentials at once and leaves the other
grants of the same role working. Every call to the broker is a SigV4-signed request through the
local gateway; every AWS call a signed request judged by the local IAM evaluator."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jit_local import iam_eval
from jit_local.seed import ACCOUNT_ID, BROKER_ROLE_NAME, ROLE_PATH
from jit_local.server import ADMIN, LocalStack

TEAM = "TeamUser"
PROFILE = "s3-read-fast"
SHARED_ROLE = "jit-s-s3-read-fast"
SHARED_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role{ROLE_PATH}{SHARED_ROLE}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    trail = tmp_path_factory.mktemp("trail") / "trail.jsonl"
    with LocalStack(port=0, audit_interval=0, trail_file=trail) as running:
        yield running


def nonce() -> str:
    return "n-" + uuid.uuid4().hex


def code_of(call: Any) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return str(info.value.response["Error"]["Code"])


def iam_writes(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["eventSource"] == "iam.amazonaws.com" and not e["readOnly"]]


class Grants:
    """Fast grants of one test, each with what the stack recorded while it was made; all
    revoked at the end (the profile allows three active grants)."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.made: list[str] = []

    def request(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        mark = len(self.stack.trail)
        body = {"profile": PROFILE, "reason": "Look at the export", "nonce": nonce()}
        status, answer = self.stack.call("POST", "/v1/grants", body, user=TEAM)
        assert status == 201, answer
        self.made.append(answer["grant"]["id"])
        return answer, list(self.stack.trail)[mark:]

    def revoke(self, grant_id: str) -> tuple[int, Any]:
        return self.stack.call("POST", f"/v1/grants/{grant_id}/revoke", {}, user=TEAM)

    def s3(self, answer: dict[str, Any]) -> Any:
        c = answer["credentials"]
        return self.stack.client(
            "s3", (c["access_key_id"], c["secret_access_key"]), c["session_token"]
        )


@pytest.fixture
def grants(stack: LocalStack) -> Iterator[Grants]:
    made = Grants(stack)
    yield made
    for grant_id in made.made:
        made.revoke(grant_id)


def test_the_first_grant_makes_the_shared_role_and_the_next_costs_no_iam_write(
    stack: LocalStack, grants: Grants
) -> None:
    listed = stack.client("iam", stack.keys[ADMIN]).list_roles(PathPrefix=ROLE_PATH)["Roles"]
    existed = SHARED_ROLE in [r["RoleName"] for r in listed]  # made by an earlier test
    first, made = grants.request()
    assert first["grant"]["mode"] == "shared-role"
    assert first["grant"]["role_arn"] == SHARED_ROLE_ARN
    created = [e for e in iam_writes(made) if e["eventName"] == "CreateRole"]
    assert [e["requestParameters"]["roleName"] for e in created] == (
        [] if existed else [SHARED_ROLE]
    )

    second, made = grants.request()
    assert second["grant"]["role_arn"] == SHARED_ROLE_ARN
    assert iam_writes(made) == []
    assumed = [e for e in made if e["eventSource"] == "sts.amazonaws.com"]
    assert [(e["eventName"], e["requestParameters"]["roleArn"]) for e in assumed] == [
        ("AssumeRole", SHARED_ROLE_ARN)
    ]
    assert assumed[0]["userIdentity"]["sessionIssuer"] == (
        f"arn:aws:iam::{ACCOUNT_ID}:role/{BROKER_ROLE_NAME}"
    )
    assert assumed[0]["requestParameters"]["sourceIdentity"] == TEAM
    assert grants.s3(second).list_objects_v2(Bucket="example-bucket")["KeyCount"] == 2


def test_a_shared_role_session_carries_its_grants_tags_and_source_identity(
    grants: Grants,
) -> None:
    answer, _ = grants.request()
    session = iam_eval.session_context(answer["credentials"]["access_key_id"])
    assert session is not None
    assert session.role_arn == SHARED_ROLE_ARN
    assert session.source_identity == TEAM
    assert session.tags["jit:grant-id"] == answer["grant"]["id"]
    assert session.tags["jit:profile"] == PROFILE
    assert session.session_policy is not None
    assert session.expires_at <= answer["grant"]["expires_at"] + 900


def test_a_shared_role_session_is_scoped_by_its_session_policy(
    stack: LocalStack, grants: Grants
) -> None:
    answer, _ = grants.request()
    s3 = grants.s3(answer)
    iam = stack.client("iam", stack.keys[ADMIN])
    granted = iam.get_role_policy(RoleName=SHARED_ROLE, PolicyName="jit-grant")["PolicyDocument"]
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    # The role itself allows everything in S3 now: the session may still do only what its
    # session policy (the profile's statements) allows.
    iam.put_role_policy(
        RoleName=SHARED_ROLE, PolicyName="jit-grant", PolicyDocument=json.dumps(everything)
    )
    try:
        assert s3.get_object(Bucket="example-bucket", Key="README.txt")["Body"].read()
        assert code_of(
            lambda: s3.put_object(Bucket="example-bucket", Key="new.txt", Body=b"x")
        ) == ("AccessDenied")
        assert code_of(lambda: s3.list_objects_v2(Bucket="other-bucket")) == "AccessDenied"
    finally:
        iam.put_role_policy(
            RoleName=SHARED_ROLE, PolicyName="jit-grant", PolicyDocument=json.dumps(granted)
        )


def test_revoking_a_fast_grant_refuses_its_credentials_and_not_the_other_grants(
    stack: LocalStack, grants: Grants
) -> None:
    first, _ = grants.request()
    second, _ = grants.request()
    s3_first, s3_second = grants.s3(first), grants.s3(second)
    assert s3_first.list_objects_v2(Bucket="example-bucket")["KeyCount"] == 2

    mark = len(stack.trail)
    status, revoked = grants.revoke(first["grant"]["id"])
    assert status == 200 and revoked["grant"]["status"] == "revoked"
    writes = iam_writes(list(stack.trail)[mark:])
    assert [(e["eventName"], e["requestParameters"]) for e in writes] == [
        ("PutRolePolicy", {"roleName": SHARED_ROLE, "policyName": "jit-revoked"})
    ]

    assert code_of(lambda: s3_first.list_objects_v2(Bucket="example-bucket")) == "AccessDenied"
    assert code_of(lambda: s3_first.get_object(Bucket="example-bucket", Key="README.txt")) == (
        "AccessDenied"
    )
    assert s3_second.list_objects_v2(Bucket="example-bucket")["KeyCount"] == 2
    status, body = stack.call(
        "POST", f"/v1/grants/{first['grant']['id']}/credentials", {"nonce": nonce()}, user=TEAM
    )
    assert status == 409 and body["error"]["code"] == "grant_not_active"


def test_the_trail_file_holds_the_trail_as_json_lines_and_no_secret(
    stack: LocalStack, grants: Grants
) -> None:
    answer, made = grants.request()
    assert stack.trail_file is not None
    text = stack.trail_file.read_text(encoding="utf-8")
    assert [json.loads(line) for line in text.splitlines()] == list(stack.trail)
    assert made and all(event in list(stack.trail) for event in made)
    secrets = [answer["credentials"]["secret_access_key"], answer["credentials"]["session_token"]]
    secrets += [secret for _, secret in stack.keys.values()]
    assert not [secret for secret in secrets if secret in text]
