"""The auditor against moto (state) with a spy on every call (moto ignores conditions, so the
exact IAM and DynamoDB calls are asserted): boundaries, ownership, teardown, crash
reconciliation, drift, dry run, scale and limits."""

from __future__ import annotations

import calendar
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jit_broker import documents, naming
from jit_broker.adapters.ledger import Ledger
from jit_broker.audit import AS_CURRENT_PROFILE, AS_WRITTEN
from jit_broker.documents import policy_digest
from jit_broker.models.domain import GrantStatus
from jit_local.seed import ROLE_PATH
from tests.conftest import FROZEN_AT, FakeMonotonic, grant_body
from tests.integration.cleanup_support import (
    Events,
    iam_snapshot,
    ledger_snapshot,
    live_roles,
    make_auditor,
    make_grant,
    plain_role,
    role_names,
)

# moto stamps roles with the wall clock and the auditor compares its "now" with them: every
# test here runs on the one frozen test clock, so the day the suite runs on does not matter.
NOW = FROZEN_AT
pytestmark = pytest.mark.usefixtures("frozen_clock")
SESSION_AND_SKEW = 3600 + 300
IAM_WRITES = {
    "PutRolePolicy",
    "DeleteRolePolicy",
    "DetachRolePolicy",
    "RemoveRoleFromInstanceProfile",
    "DeleteRole",
    "TagRole",
}
LEDGER_WRITES = {"UpdateItem", "PutItem", "TransactWriteItems", "DeleteItem"}


def status_of(stack: Any, grant_id: str) -> GrantStatus:
    grant = Ledger(stack.dynamodb, stack.seeded.table_name).get_grant(grant_id)
    assert grant is not None
    return grant.status


# ---------------------------------------------------------------- the time boundaries


YEAR_END = calendar.timegm((2026, 12, 31, 23, 30, 0))  # expiry + session + skew is in 2027


@pytest.mark.parametrize("expires_at", [NOW, YEAR_END], ids=["november", "across-new-year"])
def test_expiry_and_deletion_boundaries_with_a_frozen_clock(stack, expires_at):
    grant = make_grant(stack, expires_at=expires_at)
    auditor = make_auditor(stack)
    assert live_roles(stack) == 1

    before = auditor.run(at=expires_at - 1)
    assert before.expired == [] and before.denied == [] and before.removed == []
    assert status_of(stack, grant.grant_id) == GrantStatus.ACTIVE

    stack.calls.clear()
    at_expiry = auditor.run(at=expires_at)
    assert at_expiry.expired == [grant.grant_id]
    assert at_expiry.removed == []
    assert stack.calls.named("PutRolePolicy") == [
        {
            "RoleName": grant.role_name,
            "PolicyName": "jit-revoked",
            "PolicyDocument": documents.compact(documents.deny_all()),
        }
    ]
    assert status_of(stack, grant.grant_id) == GrantStatus.EXPIRED

    last_second = auditor.run(at=expires_at + SESSION_AND_SKEW)
    assert last_second.removed == [] and grant.role_name in role_names(stack)

    stack.calls.clear()
    after = auditor.run(at=expires_at + SESSION_AND_SKEW + 1)
    assert after.removed == [grant.role_name] and after.cleaned == [grant.grant_id]
    assert grant.role_name not in role_names(stack)
    assert status_of(stack, grant.grant_id) == GrantStatus.CLEANED
    assert live_roles(stack) == 0
    [transaction] = stack.calls.named("TransactWriteItems")
    updates = [item["Update"] for item in transaction["TransactItems"]]
    assert updates[0]["Key"]["pk"] == {"S": f"GRANT#{grant.grant_id}"}
    assert updates[0]["ExpressionAttributeValues"][":new"] == {"S": "cleaned"}
    assert updates[1]["Key"] == {"pk": {"S": "QUOTA#roles"}, "sk": {"S": "QUOTA"}}
    assert updates[1]["UpdateExpression"] == "ADD live_roles :minus"


