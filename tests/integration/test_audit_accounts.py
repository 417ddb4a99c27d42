"""The auditor over a hub and two member accounts (moto in-process: accounts kept apart by the
credentials, a member's clients made by assuming its execution role), and its side of
shared-role grants. Grants are made by the broker itself through the API handler; the exact
IAM calls the auditor makes in each account are asserted (one CallLog per account).

What these prove:
- one run sweeps every account, each with its own findings, deletion share, time budget and
  resume cursor, each grant in the account it is in;
- an account that cannot be reached (its execution role refused, or its listing) is a finding
  and the AccountsUnreachable metric, and the other accounts are still swept;
- shared-role grants: never a role removal; expired ones cleaned and revoked ones unlisted from
  their role's deny exactly when their last session can have ended, the deny rewritten from
  the ledger's list (also when IAM's copy differs); shared roles are the broker's, not
  unexpected roles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from jit_broker import documents, naming
from jit_broker.adapters.iam import Iam
from jit_broker.adapters.iam_audit import IamAudit
from jit_broker.adapters.ledger import Ledger
from jit_broker.adapters.members import MemberClients
from jit_broker.adapters.policy_source import load_policy
from jit_broker.audit import Auditor
from jit_broker.models.audit import AccountReport, AuditReport
from jit_broker.models.domain import GrantStatus
from jit_broker.revocation import write_revoked
from jit_broker.settings import Settings
from jit_local.seed import ROLE_PATH
from tests.conftest import (
    ACCOUNT,
    EXAMPLE_POLICY,
    FROZEN_AT,
    JIT_USER,
    CallLog,
    FakeMonotonic,
    Stack,
    build_broker,
    grant_body,
    moto_stack,
)
from tests.integration.cleanup_support import Events, audit_settings
from tests.integration.fault_support import deterministic_grant_ids

HUB = ACCOUNT
MEMBER_A = "210987654321"
MEMBER_B = "345678901234"
MEMBER_ROLE = "jit-broker-local-jit-member"
NOW = FROZEN_AT
SKEW = 300
SESSION_AND_SKEW = 3600 + SKEW
IAM_WRITES = {
    "PutRolePolicy",
    "DeleteRolePolicy",
    "DetachRolePolicy",
    "RemoveRoleFromInstanceProfile",
    "DeleteRole",
    "TagRole",
    "CreateRole",
    "AttachRolePolicy",
}
REMOVAL = [
    "PutRolePolicy",  # the deny
    "ListRoleTags",  # the owner tag
    "DeleteRolePolicy",
    "DeleteRolePolicy",
    "ListAttachedRolePolicies",
    "ListInstanceProfilesForRole",
    "DeleteRole",
]
PROFILES = {
    "member-read": {
        "description": "Read team data in the member accounts",
        "accounts": [MEMBER_A, MEMBER_B],
        "permissions": {
            "inline": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ReadTeamData",
                        "Effect": "Allow",
                        "Action": ["s3:GetObject"],
                        "Resource": "arn:aws:s3:::team-data/*",
                    }
                ],
            }
        },
        "requesters": {"users": [JIT_USER]},
        "max_window": 3600,
        "reason_required": False,
        "max_active_grants": 10,
    },
    "fast": {
        "description": "Read team data in member A, fast",
        "mode": "shared-role",
        "accounts": [MEMBER_A],
        "permissions": {
            "inline": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ReadTeamData",
                        "Effect": "Allow",
                        "Action": ["s3:GetObject"],
                        "Resource": "arn:aws:s3:::team-data/*",
                    }
                ],
            }
        },
        "requesters": {"users": [JIT_USER]},
        "max_window": 7200,
        "reason_required": False,
        "max_active_grants": 10,
    },
}

pytestmark = pytest.mark.usefixtures("frozen_clock")


class Metrics:
    """The auditor's metrics as powertools would publish them: name → value."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def add_metric(self, *, name: str, unit: Any, value: float) -> None:
        self.values[name] = value


