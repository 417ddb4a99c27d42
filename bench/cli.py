"""`jit credential-process` whole-process time against `python -c pass`, same interpreter.

Prints ratios measured in one run (medians of interleaved runs):

* cache hit: the installed `jit` console script answering from a fresh cache entry
  (target <= 2.5x);
* `jit status` from the cache (piped, so JSON: the cached sessions; target <= 2.5x);
* `jit __complete profiles s3`, what the completion scripts run for a PROFILE: the names
  `jit profiles` remembered (target <= 3x);
* cold cache: the same credential-process with an empty cache against the embedded local
  stack (a grant request: signing, the local gateway's SigV4 check, the broker, moto).

Run: .venv/bin/python bench/cli.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from jit_cli import cache
from jit_local.background import BackgroundStack

PYTHON = sys.executable  # the venv's python itself, never a pyenv shim
JIT = str(Path(PYTHON).parent / "jit")


def timed(argv: list[str], env: dict[str, str], before: Callable[[], None] | None = None) -> float:
    if before is not None:
        before()
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def interleaved(
    runs: int, baseline: list[str], measured: list[str], env: dict[str, str], before=None
) -> tuple[float, float]:
    base, mine = [], []
    for _ in range(runs):
        base.append(timed(baseline, env))
        mine.append(timed(measured, env, before))
    return statistics.median(base), statistics.median(mine)


def remember_profiles(env: dict[str, str]) -> None:
    """The names `jit profiles` lists, kept for completion by cache.remember_profiles."""
    listed = subprocess.run(
        [JIT, "profiles"], env=env, capture_output=True, text=True, check=True
    ).stdout
    names = [profile["name"] for profile in json.loads(listed)]
    cache.remember_profiles(env["JIT_API_URL"], env.get("AWS_PROFILE"), names, env)
    completed = subprocess.run(
        [JIT, "__complete", "profiles", "s3"], env=env, capture_output=True, text=True, check=True
    ).stdout
    if not completed.strip():
        raise SystemExit(f"jit __complete found no s3 profile among {names}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=41)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        stack = BackgroundStack(root / "local.env", root / "stack.log").start()
        try:
            env = dict(stack.env)
            env.update(
                XDG_CACHE_HOME=str(root / "cache"),
                AWS_CONFIG_FILE=str(root / "aws-config"),
                AWS_SHARED_CREDENTIALS_FILE=str(root / "aws-credentials"),
                AWS_EC2_METADATA_DISABLED="true",
            )
            command = [
                JIT,
                "credential-process",
                "s3-read",
                "--api-url",
                env["JIT_API_URL"],
                "--reason",
                "benchmark",
            ]
            subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
            remember_profiles(env)
            baseline = [PYTHON, "-c", "pass"]
            rows = [
                ("credential-process (hit)", command, 2.5),
                ("status (from the cache)", [JIT, "status"], 2.5),
                ("__complete profiles", [JIT, "__complete", "profiles", "s3"], 3.0),
            ]
            for label, measured, target in rows:
                base, mine = interleaved(runs, baseline, measured, env)
                print(
                    f"{label:<26}median {mine * 1000:7.1f} ms  ratio {mine / base:.2f}x "
                    f"(target <= {target}x; python -c pass {base * 1000:.1f} ms)"
                )

            def empty_cache() -> None:
                shutil.rmtree(root / "cache", ignore_errors=True)

            cold_runs = max(5, runs // 4)
            # each cold run takes a new session inside the one active grant (cap 1 per user)
            base, cold = interleaved(cold_runs, baseline, command, env, empty_cache)
            print(
                f"credential-process (cold) median {cold * 1000:7.1f} ms  "
                f"ratio {cold / base:.2f}x (local stack, {cold_runs} runs)"
            )
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
