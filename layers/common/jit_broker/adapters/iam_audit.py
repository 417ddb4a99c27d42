"""IAM for the auditor, in the hub or (through its execution role) a member account: list the
broker's roles page by page, read tags and the documents drift is judged on, write a shared
role's revocation deny, and take a role apart in an order that can be re-run from any point.

Every call goes through :meth:`IamAudit._call`: on top of the client's own adaptive retries
(``retries={"mode": "adaptive"}``), a throttled call is retried a few more times with backoff
(the sleep is injected), then raised as :class:`AwsUnavailable`. ``NoSuchEntity`` is reported
to the caller as ``None`` where "already gone" means "done".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from jit_broker.documents import (
    GRANT_POLICY_NAME,
    REVOKED_POLICY_NAME,
    compact,
    deny_all,
    revoked_grants_deny,
)
from jit_broker.errors import AwsUnavailable

THROTTLING = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)
TEARDOWN_STEPS = ("deny", "inline", "managed", "instance_profiles", "delete")


@dataclass(frozen=True)
class ListedRole:
    """A role as ListRoles returns it (no tags, no boundary)."""

    name: str
    path: str
    role_id: str
    arn: str
    created_at: int
    trust_policy: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RolePage:
    roles: list[ListedRole]
    marker: str | None  # the marker that fetched this page (None: the first page)
    next_marker: str | None  # None: this was the last page


@dataclass(frozen=True)
class RoleDetails:
    """What drift is judged on, beyond ListRoles: boundary, tags, inline and managed policies."""

    boundary_arn: str | None
    tags: dict[str, str]
    inline: dict[str, dict[str, Any]]
    managed: list[str]


class TeardownBlocked(Exception):
    """DeleteRole still refused after every policy and instance profile was removed."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _listed(raw: dict[str, Any]) -> ListedRole:
    trust = raw.get("AssumeRolePolicyDocument") or {}
    if isinstance(trust, str):  # URL-encoded JSON where botocore did not decode it
        import json
        from urllib.parse import unquote

        trust = json.loads(unquote(trust))
    return ListedRole(
        name=raw["RoleName"],
        path=raw["Path"],
        role_id=raw["RoleId"],
        arn=raw["Arn"],
        created_at=int(raw["CreateDate"].timestamp()),
        trust_policy=trust,
    )


