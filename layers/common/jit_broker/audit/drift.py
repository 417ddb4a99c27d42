"""What the auditor judges a role on: a grant role's trust, boundary, tags and permissions
against what the broker wrote (or, for an older record, the profile as it reads now), and a
shared role's revocation deny against the ledger's list. Pure functions: the sweep reads IAM
and acts on what these say."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jit_broker import documents, naming

if TYPE_CHECKING:
    from jit_broker.access_policy import AccessPolicy
    from jit_broker.adapters.iam_audit import ListedRole, RoleDetails
    from jit_broker.models.domain import Grant

AS_WRITTEN = "differs from what the broker wrote"
AS_CURRENT_PROFILE = (
    "differs from the profile's current permissions: the grant's record predates recording "
    "what the broker wrote, so it is judged against the access policy as it reads now"
)


def canonical(document: Any) -> Any:
    """A policy document in a form where equal meaning compares equal: keys sorted, a
    one-element list the same as its element, lists of strings in sorted order."""
    if isinstance(document, dict):
        return {k: canonical(v) for k, v in sorted(document.items())}
    if isinstance(document, list):
        items = [canonical(v) for v in document]
        if len(items) == 1:
            return items[0]
        if all(isinstance(v, str) for v in items):
            return sorted(items)
        return items
    return document


def bucket(role_id: str, buckets: int) -> int:
    """Which of ``buckets`` a role's deep drift check falls in (stable across runs)."""
    return zlib.crc32(role_id.encode()) % buckets


def trust_drifted(role: ListedRole, broker_role_arn: str, expires_at: int) -> bool:
    """The grant role's trust (which ListRoles returns) is not the one the broker wrote."""
    expected = documents.trust_policy(broker_role_arn, expires_at)
    return bool(canonical(role.trust_policy) != canonical(expected))


def deep_drift(
    grant: Grant,
    details: RoleDetails,
    *,
    boundary_arn: str,
    owner_tag: str,
    policy: Callable[[], AccessPolicy | None],
) -> list[tuple[str, str]]:
    """(kind, detail) for each of boundary, tags and permissions that is not what the broker
    wrote for ``grant`` (``boundary_arn``: the JIT boundary of the role's account; ``policy``:
    the access policy as it reads now, None when it cannot be read, asked only for a record
    older than what the broker wrote)."""
    drifts = []
    if details.boundary_arn != boundary_arn:
        drifts.append(("boundary", AS_WRITTEN))
    expected_tags = {
        documents.TAG_GRANT: grant.grant_id,
        documents.TAG_REQUESTER: naming.tag_value(grant.requester_id),
        documents.TAG_EXPIRES: str(grant.expires_at),
        documents.TAG_OWNER: owner_tag,
        documents.TAG_PROFILE: grant.profile,
    }
    if details.tags != expected_tags:
        drifts.append(("tags", AS_WRITTEN))
    if grant.policy_sha256 is not None and grant.managed_policy_arns is not None:
        if not permissions_as_recorded(grant, details):
            drifts.append(("permissions", AS_WRITTEN))
    elif not permissions_as_profile(grant, details, policy()):
        drifts.append(("permissions", AS_CURRENT_PROFILE))
    return drifts


def permissions_as_recorded(grant: Grant, details: RoleDetails) -> bool:
    """The role holds exactly the inline policy and managed policies its grant recorded."""
    if set(details.inline) != {documents.GRANT_POLICY_NAME}:
        return False
    written = details.inline[documents.GRANT_POLICY_NAME]
    return (
        documents.policy_digest(written) == grant.policy_sha256
        and sorted(details.managed) == grant.managed_policy_arns
    )


def permissions_as_profile(grant: Grant, details: RoleDetails, policy: AccessPolicy | None) -> bool:
    """For a grant recorded before the broker kept what it wrote: the role's permissions
    against the profile as the access policy reads now (an edit since reads as drift)."""
    if set(details.inline) != {documents.GRANT_POLICY_NAME}:
        return False
    written = details.inline[documents.GRANT_POLICY_NAME]
    statements = written.get("Statement") or []
    tail = documents.deny_after_expiry(grant.expires_at)
    if not statements or canonical(statements[-1]) != canonical(tail):
        return False
    if policy is None:  # the access policy unreadable: judge on what is known
        return True
    profile = policy.profiles.get(grant.profile)
    if profile is None:
        return False
    inline = profile.permissions.inline.statements() if profile.permissions.inline else []
    expected = documents.grant_policy(inline, grant.expires_at)
    return canonical(written) == canonical(expected) and sorted(details.managed) == sorted(
        profile.permissions.managed
    )


def revoked_deny_drift(written: dict[str, Any] | None, listed: list[str]) -> str | None:
    """How IAM's copy of a shared role's revocation deny (``written``; None: no deny policy)
    differs from the ledger's list of its revoked grants (None: it does not)."""
    expected = documents.revoked_grants_deny(listed) if listed else None
    if canonical(written) == canonical(expected):
        return None
    in_iam = _denied_grants(written) if written is not None else set()
    if in_iam is None:
        return "IAM's deny is not the broker's document; the ledger lists " + _ids(set(listed))
    missing, extra = set(listed) - in_iam, in_iam - set(listed)
    return (
        f"IAM's deny differs from the ledger's list: not denied in IAM {_ids(missing)}, "
        f"denied in IAM but not listed {_ids(extra)}"
    )


def _denied_grants(document: dict[str, Any]) -> set[str] | None:
    """The grant ids a revocation deny in the broker's shape lists (None: another shape)."""
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or len(statements) != 1:
        return None
    condition = statements[0].get("Condition", {}) if isinstance(statements[0], dict) else {}
    key = f"aws:PrincipalTag/{documents.TAG_GRANT}"
    values = condition.get("StringEquals", {}).get(key) if isinstance(condition, dict) else None
    if isinstance(values, str):
        return {values}
    if isinstance(values, list) and all(isinstance(v, str) for v in values):
        return set(values)
    return None


def _ids(ids: set[str], most: int = 5) -> str:
    shown = sorted(ids)[:most]
    more = f" and {len(ids) - most} more" if len(ids) > most else ""
    return f"[{', '.join(shown)}]{more}" if ids else "none"
