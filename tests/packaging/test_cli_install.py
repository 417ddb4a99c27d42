"""The CLI installs alone: a ``uv tool install`` of the jit-cli wheel on every supported Python.

Each install gets only botocore and its own dependencies, never the broker's server packages
(powertools, pydantic, PyYAML) nor the local stack's (moto), and its ``jit`` answers ``--help``,
``--version`` (the CHANGELOG's latest release) and a cache hit of ``credential-process``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import cli_install

from jit_cli import __version__, cache


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not cli_install.UV.exists():
        pytest.skip("uv is installed by `make env` (make test runs it)")
    return cli_install.build_wheel(tmp_path_factory.mktemp("dist"))


def test_the_wheel_declares_botocore_as_its_only_dependency(wheel: Path) -> None:
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(metadata).decode()
        names = archive.namelist()
    requires = re.findall(r"^Requires-Dist: (.+)$", text, re.MULTILINE)
    assert requires == ["botocore==1.44.5"]
    assert re.search(r"^Requires-Python: >=3\.11$", text, re.MULTILINE)
    assert re.search(r"^Version: " + re.escape(__version__) + "$", text, re.MULTILINE)
    assert re.search(r"^License-Expression: Apache-2\.0$", text, re.MULTILINE)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert {n.split("/")[0] for n in names} == {"jit_cli", f"jit_cli-{__version__}.dist-info"}


INSTALLERS = [("uv tool install", version) for version in cli_install.SUPPORTED]
INSTALLERS.append(("pip in a venv (as pipx)", cli_install.SUPPORTED[0]))


@pytest.mark.parametrize(("installer", "version"), INSTALLERS)
def test_a_tool_install_runs_help_version_and_a_cache_hit_without_server_packages(
    wheel: Path, installer: str, version: str, tmp_path: Path
) -> None:
    python = cli_install.interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine (pyenv or PATH)")
    if installer.startswith("pip"):
        tool = cli_install.Installed.with_pip(wheel, python, tmp_path)
    else:
        tool = cli_install.Installed(wheel, python, tmp_path)

    assert not tool.top_level() & cli_install.SERVER_PACKAGES
    assert {"jit_cli", "botocore"} <= tool.top_level()
    assert f"python{version}" in str(tool.site_packages)

    def jit(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(tool.jit), *args],
            env={**tool.env, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    helped = jit("--help")
    assert helped.returncode == 0, helped.stderr
    assert "credential-process" in helped.stdout
    assert jit("--version").stdout.strip() == f"jit {__version__}"

    # A fresh cache entry, written with this repository's cache module, read by the tool's.
    cached = tmp_path / "xdg-cache"
    signer = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLESIGNER000", "XDG_CACHE_HOME": str(cached)}
    api_url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    key = cache.key(api_url, cache.signing_identity(None, signer), "profile", "s3-read")
    ends = int(time.time()) + 3600
    cache.write(
        key,
        {
            "version": cache.VERSION,
            "key": key,
            "credentials": {
                "access_key_id": "ASIAFROMTHECACHE0001",
                "secret_access_key": "secret",
                "session_token": "token",
                "expiration": ends,
            },
            "grant": {"id": "g-0123456789abcdef", "expires_at": ends},
        },
        signer,
    )
    hit = jit("credential-process", "s3-read", "--api-url", api_url, **signer)
    assert hit.returncode == 0, hit.stderr
    assert json.loads(hit.stdout)["AccessKeyId"] == "ASIAFROMTHECACHE0001"
