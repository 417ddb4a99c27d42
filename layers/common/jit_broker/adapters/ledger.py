"""The grant ledger in DynamoDB: the only module that talks to the table.

Single table, keys ``pk``/``sk``:
- grant     ``GRANT#<id>`` / ``GRANT``                 (index by_requester: gsi1pk ``OWNER#<owner>``,
                                                       gsi1sk ``<created_at>#<id>``; index by_expiry:
                                                       gsi2pk ``GRANT``, gsi2sk expires_at)
- session   ``GRANT#<id>`` / ``SESSION#<issued_at>#<access key id>`` (never the secret or token)
- nonce     ``NONCE#<owner>#<nonce>`` / ``NONCE``       (TTL; a replay fails its conditional put)
- rate      ``RATE#<owner>#<minute>`` / ``RATE``        (TTL; credential requests per minute:
                                                       grants and sessions alike)
- quota     ``QUOTA#roles`` / ``QUOTA``                 (live per-grant roles, against the cap)
- quota     ``QUOTA#owner#<owner>`` / ``QUOTA``         (live roles of one owner, against theirs)
- slot      ``SLOT#<owner>#<profile>#<k>`` / ``SLOT``   (one per active grant a profile allows:
                                                       claimed with the grant, free once expired)
- cursor    ``AUDIT#cursor`` / ``AUDIT``                (where an interrupted audit sweep resumes;
                                                       ``AUDIT#cursor#<account>`` a member's)
- shared    ``SHARED#<account>#<profile>`` / ``SHARED`` (a shared role: what it was written as,
                                                       its revoked grants (string set), rev)
- review    ``REVIEW#<profile>`` / ``<review deadline>#<id>`` (a request awaiting approval, found
                                                       by its approvers; read while its deadline
                                                       is ahead, TTL after it)
- decision  ``GRANT#<id>`` / ``DECISION#<person>``     (one approver's decision: a second one by
                                                       the same person fails its conditional put)
- bg review ``BREAKGLASS`` / ``<review due>#<id>``      (a break-glass grant's review, written with
                                                       the grant; closed_at once an approver closed
                                                       it; the auditor reads the open ones past due)
A request awaiting approval (status requested) holds no role, slot or quota: they are claimed
when its requester takes it up once approved (approved → issuing, or → active for a shared
role). Its grant item records the requester's person (identity.Caller.person); an approval's
write is conditional on the approver's person differing from it, on the request's deadline
being ahead and on the approvals counted so far, so self-approval, a decision after the
deadline and a lost concurrent approval are refused by DynamoDB, not by the code before it.
Denied and unreviewed requests leave the auditor's partition at once (gsi2pk ``CLOSED``).
A shared-role grant holds no role of its own: it claims no role quota.
A break-glass grant's review is closed by a write conditional on the grant being break-glass,
not yet reviewed and its requester's person differing from the reviewer's (as an approval's).
A cleaned grant leaves the index's ``GRANT`` partition (its gsi2pk becomes ``CLEANED``), so the
auditor reads only the grants that may still have a role: live ones and those awaiting cleanup.
Every write is conditional; status moves only forward. Times are epoch seconds (Number). A
grant's fields are attributes of the same name (boto3's TypeSerializer). ``<owner>`` is the
exact caller (identity.Caller.owner): limits, slots and "my grants" are per person, never per
role shared by several people.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from jit_broker.errors import (
    ActiveGrantsHeld,
    AlreadyDecided,
    Conflict,
    GrantNotActive,
    LedgerUnavailable,
    NotAwaitingApproval,
    OwnerRoleCapReached,
    RateLimited,
    ReplayedRequest,
    ReviewClosed,
    ReviewExpired,
    RevocationListFull,
    RoleCapReached,
    SelfApprovalRefused,
    SelfReviewRefused,
)
from jit_broker.models.domain import (
    FORWARD,
    Decision,
    Grant,
    GrantMode,
    GrantStatus,
    IssuedSession,
    LimitCounts,
    Review,
    SharedRole,
    Verdict,
)

RECORD_RETENTION_SECONDS = 400 * 24 * 3600  # grant and session records outlive CloudTrail's 90 days
NONCE_TTL_SECONDS = 15 * 60  # longer than SigV4's 5-minute window either side
GRANT_FIELDS = frozenset(Grant.model_fields)
_SERIALIZE = TypeSerializer().serialize
_DESERIALIZE = TypeDeserializer().deserialize
ROLE_QUOTA = "QUOTA#roles"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(int(value))}


def _slot_pk(owner: str, profile: str, k: int) -> str:
    return f"SLOT#{owner}#{profile}#{k}"


BREAK_GLASS_REVIEWS = "BREAKGLASS"


def _break_glass_review_key(grant: Grant) -> dict[str, Any]:
    return {
        "pk": _s(BREAK_GLASS_REVIEWS),
        "sk": _s(f"{grant.review_due or 0:012d}#{grant.grant_id}"),
    }


def _review_key(grant: Grant) -> dict[str, Any]:
    return {
        "pk": _s(f"REVIEW#{grant.profile}"),
        "sk": _s(f"{grant.review_deadline or 0:012d}#{grant.grant_id}"),
    }


class _Moved(Exception):
    """The grant's conditional update failed: read it again to tell why."""


def _owner_quota_pk(owner: str) -> str:
    return f"QUOTA#owner#{owner}"


def _holds_role(grant: Grant) -> bool:
    """Whether the grant has a role of its own (and so holds role quota)."""
    return grant.mode is GrantMode.PER_GRANT_ROLE


