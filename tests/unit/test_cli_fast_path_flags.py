"""The credential-process fast path reads the signer from the flag ``jit configure`` writes
now (``--aws-profile``) and from the one AWS config files of earlier releases hold
(``--source-profile``): both find the same cache entry; both at once are left to main."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jit_cli import cache, entry

API_URL = "https://broker.example/prod"


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "aws-config").write_text("[profile signer]\nregion = eu-west-1\n")
    return {
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }


def cache_a_session_signed_by(profile: str, environ: dict[str, str]) -> None:
    ends_at = int(time.time()) + 3600
    identity = cache.signing_identity(profile, environ)
    entry_ = {
        "api_url": API_URL,
        "profile": "s3-read",
        "grant": {"id": "g-0000000000000000000000f1", "expires_at": ends_at},
        "credentials": {
            "access_key_id": "ASIAFASTPATH00000001",
            "secret_access_key": "session-secret",
            "session_token": "session-token",
            "expiration": ends_at,
        },
    }
    cache.write(cache.key(API_URL, identity, "profile", "s3-read"), entry_, environ)


@pytest.mark.parametrize("flag", ["--aws-profile", "--source-profile"])
def test_a_cached_session_is_found_whichever_spelling_names_the_signer(
    environ: dict[str, str], flag: str
) -> None:
    cache_a_session_signed_by("signer", environ)

    document = entry.cached_credential_process(
        ["s3-read", "--api-url", API_URL, flag, "signer", "--reason", "r"], environ
    )

    assert document is not None and '"AccessKeyId": "ASIAFASTPATH00000001"' in document


def test_both_spellings_of_the_signer_at_once_are_left_to_main(environ: dict[str, str]) -> None:
    cache_a_session_signed_by("signer", environ)

    argv = ["s3-read", "--aws-profile", "signer", "--source-profile", "signer"]

    assert entry._parse(argv) is None
    assert entry.cached_credential_process([*argv, "--api-url", API_URL], environ) is None


def test_another_signer_does_not_find_the_session(environ: dict[str, str]) -> None:
    cache_a_session_signed_by("signer", environ)

    document = entry.cached_credential_process(
        ["s3-read", "--api-url", API_URL, "--aws-profile", "someone-else"], environ
    )

    assert document is None
