"""`jit local` as a child process, the way scripts use it: start it, wait for its env file,
read the exports, stop it with SIGTERM. Used by `make demo` and the end-to-end tests.

The child's output goes to a log file, never a pipe nobody reads (a full pipe would stall
the stack)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess  # starts only the project's own CLI (fixed argv)  # nosec B404
import sys
import time
from pathlib import Path
from typing import IO, Any

JIT = [sys.executable, "-m", "jit_cli.main"]


class StackFailed(RuntimeError):
    pass


# `make test-future` moves every process's clock (tools/clock_shift): the stack, the CLI and
# whatever they start keep the same moved clock as the tests, or SigV4 dates would disagree.
KEPT = frozenset({"JIT_TEST_CLOCK_SHIFT_DAYS"})


def clean_environment() -> dict[str, str]:
    """This process's environment without AWS_* and JIT_* (the stack's exports replace them),
    but for the test clock's shift."""
    return {k: v for k, v in os.environ.items() if k in KEPT or not k.startswith(("AWS_", "JIT_"))}


def read_exports(path: Path) -> dict[str, str]:
    """The ``export NAME=value`` lines `jit local` writes, as a dict."""
    values = {}
    for line in path.read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        values[name] = shlex.split(value)[0] if value else ""
    return values


def admin_client(env: dict[str, str], service: str) -> Any:
    """A boto3 client of the embedded AWS as its administrator (to inspect or change it)."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["JIT_ADMIN_ACCESS_KEY_ID"],
        aws_secret_access_key=env["JIT_ADMIN_SECRET_ACCESS_KEY"],
    )


def admin_client_in(env: dict[str, str], service: str, account: str) -> Any:
    """A boto3 client acting in member ``account``, as the role AWS Organizations makes there
    (OrganizationAccountAccessRole), assumed by the embedded administrator."""
    import boto3

    from jit_local.seed import organization_role_arn

    c = admin_client(env, "sts").assume_role(
        RoleArn=organization_role_arn(account), RoleSessionName="jit-local-admin"
    )["Credentials"]
    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
    )


def read_trail(path: Path) -> list[dict[str, Any]]:
    """The events `jit local --trail-file` has written so far (complete lines only)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def as_admin(env: dict[str, str]) -> dict[str, str]:
    """``env`` signing as the embedded administrator instead of JITUser."""
    return {
        **env,
        "AWS_ACCESS_KEY_ID": env["JIT_ADMIN_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": env["JIT_ADMIN_SECRET_ACCESS_KEY"],
    }


def as_new_key_of(env: dict[str, str], user: str) -> dict[str, str]:
    """``env`` signing as ``user`` (a seeded IAM user), with an access key made for it now."""
    key = admin_client(env, "iam").create_access_key(UserName=user)["AccessKey"]
    return {
        **env,
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }


class BackgroundStack:
    def __init__(
        self,
        env_file: Path,
        log_file: Path,
        *,
        port: int = 0,
        timeout: float = 60.0,
        trail_file: Path | None = None,
    ) -> None:
        self.env_file = env_file
        self.log_file = log_file
        self.trail_file = trail_file
        self.port = port
        self.timeout = timeout
        self.base = clean_environment()
        self.env: dict[str, str] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[Any] | None = None

    def start(self) -> BackgroundStack:
        self._log = self.log_file.open("wb")
        trail = ["--trail-file", str(self.trail_file)] if self.trail_file else []
        self.proc = subprocess.Popen(  # noqa: S603  # our own CLI, fixed argv  # nosec B603
            [*JIT, "local", "--port", str(self.port), "--env-file", str(self.env_file), *trail],
            env=self.base,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.timeout
        while not self.env_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise StackFailed("jit local did not come up:\n" + self.log_tail())
            time.sleep(0.1)
        self.env = {**self.base, **read_exports(self.env_file)}
        return self

    def stop(self) -> int | None:
        """SIGTERM, then wait (a kill only if it hangs); the exit code."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            code = self.proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else ""

    def __enter__(self) -> BackgroundStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
