"""The ``jit`` console script: what the cache alone can answer, with the standard library only.

Three commands are answered here without importing :mod:`jit_cli.main` (argparse, the
broker client, botocore), so they cost little more than starting Python:

* ``jit credential-process PROFILE ...`` with a fresh cache entry (SDKs run it on every new
  client). Only the arguments ``jit configure`` writes are understood;
* ``jit status`` (at most ``--output json|text``): the cached sessions and where the signing
  keys come from (:func:`jit_cli.status.cached_document`). Who the keys are and the active
  grants are the broker's to say: any other flag goes to main, which asks it;
* ``jit __complete KINDS PREFIX [WORD...]``, the hidden command the completion scripts of
  :mod:`jit_cli.completion` run for a PROFILE or GRANT_ID: profile names the CLI remembered
  (:func:`jit_cli.cache.remembered_profiles`) and the grants of live cached sessions, of the
  broker the words name. It never asks the broker: listing profiles means signing, signing
  loads botocore, and that is several times the completion's budget. Nothing remembered:
  nothing printed, exit 0.

Anything else (a miss, ``--no-cache``, ``--debug``, a flag not understood, an error) goes to
:func:`jit_cli.main.main`, which parses everything again with argparse and reports problems.
"""

from __future__ import annotations

import os
import sys

COMPLETE = "__complete"  # no real command starts with "_"; never listed by the parser

# credential-process's flags as jit configure writes them: --aws-profile (--source-profile
# before it was renamed, in AWS config files written by earlier releases) is the signer.
_VALUE_FLAGS = frozenset(
    {
        "--api-url",
        "--aws-profile",
        "--source-profile",
        "--reason",
        "--duration",
        "--ticket",
        "--region",
        "--account",
    }
)
_SOURCE_FLAGS = ("--aws-profile", "--source-profile")
# The flags among the words passed to __complete that choose the broker and the signer, new
# spellings first (--env and --profile are the old names of --broker and --aws-profile).
_BROKER_FLAGS = ("--broker", "--env")
_SIGNER_FLAGS = ("--aws-profile", "--source-profile", "--profile")


def _parse(argv: list[str]) -> dict[str, str] | None:
    """``credential-process`` flags as a dict (``profile`` = the positional); None to bail."""
    found: dict[str, str] = {}
    words = iter(argv)
    for word in words:
        if word.startswith("--"):
            name, has_value, value = word.partition("=")
            if name not in _VALUE_FLAGS:
                return None
            if not has_value:
                value = next(words, "")
            if not value or name in found:
                return None
            found[name] = value
        elif word.startswith("-") or "profile" in found:
            return None
        else:
            found["profile"] = word
    if all(flag in found for flag in _SOURCE_FLAGS):  # main takes the last one: let it
        return None
    return found if "profile" in found else None


def cached_credential_process(argv: list[str], environ: dict[str, str] | None = None) -> str | None:
    """The credential_process JSON from a fresh cache entry, or None (let main decide)."""
    from jit_cli import cache

    env = os.environ if environ is None else environ
    flags = _parse(argv)
    if flags is None:
        return None
    api_url = flags.get("--api-url") or env.get("JIT_API_URL", "")
    if not api_url:
        return None
    source = flags.get("--aws-profile") or flags.get("--source-profile")
    identity = cache.signing_identity(source, _signing_env(env))
    cache_key = cache.key(api_url, identity, "profile", flags["profile"], flags.get("--account"))
    entry = cache.read(cache_key, env)
    if entry is None or not cache.is_fresh(entry, cache.now(env)):
        return None
    return cache.credential_process_json(entry)


