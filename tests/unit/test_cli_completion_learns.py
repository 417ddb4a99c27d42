"""Profile completion learns from the broker: every command that lists the profiles (jit
profiles, configure, init, the did-you-mean of a mistyped profile) remembers the names for the
fast path's ``jit __complete profiles``, which never asks the broker itself."""

from __future__ import annotations

import os
import subprocess
import sys

from jit_cli import cache
from tests.unit import test_cli
from tests.unit.test_cli import FakeBroker, Reply

# the fake broker, the isolated AWS environment and the in-process jit of test_cli
fake = test_cli.fake
isolated_aws_env = test_cli.isolated_aws_env
signer_env = test_cli.signer_env
jit = test_cli.jit


PROFILES = [{**test_cli.PROFILES[0], "name": name} for name in ("s3-write", "read-only", "s3-read")]


def complete(broker: FakeBroker, prefix: str) -> list[str]:
    program = "from jit_cli.entry import entry; entry()"
    done = subprocess.run(
        [sys.executable, "-c", program, "__complete", "profiles", prefix, "exec"],
        env={**os.environ, "JIT_API_URL": broker.url},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_jit_profiles_feeds_the_completion_of_profile_names(jit, fake: FakeBroker) -> None:
    fake.routes["GET", "/v1/profiles"] = Reply(200, {"profiles": PROFILES})
    names = sorted(p["name"] for p in PROFILES)
    assert complete(fake, "") == []  # nothing learnt yet: nothing offered

    assert jit("profiles").code == 0

    assert complete(fake, "") == names
    assert complete(fake, "s3") == ["s3-read", "s3-write"]
    assert cache.remembered_profiles(fake.url, None, dict(os.environ)) == names


def test_a_mistyped_profile_s_did_you_mean_listing_feeds_it_too(jit, fake: FakeBroker) -> None:
    fake.routes["GET", "/v1/profiles"] = Reply(200, {"profiles": PROFILES})
    fake.routes["POST", "/v1/grants"] = Reply(
        404, {"error": {"code": "not_found", "message": "no such profile"}}
    )

    assert jit("request", "s3-raed", "--reason", "r").code != 0

    assert complete(fake, "") == sorted(p["name"] for p in PROFILES)


def test_a_failed_listing_remembers_nothing(jit, fake: FakeBroker) -> None:
    fake.routes["GET", "/v1/profiles"] = Reply(
        503, {"error": {"code": "policy_unavailable", "message": "try later"}}
    )

    assert jit("profiles").code != 0

    assert complete(fake, "") == []