def _admin_client(sts: Any, account: str, service: str = "iam") -> Any:
    """A client acting in ``account`` as its administrator (moto: the credentials' account)."""
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/admin", RoleSessionName="setup")[
        "Credentials"
    ]
    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
    )


def _refused(operation: str, code: str = "AccessDenied") -> Any:
    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "refused by the test"}}, operation)

    return refuse


@dataclass
class Org:
    """The hub's in-process stack, two member accounts, and the auditor's clients (one CallLog
    of IAM calls per account, one of its STS calls)."""

    stack: Stack
    admin: dict[str, Any]  # account → an IAM client acting there as its administrator
    audit_calls: dict[str, CallLog]
    sts_calls: CallLog
    auditor_sts: Any
    members: MemberClients
    refused_accounts: set[str] = field(default_factory=set)
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.stack.dynamodb, self.stack.seeded.table_name)

    def audit_client(self, account: str) -> Any:
        """The auditor's IAM client in ``account`` (a member's through its execution role)."""
        if account == HUB:
            return self._clients[HUB]
        client = self.members.client(account)
        if account not in self._clients:
            self._clients[account] = self.audit_calls[account].attach(client)
        return client

    def auditor(
        self,
        *,
        accounts: tuple[str, ...] = (MEMBER_A, MEMBER_B),
        monotonic: Any = None,
        events: Any = None,
        metrics: Any = None,
        **settings: Any,
    ) -> Auditor:
        s = audit_settings(
            self.stack,
            member_accounts=accounts,
            member_role_name=MEMBER_ROLE,
            clock_skew_seconds=SKEW,
            **settings,
        )
        return Auditor(
            settings=s,
            ledger=self.ledger,
            iam=IamAudit(self._clients[HUB], sleep=lambda _: None),
            member_iam=lambda account: IamAudit(self.audit_client(account), sleep=lambda _: None),
            events=events or Events(),
            policy=lambda: load_policy(path=str(self.stack.policy_file)),
            monotonic=(monotonic or FakeMonotonic()).monotonic,
            metrics=metrics,
        )

    def iam_calls(self, account: str) -> list[str]:
        return self.audit_calls[account].operations()

    def clear(self) -> None:
        for log in self.audit_calls.values():
            log.clear()
        self.sts_calls.clear()
        self.stack.calls.clear()

    def roles(self, account: str) -> set[str]:
        return {r["RoleName"] for r in self.admin[account].list_roles()["Roles"]}

    def status(self, grant_id: str) -> GrantStatus:
        grant = self.ledger.get_grant(grant_id)
        assert grant is not None
        return grant.status

    def revoked_list(self, profile: str = "fast", account: str = MEMBER_A) -> list[str]:
        shared = self.ledger.shared_role(account, profile)
        assert shared is not None
        return shared.revoked

    def iam_deny(self, role: str = "jit-s-fast", account: str = MEMBER_A) -> Any:
        try:
            out = self.admin[account].get_role_policy(RoleName=role, PolicyName="jit-revoked")
        except ClientError:
            return None
        return out["PolicyDocument"]


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    from jit_broker import runtime

    with moto_stack(tmp_path) as stack:
        policy = yaml.safe_load(EXAMPLE_POLICY.read_text())
        policy["profiles"]["s3-read"]["max_active_grants"] = 10
        policy["profiles"].update(PROFILES)
        policy["limits"]["requests_per_minute"] = 1000
        stack.policy_file.write_text(yaml.safe_dump(policy))
        boundary_name = stack.seeded.boundary_arn.rsplit("/", 1)[-1]
        boundary = stack.iam.get_policy_version(
            PolicyArn=stack.seeded.boundary_arn, VersionId="v1"
        )["PolicyVersion"]["Document"]
        admin = {HUB: stack.iam}
        for account in (MEMBER_A, MEMBER_B):
            admin[account] = _admin_client(stack.sts, account)
            admin[account].create_policy(
                PolicyName=boundary_name, PolicyDocument=json.dumps(boundary)
            )
            admin[account].create_role(RoleName=MEMBER_ROLE, AssumeRolePolicyDocument="{}")
        env = {"JIT_MEMBER_ACCOUNTS": f"{MEMBER_A},{MEMBER_B}", "JIT_MEMBER_ROLE_NAME": MEMBER_ROLE}
        settings = Settings.from_env(stack.seeded.broker_env(str(stack.policy_file)) | env)
        broker_members = MemberClients(
            sts=stack.sts,
            session_factory=lambda **c: boto3.session.Session(region_name="us-east-1", **c),
            role_arn_of=settings.member_role_arn,
            session_name="jit-broker",
        )
        stack.broker = build_broker(
            {"iam": stack.iam, "sts": stack.sts, "dynamodb": stack.dynamodb},
            stack.seeded,
            stack.policy_file,
            env=env,
            member_iam=lambda account: Iam(broker_members.client(account)),
        )
        runtime.set_broker(stack.broker)
        sts_calls = CallLog()
        auditor_sts = sts_calls.attach(boto3.client("sts", region_name="us-east-1"))
        audit_calls = {account: CallLog() for account in (HUB, MEMBER_A, MEMBER_B)}
        made = Org(
            stack=stack,
            admin=admin,
            audit_calls=audit_calls,
            sts_calls=sts_calls,
            auditor_sts=auditor_sts,
            members=MemberClients(
                sts=auditor_sts,
                session_factory=lambda **c: boto3.session.Session(region_name="us-east-1", **c),
                role_arn_of=settings.member_role_arn,
                session_name="jit-auditor",
            ),
        )
        made._clients[HUB] = audit_calls[HUB].attach(boto3.client("iam", region_name="us-east-1"))
        made.clear()
        yield made


