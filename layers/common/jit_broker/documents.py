"""The IAM documents the broker writes, built as data (never by formatting caller text)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

VERSION = "2012-10-17"
GRANT_POLICY_NAME = "jit-grant"
REVOKED_POLICY_NAME = "jit-revoked"

TAG_GRANT = "jit:grant-id"
TAG_REQUESTER = "jit:requester"
TAG_EXPIRES = "jit:expires-at"
TAG_OWNER = "jit:owner"
TAG_PROFILE = "jit:profile"
TAG_MODE = "jit:mode"


def iso8601(epoch: int) -> str:
    """aws:CurrentTime's format: 2026-11-28T03:35:40Z (UTC)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def trust_policy(broker_role_arn: str, expires_at: int) -> dict[str, Any]:
    """Only the broker's role may assume, only with a SourceIdentity, only until expiry."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "BrokerOnlyWithSourceIdentity",
                "Effect": "Allow",
                "Principal": {"AWS": broker_role_arn},
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
                "Condition": {
                    "StringLike": {"sts:SourceIdentity": "?*"},
                    "DateLessThan": {"aws:CurrentTime": iso8601(expires_at)},
                },
            }
        ],
    }


def shared_trust_policy(broker_role_arn: str) -> dict[str, Any]:
    """A shared role: only the broker's role, only with a SourceIdentity (the person) and a
    grant-id session tag (what its revocation deny and the session policy key on)."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "BrokerOnlyWithSourceIdentityAndGrant",
                "Effect": "Allow",
                "Principal": {"AWS": broker_role_arn},
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
                "Condition": {
                    "StringLike": {
                        "sts:SourceIdentity": "?*",
                        f"aws:RequestTag/{TAG_GRANT}": "g-*",
                    },
                },
            }
        ],
    }


def session_policy(profile_statements: list[dict[str, Any]], expires_at: int) -> dict[str, Any]:
    """A shared-role session's policy: the profile's permissions (a session never gets more
    than its profile, whatever else the shared role holds) and the deny after the grant's
    expiry, so no session outlives its grant, however long STS made it."""
    return grant_policy(profile_statements, expires_at)


def revoked_grants_deny(grant_ids: list[str]) -> dict[str, Any]:
    """On a shared role: every session tagged with one of these (revoked) grants is refused."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "GrantsRevoked",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringEquals": {f"aws:PrincipalTag/{TAG_GRANT}": sorted(grant_ids)}},
            }
        ],
    }


ROLE_POLICIES_MAX_CHARS = 10240  # IAM: a role's inline policies together, whitespace excluded
SESSION_POLICY_MAX_CHARS = 2048  # STS: an AssumeRole session policy's plain text


def revoked_list_capacity(grant_policy_chars: int) -> int:
    """How many grant ids the revocation deny of a shared role can list beside its jit-grant
    policy of ``grant_policy_chars`` (compact) before the role's inline policies together
    pass IAM's 10,240 characters. Grant ids are all the same length, so each costs the same."""
    one = len(compact(revoked_grants_deny(["g-" + "0" * 24])))
    two = len(compact(revoked_grants_deny(["g-" + "0" * 24, "g-" + "1" * 24])))
    each = two - one
    room = ROLE_POLICIES_MAX_CHARS - grant_policy_chars - one
    return 0 if room < 0 else 1 + room // each


def deny_after_expiry(expires_at: int) -> dict[str, Any]:
    return {
        "Sid": "DenyAfterGrantExpiry",
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"DateGreaterThan": {"aws:CurrentTime": iso8601(expires_at)}},
    }


def grant_policy(profile_statements: list[dict[str, Any]], expires_at: int) -> dict[str, Any]:
    """The profile's permissions and, in the same document, the deny after the grant's expiry.

    One document means the role never holds the permissions without the deny.
    """
    return {"Version": VERSION, "Statement": [*profile_statements, deny_after_expiry(expires_at)]}


def deny_all() -> dict[str, Any]:
    """Put on a revoked grant's role: every session of it is refused from now on."""
    return {
        "Version": VERSION,
        "Statement": [{"Sid": "GrantRevoked", "Effect": "Deny", "Action": "*", "Resource": "*"}],
    }


def compact(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=False)


def policy_digest(document: dict[str, Any]) -> str:
    """sha256 (hex) of a policy document's compact JSON with keys sorted: the form in which
    the broker records what it wrote and the auditor compares what IAM holds (GetRolePolicy
    returns the document URL-encoded: parsed, it gives the same digest)."""
    text = json.dumps(document, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