class IamAudit:
    def __init__(
        self,
        client: Any,
        *,
        throttle_retries: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._iam = client
        self._retries = throttle_retries
        self._sleep = sleep

    def _call(self, operation: str, **kwargs: Any) -> Any:
        """One IAM call; Throttling retried with backoff. NoSuchEntity is re-raised as is."""
        for attempt in range(self._retries + 1):
            try:
                return getattr(self._iam, operation)(**kwargs)
            except ClientError as exc:
                if _code(exc) in THROTTLING and attempt < self._retries:
                    self._sleep(min(0.2 * 2**attempt, 5.0))
                    continue
                if _code(exc) in ("NoSuchEntity", "DeleteConflict"):
                    raise
                raise AwsUnavailable(f"IAM {operation} failed ({_code(exc)})") from exc
            except BotoCoreError as exc:
                raise AwsUnavailable(f"IAM {operation} could not be reached") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # --- reads -------------------------------------------------------------------------
    def role_pages(
        self, path_prefix: str, *, page_size: int, marker: str | None = None
    ) -> Iterator[RolePage]:
        """ListRoles page by page from ``marker``. PathPrefix also matches deeper paths (and,
        written without its trailing slash, /jitx/): callers filter on the exact path."""
        while True:
            kwargs: dict[str, Any] = {"PathPrefix": path_prefix, "MaxItems": page_size}
            if marker:
                kwargs["Marker"] = marker
            out = self._call("list_roles", **kwargs)
            next_marker = out.get("Marker") if out.get("IsTruncated") else None
            yield RolePage([_listed(r) for r in out.get("Roles", [])], marker, next_marker)
            if not next_marker:
                return
            marker = next_marker

    def role_tags(self, name: str) -> dict[str, str] | None:
        """The role's tags (None: the role is gone). A role has at most 50 tags: one page."""
        try:
            out = self._call("list_role_tags", RoleName=name)
        except ClientError:
            return None
        return {t["Key"]: t["Value"] for t in out.get("Tags", [])}

    def details(self, name: str) -> RoleDetails | None:
        """Boundary, tags (from GetRole), inline documents and managed policies."""
        try:
            role = self._call("get_role", RoleName=name)["Role"]
            names = self._call("list_role_policies", RoleName=name).get("PolicyNames", [])
            inline = {
                n: self._call("get_role_policy", RoleName=name, PolicyName=n)["PolicyDocument"]
                for n in names
            }
            attached = self._call("list_attached_role_policies", RoleName=name)
        except ClientError:
            return None
        return RoleDetails(
            boundary_arn=(role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
            tags={t["Key"]: t["Value"] for t in role.get("Tags", [])},
            inline={n: _document(d) for n, d in inline.items()},
            managed=[p["PolicyArn"] for p in attached.get("AttachedPolicies", [])],
        )

    def revoked_deny(self, name: str) -> dict[str, Any] | None:
        """A shared role's revocation deny as IAM holds it (None: none, or the role is gone)."""
        try:
            out = self._call("get_role_policy", RoleName=name, PolicyName=REVOKED_POLICY_NAME)
        except ClientError:
            return None
        return _document(out["PolicyDocument"])

    # --- writes ------------------------------------------------------------------------
    def deny_grants(self, name: str, grant_ids: list[str]) -> bool:
        """A shared role's revocation deny listing exactly ``grant_ids`` (the ledger's list),
        or no deny policy when the list is empty. False: the role (or, for an empty list,
        its deny) was not there."""
        try:
            if grant_ids:
                self._call(
                    "put_role_policy",
                    RoleName=name,
                    PolicyName=REVOKED_POLICY_NAME,
                    PolicyDocument=compact(revoked_grants_deny(grant_ids)),
                )
            else:
                self._call("delete_role_policy", RoleName=name, PolicyName=REVOKED_POLICY_NAME)
        except ClientError:
            return False
        return True

    def deny(self, name: str) -> bool:
        """The deny-all inline policy (revocation's). False: the role is gone."""
        try:
            self._call(
                "put_role_policy",
                RoleName=name,
                PolicyName=REVOKED_POLICY_NAME,
                PolicyDocument=compact(deny_all()),
            )
        except ClientError:
            return False
        return True

    def teardown(self, name: str, *, deny_first: bool = True) -> None:
        """deny → inline policies → managed policies → instance profiles → delete.

        Each step is idempotent and NoSuchEntity counts as done, so a teardown interrupted
        anywhere completes when run again. The broker writes two inline policies (its grant
        policy and the deny), deleted by name, the deny last; others (drift) are listed and
        deleted only when DeleteRole reports a conflict. Managed policies are detached, never
        deleted: the permissions boundary is not an attached policy and is never touched.
        """
        if deny_first:
            self.deny(name)
        for policy in (GRANT_POLICY_NAME, REVOKED_POLICY_NAME):
            self._gone_ok("delete_role_policy", RoleName=name, PolicyName=policy)
        self._detach_all(name)
        self._leave_instance_profiles(name)
        try:
            self._gone_ok("delete_role", RoleName=name)
        except ClientError:  # DeleteConflict: something the broker never writes is still on it
            for policy in self._list_or_empty("list_role_policies", name, "PolicyNames"):
                self._gone_ok("delete_role_policy", RoleName=name, PolicyName=policy)
            self._detach_all(name)
            self._leave_instance_profiles(name)
            try:
                self._gone_ok("delete_role", RoleName=name)
            except ClientError as exc:
                raise TeardownBlocked(f"DeleteRole {name} refused: {_code(exc)}") from exc

    def _gone_ok(self, operation: str, **kwargs: Any) -> None:
        try:
            self._call(operation, **kwargs)
        except ClientError as exc:
            if _code(exc) != "NoSuchEntity":
                raise

    def _list_or_empty(self, operation: str, name: str, key: str) -> list[Any]:
        items: list[Any] = []
        marker = None
        while True:
            kwargs: dict[str, Any] = {"RoleName": name}
            if marker:
                kwargs["Marker"] = marker
            try:
                out = self._call(operation, **kwargs)
            except ClientError:
                return items
            items.extend(out.get(key, []))
            marker = out.get("Marker") if out.get("IsTruncated") else None
            if not marker:
                return items

    def _detach_all(self, name: str) -> None:
        for policy in self._list_or_empty("list_attached_role_policies", name, "AttachedPolicies"):
            self._gone_ok("detach_role_policy", RoleName=name, PolicyArn=policy["PolicyArn"])

    def _leave_instance_profiles(self, name: str) -> None:
        for profile in self._list_or_empty(
            "list_instance_profiles_for_role", name, "InstanceProfiles"
        ):
            self._gone_ok(
                "remove_role_from_instance_profile",
                RoleName=name,
                InstanceProfileName=profile["InstanceProfileName"],
            )


def _document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        import json
        from urllib.parse import unquote

        return dict(json.loads(unquote(value)))
    return dict(value)