def grant(
    call: Any, profile: str, account: str | None = None, duration: int = 900
) -> dict[str, Any]:
    body = grant_body(profile=profile, duration=duration)
    if account is not None:
        body["account"] = account
    status, _, out = call("POST", "/v1/grants", body)
    assert status == 201, out
    return dict(out["grant"])


def revoke(call: Any, grant_id: str) -> None:
    status, _, out = call("POST", f"/v1/grants/{grant_id}/revoke", {"reason": "done"})
    assert status == 200, out


def role_of(granted: dict[str, Any]) -> str:
    return naming.role_name_for(granted["id"])


def account_report(report: AuditReport, account: str) -> AccountReport:
    [found] = [a for a in report.accounts if a.account == account]
    return found


# ----------------------------------------------------------------- every account, each its own
def test_one_run_sweeps_the_hub_and_both_members_each_with_its_own_calls_and_report(org, call):
    at_hub = grant(call, "s3-read")
    in_a = grant(call, "member-read", MEMBER_A)
    in_b = grant(call, "member-read", MEMBER_B)
    assert role_of(in_a) in org.roles(MEMBER_A) and role_of(in_a) not in org.roles(HUB)
    org.clear()

    report = org.auditor().run(at=NOW + 900 + SESSION_AND_SKEW + 1)

    assert [a.account for a in report.accounts] == [HUB, MEMBER_A, MEMBER_B]
    for account, made in ((HUB, at_hub), (MEMBER_A, in_a), (MEMBER_B, in_b)):
        mine = account_report(report, account)
        assert (mine.removed, mine.cleaned, mine.findings) == ([role_of(made)], [made["id"]], [])
        assert mine.complete and mine.grants_open == 1
        assert org.iam_calls(account) == ["ListRoles", *REMOVAL]
        assert {p["RoleName"] for _, p in org.audit_calls[account].calls if "RoleName" in p} == {
            role_of(made)
        }
        assert org.status(made["id"]) == GrantStatus.CLEANED
        assert role_of(made) not in org.roles(account)
    assert sorted(report.removed) == sorted(role_of(g) for g in (at_hub, in_a, in_b))
    # each member through its execution role, assumed by the auditor's own role, once
    assert org.sts_calls.named("AssumeRole") == [
        {
            "RoleArn": f"arn:aws:iam::{account}:role/{MEMBER_ROLE}",
            "RoleSessionName": "jit-auditor",
            "DurationSeconds": 900,
        }
        for account in (MEMBER_A, MEMBER_B)
    ]


