"""The broker's environment as one pydantic model, read once (never at import time)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    table_name: Annotated[str, Field(min_length=3)]
    boundary_policy_arn: Annotated[str, Field(pattern=r"^arn:aws[\w-]*:iam::\d{12}:policy/.+")]
    broker_role_arn: Annotated[str, Field(pattern=r"^arn:aws[\w-]*:iam::\d{12}:role/.+")]
    owner_tag: Annotated[str, Field(min_length=1, max_length=128)]
    role_path: Annotated[str, Field(pattern=r"^/[\w+=,.@-]+/$")] = "/jit/"
    policy_parameter: str | None = None
    policy_file: str | None = None
    max_roles: Annotated[int, Field(ge=1, le=5000)] = 500
    assume_retry_budget_seconds: Annotated[float, Field(ge=0, le=20)] = 8.0

    @model_validator(mode="after")
    def _one_policy_source(self) -> Settings:
        if bool(self.policy_parameter) == bool(self.policy_file):
            raise ValueError("set exactly one of JIT_POLICY_PARAMETER or JIT_POLICY_FILE")
        return self

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        fields = {
            "table_name": "JIT_TABLE_NAME",
            "boundary_policy_arn": "JIT_BOUNDARY_POLICY_ARN",
            "broker_role_arn": "JIT_BROKER_ROLE_ARN",
            "owner_tag": "JIT_OWNER_TAG",
            "role_path": "JIT_ROLE_PATH",
            "policy_parameter": "JIT_POLICY_PARAMETER",
            "policy_file": "JIT_POLICY_FILE",
            "max_roles": "JIT_MAX_ROLES",
        }
        return cls.model_validate({k: env[v] for k, v in fields.items() if env.get(v)})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