def test_removing_a_stale_role_takes_at_most_six_iam_calls_plus_one_tag_read(stack):
    grant = make_grant(stack, expires_at=NOW)
    stack.calls.clear()
    make_auditor(stack).run(at=NOW + SESSION_AND_SKEW + 1)
    iam_ops = [
        op for op in stack.calls.operations() if op[0].isupper() and op not in ("Query", "GetItem")
    ]
    iam_ops = [op for op in iam_ops if op not in LEDGER_WRITES]
    assert iam_ops == [
        "ListRoles",
        "PutRolePolicy",  # deny
        "ListRoleTags",  # ownership: the owner tag (the one tag read)
        "DeleteRolePolicy",
        "DeleteRolePolicy",
        "ListAttachedRolePolicies",
        "ListInstanceProfilesForRole",
        "DeleteRole",
    ]
    assert [p["PolicyName"] for p in stack.calls.named("DeleteRolePolicy")] == [
        "jit-grant",
        "jit-revoked",
    ]
    # The stack's own path only (/jit/<stack>/): another stack's roles are never even listed.
    assert stack.calls.named("ListRoles")[0] == {"PathPrefix": ROLE_PATH, "MaxItems": 1000}
    assert grant.role_name not in role_names(stack)


# ---------------------------------------------------------------- ownership


def test_threat31_decoys_and_unledgered_roles_survive_as_findings_only(stack):
    """Removal needs the whole proof: the path, the broker's name pattern, the owner tag and a
    ledger record with the role's RoleId. A team's role under the path with the owner tag
    (the attack's `/jit/some-team-role`), or a broker-named role the ledger never recorded,
    is reported, never removed. Roles of another stack's path, or of the /jit/ all stacks
    share, are not even looked at."""
    at = NOW + 10**6  # every role is old enough
    decoys = {
        "jit-at-root": "/",
        "jit-in-jitx": "/jitx/",
        "jit-in-shared-jit": "/jit/",
        "jit-in-other-stack": "/jit/jit-broker-other/",
        "jit-in-sub": f"{ROLE_PATH}sub/",
    }
    for name, path in decoys.items():
        plain_role(stack, name, path)
    plain_role(stack, "jit-untagged", owner=None)
    plain_role(stack, "jit-other-owner", owner="someone-else")
    mismatch = make_grant(stack, expires_at=NOW - 10**5, role_id="AROAOTHERROLEID000000")
    plain_role(stack, "some-team-role")  # owner tag, not a broker name, no ledger record
    unledgered = naming.role_name_for(naming.new_grant_id())
    plain_role(stack, unledgered)  # a broker name and the owner tag, but no ledger record
    untagged_broker_name = naming.role_name_for(naming.new_grant_id())
    plain_role(stack, untagged_broker_name, owner=None)
    stack.calls.clear()

    report = make_auditor(stack).run(at=at)

    assert report.removed == []
    assert stack.calls.named("DeleteRole") == []
    survivors = role_names(stack)
    assert {
        *decoys,
        "jit-untagged",
        "jit-other-owner",
        "some-team-role",
        unledgered,
        untagged_broker_name,
        mismatch.role_name,
    } <= survivors
    kinds = {(f.kind, f.role_name) for f in report.findings}
    assert ("role_id_mismatch", mismatch.role_name) in kinds
    assert ("unexpected_role", "jit-untagged") in kinds
    assert ("unexpected_role", "jit-other-owner") in kinds
    assert ("not_owned", untagged_broker_name) in kinds
    assert ("outside_broker_path", "jit-in-sub") in kinds
    assert ("unexpected_role", "some-team-role") in kinds
    assert ("unexpected_role", unledgered) in kinds
    assert status_of(stack, mismatch.grant_id) == GrantStatus.EXPIRED  # ledger says expired
    writes = {op for op in stack.calls.operations() if op in IAM_WRITES}
    assert writes == set()  # nothing of any of them was touched