def test_a_grant_is_judged_only_in_the_account_it_is_in(org, call):
    in_a = grant(call, "member-read", MEMBER_A)
    org.clear()
    report = org.auditor().run(at=NOW + 900 + SESSION_AND_SKEW + 1)
    hub, a, b = (account_report(report, x) for x in (HUB, MEMBER_A, MEMBER_B))
    assert (hub.grants_open, a.grants_open, b.grants_open) == (0, 1, 0)
    assert hub.cleaned == [] and b.cleaned == []
    assert (a.removed, a.cleaned) == ([role_of(in_a)], [in_a["id"]])
    assert org.iam_calls(HUB) == ["ListRoles"] and org.iam_calls(MEMBER_B) == ["ListRoles"]


def test_a_grant_in_an_account_the_stack_no_longer_lists_is_reported_and_left_alone(org, call):
    in_a = grant(call, "member-read", MEMBER_A)
    org.clear()
    report = org.auditor(accounts=(MEMBER_B,)).run(at=NOW + 10**6)
    assert [(f.kind, f.account, f.grant_id) for f in report.findings] == [
        ("account_not_swept", MEMBER_A, in_a["id"])
    ]
    assert [a.account for a in report.accounts] == [HUB, MEMBER_B]
    assert org.iam_calls(MEMBER_A) == []
    assert org.status(in_a["id"]) == GrantStatus.ACTIVE
    assert role_of(in_a) in org.roles(MEMBER_A)


def test_each_finding_and_event_names_its_account(org, call):
    org.admin[MEMBER_B].create_role(
        RoleName="jit-team-role",
        Path=ROLE_PATH,
        AssumeRolePolicyDocument="{}",
        Tags=[{"Key": documents.TAG_OWNER, "Value": "jit-broker-local"}],
    )
    events = Events()
    report = org.auditor(events=events).run(at=NOW + 10**6)
    assert [(f.kind, f.account, f.role_name) for f in report.findings] == [
        ("unexpected_role", MEMBER_B, "jit-team-role")
    ]
    assert account_report(report, MEMBER_B).findings == report.findings
    assert [(t, d["account"], d["role_name"]) for t, d in events.sent] == [
        ("JIT audit finding", MEMBER_B, "jit-team-role")
    ]
    assert "jit-team-role" in org.roles(MEMBER_B)


# ----------------------------------------------------------------- an account out of reach
@pytest.mark.parametrize("how", ["execution_role_refused", "listing_refused"])
def test_an_unreachable_member_is_a_finding_and_a_metric_and_the_others_are_swept(org, call, how):
    in_a = grant(call, "member-read", MEMBER_A)
    in_b = grant(call, "member-read", MEMBER_B)
    at_hub = grant(call, "s3-read")
    if how == "execution_role_refused":  # the member template not deployed, or not trusting us
        org.auditor_sts.meta.events.register(
            "before-parameter-build.sts.AssumeRole",
            lambda params, **_: (
                _refused("AssumeRole")() if f":{MEMBER_B}:" in params["RoleArn"] else None
            ),
        )
    else:  # the execution role assumed, its listing refused
        org.audit_client(MEMBER_B).meta.events.register(
            "before-parameter-build.iam.ListRoles", _refused("ListRoles")
        )
    org.clear()
    events, metrics = Events(), Metrics()

    report = org.auditor(events=events, metrics=metrics).run(at=NOW + 900 + SESSION_AND_SKEW + 1)

    b = account_report(report, MEMBER_B)
    assert (b.complete, b.stopped, b.removed, b.cleaned) == (
        False,
        "account_unreachable",
        [],
        [],
    )
    assert [(f.kind, f.account) for f in report.findings] == [("account_unreachable", MEMBER_B)]
    if how == "execution_role_refused":
        assert f"arn:aws:iam::{MEMBER_B}:role/{MEMBER_ROLE}" in b.findings[0].detail
        assert org.iam_calls(MEMBER_B) == []
    assert metrics.values["AccountsUnreachable"] == 1
    assert metrics.values["AuditIncomplete"] == 1
    assert [(d["kind"], d["account"]) for t, d in events.sent if t == "JIT audit finding"] == [
        ("account_unreachable", MEMBER_B)
    ]
    assert (report.complete, report.stopped) == (False, "account_unreachable")
    # the other member, and the hub, are swept all the same
    assert org.iam_calls(MEMBER_A) == ["ListRoles", *REMOVAL]
    assert role_of(in_a) not in org.roles(MEMBER_A)
    assert account_report(report, MEMBER_A).cleaned == [in_a["id"]]
    assert account_report(report, HUB).removed == [role_of(at_hub)]
    # nothing of the unreachable account's grant was touched
    assert org.status(in_b["id"]) == GrantStatus.ACTIVE
    assert role_of(in_b) in org.roles(MEMBER_B)