def _signing_env(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The environment credential-process signs with: never the caller's AWS_PROFILE."""
    return {
        name: value
        for name, value in environ.items()
        if name not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
    }


def _status_output(argv: list[str]) -> str | None:
    """For ``status`` with at most one ``--output json|text`` (before or after it): the
    output asked, "" for the default; None for anything else (main's)."""
    output, seen = "", False
    words = iter(argv)
    for word in words:
        if word == "status" and not seen:
            seen = True
            continue
        name, has_value, value = word.partition("=")
        if name != "--output" or output:
            return None
        if not has_value:
            value = next(words, "")
        if value not in ("json", "text"):
            return None
        output = value
    return output if seen else None


def _api_url(flag: str | None, env_name: str | None, environ: dict[str, str]) -> str | None:
    """The broker URL by :func:`jit_cli.config.api_url`'s precedence; the config module
    (tomllib, typing: milliseconds) only when the flag or JIT_API_URL does not decide."""
    if flag:
        return flag
    if not env_name and environ.get("JIT_API_URL"):
        return environ["JIT_API_URL"]
    from jit_cli import config

    return config.api_url(flag, env_name, environ)


_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def _broker_url(url: str | None) -> str | None:
    """``url`` without a trailing slash when main would take it (https, or http to this
    machine); else None, and main says what is wrong with it."""
    scheme, _, rest = (url or "").partition("://")
    host = rest.split("/", 1)[0]
    name = host.partition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
    if (scheme == "https" and name) or (scheme == "http" and name in _LOOPBACK):
        return (url or "").rstrip("/")
    return None


def cached_status(
    argv: list[str], environ: dict[str, str] | None = None, terminal: bool | None = None
) -> str | None:
    """``jit status`` from the cache alone (JSON, or text on a terminal or with ``--output
    text``); None when main must answer (other flags, no broker URL, a bad config file)."""
    output = _status_output(argv)
    if output is None:
        return None
    from jit_cli import cache, status

    env = dict(os.environ) if environ is None else environ
    api_url = _broker_url(_api_url(None, None, env))
    if api_url is None:
        return None
    at = cache.now(env)
    # the signing profile as jit_cli.signing.signing_profile has it with no --aws-profile
    document = status.cached_document(api_url, env.get("AWS_PROFILE") or None, env, at)
    if terminal is None:
        terminal = sys.stdout.isatty()
    if output == "text" or (not output and terminal):
        return status.human(document, at)
    import json

    return json.dumps(document, indent=2, sort_keys=True)  # as jit_cli.formats.to_json


def _flag_values(words: list[str]) -> dict[str, str]:
    """The broker and signer flags among ``words`` (``--flag value`` or ``--flag=value``)."""
    found: dict[str, str] = {}
    for index, word in enumerate(words):
        name, has_value, value = word.partition("=")
        if name not in (*_BROKER_FLAGS, *_SIGNER_FLAGS, "--api-url"):
            continue
        if not has_value:
            value = words[index + 1] if index + 1 < len(words) else ""
        if value:
            found[name] = value
    return found


def complete(argv: list[str], environ: dict[str, str] | None = None) -> list[str]:
    """``__complete KINDS PREFIX [WORD...]``: the remembered names of KINDS (``profiles``,
    ``grants``, comma-separated) that start with PREFIX, for the broker and signer the
    command line's WORDS (else the environment and config file) name; sorted, no repeats.

    From the cache only, never the broker (see the module docstring). Grants: those of the
    cached sessions of this broker that have not ended."""
    from jit_cli import cache

    env = dict(os.environ) if environ is None else environ
    kinds = argv[0].split(",") if argv else []
    prefix = argv[1] if len(argv) > 1 else ""
    flags = _flag_values(argv[2:])
    broker = next((flags[flag] for flag in _BROKER_FLAGS if flag in flags), None)
    api_url = _broker_url(_api_url(flags.get("--api-url"), broker, env))
    if api_url is None:
        return []
    found: set[str] = set()
    if "profiles" in kinds:
        signer = next((flags[flag] for flag in _SIGNER_FLAGS if flag in flags), None)
        profile = signer or env.get("AWS_PROFILE") or None
        found.update(cache.remembered_profiles(api_url, profile, env))
    if "grants" in kinds:
        from jit_cli import status

        found.update(
            row["grant"]
            for row in status.sessions(env, cache.now(env))
            if str(row["api_url"] or "").rstrip("/") == api_url
        )
    return sorted(name for name in found if name.startswith(prefix))


def _answer(argv: list[str]) -> str | None:
    """What the cache alone answers for ``argv`` (see the module docstring), else None."""
    if argv[:1] == [COMPLETE]:
        try:
            names = complete(argv[1:])
        except Exception:  # completion never prints an error into the shell's line
            names = []
        return "".join(f"{name}\n" for name in names)
    try:
        if argv[:1] == ["credential-process"]:
            document = cached_credential_process(argv[1:])
        else:
            document = cached_status(argv)
    except Exception:  # the full path reports problems properly
        return None
    return None if document is None else document + "\n"


def entry() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    answer = _answer(argv)
    if answer is not None:
        sys.stdout.write(answer)
        sys.stdout.flush()
        sys.exit(0)
    from jit_cli.main import main

    sys.exit(main(argv))
