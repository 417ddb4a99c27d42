"""The signing identity must be the person, never one of the broker's own sessions.

After ``eval "$(jit env s3-read)"``, inside ``jit exec``, or with ``AWS_PROFILE=jit-s3-read``
the AWS credentials in reach are a grant's session; signing ``jit`` requests with them acts
as the grant's role, which the broker refuses (or, with an older broker, answers as if the
grant's role were the requester). The CLI recognises that before it sends anything:

1. ``JIT_GRANT_ID`` is set (``jit env`` and ``jit exec`` set it) and the keys in the
   environment would sign (no ``--aws-profile``/``AWS_PROFILE`` named);
2. the named AWS profile's ``credential_process`` is ``jit credential-process`` (the profile
   ``jit configure`` wrote: it hands out a grant's session);
3. the access key id that would sign is a session in the CLI's cache;

and, only when the broker or API Gateway refuses a request (403), from the caller's ARN: an
assumed-role session of a role named like the broker's grant roles (``jit-g-<24 hex>``) or
shared roles (``jit-s-<profile>``), in the refusal itself or else from one ``whoami``.

It then stops with one sentence saying what to unset (exit 2, code ``signing_as_grant``).
This module imports only the standard library; the two role-name patterns are copies of
the broker's (``jit_broker.naming``), which the CLI does not import.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from jit_cli import cache
from jit_cli.errors import CliError, ExitCode

GRANT_VARIABLE = "JIT_GRANT_ID"
CODE = "signing_as_grant"
# Copies of jit_broker.naming's _GRANT_ROLE_NAME and _SHARED_ROLE_NAME.
_GRANT_ROLE_NAME = re.compile(r"^jit-(g-[0-9a-f]{24})$")
_SHARED_ROLE_NAME = re.compile(r"^jit-s-[a-z0-9][a-z0-9-]{0,57}$")
_ASSUMED_ROLE_ARN = re.compile(
    r"arn:aws[a-z-]*:sts::[0-9]{12}:assumed-role/(?P<role>[\w+=,.@-]{1,64})/[\w+=,.@-]{2,64}"
)
_KEY_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
)
ENV_VARIABLES = (*_KEY_VARIABLES, GRANT_VARIABLE)  # everything `jit env` sets
_UNSET_KEYS = (
    f'unset {" ".join(ENV_VARIABLES)} (or run `eval "$(jit env --unset)"`) and sign in as yourself'
)


def is_jit_role_name(role_name: str) -> bool:
    """A role the broker makes: a grant's (``jit-g-…``) or a profile's shared role."""
    return bool(_GRANT_ROLE_NAME.fullmatch(role_name) or _SHARED_ROLE_NAME.fullmatch(role_name))


def jit_session_arn(text: str) -> str | None:
    """The first assumed-role ARN in ``text`` whose role is one of the broker's; else None."""
    for match in _ASSUMED_ROLE_ARN.finditer(text):
        if is_jit_role_name(match["role"]):
            return match.group(0)
    return None


def refused(message: str) -> CliError:
    return CliError(message, code=CODE, exit_code=ExitCode.USAGE)


def _profile_flag_hint(profile_from_flag: bool) -> str:
    if profile_from_flag:
        return "name the AWS profile you sign in with instead (--aws-profile)"
    return "unset AWS_PROFILE (or pass --aws-profile with the AWS profile you sign in with)"


def _credential_process(profile: str, environ: Mapping[str, str]) -> str | None:
    path = os.path.expanduser(environ.get("AWS_CONFIG_FILE") or "~/.aws/config")
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error, UnicodeDecodeError):
        return None
    section = "default" if profile == "default" else f"profile {profile}"
    if not parser.has_section(section):
        return None
    return parser.get(section, "credential_process", fallback=None)


def runs_jit(command_line: str) -> bool:
    """Whether a ``credential_process`` command line is ``jit credential-process ...``."""
    try:
        words = shlex.split(command_line)
    except ValueError:
        return False
    return (
        len(words) >= 2
        and os.path.basename(words[0]).startswith("jit")
        and words[1] == "credential-process"
    )


def check_before_loading(
    profile: str | None, environ: Mapping[str, str], *, profile_from_flag: bool
) -> None:
    """Checks 1 and 2 (and 3 for keys in the environment), before any credential is loaded
    (loading a jit profile's credentials would run ``jit credential-process``)."""
    if profile:
        command_line = _credential_process(profile, environ)
        if command_line is not None and runs_jit(command_line):
            raise refused(
                f"AWS profile {profile!r} hands out a JIT grant's session (its credential_process "
                f"is jit), and the broker takes no requests from its grants: "
                f"{_profile_flag_hint(profile_from_flag)}"
            )
        return
    grant_id = environ.get(GRANT_VARIABLE, "")
    if grant_id:
        raise refused(
            f"the AWS keys in this shell are JIT grant {_clean(grant_id)}'s session "
            f"({GRANT_VARIABLE} is set), and the broker takes no requests from its grants: "
            + _UNSET_KEYS
        )
    check_access_key(environ.get("AWS_ACCESS_KEY_ID", ""), environ, "the AWS keys in this shell")


def check_access_key(access_key: str, environ: Mapping[str, str], where: str) -> None:
    """Check 3: ``access_key`` is a session the CLI's cache holds."""
    if not access_key:
        return
    grant_id = cache.grant_of_access_key(access_key, dict(environ))
    if grant_id is not None:
        raise refused(
            f"{where} are JIT grant {_clean(grant_id)}'s session (they are in jit's cache), "
            f"and the broker takes no requests from its grants: {_UNSET_KEYS}"
        )


def explain_denied(
    error: CliError, whoami: Callable[[], dict[str, Any]] | None, *, profile: str | None
) -> CliError:
    """A 403 explained when the signer is one of the broker's sessions; else ``error``.

    The ARN comes from the refusal (the broker's ``broker_session_refused``, API Gateway's
    "User: arn:... is not authorized") or, when it names none, from one ``whoami``."""
    if error.exit_code != ExitCode.DENIED:
        return error
    arn = jit_session_arn(error.message)
    if arn is None and error.code != "broker_session_refused" and whoami is not None:
        try:
            arn = jit_session_arn(str(whoami().get("arn", "")))
        except CliError:
            arn = None
    if arn is None and error.code != "broker_session_refused":
        return error
    who = f"you sign as {arn}" if arn else "you sign as one of the broker's sessions"
    fix = _profile_flag_hint(False) if profile else _UNSET_KEYS
    if profile:
        fix = f"AWS profile {profile!r} gives such a session: " + fix
    return refused(
        f"{who}, a JIT grant's session, and the broker takes no requests from its grants: {fix}"
    )


def unset_lines(shell: str) -> str:
    """The lines that clear everything ``jit env`` sets (``sh`` or ``fish``)."""
    if shell == "fish":
        return "\n".join(f"set -e {name}" for name in ENV_VARIABLES)
    return "\n".join(f"unset {name}" for name in ENV_VARIABLES)


def _clean(text: str) -> str:
    flat = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return flat[:80]