def test_a_role_younger_than_the_minimum_age_is_not_even_reported(stack):
    plain_role(stack, "jit-just-made")
    from datetime import UTC

    created = stack.iam.get_role(RoleName="jit-just-made")["Role"]["CreateDate"]
    young = int(created.astimezone(UTC).timestamp())
    report = make_auditor(stack).run(at=young + 599)
    assert report.removed == [] and report.findings == []
    assert stack.calls.named("ListRoleTags") == []
    old = make_auditor(stack).run(at=young + 600)
    assert old.removed == [] and "jit-just-made" in role_names(stack)
    assert [(f.kind, f.role_name) for f in old.findings] == [("unexpected_role", "jit-just-made")]


def test_a_role_whose_cleaned_record_holds_its_role_id_is_removed(stack):
    """The whole proof (path, name, owner tag, the ledger's RoleId) is enough to remove it."""
    grant = make_grant(stack, expires_at=NOW - 10**5)
    ledger = Ledger(stack.dynamodb, stack.seeded.table_name)
    ledger.move(grant.grant_id, GrantStatus.ACTIVE, GrantStatus.EXPIRED)
    expired = ledger.get_grant(grant.grant_id)
    assert expired is not None
    ledger.mark_cleaned(expired, now=NOW, release_quota=True)  # as if the removal was lost
    stack.calls.clear()
    report = make_auditor(stack).run(at=NOW + 10**6)
    assert report.removed == [grant.role_name]
    assert grant.role_name not in role_names(stack)


def test_a_role_re_created_under_a_cleaned_grant_name_is_reported_not_removed(stack):
    grant = make_grant(stack, expires_at=NOW)
    auditor = make_auditor(stack)
    auditor.run(at=NOW + SESSION_AND_SKEW + 1)  # cleaned, role gone
    assert status_of(stack, grant.grant_id) == GrantStatus.CLEANED
    # the same name appears again (someone re-created it): a cleaned record, a new RoleId
    plain_role(stack, grant.role_name)
    report = auditor.run(at=NOW + 10**6)
    assert grant.role_name in role_names(stack)
    assert ("unexpected_role", grant.role_name) in {(f.kind, f.role_name) for f in report.findings}


# ---------------------------------------------------------------- teardown


def _interrupt_after(stack: Any, completed: int) -> dict[str, int]:
    """Let ``completed`` teardown writes through, then fail the next one (a crash)."""
    counter = {"n": 0}
    teardown_ops = {
        "PutRolePolicy",
        "DeleteRolePolicy",
        "DetachRolePolicy",
        "RemoveRoleFromInstanceProfile",
        "DeleteRole",
    }

    def maybe_fail(model: Any, **_: Any) -> None:
        if model.name in teardown_ops:
            counter["n"] += 1
            if counter["n"] > completed:
                raise ClientError(
                    {"Error": {"Code": "ServiceFailure", "Message": "crash"}}, model.name
                )

    stack.iam.meta.events.register("before-call.iam.*", maybe_fail, unique_id="interrupt")
    return counter


# deny, jit-grant, jit-revoked, extra inline, detach managed, remove from profile, delete
TEARDOWN_WRITES = 7


@pytest.mark.parametrize("completed", range(TEARDOWN_WRITES))
def test_teardown_interrupted_after_each_step_completes_on_the_next_run(stack, completed):
    grant = make_grant(stack, expires_at=NOW, status=GrantStatus.REVOKED)
    name = grant.role_name
    stack.iam.put_role_policy(
        RoleName=name, PolicyName="extra", PolicyDocument=json.dumps(documents.deny_all())
    )
    arn = stack.iam.create_policy(
        PolicyName="extra-managed", PolicyDocument=json.dumps(documents.deny_all())
    )["Policy"]["Arn"]
    stack.iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    stack.iam.create_instance_profile(InstanceProfileName="jit-profile", Path=ROLE_PATH)
    stack.iam.add_role_to_instance_profile(InstanceProfileName="jit-profile", RoleName=name)
    at = NOW + SESSION_AND_SKEW + 1

    _interrupt_after(stack, completed)
    first = make_auditor(stack).run(at=at)
    stack.iam.meta.events.unregister("before-call.iam.*", unique_id="interrupt")
    assert name in role_names(stack)
    assert first.cleaned == []
    assert status_of(stack, grant.grant_id) == GrantStatus.REVOKED

    second = make_auditor(stack).run(at=at)
    assert second.removed == [name] and second.cleaned == [grant.grant_id]
    assert name not in role_names(stack)
    assert live_roles(stack) == 0
    # the permissions boundary and the managed policy are detached, never deleted
    stack.iam.get_policy(PolicyArn=stack.seeded.boundary_arn)
    stack.iam.get_policy(PolicyArn=arn)
    assert stack.calls.named("DeletePolicy") == []


