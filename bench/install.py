"""Size of a CLI-only install: ``uv tool install`` of the jit-cli wheel, its site-packages.

Prints the tool environment's size against the target (35 MB) and against a baseline measured
in the same run: botocore alone (with its dependencies) installed the same way. The difference
is what jit itself adds.

Run: .venv/bin/python bench/install.py [--python 3.12]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import cli_install

TARGET_MB = 35.0


def megabytes(size: int) -> float:
    return size / 1_000_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="3.12", choices=cli_install.SUPPORTED)
    args = parser.parse_args()
    python = cli_install.interpreter(args.python)
    if python is None:
        print(f"no Python {args.python} here", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        wheel = cli_install.build_wheel(root / "dist")
        print(f"CLI-only install (uv tool install, Python {args.python}), site-packages:")
        for bytecode in (False, True):
            label = "with .pyc (as pip/pipx install)" if bytecode else "as uv installs (no .pyc)"
            where = root / ("pyc" if bytecode else "plain")
            tool = cli_install.Installed(wheel, python, where / "cli", bytecode=bytecode)
            bare = cli_install.Installed.of_requirement(
                "botocore==1.44.5", python, where / "bare", bytecode=bytecode
            )
            cli_size, bare_size = megabytes(tool.size_bytes()), megabytes(bare.size_bytes())
            server = sorted(tool.top_level() & cli_install.SERVER_PACKAGES)
            print(f"  {label}:")
            print(
                f"    jit-cli tool environment   {cli_size:6.1f} MB   target <= {TARGET_MB:.0f} MB"
            )
            print(f"    botocore alone (baseline)  {bare_size:6.1f} MB")
            print(
                f"    ratio                      {cli_size / bare_size:6.2f}x"
                f"   (jit adds {cli_size - bare_size:.2f} MB)"
            )
            print(f"    server packages installed: {', '.join(server) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
