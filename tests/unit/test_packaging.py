"""One version for the repository's three packages, and the CHANGELOG's latest release says it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from jit_cli import __version__

ROOT = Path(__file__).resolve().parents[2]


def latest_release() -> str:
    text = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", text, re.MULTILINE)
    assert releases, "CHANGELOG.md has no released version"
    return releases[0]


def test_jit_version_is_the_changelogs_latest_release() -> None:
    assert __version__ == latest_release()


def test_every_package_of_the_workspace_has_the_same_version_and_licence() -> None:
    licence = (ROOT / "LICENSE").read_text()
    for folder in ("layers/common", "src/local", "src/cli"):
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
        if "version" in project.get("dynamic", []):
            assert folder == "src/cli"  # read from jit_cli.__version__ (tool.hatch.version)
        else:
            assert project["version"] == __version__, folder
        assert project["license"] == "Apache-2.0"
        assert (ROOT / folder / "LICENSE").read_text() == licence, folder


def test_the_cli_package_depends_on_botocore_alone_and_supports_311_up() -> None:
    project = tomllib.loads((ROOT / "src/cli/pyproject.toml").read_text())["project"]
    assert project["dependencies"] == ["botocore==1.44.5"]
    assert project["requires-python"] == ">=3.11"
    assert project["scripts"] == {"jit": "jit_cli.entry:entry"}
