"""Where the broker is: ``--api-url``, named environments, JIT_API_URL, the config file.

The config file is ``$XDG_CONFIG_HOME/jit/config.toml`` (an absolute XDG_CONFIG_HOME) or
``~/.config/jit/config.toml``::

    default_environment = "prod"

    [environments.prod]
    api_url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"

    [environments.dev]
    api_url = "https://def456.execute-api.eu-west-1.amazonaws.com/dev"

Precedence, first found wins (explicit flags before variables before the file's default):

1. ``--api-url URL``
2. ``--broker NAME``: ``environments.NAME.api_url``
3. ``JIT_API_URL``
4. ``JIT_ENV=NAME``: ``environments.NAME.api_url``
5. ``default_environment``: that environment's ``api_url``
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from jit_cli.errors import CliError, ExitCode


def config_path(environ: Mapping[str, str]) -> str:
    base = environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "jit", "config.toml")


def _bad(message: str) -> CliError:
    return CliError(message, code="bad_config", exit_code=ExitCode.USAGE)


def load(environ: Mapping[str, str]) -> dict[str, Any]:
    """The parsed config file; {} when there is none."""
    import tomllib

    path = config_path(environ)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise _bad(f"cannot read {path}: {error}") from None


def _environment_url(config: Mapping[str, Any], name: str, source: str, path: str) -> str:
    environments = config.get("environments")
    environment = environments.get(name) if isinstance(environments, dict) else None
    if not isinstance(environment, dict):
        known = ", ".join(sorted(environments)) if isinstance(environments, dict) else "none"
        raise _bad(f"{source} names environment {name!r}, not in {path} (known: {known})")
    url = environment.get("api_url")
    if not isinstance(url, str) or not url:
        raise _bad(f"environments.{name}.api_url in {path} must be a non-empty string")
    return url


def api_url(flag: str | None, env_name: str | None, environ: Mapping[str, str]) -> str | None:
    """The broker URL by the precedence in the module docstring; None if nothing names one."""
    if flag:
        return flag
    path = config_path(environ)
    if env_name:
        return _environment_url(load(environ), env_name, "--broker", path)
    if environ.get("JIT_API_URL"):
        return environ["JIT_API_URL"]
    config = load(environ)
    if environ.get("JIT_ENV"):
        return _environment_url(config, environ["JIT_ENV"], "JIT_ENV", path)
    default = config.get("default_environment")
    if default is None:
        return None
    if not isinstance(default, str):
        raise _bad(f"default_environment in {path} must be a string")
    return _environment_url(config, default, "default_environment", path)