def test_all_accounts_reached_publishes_zero_accounts_unreachable(org):
    metrics = Metrics()
    org.auditor(metrics=metrics).run(at=NOW)
    assert metrics.values["AccountsUnreachable"] == 0


# ----------------------------------------------------------------- budgets and cursors
def test_each_account_removes_at_most_its_share_of_the_deletions(org, call):
    for _ in range(2):
        grant(call, "s3-read")
        grant(call, "member-read", MEMBER_A)
        grant(call, "member-read", MEMBER_B)
    report = org.auditor(max_deletions_per_run=3).run(at=NOW + 900 + SESSION_AND_SKEW + 1)
    for account in (HUB, MEMBER_A, MEMBER_B):
        mine = account_report(report, account)
        assert (len(mine.removed), len(mine.deferred)) == (1, 1), account
        assert org.iam_calls(account).count("DeleteRole") == 1


def test_a_member_out_of_its_time_saves_its_own_cursor_and_the_next_run_resumes_after_it(
    org, call, frozen_clock: Any
):
    """Member A's sweep runs past its share of the time after its first removal: it stops
    there and saves its own cursor; member B still gets the rest of the run's time. The next
    run resumes A after that cursor (the role before it comes last), then clears it."""
    with deterministic_grant_ids():  # role names sort in the order they are made
        live = grant(call, "member-read", MEMBER_A, duration=3600)
        stale = [grant(call, "member-read", MEMBER_A) for _ in range(3)]
        in_b = grant(call, "member-read", MEMBER_B)
    assert sorted([role_of(live), *map(role_of, stale)]) == [role_of(live), *map(role_of, stale)]
    clock = FakeMonotonic()

    def overrun(**_: Any) -> None:
        clock.now += 50  # past A's share (45 s of 90), within the run's

    org.audit_client(MEMBER_A).meta.events.register("after-call.iam.DeleteRole", overrun)
    first_at = NOW + 900 + SESSION_AND_SKEW + 1  # the live one expired, not yet removable
    org.clear()
    first = org.auditor(monotonic=clock, safety_margin_ms=0).run(at=first_at, budget_ms=90_000)

    a = account_report(first, MEMBER_A)
    assert (a.complete, a.stopped) == (False, "time_budget")
    assert a.removed == [role_of(stale[0])] and a.expired == [live["id"], stale[0]["id"]]
    assert account_report(first, HUB).complete
    assert account_report(first, MEMBER_B).removed == [role_of(in_b)]
    cursors = {
        i["pk"]["S"]: i["marker"]["S"]
        for i in org.stack.table_items()
        if i["pk"]["S"].startswith("AUDIT#cursor")
    }
    assert cursors == {f"AUDIT#cursor#{MEMBER_A}": role_of(stale[0])}

    org.audit_client(MEMBER_A).meta.events.unregister("after-call.iam.DeleteRole", overrun)
    org.clear()
    second = org.auditor().run(at=NOW + 3600 + SESSION_AND_SKEW + 1)
    assert account_report(second, MEMBER_A).complete
    assert [p["RoleName"] for p in org.audit_calls[MEMBER_A].named("DeleteRole")] == [
        role_of(stale[1]),
        role_of(stale[2]),
        role_of(live),
    ]
    assert org.ledger.audit_cursor(MEMBER_A) is None
    assert org.ledger.audit_cursor() is None and org.ledger.audit_cursor(MEMBER_B) is None