def _shared_key(account: str, profile: str) -> dict[str, Any]:
    return {"pk": _s(f"SHARED#{account}#{profile}"), "sk": _s("SHARED")}


def _cursor_key(account: str | None) -> dict[str, Any]:
    return {"pk": _s(f"AUDIT#cursor#{account}" if account else "AUDIT#cursor"), "sk": _s("AUDIT")}


def _to_item(grant: Grant) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": _s(f"GRANT#{grant.grant_id}"),
        "sk": _s("GRANT"),
        "gsi1pk": _s(f"OWNER#{grant.owner}"),
        "gsi1sk": _s(f"{grant.created_at:012d}#{grant.grant_id}"),
        "gsi2pk": _s("GRANT"),
        "gsi2sk": _n(grant.expires_at),
        "ttl": _n(grant.expires_at + RECORD_RETENTION_SECONDS),
    }
    # An empty list is kept (it says "none"); None is left out.
    data = grant.model_dump(mode="json", exclude_none=True)
    return item | {key: _SERIALIZE(value) for key, value in data.items()}


def _from_item(item: dict[str, Any]) -> Grant:
    return Grant.model_validate(
        {key: _DESERIALIZE(value) for key, value in item.items() if key in GRANT_FIELDS}
    )


@contextmanager
def _reading() -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise LedgerUnavailable("the grant ledger cannot be read right now") from exc


@contextmanager
def _writing(*ignored_codes: str) -> Iterator[None]:
    """A single write; a failed condition among ``ignored_codes`` counts as done."""
    try:
        yield
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ignored_codes:
            raise LedgerUnavailable("the grant ledger cannot be written right now") from exc
    except BotoCoreError as exc:
        raise LedgerUnavailable("the grant ledger cannot be written right now") from exc


class _QuotaAtZero(Exception):
    """A role quota counter is already zero: nothing to give back."""


