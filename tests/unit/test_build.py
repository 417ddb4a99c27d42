"""What the functions ship is only what they import at run time: `sam build` (as `make build`
runs it) puts the domain package and its pinned requirements in the layer, and never the
CLI, the local stack, moto or a botocore of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / ".tools" / "sam" / "bin" / "sam"
PYTHON312 = next(iter(sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))), None)


@pytest.mark.skipif(
    not SAM.exists(), reason="the SAM tool env is made by `make validate` (make test runs it)"
)
@pytest.mark.skipif(
    PYTHON312 is None and not shutil.which("python3.12"),
    reason="sam build needs python3.12 on PATH",
)
def test_sam_build_ships_the_domain_package_and_pins_only(tmp_path: Path) -> None:
    path = os.environ["PATH"]
    if PYTHON312 is not None:
        path = f"{PYTHON312.parent}:{path}"
    env = {
        **os.environ,
        "PATH": path,
        "PIP_NO_DEPS": "1",
        "SAM_CLI_TELEMETRY": "0",
        "__SAM_CLI_APP_DIR": str(ROOT / ".tools" / "sam" / "home"),
    }
    subprocess.run(
        [
            str(SAM),
            "build",
            "--build-dir",
            str(tmp_path / "build"),
            "--template-file",
            "template.yaml",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    layer = {p.name for p in (tmp_path / "build" / "CommonLayer" / "python").iterdir()}
    function = {p.name for p in (tmp_path / "build" / "BrokerFunction").iterdir()}
    assert {"jit_broker", "aws_lambda_powertools", "pydantic", "yaml", "aws_xray_sdk"} <= layer
    assert not layer & {"botocore", "boto3", "moto", "jit_cli", "jit_local", "pytest", "werkzeug"}
    assert function == {"app.py"}