def test_a_role_deleted_before_the_ledger_was_marked_is_cleaned_next_run(stack):
    grant = make_grant(stack, expires_at=NOW, status=GrantStatus.EXPIRED)
    stack.iam.delete_role_policy(RoleName=grant.role_name, PolicyName="jit-grant")
    stack.iam.delete_role(RoleName=grant.role_name)
    report = make_auditor(stack).run(at=NOW + SESSION_AND_SKEW + 1)
    assert report.cleaned == [grant.grant_id] and report.removed == []
    assert status_of(stack, grant.grant_id) == GrantStatus.CLEANED
    assert live_roles(stack) == 0


# ---------------------------------------------------------------- crash reconciliation


def test_grant_written_but_no_role_is_failed_then_cleaned_and_the_quota_given_back(stack):
    grant = make_grant(
        stack, expires_at=NOW + 1800, status=GrantStatus.ISSUING, with_role=False, created_at=NOW
    )
    assert live_roles(stack) == 1
    report = make_auditor(stack).run(at=NOW + 600)
    assert report.failed == [grant.grant_id] and report.cleaned == [grant.grant_id]
    record = Ledger(stack.dynamodb, stack.seeded.table_name).get_grant(grant.grant_id)
    assert record is not None and record.status == GrantStatus.CLEANED
    assert record.failure == "reconciled_by_auditor"
    assert live_roles(stack) == 0


def test_requested_grant_too_recent_is_left_to_the_broker(stack):
    grant = make_grant(
        stack, expires_at=NOW + 1800, status=GrantStatus.ISSUING, with_role=False, created_at=NOW
    )
    report = make_auditor(stack).run(at=NOW + 599)
    assert report.failed == [] and status_of(stack, grant.grant_id) == GrantStatus.ISSUING


def test_role_created_but_ledger_still_requested_is_denied_at_once_then_removed(stack):
    grant = make_grant(stack, expires_at=NOW + 10**6, status=GrantStatus.ISSUING, created_at=NOW)
    at = NOW + 10**6 - 1  # the role is old; the grant has not expired
    report = make_auditor(stack).run(at=at)
    assert report.failed == [grant.grant_id] and report.denied == [grant.role_name]
    assert report.removed == []
    record = Ledger(stack.dynamodb, stack.seeded.table_name).get_grant(grant.grant_id)
    assert record is not None and record.status == GrantStatus.FAILED
    assert record.role_id == stack.iam.get_role(RoleName=grant.role_name)["Role"]["RoleId"]
    assert "jit-revoked" in stack.iam.list_role_policies(RoleName=grant.role_name)["PolicyNames"]
    assert live_roles(stack) == 0

    later = make_auditor(stack).run(at=NOW + 10**6 + SESSION_AND_SKEW + 1)
    assert later.removed == [grant.role_name] and later.cleaned == [grant.grant_id]
    assert live_roles(stack) == 0  # given back once, on failing


# ---------------------------------------------------------------- drift


def _drift(stack: Any, kind: str, name: str) -> None:
    if kind == "trust_policy":
        doc = json.loads(
            documents.compact(documents.trust_policy("arn:aws:iam::123456789012:role/x", NOW))
        )
        stack.iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(doc))
    elif kind == "permissions":
        stack.iam.put_role_policy(
            RoleName=name,
            PolicyName="jit-grant",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
            ),
        )
    elif kind == "boundary":
        other = stack.iam.create_policy(
            PolicyName="looser", PolicyDocument=json.dumps(documents.deny_all())
        )["Policy"]["Arn"]
        stack.iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=other)
    elif kind == "tags":
        stack.iam.tag_role(
            RoleName=name, Tags=[{"Key": documents.TAG_EXPIRES, "Value": "9999999999"}]
        )


