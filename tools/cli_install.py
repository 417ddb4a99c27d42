"""Build the ``jit-cli`` wheel and install it alone with ``uv tool install``, as a user would.

Shared by tests/packaging (it installs on every supported Python and runs the tool) and
bench/install.py (it prints the installed size). Nothing here imports the CLI.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess  # nosec B404: fixed argv of uv and of the installed tool
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UV = ROOT / ".tools" / "bin" / "uv"
SUPPORTED = ("3.11", "3.12", "3.13")
# What a CLI-only install must never bring: the broker's server packages and the local stack's.
SERVER_PACKAGES = frozenset(
    {
        "aws_lambda_powertools",
        "pydantic",
        "pydantic_core",
        "yaml",
        "moto",
        "jit_broker",
        "jit_local",
    }
)


def interpreter(version: str) -> Path | None:
    """A real interpreter of ``version`` (pyenv's, else one on PATH): never a pyenv shim."""
    home = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for candidate in sorted(
        glob.glob(str(home / "versions" / f"{version}.*" / "bin" / f"python{version}"))
    ):
        return Path(candidate)
    found = shutil.which(f"python{version}")
    if found and "shims" not in found:
        return Path(found)
    return None


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without anything that would leak the repo's venv into the tool's."""
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT", "PYTHONSTARTUP"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.update(extra)
    return env


def run(argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(  # noqa: S603  # nosec B603: fixed argv
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done


def build_wheel(out: Path) -> Path:
    """The jit-cli wheel, built from src/cli alone (as `uv build` would for a release)."""
    run(
        [str(UV), "build", "--wheel", "--out-dir", str(out), str(ROOT / "src" / "cli")], clean_env()
    )
    [wheel] = out.glob("jit_cli-*.whl")
    return wheel


class Installed:
    """One ``uv tool install`` of the wheel under ``root``: its ``jit`` and its site-packages."""

    def __init__(self, wheel: Path, python: Path, root: Path, *, bytecode: bool = False) -> None:
        self.root = root
        self.env = clean_env(UV_TOOL_DIR=str(root / "tools"), UV_TOOL_BIN_DIR=str(root / "bin"))
        compile_flag = ["--compile-bytecode"] if bytecode else []
        run(
            [str(UV), "tool", "install", *compile_flag, "--python", str(python), str(wheel)],
            self.env,
        )
        self.jit = root / "bin" / ("jit.exe" if sys.platform == "win32" else "jit")
        [self.site_packages] = (root / "tools" / "jit-cli").glob("lib/python3.*/site-packages")

    @classmethod
    def with_pip(cls, wheel: Path, python: Path, root: Path) -> Installed:
        """As pipx installs: a venv of ``python`` and pip installing the wheel into it."""
        self = cls.__new__(cls)
        self.root, self.env = root, clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1")
        venv = root / "venv"
        run([str(python), "-m", "venv", str(venv)], self.env)
        run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], self.env)
        self.jit = venv / "bin" / "jit"
        [self.site_packages] = venv.glob("lib/python3.*/site-packages")
        return self

    @classmethod
    def of_requirement(
        cls, requirement: str, python: Path, root: Path, *, bytecode: bool = False
    ) -> Installed:
        """A plain venv with one requirement installed the same way (a size baseline)."""
        self = cls.__new__(cls)
        self.root, self.env = root, clean_env()
        run([str(UV), "venv", "--quiet", "--python", str(python), str(root / "venv")], self.env)
        compile_flag = ["--compile-bytecode"] if bytecode else []
        venv = str(root / "venv")
        run(
            [str(UV), "pip", "install", "--quiet", *compile_flag, "--python", venv, requirement],
            self.env,
        )
        self.jit = root / "venv" / "bin" / "jit"
        [self.site_packages] = (root / "venv").glob("lib/python3.*/site-packages")
        return self

    def top_level(self) -> set[str]:
        """Importable top-level names in the tool's environment."""
        names = set()
        for entry in self.site_packages.iterdir():
            if entry.name.endswith((".dist-info", ".pth")) or entry.name.startswith("_"):
                continue
            names.add(entry.name.removesuffix(".py").split(".")[0])
        return names

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.site_packages.rglob("*") if p.is_file())