# ----------------------------------------------------------------- shared-role grants
def _no_iam_writes(org: Org) -> None:
    for account in (HUB, MEMBER_A, MEMBER_B):
        assert not set(org.iam_calls(account)) & IAM_WRITES, (account, org.iam_calls(account))


def test_an_expired_shared_grant_is_expired_then_cleaned_when_its_sessions_are_over(org, call):
    fast = grant(call, "fast", duration=900)
    expires = fast["expires_at"]
    auditor = org.auditor()
    org.clear()

    before = auditor.run(at=expires - 1)
    assert before.expired == [] and org.status(fast["id"]) == GrantStatus.ACTIVE

    at_expiry = auditor.run(at=expires)
    assert at_expiry.expired == [fast["id"]] and at_expiry.cleaned == []
    assert org.status(fast["id"]) == GrantStatus.EXPIRED

    last_second = auditor.run(at=expires + SKEW)  # the auditor's clock may run ahead of AWS's
    assert last_second.cleaned == [] and org.status(fast["id"]) == GrantStatus.EXPIRED

    over = auditor.run(at=expires + SKEW + 1)
    assert over.cleaned == [fast["id"]] and over.removed == []
    assert org.status(fast["id"]) == GrantStatus.CLEANED
    _no_iam_writes(org)
    assert "jit-s-fast" in org.roles(MEMBER_A)
    assert all(f.kind != "unexpected_role" for r in (before, over) for f in r.findings)


@pytest.mark.parametrize(
    ("duration", "revoked_after", "last_session_end"),
    [
        (1800, 0, 1800),  # the session policy ends every session at the grant's expiry
        (7200, 600, 600 + 3600),  # none was issued after the revocation, each at most 1 h
    ],
    ids=["expiry-first", "last-session-first"],
)
def test_a_revoked_shared_grant_stays_denied_until_its_last_session_can_have_ended(
    org, call, frozen_clock: Any, duration, revoked_after, last_session_end
):
    fast = grant(call, "fast", duration=duration)
    frozen_clock.advance(revoked_after)
    revoke(call, fast["id"])
    assert org.revoked_list() == [fast["id"]]
    assert org.iam_deny() == documents.revoked_grants_deny([fast["id"]])
    prune_at = NOW + last_session_end + SKEW + 1
    auditor = org.auditor()
    org.clear()

    kept = auditor.run(at=prune_at - 1)
    assert kept.unlisted == [] and kept.cleaned == [] and kept.findings == []
    assert org.iam_calls(MEMBER_A) == ["ListRoles", "ListRoleTags", "GetRolePolicy"]
    assert org.revoked_list() == [fast["id"]] and org.iam_deny() is not None
    assert org.status(fast["id"]) == GrantStatus.REVOKED

    org.clear()
    pruned = auditor.run(at=prune_at)
    assert pruned.unlisted == [fast["id"]] and pruned.cleaned == [fast["id"]]
    assert pruned.removed == [] and pruned.findings == []
    # off the ledger's list, the deny written from it (none left: no deny policy), the role kept
    assert org.revoked_list() == []
    assert org.iam_calls(MEMBER_A) == [
        "ListRoles",
        "DeleteRolePolicy",
        "ListRoleTags",
        "GetRolePolicy",
    ]
    assert org.audit_calls[MEMBER_A].named("DeleteRolePolicy") == [
        {"RoleName": "jit-s-fast", "PolicyName": "jit-revoked"}
    ]
    assert org.iam_deny() is None and "jit-s-fast" in org.roles(MEMBER_A)
    assert org.status(fast["id"]) == GrantStatus.CLEANED
    assert org.iam_calls(HUB) == ["ListRoles"] and org.iam_calls(MEMBER_B) == ["ListRoles"]