@pytest.mark.parametrize("kind", ["trust_policy", "permissions", "boundary", "tags"])
def test_each_kind_of_drift_is_reported_and_quarantined_when_configured(stack, kind):
    clean = make_grant(stack, expires_at=NOW + 3600)
    drifted = make_grant(stack, expires_at=NOW + 3600)
    _drift(stack, kind, drifted.role_name)
    events = Events()
    report = make_auditor(
        stack, events=events, deep_drift_checks_per_run=100, drift_quarantine=True
    ).run(at=NOW)
    assert [(f.kind, f.role_name) for f in report.findings] == [
        (f"drift_{kind}", drifted.role_name)
    ]
    assert report.quarantined == [drifted.role_name]
    assert [
        p["RoleName"]
        for p in stack.calls.named("PutRolePolicy")
        if p["PolicyName"] == "jit-revoked"
    ] == [drifted.role_name]
    assert [d["kind"] for t, d in events.sent if t == "JIT audit finding"] == [f"drift_{kind}"]
    assert clean.role_name in role_names(stack) and drifted.role_name in role_names(stack)


def test_drift_is_only_reported_without_the_quarantine_parameter(stack):
    drifted = make_grant(stack, expires_at=NOW + 3600)
    _drift(stack, "permissions", drifted.role_name)
    stack.calls.clear()
    report = make_auditor(stack, deep_drift_checks_per_run=100).run(at=NOW)
    assert [f.kind for f in report.findings] == ["drift_permissions"]
    assert report.quarantined == [] and stack.calls.named("PutRolePolicy") == []


# ---------------------------------------------------------------- dry run


def test_dry_run_changes_nothing_in_iam_or_the_ledger(stack):
    make_grant(stack, expires_at=NOW - 10**5)  # stale
    make_grant(stack, expires_at=NOW + 10**5, status=GrantStatus.ISSUING, created_at=NOW - 10**5)
    make_grant(
        stack,
        expires_at=NOW + 10**5,
        status=GrantStatus.ISSUING,
        with_role=False,
        created_at=NOW - 10**5,
    )
    expiring = make_grant(stack, expires_at=NOW - 1)
    plain_role(stack, "jit-orphan")
    drifted = make_grant(stack, expires_at=NOW + 10**6)  # live at the audit's time
    _drift(stack, "tags", drifted.role_name)
    iam_before, ledger_before = iam_snapshot(stack), ledger_snapshot(stack)
    stack.calls.clear()
    events = Events()

    report = make_auditor(
        stack, events=events, deep_drift_checks_per_run=100, drift_quarantine=True
    ).run(dry_run=True, at=NOW + 10**6 - 10**5)

    assert report.dry_run and len(report.removed) >= 3 and expiring.grant_id in report.expired
    assert report.quarantined == [drifted.role_name]
    assert iam_snapshot(stack) == iam_before
    assert ledger_snapshot(stack) == ledger_before
    assert not set(stack.calls.operations()) & (IAM_WRITES | LEDGER_WRITES)
    assert events.sent == []


# ---------------------------------------------------------------- scale and limits


def test_2500_roles_few_stale_all_stale_removed_with_pagination_and_tags_only_for_them(stack):
    stale = [make_grant(stack, expires_at=NOW - 10**5) for _ in range(4)]
    ledger = Ledger(stack.dynamodb, stack.seeded.table_name)
    del ledger
    for i in range(2500 - len(stale)):
        plain_role(stack, f"jit-live-{i:05d}", owner="another-stack")
    stack.calls.clear()
    report = make_auditor(stack, page_size=100).run(at=NOW + 10**6)
    assert sorted(report.removed) == sorted(g.role_name for g in stale)
    assert len(stack.calls.named("ListRoles")) == 25
    assert [c.get("Marker") is None for c in stack.calls.named("ListRoles")].count(True) == 1
    assert report.roles_listed == 2500
    # tags of the 2,496 others are read only because they are orphan candidates under /jit/
    # without a record; the ledgered stale ones once each
    tag_reads = {c["RoleName"] for c in stack.calls.named("ListRoleTags")}
    assert {g.role_name for g in stale} <= tag_reads
    assert len(role_names(stack) & {g.role_name for g in stale}) == 0