class Ledger:
    # A transaction cancelled only because another one touched the same item at the same
    # moment (the shared role quota under a burst of grants) is tried again, a few times.
    CONFLICT_ATTEMPTS = 4
    BATCH_GET_KEYS = 100  # DynamoDB's most per BatchGetItem
    UNPROCESSED_ATTEMPTS = 4

    def __init__(
        self, client: Any, table_name: str, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._db = client
        self._table = table_name
        self._sleep = sleep

    # --- reads -------------------------------------------------------------------------
    def get_grant(self, grant_id: str) -> Grant | None:
        with _reading():
            out = self._db.get_item(
                TableName=self._table,
                Key={"pk": _s(f"GRANT#{grant_id}"), "sk": _s("GRANT")},
                ConsistentRead=True,
            )
        item = out.get("Item")
        return _from_item(item) if item else None

    def grants_of(self, owner: str, *, limit: int = 50) -> list[Grant]:
        """The owner's newest grants (one Query on the owner's index partition)."""
        with _reading():
            out = self._db.query(
                TableName=self._table,
                IndexName="by_requester",
                KeyConditionExpression="gsi1pk = :o",
                ExpressionAttributeValues={":o": _s(f"OWNER#{owner}")},
                ScanIndexForward=False,
                Limit=limit,
            )
        return [_from_item(item) for item in out.get("Items", [])]

    def limit_counts(
        self,
        owner: str,
        profile: str,
        *,
        nonce: str,
        now: int,
        max_active: int | None,
        roles: bool,
    ) -> LimitCounts:
        """What a grant request's limits are judged on, in one consistent read and no write:
        whether its nonce is recorded, the owner's credential requests this minute, which of
        the profile's ``max_active`` active-grant slots are held, and, when the grant will
        hold a role of its own (``roles``), the stack's and the owner's live roles. Each is
        the item the grant's transaction then writes under a condition (open_grant)."""
        nonce_pk, rate_pk = f"NONCE#{owner}#{nonce}", f"RATE#{owner}#{now // 60}"
        slot_pks = [_slot_pk(owner, profile, k) for k in range(max_active or 0)]
        keys = [
            (nonce_pk, "NONCE"),
            (rate_pk, "RATE"),
            *([(ROLE_QUOTA, "QUOTA"), (_owner_quota_pk(owner), "QUOTA")] if roles else []),
            *((pk, "SLOT") for pk in slot_pks),
        ]
        found = {item["pk"]["S"]: item for item in self._get_many(keys)}

        def number(pk: str, attribute: str) -> int:
            return int(found.get(pk, {}).get(attribute, {}).get("N", "0"))

        return LimitCounts(
            nonce_used=nonce_pk in found,
            requests_this_minute=number(rate_pk, "hits"),
            held_slots=frozenset(
                k for k, pk in enumerate(slot_pks) if pk in found and number(pk, "expires_at") > now
            ),
            live_roles=number(ROLE_QUOTA, "live_roles") if roles else None,
            owner_live_roles=number(_owner_quota_pk(owner), "live_roles") if roles else None,
        )

    def _get_many(self, keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """The items of ``keys`` (pk, sk) that exist, read consistently: BatchGetItem by 100
        keys, the keys DynamoDB leaves unprocessed asked again a bounded number of times
        (then LedgerUnavailable: an answer judged on part of the items could be wrong)."""
        items: list[dict[str, Any]] = []
        for first in range(0, len(keys), self.BATCH_GET_KEYS):
            pending: list[dict[str, Any]] = [
                {"pk": _s(pk), "sk": _s(sk)} for pk, sk in keys[first : first + self.BATCH_GET_KEYS]
            ]
            for attempt in range(1, self.UNPROCESSED_ATTEMPTS + 1):
                with _reading():
                    out = self._db.batch_get_item(
                        RequestItems={self._table: {"Keys": pending, "ConsistentRead": True}}
                    )
                items += out.get("Responses", {}).get(self._table, [])
                pending = out.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                if not pending:
                    break
                if attempt < self.UNPROCESSED_ATTEMPTS:
                    self._sleep(0.02 * 2**attempt * (0.5 + random.random()))  # jitter  # nosec B311
            else:
                raise LedgerUnavailable("the grant ledger cannot be read right now")
        return items

    # --- writes ------------------------------------------------------------------------
    def open_grant(
        self,
        grant: Grant,
        *,
        nonce: str,
        now: int,
        rate_limit: int,
        max_roles: int,
        max_roles_per_owner: int,
        max_active: int | None = None,
        first_session: IssuedSession | None = None,
    ) -> None:
        """Write the grant (status issuing) before any role exists, in one transaction with
        the nonce (replay → 409), the owner's rate counter, the stack's and the owner's role
        quotas and, when the profile caps active grants (``max_active``), the grant's slot
        (→ 429). The domain judged the same items by a read just before (limit_counts): these
        conditions decide between requests made at the same moment.

        A shared-role grant makes no role: it is written once, already active, with its
        ``first_session`` in the same transaction (and holds no role quota)."""
        owner = grant.owner
        items = [
            self._nonce_put(owner, nonce, now),
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _to_item(grant),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            self._rate_update(owner, now, rate_limit),
        ]
        errors: list[Exception] = [
            ReplayedRequest(),
            Conflict("a grant with this id already exists"),
            RateLimited(rate_limit),
        ]
        self._claim(
            items, errors, grant, now, max_roles, max_roles_per_owner, max_active, first_session
        )
        if grant.break_glass:
            items.append(self._break_glass_review_put(grant))
            errors.append(Conflict("a break-glass review with this id already exists"))
        self._transact(items, errors)

    def _claim(
        self,
        items: list[dict[str, Any]],
        errors: list[Exception],
        grant: Grant,
        now: int,
        max_roles: int,
        max_roles_per_owner: int,
        max_active: int | None,
        first_session: IssuedSession | None,
    ) -> None:
        """What a grant claims as it starts (open_grant, take_up), each item with the error its
        failed condition means: the role quotas (a role of its own), its active-grant slot,
        its first session."""
        if _holds_role(grant):
            items += [
                self._quota_claim(ROLE_QUOTA, max_roles),
                self._quota_claim(_owner_quota_pk(grant.owner), max_roles_per_owner),
            ]
            errors += [RoleCapReached(max_roles), OwnerRoleCapReached(max_roles_per_owner)]
        if grant.slot is not None:
            items.append(self._slot_put(grant, now))
            errors.append(ActiveGrantsHeld(grant.profile, max_active or grant.slot + 1))
        if first_session is not None:
            items.append(self._session_put(first_session))
            errors.append(Conflict("session already recorded"))

    def _break_glass_review_put(self, grant: Grant) -> dict[str, Any]:
        """The open review of a break-glass grant: how the auditor finds it once due."""
        if grant.review_due is None:
            raise ValueError("a break-glass grant is written with its review_due")
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    **_break_glass_review_key(grant),
                    "grant_id": _s(grant.grant_id),
                    "profile": _s(grant.profile),
                    "requester_arn": _s(grant.requester_arn),
                    "created_at": _n(grant.created_at),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def activate(self, grant: Grant, session: IssuedSession) -> None:
        """issuing → active with the role's id, and the first session's record, atomically."""
        self._transact(
            [
                self._status_update(
                    grant.grant_id,
                    GrantStatus.ISSUING,
                    GrantStatus.ACTIVE,
                    {"role_arn": _s(grant.role_arn or ""), "role_id": _s(grant.role_id or "")},
                    sessions=True,
                ),
                self._session_put(session),
            ],
            [
                GrantNotActive("the grant is no longer pending"),
                Conflict("session already recorded"),
            ],
        )

    def admit_session(
        self, grant_id: str, *, owner: str, nonce: str, now: int, rate_limit: int
    ) -> None:
        """Before STS is called for a further session: the nonce (replay → 409), the owner's
        rate counter (→ 429) and the grant still active (→ 409), in one transaction."""
        self._transact(
            [
                self._nonce_put(owner, nonce, now),
                self._rate_update(owner, now, rate_limit),
                {
                    "ConditionCheck": {
                        "TableName": self._table,
                        "Key": {"pk": _s(f"GRANT#{grant_id}"), "sk": _s("GRANT")},
                        "ConditionExpression": "#status = :active",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": {":active": _s(GrantStatus.ACTIVE.value)},
                    }
                },
            ],
            [
                ReplayedRequest(),
                RateLimited(rate_limit),
                GrantNotActive("the grant is no longer active: request a new grant"),
            ],
        )

    def record_session(self, grant_id: str, session: IssuedSession) -> None:
        """A further session inside an active grant: its record and the grant's counter."""
        self._transact(
            [
                self._status_update(
                    grant_id, GrantStatus.ACTIVE, GrantStatus.ACTIVE, {}, sessions=True
                ),
                self._session_put(session),
            ],
            [
                GrantNotActive("the grant is no longer active"),
                Conflict("session already recorded"),
            ],
        )

    def move(
        self, grant_id: str, current: GrantStatus, new: GrantStatus, **fields: str | int
    ) -> None:
        values = {k: (_n(v) if isinstance(v, int) else _s(v)) for k, v in fields.items()}
        self._transact(
            [self._status_update(grant_id, current, new, values)],
            [GrantNotActive(f"the grant is not {current.value}")],
        )

    def release_slot(self, grant: Grant) -> None:
        """Free the grant's active-grant slot (revoked or failed); only if it still holds it."""
        if grant.slot is None:
            return
        with _writing("ConditionalCheckFailedException"):
            self._db.update_item(**self._slot_release(grant, grant.slot))

    def _slot_release(self, grant: Grant, slot: int) -> dict[str, Any]:
        """The update that frees the grant's active-grant slot number ``slot``."""
        return {  # an update, not a delete: the broker has no DeleteItem
            "TableName": self._table,
            "Key": {"pk": _s(_slot_pk(grant.owner, grant.profile, slot)), "sk": _s("SLOT")},
            "UpdateExpression": "SET expires_at = :zero",
            "ConditionExpression": "grant_id = :gid",
            "ExpressionAttributeValues": {":gid": _s(grant.grant_id), ":zero": _n(0)},
        }

    def release_role_quota(self, grant: Grant) -> None:
        """Give back the role quota a grant that never got its role held (the stack's and
        its owner's)."""
        if not _holds_role(grant):
            return
        for key in (ROLE_QUOTA, _owner_quota_pk(grant.owner)):
            with _writing("ConditionalCheckFailedException"):
                self._db.update_item(**self._quota_release(key)["Update"])

    def fail(self, grant: Grant, *, failure: str) -> None:
        """issuing → failed (the grant's role could not be made and was rolled back), with
        its role quotas and its active-grant slot given back, in one transaction. If a counter
        is already zero or the slot is no longer the grant's, the status alone, then each of
        the rest that can still be given back."""
        update = self._status_update(
            grant.grant_id, GrantStatus.ISSUING, GrantStatus.FAILED, {"failure": _s(failure)}
        )
        self._with_quota(update, grant, with_slot=True)

    def role_removed(self, grant: Grant, *, now: int) -> bool:
        """A revoked grant's role was torn down at once: recorded with the grant, and its
        quotas given back in the same transaction (the auditor later only marks it
        cleaned). False when a quota counter was already zero (it is then left alone)."""
        update = self._status_update(
            grant.grant_id,
            GrantStatus.REVOKED,
            GrantStatus.REVOKED,
            {"role_removed_at": _n(now)},
            condition="attribute_not_exists(role_removed_at)",
        )
        return self._with_quota(update, grant)

    # --- approvals (issue 11) -----------------------------------------------------------
    def open_request(self, grant: Grant, *, nonce: str, now: int, rate_limit: int) -> None:
        """A request awaiting approval (status requested): the grant, its review item (how
        its approvers find it), the nonce (replay → 409) and the requester's rate counter
        (→ 429), in one transaction. No role, slot or quota is claimed."""
        if grant.status is not GrantStatus.REQUESTED or grant.review_deadline is None:
            raise ValueError("open_request writes a request awaiting approval")
        review = {
            **_review_key(grant),
            "grant_id": _s(grant.grant_id),
            "ttl": _n(grant.review_deadline + 86400),
        }
        self._transact(
            [
                self._nonce_put(grant.owner, nonce, now),
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _to_item(grant),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                self._rate_update(grant.owner, now, rate_limit),
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": review,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ],
            [
                ReplayedRequest(),
                Conflict("a grant with this id already exists"),
                RateLimited(rate_limit),
                Conflict("a review with this id already exists"),
            ],
        )

    def reviews(self, profile: str, *, now: int, limit: int = 100) -> list[str]:
        """The ids of the profile's requests whose review deadline is still ahead, soonest
        first: one Query on the profile's review partition, at most ``limit`` read."""
        with _reading():
            out = self._db.query(
                TableName=self._table,
                KeyConditionExpression="pk = :p AND sk >= :ahead",
                ExpressionAttributeValues={
                    ":p": _s(f"REVIEW#{profile}"),
                    ":ahead": _s(f"{now + 1:012d}"),
                },
                Limit=limit,
            )
        return [str(item["grant_id"]["S"]) for item in out.get("Items", [])]

    def get_grants(self, grant_ids: list[str]) -> list[Grant]:
        """The grants of ``grant_ids`` that exist (consistent reads, by key)."""
        keys = list(dict.fromkeys((f"GRANT#{gid}", "GRANT") for gid in grant_ids))
        return [_from_item(item) for item in self._get_many(keys)]

    def decide(
        self,
        grant_id: str,
        decision: Decision,
        *,
        person: str,
        owner: str,
        nonce: str,
        now: int,
    ) -> Grant:
        """Record one approver's decision, in one transaction with their nonce (replay → 409)
        and a decision item per person (the same approver twice → AlreadyDecided). The
        grant's update is conditional on: status requested, the review deadline ahead, the
        requester's person not ``person`` (self-approval → SelfApprovalRefused, whatever the
        caller checked before) and, for an approval, the approvals counted so far (a
        concurrent approval: read again and retried). The approval that reaches the quorum
        moves it to approved, its window starting now; a denial moves it to denied. Returns
        the grant as written."""
        for attempt in range(1, self.CONFLICT_ATTEMPTS + 1):
            grant = self.get_grant(grant_id)
            if grant is None or grant.status is not GrantStatus.REQUESTED:
                raise NotAwaitingApproval(
                    f"grant {grant_id} is "
                    f"{grant.status.value if grant else 'unknown'}: it awaits no decision"
                )
            decided = self._decision(grant, decision, person=person, now=now)
            try:
                self._transact(
                    [
                        self._nonce_put(owner, nonce, now),
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": {
                                    "pk": _s(f"GRANT#{grant_id}"),
                                    "sk": _s(f"DECISION#{person}"),
                                    **{
                                        k: _SERIALIZE(v)
                                        for k, v in decision.model_dump(mode="json").items()
                                    },
                                    "ttl": _n(now + RECORD_RETENTION_SECONDS),
                                },
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                        decided[0],
                    ],
                    [ReplayedRequest(), AlreadyDecided(), _Moved()],
                )
            except _Moved:
                self._why_refused(grant_id, person=person, now=now)
                if attempt < self.CONFLICT_ATTEMPTS:
                    continue  # another approval was counted meanwhile: count again
                raise LedgerUnavailable(
                    "the request's approvals kept changing: try again"
                ) from None
            return decided[1]
        raise LedgerUnavailable("the request's approvals kept changing: try again")

    def _decision(
        self, grant: Grant, decision: Decision, *, person: str, now: int
    ) -> tuple[dict[str, Any], Grant]:
        """The grant's conditional update for ``decision``, and the grant as it then reads."""
        condition = "review_deadline > :now AND requester_person <> :person"
        condition_values = {":now": _n(now), ":person": _s(person)}
        recorded = [*(grant.decisions or []), decision]
        values: dict[str, Any] = {
            "decisions": _SERIALIZE([d.model_dump(mode="json") for d in recorded])
        }
        if decision.verdict is Verdict.DENY:
            new = GrantStatus.DENIED
            values |= {"denied_at": _n(now), "gsi2pk": _s("CLOSED")}
            after = grant.model_copy(
                update={"status": new, "denied_at": now, "decisions": recorded}
            )
        else:
            count = grant.approvals_count or 0
            condition += " AND approvals_count = :counted"
            condition_values[":counted"] = _n(count)
            values["approvals_count"] = _n(count + 1)
            update: dict[str, Any] = {"approvals_count": count + 1, "decisions": recorded}
            new = GrantStatus.REQUESTED
            if count + 1 >= (grant.approvals_required or 1):
                new = GrantStatus.APPROVED
                expires = now + (grant.window_seconds or 0)
                values |= {
                    "approved_at": _n(now),
                    "expires_at": _n(expires),
                    "gsi2sk": _n(expires),
                    "ttl": _n(expires + RECORD_RETENTION_SECONDS),
                }
                update |= {"status": new, "approved_at": now, "expires_at": expires}
            after = grant.model_copy(update=update)
        return (
            self._status_update(
                grant.grant_id,
                GrantStatus.REQUESTED,
                new,
                values,
                condition=condition,
                condition_values=condition_values,
            ),
            after,
        )

    def _why_refused(self, grant_id: str, *, person: str, now: int) -> None:
        """Why a decision's conditional update failed, read back from the grant: raised
        unless it was only a concurrent approval (then the caller counts again)."""
        grant = self.get_grant(grant_id)
        if grant is None:
            raise NotAwaitingApproval(f"grant {grant_id} does not exist")
        if grant.status is GrantStatus.EXPIRED_UNREVIEWED or grant.lapsed(now):
            raise ReviewExpired(
                f"grant {grant_id} was not reviewed in time (deadline {grant.review_deadline}): "
                "it is expired_unreviewed; its requester may ask again"
            )
        if grant.status is not GrantStatus.REQUESTED:
            raise NotAwaitingApproval(
                f"grant {grant_id} is {grant.status.value}: it awaits no decision"
            )
        if grant.requester_person == person:
            raise SelfApprovalRefused()

    # --- break-glass reviews (issue 11, part 3) -----------------------------------------
    def close_review(
        self, grant: Grant, review: Review, *, person: str, owner: str, nonce: str, now: int
    ) -> Grant:
        """Close ``grant``'s break-glass review: the review recorded with the grant and its
        review item closed, in one transaction with the reviewer's nonce (replay → 409). The
        grant's update is conditional on the grant being break-glass, not yet reviewed and its
        requester's person not ``person`` (self-review → SelfReviewRefused, whatever the
        caller checked before); a second review → ReviewClosed. Returns the grant as written."""
        item = _break_glass_review_key(grant)
        try:
            self._transact(
                [
                    self._nonce_put(owner, nonce, now),
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"pk": _s(f"GRANT#{grant.grant_id}"), "sk": _s("GRANT")},
                            "UpdateExpression": "SET #review = :review",
                            "ConditionExpression": (
                                "break_glass = :true AND attribute_not_exists(#review) "
                                "AND requester_person <> :person"
                            ),
                            "ExpressionAttributeNames": {"#review": "review"},
                            "ExpressionAttributeValues": {
                                ":review": _SERIALIZE(review.model_dump(mode="json")),
                                ":true": {"BOOL": True},
                                ":person": _s(person),
                            },
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": item,
                            "UpdateExpression": (
                                "SET closed_at = :now, closed_by = :by, #ttl = :ttl"
                            ),
                            "ConditionExpression": (
                                "attribute_exists(pk) AND attribute_not_exists(closed_at)"
                            ),
                            "ExpressionAttributeNames": {"#ttl": "ttl"},
                            "ExpressionAttributeValues": {
                                ":now": _n(now),
                                ":by": _s(review.by),
                                ":ttl": _n(now + RECORD_RETENTION_SECONDS),
                            },
                        }
                    },
                ],
                [ReplayedRequest(), _Moved(), _Moved()],
            )
        except _Moved:
            self._why_not_reviewed(grant.grant_id, person=person)
            raise ReviewClosed(f"grant {grant.grant_id}'s review is already closed") from None
        return grant.model_copy(update={"review": review})

    def _why_not_reviewed(self, grant_id: str, *, person: str) -> None:
        """Why a review's conditional write failed, read back from the grant (raises)."""
        grant = self.get_grant(grant_id)
        if grant is None or not grant.break_glass:
            raise ReviewClosed(f"grant {grant_id} is not a break-glass grant: it has no review")
        if grant.requester_person == person:
            raise SelfReviewRefused()
        if grant.review is not None:
            raise ReviewClosed(
                f"grant {grant_id}'s review was closed by {grant.review.by} at {grant.review.at}"
            )

    def open_break_glass_reviews(self, *, due_by: int, limit: int = 1000) -> list[str]:
        """The ids of break-glass grants whose review is still open and was due at or before
        ``due_by``, oldest due first: Queries on the review partition (closed ones filtered
        out), at most ``limit`` ids."""
        found: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :p AND sk < :upto",
            "FilterExpression": "attribute_not_exists(closed_at)",
            "ExpressionAttributeValues": {
                ":p": _s(BREAK_GLASS_REVIEWS),
                ":upto": _s(f"{due_by + 1:012d}"),
            },
        }
        with _reading():
            while len(found) < limit:
                out = self._db.query(**kwargs)
                found += [str(item["grant_id"]["S"]) for item in out.get("Items", [])]
                if "LastEvaluatedKey" not in out:
                    break
                kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        return found[:limit]

    def expire_unreviewed(self, grant: Grant, *, now: int) -> None:
        """requested → expired_unreviewed, only once its review deadline has passed; out of
        the auditor's partition (it never held anything)."""
        self._transact(
            [
                self._status_update(
                    grant.grant_id,
                    GrantStatus.REQUESTED,
                    GrantStatus.EXPIRED_UNREVIEWED,
                    {"gsi2pk": _s("CLOSED")},
                    condition="review_deadline <= :now",
                    condition_values={":now": _n(now)},
                )
            ],
            [GrantNotActive("the request is no longer awaiting review, or not yet lapsed")],
        )

    def take_up(
        self,
        grant: Grant,
        *,
        nonce: str,
        now: int,
        rate_limit: int,
        max_roles: int,
        max_roles_per_owner: int,
        max_active: int | None = None,
        first_session: IssuedSession | None = None,
    ) -> None:
        """An approved grant taken up by its requester: approved → ``grant.status`` (issuing:
        its role is made next; active: a shared-role grant, with its ``first_session``), only
        while its window (from approval) is open, in one transaction with the nonce, the rate
        counter, the role quotas (a role of its own) and its active-grant slot, as open_grant
        claims them for a grant without approvers."""
        values: dict[str, Any] = {
            "policy_sha256": _s(grant.policy_sha256 or ""),
            "managed_policy_arns": _SERIALIZE(list(grant.managed_policy_arns or [])),
        }
        if grant.slot is not None:
            values["slot"] = _n(grant.slot)
        if first_session is not None:
            values |= {"role_arn": _s(grant.role_arn or ""), "role_id": _s(grant.role_id or "")}
        owner = grant.owner
        items = [
            self._nonce_put(owner, nonce, now),
            self._status_update(
                grant.grant_id,
                GrantStatus.APPROVED,
                grant.status,
                values,
                sessions=first_session is not None,
                condition="expires_at > :now",
                condition_values={":now": _n(now)},
            ),
            self._rate_update(owner, now, rate_limit),
        ]
        errors: list[Exception] = [
            ReplayedRequest(),
            GrantNotActive(f"grant {grant.grant_id} is no longer approved, or its window ended"),
            RateLimited(rate_limit),
        ]
        self._claim(
            items, errors, grant, now, max_roles, max_roles_per_owner, max_active, first_session
        )
        self._transact(items, errors)

    # --- the auditor -----------------------------------------------------------------------
    def open_grants(self) -> list[Grant]:
        """Every grant not yet cleaned (index by_expiry, partition ``GRANT``), oldest expiry
        first."""
        grants: list[Grant] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by_expiry",
            "KeyConditionExpression": "gsi2pk = :g",
            "ExpressionAttributeValues": {":g": _s("GRANT")},
        }
        with _reading():
            while True:
                out = self._db.query(**kwargs)
                grants.extend(_from_item(item) for item in out.get("Items", []))
                if "LastEvaluatedKey" not in out:
                    return grants
                kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def reconcile_failed(
        self, grant: Grant, *, now: int, role_arn: str | None, role_id: str | None
    ) -> None:
        """A grant left ``issuing`` by a crash: → failed (recording the role found, if any)
        and its role quotas given back, in one transaction."""
        values = {"failure": _s("reconciled_by_auditor"), "failed_at": _n(now)}
        if role_arn and role_id:
            values |= {"role_arn": _s(role_arn), "role_id": _s(role_id)}
        self._with_quota(
            self._status_update(grant.grant_id, GrantStatus.ISSUING, GrantStatus.FAILED, values),
            grant,
        )

    def mark_cleaned(self, grant: Grant, *, now: int, release_quota: bool) -> bool:
        """→ cleaned (the role is gone), out of the auditor's index partition, and (unless
        the grant already gave them back) the role quotas decremented, atomically.
        Returns False when a quota was already zero (it is then left alone)."""
        update = self._status_update(
            grant.grant_id,
            grant.status,
            GrantStatus.CLEANED,
            {"cleaned_at": _n(now), "gsi2pk": _s("CLEANED")},
        )
        if not release_quota:
            self._transact([update], [GrantNotActive(f"the grant is not {grant.status.value}")])
            return True
        return self._with_quota(update, grant)

    def _with_quota(self, update: dict[str, Any], grant: Grant, *, with_slot: bool = False) -> bool:
        """``update`` and both role quotas (``with_slot``: and the grant's active-grant slot)
        given back, in one transaction; if a counter is already zero or the slot is no longer
        the grant's, the update alone and each of the rest that can still be given back.
        False in that case."""
        items = [update]
        if _holds_role(grant):
            items += [
                self._quota_release(ROLE_QUOTA),
                self._quota_release(_owner_quota_pk(grant.owner)),
            ]
        if with_slot and grant.slot is not None:
            items.append({"Update": self._slot_release(grant, grant.slot)})
        moved_on = GrantNotActive("the grant moved on")
        try:
            self._transact(items, [moved_on, *[_QuotaAtZero()] * (len(items) - 1)])
        except _QuotaAtZero:
            self._transact([update], [moved_on])
            self.release_role_quota(grant)
            if with_slot:
                self.release_slot(grant)
            return False
        return True

    def audit_cursor(self, account: str | None = None) -> str | None:
        """Where the sweep of ``account`` resumes (None: the hub's own sweep)."""
        with _reading():
            out = self._db.get_item(
                TableName=self._table, Key=_cursor_key(account), ConsistentRead=True
            )
        marker = out.get("Item", {}).get("marker", {}).get("S")
        return str(marker) if marker else None

    def save_audit_cursor(self, marker: str | None, now: int, account: str | None = None) -> None:
        """Where the next sweep of ``account`` starts (None: from the beginning)."""
        with _writing():
            self._db.update_item(
                TableName=self._table,
                Key=_cursor_key(account),
                UpdateExpression="SET marker = :m, saved_at = :now",
                ExpressionAttributeValues={":m": _s(marker or ""), ":now": _n(now)},
            )

    # --- shared roles ------------------------------------------------------------------------
    def shared_role(self, account: str, profile: str) -> SharedRole | None:
        with _reading():
            out = self._db.get_item(
                TableName=self._table, Key=_shared_key(account, profile), ConsistentRead=True
            )
        item = out.get("Item")
        if not item:
            return None
        data = {k: _DESERIALIZE(v) for k, v in item.items() if k in SharedRole.model_fields}
        data["revoked"] = sorted(data.get("revoked") or ())
        data["managed_policy_arns"] = sorted(data.get("managed_policy_arns") or ())
        return SharedRole.model_validate({"account": account, "profile": profile} | data)

    def record_shared_role(self, shared: SharedRole) -> None:
        """What the shared role was (re)written as; its revoked list is left as it is."""
        with _writing():
            self._db.update_item(
                TableName=self._table,
                Key=_shared_key(shared.account, shared.profile),
                UpdateExpression=(
                    "SET role_arn = :arn, role_id = :id, policy_sha256 = :sha, "
                    "managed_policy_arns = :managed"
                ),
                ExpressionAttributeValues={
                    ":arn": _s(shared.role_arn or ""),
                    ":id": _s(shared.role_id or ""),
                    ":sha": _s(shared.policy_sha256 or ""),
                    ":managed": {"L": [_s(a) for a in shared.managed_policy_arns]},
                },
            )

    def revoke_shared(self, grant: Grant, *, now: int, by: str, most_listed: int) -> None:
        """active → revoked, and the grant added to its shared role's revoked list, in one
        transaction; refused (RevocationListFull, nothing written) when the list already
        holds ``most_listed`` grants. On a grant already revoked: the list entry alone (a
        revocation that stopped half way is finished)."""
        account = grant.target_account or ""
        shared_update = {
            "Update": {
                "TableName": self._table,
                "Key": _shared_key(account, grant.profile),
                "UpdateExpression": "ADD revoked :id, rev :one",
                "ConditionExpression": (
                    "attribute_not_exists(revoked) OR contains(revoked, :gid) "
                    "OR size(revoked) < :most"
                ),
                "ExpressionAttributeValues": {
                    ":id": {"SS": [grant.grant_id]},
                    ":gid": _s(grant.grant_id),
                    ":one": _n(1),
                    ":most": _n(most_listed),
                },
            }
        }
        full = RevocationListFull(
            f"the shared role of profile {grant.profile!r} in account {account} already lists "
            f"{most_listed} revoked grants, the most IAM's policy size allows; nothing was "
            "changed. The auditor removes grants whose sessions have all ended: run an audit "
            "(`jit audit`) and revoke again"
        )
        if grant.status is GrantStatus.REVOKED:
            self._transact([shared_update], [full])
            return
        status = self._status_update(
            grant.grant_id,
            GrantStatus.ACTIVE,
            GrantStatus.REVOKED,
            {"revoked_at": _n(now), "revoked_by": _s(by)},
        )
        self._transact([status, shared_update], [GrantNotActive("the grant is not active"), full])

    def unlist_revoked(self, account: str, profile: str, grant_ids: list[str]) -> None:
        """The auditor: these revoked grants' sessions have all ended; off the list."""
        if not grant_ids:
            return
        with _writing():
            self._db.update_item(
                TableName=self._table,
                Key=_shared_key(account, profile),
                UpdateExpression="DELETE revoked :ids ADD rev :one",
                ExpressionAttributeValues={":ids": {"SS": list(grant_ids)}, ":one": _n(1)},
            )

    # --- building blocks ---------------------------------------------------------------
    def _rate_update(self, owner: str, now: int, rate_limit: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": _s(f"RATE#{owner}#{now // 60}"), "sk": _s("RATE")},
                "UpdateExpression": "ADD hits :one SET #ttl = :ttl",
                "ConditionExpression": "attribute_not_exists(hits) OR hits < :limit",
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": {
                    ":one": _n(1),
                    ":limit": _n(rate_limit),
                    ":ttl": _n(now + 3600),
                },
            }
        }

    def _quota_claim(self, key: str, most: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": _s(key), "sk": _s("QUOTA")},
                "UpdateExpression": "ADD live_roles :one",
                "ConditionExpression": "attribute_not_exists(live_roles) OR live_roles < :max",
                "ExpressionAttributeValues": {":one": _n(1), ":max": _n(most)},
            }
        }

    def _quota_release(self, key: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": _s(key), "sk": _s("QUOTA")},
                "UpdateExpression": "ADD live_roles :minus",
                "ConditionExpression": "live_roles > :zero",
                "ExpressionAttributeValues": {":minus": _n(-1), ":zero": _n(0)},
            }
        }

    def _slot_put(self, grant: Grant, now: int) -> dict[str, Any]:
        """The grant's claim of its active-grant slot (free, or held by an expired grant)."""
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    "pk": _s(_slot_pk(grant.owner, grant.profile, grant.slot or 0)),
                    "sk": _s("SLOT"),
                    "grant_id": _s(grant.grant_id),
                    "expires_at": _n(grant.expires_at),
                    "ttl": _n(grant.expires_at + 3600),
                },
                "ConditionExpression": "attribute_not_exists(pk) OR expires_at <= :now",
                "ExpressionAttributeValues": {":now": _n(now)},
            }
        }

    def _nonce_put(self, owner: str, nonce: str, now: int) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    "pk": _s(f"NONCE#{owner}#{nonce}"),
                    "sk": _s("NONCE"),
                    "ttl": _n(now + NONCE_TTL_SECONDS),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _session_put(self, session: IssuedSession) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    "pk": _s(f"GRANT#{session.grant_id}"),
                    "sk": _s(f"SESSION#{session.issued_at:012d}#{session.access_key_id}"),
                    "access_key_id": _s(session.access_key_id),
                    "issued_at": _n(session.issued_at),
                    "expires_at": _n(session.expires_at),
                    "source_identity": _s(session.source_identity),
                    "session_name": _s(session.session_name),
                    "ttl": _n(session.expires_at + RECORD_RETENTION_SECONDS),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _status_update(
        self,
        grant_id: str,
        current: GrantStatus,
        new: GrantStatus,
        values: dict[str, dict[str, str]],
        *,
        sessions: bool = False,
        condition: str | None = None,
        condition_values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if new != current and new not in FORWARD[current]:
            raise ValueError(f"status may not move from {current} to {new}")
        names = {"#status": "status"}
        attr_values: dict[str, Any] = {":current": _s(current.value), ":new": _s(new.value)}
        attr_values |= condition_values or {}
        sets = ["#status = :new"]
        for i, (key, value) in enumerate(values.items()):
            names[f"#f{i}"] = key
            attr_values[f":v{i}"] = value
            sets.append(f"#f{i} = :v{i}")
        expression = "SET " + ", ".join(sets)
        if sessions:
            expression += " ADD sessions_issued :one"
            attr_values[":one"] = _n(1)
        return {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": _s(f"GRANT#{grant_id}"), "sk": _s("GRANT")},
                "UpdateExpression": expression,
                "ConditionExpression": "#status = :current"
                + (f" AND {condition}" if condition else ""),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": attr_values,
            }
        }

    def _transact(self, items: list[dict[str, Any]], on_condition: list[Exception]) -> None:
        """One conditional transaction: a failed condition raises the matching error of
        ``on_condition``; a conflict with a concurrent transaction is retried with a short
        jittered backoff; anything else → LedgerUnavailable (no credentials are issued)."""
        for attempt in range(1, self.CONFLICT_ATTEMPTS + 1):
            try:
                self._db.transact_write_items(TransactItems=items)
                return
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "TransactionCanceledException":
                    reasons = exc.response.get("CancellationReasons") or []
                    for reason, error in zip(reasons, on_condition, strict=False):
                        if reason.get("Code") == "ConditionalCheckFailed":
                            raise error from None
                    conflict = any(r.get("Code") == "TransactionConflict" for r in reasons)
                    if conflict and attempt < self.CONFLICT_ATTEMPTS:
                        self._sleep(0.02 * 2**attempt * (0.5 + random.random()))  # jitter  # nosec B311
                        continue
                raise LedgerUnavailable(
                    "the grant ledger cannot be written right now: no credentials were issued"
                ) from exc
            except BotoCoreError as exc:
                raise LedgerUnavailable(
                    "the grant ledger cannot be written right now: no credentials were issued"
                ) from exc

    def active_grants_of(
        self, owner: str, *, now: int, created_since: int, limit: int = 50
    ) -> list[Grant]:
        """The owner's active grants: one Query on the owner's index partition, only the
        grants created since ``created_since`` (no older one can still be active: the domain
        passes now minus the longest window), newest first, at most ``limit`` of them read;
        DynamoDB drops the ones not active or already expired. It reads what the owner made
        in that window, never another owner's grants."""
        with _reading():
            out = self._db.query(
                TableName=self._table,
                IndexName="by_requester",
                KeyConditionExpression="gsi1pk = :o AND gsi1sk >= :since",
                FilterExpression="#status = :active AND expires_at > :now",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":o": _s(f"OWNER#{owner}"),
                    ":since": _s(f"{created_since:012d}"),
                    ":active": _s(GrantStatus.ACTIVE.value),
                    ":now": _n(now),
                },
                ScanIndexForward=False,
                Limit=limit,
            )
        return [_from_item(item) for item in out.get("Items", [])]
