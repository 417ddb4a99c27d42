"""The auditor's pure parts and its IAM adapter against a Stubber (no AWS, no moto)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from jit_broker.adapters.iam_audit import IamAudit
from jit_broker.audit import canonical, deletable_at, grant_id_of, run_from_event
from jit_broker.errors import AwsUnavailable, BadRequest
from jit_broker.models.audit import AuditEvent


def test_deletable_only_after_expiry_plus_longest_session_plus_skew():
    class G:
        expires_at = 1000

    assert deletable_at(G(), 300) == 1000 + 3600 + 300 + 1  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "grant_id"),
    [
        ("jit-g-0123456789abcdef01234567", "g-0123456789abcdef01234567"),
        ("jit-g-0123456789abcdef0123456", None),
        ("xjit-g-0123456789abcdef01234567", None),
        ("jit-orphan", None),
    ],
)
def test_grant_id_is_read_only_from_the_brokers_exact_role_name(name, grant_id):
    assert grant_id_of(name) == grant_id


def test_canonical_treats_one_element_lists_and_action_order_as_equal():
    a = {"Statement": [{"Action": ["b", "a"], "Resource": ["*"]}], "Version": "2012-10-17"}
    b = {"Version": "2012-10-17", "Statement": {"Resource": "*", "Action": ["a", "b"]}}
    assert canonical(a) == canonical(b)
    assert canonical({"Action": ["a", "c"]}) != canonical({"Action": ["a", "b"]})


def test_scheduled_event_fields_are_ignored_and_mean_a_real_run():
    event = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events"}
    parsed = AuditEvent.model_validate(event)
    assert parsed.dry_run is False and parsed.at is None


class _Recorder:
    allows_clock_override = False

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    def run(self, **kwargs: Any) -> Any:
        self.runs.append(kwargs)
        return "report"


def test_cleanup_event_with_at_is_refused_unless_overrides_are_allowed_there_too():
    auditor = _Recorder()
    with pytest.raises(BadRequest):
        run_from_event(auditor, {"at": 1_800_000_000}, 60_000)  # type: ignore[arg-type]
    assert auditor.runs == []


def test_cleanup_event_budget_is_the_smaller_of_event_and_lambda_time():
    auditor = _Recorder()
    run_from_event(auditor, {"dry_run": True, "budget_ms": 15_000}, 280_000)  # type: ignore[arg-type]
    run_from_event(auditor, {}, 9_000)  # type: ignore[arg-type]
    assert auditor.runs == [
        {"dry_run": True, "at": None, "budget_ms": 15_000},
        {"dry_run": False, "at": None, "budget_ms": 9_000},
    ]


def _role(name: str) -> dict[str, Any]:
    return {
        "Path": "/jit/",
        "RoleName": name,
        "RoleId": "AROA" + "X" * 17,
        "Arn": f"arn:aws:iam::123456789012:role/jit/{name}",
        "CreateDate": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    }


def test_throttling_twice_then_success_lists_the_page_with_backoff():
    client = boto3.client("iam", region_name="us-east-1")
    sleeps: list[float] = []
    expected = {"PathPrefix": "/jit/", "MaxItems": 1000}
    with Stubber(client) as stub:
        stub.add_client_error(
            "list_roles", "Throttling", http_status_code=400, expected_params=expected
        )
        stub.add_client_error(
            "list_roles", "Throttling", http_status_code=400, expected_params=expected
        )
        stub.add_response("list_roles", {"Roles": [_role("jit-a")], "IsTruncated": False}, expected)
        pages = list(IamAudit(client, sleep=sleeps.append).role_pages("/jit/", page_size=1000))
        stub.assert_no_pending_responses()
    assert [r.name for r in pages[0].roles] == ["jit-a"]
    assert sleeps == [0.2, 0.4]


def test_throttling_beyond_the_retries_is_aws_unavailable():
    client = boto3.client("iam", region_name="us-east-1")
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_client_error("list_roles", "Throttling", http_status_code=400)
        with pytest.raises(AwsUnavailable):
            list(
                IamAudit(client, throttle_retries=2, sleep=lambda _: None).role_pages(
                    "/jit/", page_size=10
                )
            )


def test_auditor_clients_use_adaptive_retries(monkeypatch):
    from jit_broker.runtime import build_auditor

    env = {
        "JIT_TABLE_NAME": "jit-grants",
        "JIT_BOUNDARY_POLICY_ARN": "arn:aws:iam::123456789012:policy/b",
        "JIT_BROKER_ROLE_ARN": "arn:aws:iam::123456789012:role/broker",
        "JIT_OWNER_TAG": "stack",
    }
    auditor = build_auditor(env=env)
    iam = auditor._iam._iam  # the adapter's client
    assert iam.meta.config.retries["mode"] == "adaptive"


def test_url_encoded_document_from_iam_gives_the_digest_the_broker_recorded():
    from urllib.parse import quote

    from jit_broker import documents
    from jit_broker.documents import policy_digest

    written = documents.grant_policy(
        [{"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
        1_795_000_000,
    )
    # IAM hands the document back URL-encoded and may lay it out differently
    from_iam = quote(json.dumps(written, indent=2, sort_keys=True))
    client = boto3.client("iam", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("get_role", {"Role": _role("jit-a")}, {"RoleName": "jit-a"})
        stub.add_response("list_role_policies", {"PolicyNames": ["jit-grant"]})
        stub.add_response(
            "get_role_policy",
            {"RoleName": "jit-a", "PolicyName": "jit-grant", "PolicyDocument": from_iam},
        )
        stub.add_response("list_attached_role_policies", {"AttachedPolicies": []})
        details = IamAudit(client).details("jit-a")
    assert details is not None
    assert policy_digest(details.inline["jit-grant"]) == policy_digest(written)
    assert policy_digest(json.loads(documents.compact(written))) == policy_digest(written)


def test_digest_changes_with_any_change_to_the_document():
    from jit_broker import documents
    from jit_broker.documents import policy_digest

    a = documents.grant_policy([], 1_795_000_000)
    b = documents.grant_policy([], 1_795_000_001)
    assert policy_digest(a) != policy_digest(b)
    assert len(policy_digest(a)) == 64