def test_live_ledgered_roles_cost_no_call_beyond_the_listing(stack):
    live = [make_grant(stack, expires_at=NOW + 3600) for _ in range(30)]
    stale = make_grant(stack, expires_at=NOW - 10**5)
    stack.calls.clear()
    report = make_auditor(stack, page_size=7).run(at=NOW)
    assert len(stack.calls.named("ListRoles")) == 5  # ceil(31 / 7)
    assert [c["RoleName"] for c in stack.calls.named("ListRoleTags")] == [stale.role_name]
    assert report.removed == [stale.role_name]
    assert all(g.role_name in role_names(stack) for g in live)


def test_deletions_per_run_are_capped_and_the_rest_follow_next_run(stack):
    stale = [make_grant(stack, expires_at=NOW - 10**5) for _ in range(5)]
    auditor = make_auditor(stack, max_deletions_per_run=2)
    first = auditor.run(at=NOW)
    assert len(first.removed) == 2 and len(first.deferred) == 3
    second = auditor.run(at=NOW)
    third = auditor.run(at=NOW)
    assert len(second.removed) == 2 and len(third.removed) == 1
    assert not role_names(stack) & {g.role_name for g in stale}
    assert live_roles(stack) == 0


def test_time_budget_stops_cleanly_saves_the_cursor_and_the_next_run_resumes(stack):
    grants = [make_grant(stack, expires_at=NOW - 10**5) for _ in range(6)]
    clock = FakeMonotonic()

    class Ticking:
        def monotonic(self) -> float:
            clock.now += 1.0  # each check costs a second
            return clock.now

    auditor = make_auditor(stack, monotonic=Ticking(), page_size=2, safety_margin_ms=0)
    first = auditor.run(at=NOW, budget_ms=6_000)
    assert not first.complete and first.stopped == "time_budget"
    assert 0 < len(first.removed) < 6
    cursor = Ledger(stack.dynamodb, stack.seeded.table_name).audit_cursor()
    assert cursor is not None
    rest = make_auditor(stack, page_size=2).run(at=NOW, budget_ms=60_000)
    assert rest.complete
    assert (
        stack.calls.named("ListRoles")[-1 - (len(stack.calls.named("ListRoles")) - 1)] is not None
    )
    assert not role_names(stack) & {g.role_name for g in grants}
    assert Ledger(stack.dynamodb, stack.seeded.table_name).audit_cursor() is None
    assert live_roles(stack) == 0


def test_events_one_per_removal_and_finding(stack):
    grant = make_grant(stack, expires_at=NOW - 10**5)
    plain_role(stack, "jit-untagged", owner=None)
    events = Events()
    make_auditor(stack, events=events).run(at=NOW + 10**6)
    assert sorted((t, d["role_name"]) for t, d in events.sent) == [
        ("JIT audit finding", "jit-untagged"),
        ("JIT role removed", grant.role_name),
    ]


# ---------------------------------------------------------------- drift against what was written


def broker_grant(stack: Any, call: Any) -> tuple[str, str, int]:
    """A grant made by the broker itself (through the API handler): (grant id, role, now)."""
    status, _, body = call("POST", "/v1/grants", grant_body(duration=1800))
    assert status == 201, body
    grant = body["grant"]
    return grant["id"], f"jit-{grant['id']}", grant["created_at"]


def edit_profile(stack: Any) -> None:
    """The access policy is edited while a grant of s3-read is live: wider and a new Sid."""
    import yaml

    policy = yaml.safe_load(stack.policy_file.read_text())
    statements = policy["profiles"]["s3-read"]["permissions"]["inline"]["Statement"]
    statements.append(
        {
            "Sid": "AddedAfterTheGrant",
            "Effect": "Allow",
            "Action": "s3:GetObjectTagging",
            "Resource": "arn:aws:s3:::example-bucket/*",
        }
    )
    stack.policy_file.write_text(yaml.safe_dump(policy))


