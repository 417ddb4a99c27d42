"""``jit configure`` and ``jit init``: what the broker says before anything is written.

``configure`` asks the broker (GET /v1/profiles, signed as the identity credential_process
will sign with) whether the profile exists among those the caller may request, and whether
the reason, ticket, duration and account it needs are given; a refusal is one sentence and
the AWS config file is left untouched. ``init`` writes the CLI's config file for a broker URL
and configures every profile the caller may request (one AWS profile per account of a
profile of several accounts, ``jit-<profile>-<account>``).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from jit_cli import awsconfig, config
from jit_cli.errors import CliError, ExitCode
from jit_cli.formats import human_duration


class Refusal(CliError):
    """A profile that cannot be configured as asked (usage, exit 2)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, code=code, exit_code=ExitCode.USAGE)


def profile_views(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The profiles of a GET /v1/profiles answer (those the caller may request)."""
    profiles = answer.get("profiles")
    if not isinstance(profiles, list):
        raise CliError(
            "the broker's answer has no valid profiles",
            code="unexpected_response",
            exit_code=ExitCode.UNEXPECTED,
        )
    return [p for p in profiles if isinstance(p, dict) and isinstance(p.get("name"), str)]


def find(profiles: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    """The view of ``name``; else a sentence with the nearest name and the ones allowed."""
    names = [str(p["name"]) for p in profiles]
    for profile in profiles:
        if profile["name"] == name:
            return profile
    near = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f": did you mean {near[0]!r}?" if near else ""
    allowed = ", ".join(sorted(names)) or "none"
    raise CliError(
        f"there is no profile {name!r} that you may request{hint} (you may request: {allowed})",
        code="unknown_profile",
        exit_code=ExitCode.NOT_FOUND,
    )


def check(
    profile: Mapping[str, Any],
    *,
    reason: str | None,
    ticket: str | None,
    duration: int | None,
    duration_text: str | None,
    account: str | None,
) -> None:
    """Raise :class:`Refusal` if the broker would refuse a grant asked for this way."""
    name = profile["name"]
    if profile.get("reason_required") and not (reason and reason.strip()):
        raise Refusal(f"profile {name!r} needs a reason: pass --reason", "reason_required")
    pattern = profile.get("ticket_pattern")
    if isinstance(pattern, str) and pattern:
        if ticket is None:
            raise Refusal(
                f"profile {name!r} needs a ticket matching {pattern}: pass --ticket",
                "ticket_required",
            )
        try:
            matches = re.fullmatch(pattern, ticket) is not None
        except re.error:
            matches = True  # the broker's pattern; the broker decides
        if not matches:
            raise Refusal(
                f"ticket {ticket!r} does not match profile {name!r}'s pattern {pattern}",
                "ticket_mismatch",
            )
    longest = profile.get("max_window")
    if duration is not None and isinstance(longest, int) and duration > longest:
        raise Refusal(
            f"duration {duration_text or human_duration(duration)} is longer than profile "
            f"{name!r}'s longest window, {human_duration(longest)}",
            "duration_too_long",
        )
    accounts = [a for a in profile.get("accounts") or [] if isinstance(a, str)]
    if account is not None and accounts and account not in accounts:
        raise Refusal(
            f"account {account} is not one of profile {name!r}'s accounts ({', '.join(accounts)})",
            "unknown_account",
        )
    if account is None and len(accounts) > 1:
        raise Refusal(
            f"profile {name!r} names several accounts ({', '.join(accounts)}): pass --account",
            "account_required",
        )


def aws_profiles(profile: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """(account, AWS profile name) for each AWS profile ``init`` writes for ``profile``:
    ``jit-<profile>``, or ``jit-<profile>-<account>`` per account of a profile of several."""
    name = profile["name"]
    accounts = [a for a in profile.get("accounts") or [] if isinstance(a, str)]
    if len(accounts) > 1:
        return [(account, f"jit-{name}-{account}") for account in accounts]
    return [(None, f"jit-{name}")]


def process_values(
    executable: str,
    profile_name: str,
    api_url: str,
    *,
    source: str | None,
    account: str | None,
    reason: str | None,
    ticket: str | None,
    duration: int | None,
    region: str | None,
) -> dict[str, str]:
    """The AWS config section's values: a credential_process line running ``jit``."""
    words = [executable, "credential-process", profile_name, "--api-url", api_url]
    if source:
        words += ["--aws-profile", awsconfig.check_profile_name(source)]
    if account is not None:
        words += ["--account", account]
    for flag, value in (("--reason", reason), ("--ticket", ticket)):
        if value is not None:
            words += [flag, awsconfig.single_line(flag, value)]
    if duration is not None:
        words += ["--duration", str(duration)]
    values = {"credential_process": awsconfig.command_line(words)}
    if region:
        values["region"] = region
    return values


_ENVIRONMENT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def write_cli_config(environ: Mapping[str, str], name: str, api_url: str) -> tuple[str, bool]:
    """Name ``api_url`` environment ``name`` in the CLI's config file (the default one if
    the file names none); (path, whether the file changed). An environment of that name
    with another URL is refused, never overwritten."""
    if not _ENVIRONMENT_NAME.fullmatch(name):
        raise Refusal(
            f"invalid environment name {name!r}: use letters, digits, _ and -", "bad_input"
        )
    path = config.config_path(environ)
    current = config.load(environ)
    environments = current.get("environments")
    known = environments.get(name) if isinstance(environments, dict) else None
    if isinstance(known, dict):
        if known.get("api_url") == api_url:
            return path, False
        raise Refusal(
            f"environment {name!r} in {path} already names {known.get('api_url')!r}: "
            "pass --broker with another name, or edit the file",
            "environment_exists",
        )
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        text = ""
    table = f"[environments.{name}]\napi_url = {json.dumps(api_url)}\n"
    if "default_environment" not in current:
        text = f"default_environment = {json.dumps(name)}\n" + ("\n" if text else "") + text
    separator = (
        "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
    )
    text = text + separator + table
    import tomllib

    tomllib.loads(text)  # what is written parses (a bug here must not break the file)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    awsconfig.write_atomically(path, text)
    return path, True