def test_pruning_one_revoked_grant_rewrites_the_deny_with_exactly_the_rest(org, call):
    short = grant(call, "fast", duration=900)
    longer = grant(call, "fast", duration=1800)
    revoke(call, short["id"])
    revoke(call, longer["id"])
    org.clear()

    report = org.auditor().run(at=NOW + 900 + SKEW + 1)

    assert report.unlisted == [short["id"]] and report.cleaned == [short["id"]]
    assert org.revoked_list() == [longer["id"]]
    assert org.audit_calls[MEMBER_A].named("PutRolePolicy") == [
        {
            "RoleName": "jit-s-fast",
            "PolicyName": "jit-revoked",
            "PolicyDocument": documents.compact(documents.revoked_grants_deny([longer["id"]])),
        }
    ]
    assert org.iam_deny() == documents.revoked_grants_deny([longer["id"]])
    assert org.status(longer["id"]) == GrantStatus.REVOKED


@pytest.mark.parametrize("tampered", ["deny_missing", "deny_lists_another"])
def test_a_shared_roles_deny_that_differs_from_the_ledger_is_rewritten_from_it(org, call, tampered):
    """A revocation that stopped after the ledger but before IAM (the deny missing), or a hand
    edit: the deny is rewritten from the ledger's list, and reported."""
    fast = grant(call, "fast", duration=1800)
    revoke(call, fast["id"])
    if tampered == "deny_missing":
        org.admin[MEMBER_A].delete_role_policy(RoleName="jit-s-fast", PolicyName="jit-revoked")
    else:
        other = naming.new_grant_id()
        org.admin[MEMBER_A].put_role_policy(
            RoleName="jit-s-fast",
            PolicyName="jit-revoked",
            PolicyDocument=json.dumps(documents.revoked_grants_deny([other])),
        )
    org.clear()

    report = org.auditor().run(at=NOW + 60)

    assert [(f.kind, f.account, f.role_name) for f in report.findings] == [
        ("drift_revoked_deny", MEMBER_A, "jit-s-fast")
    ]
    assert fast["id"] in report.findings[0].detail
    assert org.audit_calls[MEMBER_A].named("PutRolePolicy") == [
        {
            "RoleName": "jit-s-fast",
            "PolicyName": "jit-revoked",
            "PolicyDocument": documents.compact(documents.revoked_grants_deny([fast["id"]])),
        }
    ]
    assert org.iam_deny() == documents.revoked_grants_deny([fast["id"]])
    org.clear()
    again = org.auditor().run(at=NOW + 60)
    assert again.findings == [] and org.audit_calls[MEMBER_A].named("PutRolePolicy") == []


def test_a_dry_run_reports_a_due_unlisting_and_writes_nothing(org, call):
    fast = grant(call, "fast", duration=900)
    revoke(call, fast["id"])
    org.clear()
    report = org.auditor().run(dry_run=True, at=NOW + 900 + SKEW + 1)
    assert report.unlisted == [fast["id"]] and report.cleaned == [fast["id"]]
    assert report.findings == []
    _no_iam_writes(org)
    assert not {"UpdateItem", "TransactWriteItems", "PutItem"} & set(org.stack.calls.operations())
    assert org.revoked_list() == [fast["id"]] and org.status(fast["id"]) == GrantStatus.REVOKED