def deep_audit(stack: Any, at: int, **settings: Any) -> Any:
    return make_auditor(stack, deep_drift_checks_per_run=100, **settings).run(at=at)


def test_broker_records_the_digest_and_managed_policies_it_wrote_with_the_grant(stack, call):
    gid, role, _ = broker_grant(stack, call)
    record = Ledger(stack.dynamodb, stack.seeded.table_name).get_grant(gid)
    assert record is not None and record.managed_policy_arns == []
    written = stack.iam.get_role_policy(RoleName=role, PolicyName="jit-grant")["PolicyDocument"]
    assert isinstance(written, dict)  # botocore decoded IAM's URL-encoded document
    assert record.policy_sha256 == policy_digest(written)


def test_profile_edited_while_its_grant_is_live_is_not_drift(stack, call):
    _, role, now = broker_grant(stack, call)
    edit_profile(stack)
    report = deep_audit(stack, now + 60, drift_quarantine=True)
    assert report.drift_checks == 1
    assert report.findings == [] and report.quarantined == []
    assert stack.iam.list_role_policies(RoleName=role)["PolicyNames"] == ["jit-grant"]


def test_inline_policy_changed_in_iam_is_drift_from_what_the_grant_recorded(stack, call):
    gid, role, now = broker_grant(stack, call)
    written = stack.iam.get_role_policy(RoleName=role, PolicyName="jit-grant")["PolicyDocument"]
    first, *rest = written["Statement"]
    widened = {**written, "Statement": [{**first, "Resource": "*"}, *rest]}  # any bucket
    stack.iam.put_role_policy(
        RoleName=role, PolicyName="jit-grant", PolicyDocument=json.dumps(widened)
    )
    report = deep_audit(stack, now + 60, drift_quarantine=True)
    assert [(f.kind, f.role_name, f.grant_id, f.detail) for f in report.findings] == [
        ("drift_permissions", role, gid, AS_WRITTEN)
    ]
    assert report.quarantined == [role]


def test_same_document_with_keys_reordered_by_iam_is_not_drift(stack, call):
    _, role, now = broker_grant(stack, call)
    written = stack.iam.get_role_policy(RoleName=role, PolicyName="jit-grant")["PolicyDocument"]
    reordered = dict(reversed(list(written.items())))
    stack.iam.put_role_policy(
        RoleName=role, PolicyName="jit-grant", PolicyDocument=json.dumps(reordered, indent=2)
    )
    assert deep_audit(stack, now + 60).findings == []


def test_managed_policy_attached_by_hand_is_drift_from_what_the_grant_recorded(stack, call):
    gid, role, now = broker_grant(stack, call)
    arn = stack.iam.create_policy(
        PolicyName="attached-by-hand",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )["Policy"]["Arn"]
    stack.iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    report = deep_audit(stack, now + 60)
    assert [(f.kind, f.role_name, f.grant_id, f.detail) for f in report.findings] == [
        ("drift_permissions", role, gid, AS_WRITTEN)
    ]
    assert report.quarantined == []


def test_extra_inline_policy_put_by_hand_is_drift_from_what_the_grant_recorded(stack, call):
    _, role, now = broker_grant(stack, call)
    stack.iam.put_role_policy(
        RoleName=role,
        PolicyName="backdoor",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    assert [f.kind for f in deep_audit(stack, now + 60).findings] == ["drift_permissions"]


def test_grant_recorded_without_what_was_written_is_judged_on_the_current_profile_and_says_so(
    stack,
):
    older = make_grant(stack, expires_at=NOW + 3600, record_written=False)  # an older record
    assert older.policy_sha256 is None and older.managed_policy_arns is None
    assert deep_audit(stack, NOW).findings == []  # the profile still reads as it was written
    edit_profile(stack)
    report = deep_audit(stack, NOW)
    assert [(f.kind, f.role_name, f.detail) for f in report.findings] == [
        ("drift_permissions", older.role_name, AS_CURRENT_PROFILE)
    ]
    assert "current" in AS_CURRENT_PROFILE and "predates" in AS_CURRENT_PROFILE
