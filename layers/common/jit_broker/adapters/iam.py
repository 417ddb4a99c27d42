"""IAM: the per-grant roles. Only roles under the broker's path are ever touched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from jit_broker.documents import (
    GRANT_POLICY_NAME,
    REVOKED_POLICY_NAME,
    compact,
    deny_all,
    revoked_grants_deny,
)
from jit_broker.errors import AwsUnavailable, BadRequest


@dataclass(frozen=True)
class RoleSpec:
    name: str
    path: str
    trust_policy: dict[str, Any]
    permissions_policy: dict[str, Any]
    managed_policy_arns: tuple[str, ...]
    boundary_arn: str
    tags: dict[str, str]
    description: str
    max_session_seconds: int = 3600


@dataclass(frozen=True)
class CreatedRole:
    arn: str
    role_id: str


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class Iam:
    def __init__(self, client: Any) -> None:
        self._iam = client

    def _create_role(self, spec: RoleSpec) -> Any:
        """CreateRole as ``spec`` says: path, trust, boundary, session limit, tags."""
        return self._iam.create_role(
            Path=spec.path,
            RoleName=spec.name,
            AssumeRolePolicyDocument=compact(spec.trust_policy),
            Description=spec.description,
            MaxSessionDuration=spec.max_session_seconds,
            PermissionsBoundary=spec.boundary_arn,
            Tags=[{"Key": k, "Value": v} for k, v in spec.tags.items()],
        )

    def create_grant_role(self, spec: RoleSpec) -> CreatedRole:
        """CreateRole (trust, boundary, tags), then the one inline policy, then managed ones.

        On failure the half-made role is removed again and AwsUnavailable/BadRequest raised.
        """
        try:
            out = self._create_role(spec)
        except ClientError as exc:
            raise AwsUnavailable(f"IAM refused to create the grant's role ({_code(exc)})") from exc
        except BotoCoreError as exc:
            raise AwsUnavailable("IAM could not be reached to create the grant's role") from exc
        role = CreatedRole(arn=out["Role"]["Arn"], role_id=out["Role"]["RoleId"])
        try:
            self._iam.put_role_policy(
                RoleName=spec.name,
                PolicyName=GRANT_POLICY_NAME,
                PolicyDocument=compact(spec.permissions_policy),
            )
            for arn in spec.managed_policy_arns:
                self._iam.attach_role_policy(RoleName=spec.name, PolicyArn=arn)
        except (ClientError, BotoCoreError) as exc:
            self.teardown(spec.name, spec.managed_policy_arns, denied=False)
            if isinstance(exc, ClientError) and _code(exc) in (
                "MalformedPolicyDocument",
                "LimitExceeded",
            ):
                raise BadRequest(
                    f"the profile's permissions were refused by IAM ({_code(exc)})"
                ) from exc
            raise AwsUnavailable("IAM could not finish the grant's role; it was removed") from exc
        return role

    def ensure_shared_role(
        self, spec: RoleSpec, previous_managed: tuple[str, ...] = ()
    ) -> CreatedRole:
        """A profile's shared role as ``spec`` says: created if missing (an existing one is
        kept: its revocation deny stays), its jit-grant policy written, the profile's managed
        policies attached and those it no longer lists (``previous_managed``) detached. Called
        only when the role is first used or the profile's permissions changed."""
        try:
            try:
                out = self._create_role(spec)
            except ClientError as exc:
                if _code(exc) != "EntityAlreadyExists":
                    raise
                out = self._iam.get_role(RoleName=spec.name)
                if out["Role"].get("Path") != spec.path:
                    raise AwsUnavailable(
                        f"a role named {spec.name} exists outside the broker's path"
                    ) from exc
            self._iam.put_role_policy(
                RoleName=spec.name,
                PolicyName=GRANT_POLICY_NAME,
                PolicyDocument=compact(spec.permissions_policy),
            )
            for arn in spec.managed_policy_arns:
                self._iam.attach_role_policy(RoleName=spec.name, PolicyArn=arn)
            for arn in set(previous_managed) - set(spec.managed_policy_arns):
                try:
                    self._iam.detach_role_policy(RoleName=spec.name, PolicyArn=arn)
                except ClientError as exc:
                    if _code(exc) != "NoSuchEntity":
                        raise
        except ClientError as exc:
            if _code(exc) in ("MalformedPolicyDocument", "LimitExceeded"):
                raise BadRequest(
                    f"the profile's permissions were refused by IAM ({_code(exc)})"
                ) from exc
            raise AwsUnavailable(f"IAM refused the profile's shared role ({_code(exc)})") from exc
        except BotoCoreError as exc:
            raise AwsUnavailable("IAM could not be reached for the profile's shared role") from exc
        return CreatedRole(arn=out["Role"]["Arn"], role_id=out["Role"]["RoleId"])

    def deny_grants(self, role_name: str, grant_ids: list[str]) -> None:
        """A shared role's revocation deny: exactly ``grant_ids`` (the ledger's list), or no
        deny policy at all when the list is empty."""
        try:
            if grant_ids:
                self._iam.put_role_policy(
                    RoleName=role_name,
                    PolicyName=REVOKED_POLICY_NAME,
                    PolicyDocument=compact(revoked_grants_deny(grant_ids)),
                )
            else:
                self._iam.delete_role_policy(RoleName=role_name, PolicyName=REVOKED_POLICY_NAME)
        except ClientError as exc:
            if not grant_ids and _code(exc) == "NoSuchEntity":
                return
            raise AwsUnavailable(
                f"IAM refused the shared role's revocation deny ({_code(exc)})"
            ) from exc
        except BotoCoreError as exc:
            raise AwsUnavailable("IAM could not be reached to revoke the grant") from exc

    def deny_everything(self, role_name: str) -> bool:
        """Revocation: a deny-all inline policy. False when the role no longer exists."""
        try:
            self._iam.put_role_policy(
                RoleName=role_name,
                PolicyName=REVOKED_POLICY_NAME,
                PolicyDocument=compact(deny_all()),
            )
        except ClientError as exc:
            if _code(exc) == "NoSuchEntity":
                return False
            raise AwsUnavailable(f"IAM refused the revocation policy ({_code(exc)})") from exc
        except BotoCoreError as exc:
            raise AwsUnavailable("IAM could not be reached to revoke the grant") from exc
        return True

    def teardown(
        self, role_name: str, managed_policy_arns: tuple[str, ...], *, denied: bool = True
    ) -> bool:
        """Remove a grant's role: the grant policy, the managed policies, then (``denied``:
        a revoked grant's role, ``deny_everything`` already on it) the deny, then the role, so
        a deny stays until nothing else is left. Without ``denied`` it is the rollback of a
        role this request just made, whose credentials were never handed out. NoSuchEntity
        counts as done. True once the role is gone; False when a step failed (the auditor
        finishes the rest)."""
        steps = [
            (
                self._iam.delete_role_policy,
                {"RoleName": role_name, "PolicyName": GRANT_POLICY_NAME},
            ),
            *[
                (self._iam.detach_role_policy, {"RoleName": role_name, "PolicyArn": arn})
                for arn in managed_policy_arns
            ],
        ]
        if denied:
            steps.append(
                (
                    self._iam.delete_role_policy,
                    {"RoleName": role_name, "PolicyName": REVOKED_POLICY_NAME},
                )
            )
        steps.append((self._iam.delete_role, {"RoleName": role_name}))
        return self._each_gone_ok(steps)

    @staticmethod
    def _each_gone_ok(steps: list[tuple[Any, dict[str, Any]]]) -> bool:
        """Run each step in order, NoSuchEntity counting as done; stop at the first failure."""
        for call, kwargs in steps:
            try:
                call(**kwargs)
            except ClientError as exc:
                if _code(exc) != "NoSuchEntity":
                    return False
            except BotoCoreError:
                return False
        return True