def test_a_grant_left_on_the_list_after_its_cleanup_is_pruned(org, call):
    """Revoked again while the auditor was taking it off (the broker re-adds a revoked grant to
    the list): the grant is cleaned, its id on the list; no open grant would ever take it off."""
    fast = grant(call, "fast", duration=900)
    revoke(call, fast["id"])
    at = NOW + 900 + SKEW + 1
    org.auditor().run(at=at)
    assert org.status(fast["id"]) == GrantStatus.CLEANED and org.revoked_list() == []
    record = org.ledger.get_grant(fast["id"])
    assert record is not None
    as_revoked = record.model_copy(update={"status": GrantStatus.REVOKED})
    org.ledger.revoke_shared(as_revoked, now=at, by=JIT_USER, most_listed=100)
    write_revoked(IamAudit(org.admin[MEMBER_A]), org.ledger, MEMBER_A, "fast")
    assert org.revoked_list() == [fast["id"]] and org.iam_deny() is not None
    org.clear()

    report = org.auditor().run(at=at)

    assert report.unlisted == [fast["id"]] and report.findings == []
    assert org.revoked_list() == [] and org.iam_deny() is None
    assert org.audit_calls[MEMBER_A].named("DeleteRolePolicy") == [
        {"RoleName": "jit-s-fast", "PolicyName": "jit-revoked"}
    ]


# ----------------------------------------------------------------- shared roles are ours
def test_shared_roles_are_the_brokers_and_one_it_cannot_prove_is_reported_and_left_alone(org, call):
    grant(call, "fast", duration=900)
    decoy = org.admin[MEMBER_A].create_role(
        RoleName="jit-s-decoy",
        Path=ROLE_PATH,
        AssumeRolePolicyDocument="{}",
        Tags=[
            {"Key": documents.TAG_OWNER, "Value": "jit-broker-local"},
            {"Key": documents.TAG_PROFILE, "Value": "decoy"},
        ],
    )["Role"]
    org.clear()

    report = org.auditor().run(at=NOW + 10**6)

    assert [(f.kind, f.account, f.role_name) for f in report.findings] == [
        ("unexpected_role", MEMBER_A, "jit-s-decoy")
    ]
    assert report.removed == []
    _no_iam_writes(org)
    assert {"jit-s-fast", decoy["RoleName"]} <= org.roles(MEMBER_A)


def test_a_shared_role_whose_profile_is_gone_is_reported_never_removed(org, call):
    fast = grant(call, "fast", duration=900)
    policy = yaml.safe_load(org.stack.policy_file.read_text())
    del policy["profiles"]["fast"]
    org.stack.policy_file.write_text(yaml.safe_dump(policy))
    org.clear()

    report = org.auditor().run(at=NOW + 10**6)

    assert [(f.kind, f.account, f.role_name) for f in report.findings] == [
        ("shared_role_unused", MEMBER_A, "jit-s-fast")
    ]
    assert report.cleaned == [fast["id"]] and report.removed == []
    _no_iam_writes(org)
    assert "jit-s-fast" in org.roles(MEMBER_A)


# ----------------------------------------------------------------- the Lambda's wiring
def test_the_functions_auditor_reaches_each_member_through_its_execution_role(org):
    from jit_broker.runtime import build_auditor

    org.admin[MEMBER_A].create_role(
        RoleName="jit-only-in-a", Path=ROLE_PATH, AssumeRolePolicyDocument="{}"
    )
    env = org.stack.seeded.cleanup_env(str(org.stack.policy_file), event_bus=False) | {
        "JIT_MEMBER_ACCOUNTS": f"{MEMBER_A},{MEMBER_B}",
        "JIT_MEMBER_ROLE_NAME": MEMBER_ROLE,
    }
    auditor = build_auditor(boto3.session.Session(region_name="us-east-1"), env=env)
    assert auditor.accounts == (HUB, MEMBER_A, MEMBER_B)
    in_a = auditor._iam_in(MEMBER_A)
    assert [r.name for page in in_a.role_pages(ROLE_PATH, page_size=10) for r in page.roles] == [
        "jit-only-in-a"
    ]
    assert in_a._iam.meta.config.retries["mode"] == "adaptive"
