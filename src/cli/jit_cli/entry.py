"""The ``jit`` console script: a cache hit of ``credential-process`` answered with stdlib only.

SDKs run ``credential_process`` often (every new client, every CLI call), so its cache hit
must cost about as much as starting Python. This module imports only ``os``, ``sys`` and
:mod:`jit_cli.cache`; it understands exactly the arguments ``jit configure`` writes and hands
anything else (a miss, ``--no-cache``, ``--debug``, a flag it does not know, an error) to
:func:`jit_cli.main.main`, which parses everything again with argparse.
"""

from __future__ import annotations

import os
import sys

_VALUE_FLAGS = frozenset(
    {"--api-url", "--source-profile", "--reason", "--duration", "--ticket", "--region", "--account"}
)


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
    identity = cache.signing_identity(flags.get("--source-profile"), _signing_env(env))
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


def entry() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    if argv[:1] == ["credential-process"]:
        try:
            document = cached_credential_process(argv[1:])
        except Exception:  # the full path reports problems properly
            document = None
        if document is not None:
            sys.stdout.write(document + "\n")
            sys.stdout.flush()
            sys.exit(0)
    from jit_cli.main import main

    sys.exit(main(argv))
