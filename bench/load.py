"""Benchmark: the local stack under concurrent load (figures against baselines measured in the
same run, never timing asserts; tests/local/test_load.py checks what the load leaves behind).

For each mode of the local gateway, on a fresh stack:
  * in-process: the broker's handler in the stack's process, one invocation at a time;
  * workers: the handler in N worker processes at once (``jit local --workers N``);
two loads, each sent all at once from a thread pool, signed with botocore's SigV4Auth:
  * whoami: signed GET /v1/whoami (the bare gateway + handler round trip, the baseline);
  * grants: signed POST /v1/grants from R requesters (each may hold all of their grants).

Printed: requests/s, p50 and p99 latency, and the statuses, for each; then workers vs
in-process throughput of the grant load. Both modes share one embedded AWS (moto), which
answers one request at a time: that, not the handler, bounds the grant load.

Run: ``make bench`` (or ``.venv/bin/python bench/load.py [--workers 4] [--requests 200]``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ACCOUNT = "123456789012"
OUT = sys.stdout  # the figures; the handler's own stdout (a metrics line per 100) is dropped


@dataclass(frozen=True)
class Figures:
    label: str
    seconds: float
    latencies: list[float]
    statuses: Counter[int]

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def line(self) -> str:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"  {self.label:<22} {self.per_second:7.1f} req/s   p50 {self.percentile(50) * 1000:7.0f} ms"
            f"   p99 {self.percentile(99) * 1000:7.0f} ms   ({statuses})"
        )


def run_load(label: str, send: Callable[[str], int], users: list[str], concurrency: int) -> Figures:
    """Each of ``users`` sends one request; ``concurrency`` are in flight at once."""

    def timed(user: str) -> tuple[float, int]:
        started = time.perf_counter()
        status = send(user)
        return time.perf_counter() - started, status

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(timed, users))
    elapsed = time.perf_counter() - started
    return Figures(label, elapsed, [r[0] for r in results], Counter(r[1] for r in results))


def policy_file(folder: Path, users: list[str], per_user: int) -> Path:
    import yaml

    from jit_local.server import EXAMPLE_POLICY

    policy = yaml.safe_load(EXAMPLE_POLICY.read_text())
    profile = policy["profiles"]["s3-read"]
    profile["requesters"] = {"users": [f"arn:aws:iam::{ACCOUNT}:user/{u}" for u in users]}
    profile["max_active_grants"] = per_user  # every request may be granted
    policy.setdefault("limits", {})["requests_per_minute"] = max(per_user, 10)
    path = folder / "bench-policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def say(line: str) -> None:
    print(line, file=OUT, flush=True)


def one_mode(
    workers: int, args: argparse.Namespace, policy: Path, users: list[str]
) -> tuple[Figures, Figures]:
    with contextlib.redirect_stdout(io.StringIO()):
        return _one_mode(workers, args, policy, users)


def _one_mode(
    workers: int, args: argparse.Namespace, policy: Path, users: list[str]
) -> tuple[Figures, Figures]:
    from jit_local.server import LocalStack

    label = f"{workers} workers" if workers else "in-process (one at a time)"
    started = time.perf_counter()
    stack = LocalStack(
        port=0, policy_file=policy, audit_interval=0, workers=workers, extra_users=tuple(users)
    ).start()
    say(f"{label}: stack up in {time.perf_counter() - started:.1f} s")
    try:
        for user in users:  # warm every worker's first call (lazy imports, clients)
            stack.call("GET", "/v1/whoami", user=user)
        whoami = run_load(
            f"whoami x{args.requests}",
            lambda user: stack.call("GET", "/v1/whoami", user=user)[0],
            [users[i % len(users)] for i in range(args.requests)],
            args.concurrency,
        )
        say(whoami.line())

        def grant(user: str) -> int:
            body = {
                "profile": "s3-read",
                "duration": 900,
                "reason": "bench",
                "nonce": uuid.uuid4().hex,
            }
            return stack.call("POST", "/v1/grants", body, user=user)[0]

        grants = run_load(
            f"grants x{args.requests}",
            grant,
            [users[i % len(users)] for i in range(args.requests)],
            args.concurrency,
        )
        say(grants.line())
        return whoami, grants
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--requesters", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=20, help="requests in flight")
    args = parser.parse_args(argv)

    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",  # one INFO line per grant would be all the output
    }.items():
        os.environ[name] = value
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    logging.getLogger("jit_local.gateway").setLevel(logging.WARNING)

    users = [f"BenchUser{i:02d}" for i in range(args.requesters)]
    per_user = -(-args.requests // args.requesters)
    say(
        f"load: {args.requests} requests from {args.requesters} requesters, "
        f"{args.concurrency} in flight"
    )
    with tempfile.TemporaryDirectory() as tmp:
        policy = policy_file(Path(tmp), users, per_user)
        whoami_1, grants_1 = one_mode(0, args, policy, users)
        whoami_n, grants_n = one_mode(args.workers, args, policy, users)
    for name, one, many in (("grants", grants_1, grants_n), ("whoami", whoami_1, whoami_n)):
        say(
            f"{name}: {args.workers} workers vs in-process: "
            f"{many.per_second / one.per_second:.2f}x req/s, "
            f"p50 {many.percentile(50) / one.percentile(50):.2f}x, "
            f"p99 {many.percentile(99) / one.percentile(99):.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
