"""The ``jit`` commands, by seam: each takes the parsed arguments and returns stdout's text.

- :mod:`~jit_cli.commands.broker`: one call (or a few) to the broker's API, given a client;
- :mod:`~jit_cli.commands.session`: a grant's credentials put to use (credential-process,
  env, exec, console), from the cache or a new grant;
- :mod:`~jit_cli.commands.setup`: configure and init, which write config files;
- :mod:`~jit_cli.commands.local`: status, cache, completion and the ``jit local`` launcher.

Messages go to stderr through :func:`say`; data is rendered by :func:`render`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from jit_cli import output


def render(args: argparse.Namespace, value: Any, columns: Sequence[str] | None = None) -> str:
    """``value`` as ``--output`` says; without it, text on a terminal and JSON otherwise."""
    return output.render(value, wanted(args), columns)


def wanted(args: argparse.Namespace) -> str:
    return output.chosen(getattr(args, "output", None), sys.stdout)


def say(line: str) -> None:
    """One decision, on stderr (stdout is the credentials)."""
    print(f"jit: {line}", file=sys.stderr)
