"""Where the access policy comes from: SSM Parameter Store in AWS (Powertools parameters,
cached), a file on the local stack. Either way it is parsed and validated the same way.

A Standard SSM parameter holds 4 KB; an access policy of several profiles needs the Advanced
tier (8 KB), which GetParameter reads alike: nothing here depends on the tier.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from jit_broker.access_policy import (
    AccessPolicy,
    parse_policy,
    refuse_accounts_beyond_stack,
    refuse_beyond_stack,
)
from jit_broker.errors import PolicyUnavailable

UNREADABLE = (
    "the broker's access policy cannot be read; try again later or ask its administrators "
    "(the parameter or file it names must exist and be readable by the broker)"
)

CACHE_SECONDS = 60


def load_policy(
    *,
    parameter: str | None = None,
    path: str | None = None,
    stack_managed_policies: Collection[str] | None = None,
    stack_accounts: Collection[str] | None = None,
) -> AccessPolicy:
    """The access policy, parsed (cached while its text is unchanged) and checked against
    what the stack allows on every load: ``stack_managed_policies`` are the managed policies
    the stack lets the broker attach, ``stack_accounts`` the accounts it can reach (its own
    and its members; None: not checked, for readers that write nothing)."""
    if path:
        policy = _from_file(path)
    elif parameter:
        policy = _from_ssm(parameter)
    else:
        raise ValueError("no access policy source configured")
    if stack_managed_policies is not None:
        refuse_beyond_stack(policy, stack_managed_policies)
    if stack_accounts is not None:
        refuse_accounts_beyond_stack(policy, stack_accounts)
    return policy


_file_cache: dict[str, tuple[float, AccessPolicy]] = {}


def _from_file(path: str) -> AccessPolicy:
    try:
        mtime = Path(path).stat().st_mtime
        cached = _file_cache.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyUnavailable(UNREADABLE) from exc
    policy = parse_policy(text)
    _file_cache[path] = (mtime, policy)
    return policy


_ssm_cache: dict[str, tuple[str, AccessPolicy]] = {}


def _from_ssm(name: str) -> AccessPolicy:
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        text = str(parameters.get_parameter(name, max_age=CACHE_SECONDS))
    except GetParameterError as exc:  # no such parameter, access denied, SSM unreachable
        raise PolicyUnavailable(UNREADABLE) from exc
    cached = _ssm_cache.get(name)
    if cached and cached[0] == text:
        return cached[1]
    policy = parse_policy(text)
    _ssm_cache[name] = (text, policy)
    return policy
