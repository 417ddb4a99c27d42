"""A shared role's revocation deny, written from the ledger's list of its revoked grants.

The ledger's list is the truth (revocations add to it in the transaction that revokes, the
auditor takes off grants whose sessions have all ended); IAM's ``jit-revoked`` policy is a copy
of it, written whole. The broker writes it when it revokes, the auditor when it prunes the list
or finds IAM's copy different. Concurrent writers cannot lose one another's change: each reads
the list, writes it, and reads it again, writing again while it changed meanwhile (``rev``
counts the list's changes), so the last write always holds the latest list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from jit_broker import naming
from jit_broker.errors import AwsUnavailable

if TYPE_CHECKING:
    from jit_broker.adapters.ledger import Ledger
    from jit_broker.models.domain import SharedRole

DENY_SYNC_ATTEMPTS = 5


class DenyWriter(Protocol):
    """IAM in the shared role's account (the broker's ``Iam``, the auditor's ``IamAudit``)."""

    def deny_grants(self, role_name: str, grant_ids: list[str]) -> object: ...


def write_revoked(
    iam: DenyWriter,
    ledger: Ledger,
    account: str,
    profile: str,
    *,
    attempts: int = DENY_SYNC_ATTEMPTS,
) -> SharedRole | None:
    """Make the shared role's deny list exactly the ledger's revoked grants (no deny policy at
    all when none are listed). Returns the record whose list was written last (None: the
    ledger has no such shared role). Raises AwsUnavailable when the list kept changing."""
    role_name = naming.shared_role_name(profile)
    for _ in range(attempts):
        shared = ledger.shared_role(account, profile)
        if shared is None:
            return None
        iam.deny_grants(role_name, shared.revoked)
        again = ledger.shared_role(account, profile)
        if again is None or again.rev == shared.rev:
            return shared
    raise AwsUnavailable(
        "the shared role's revocation deny kept changing while it was written: revoke again"
    )
