"""Completion of PROFILE and GRANT_ID: the bash, zsh and fish scripts run the hidden ``jit
__complete``, which entry.py answers from the cache alone (profile names a command
remembered per broker and signer, grants of live cached sessions of that broker), never the
broker, without importing main, argparse or botocore; nothing cached prints nothing."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jit_cli import cache, entry, main
from tests.unit import test_cli_windows

msvcrt = test_cli_windows.msvcrt

API_URL = "https://broker.example/prod"
OTHER_URL = "https://other-broker.example/prod"
PROFILES = ["ec2-admin", "s3-read", "s3-write"]
LIVE_GRANT = "g-0000000000000000000000a1"
ENDED_GRANT = "g-0000000000000000000000e1"
OTHER_BROKER_GRANT = "g-0000000000000000000000b1"


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """The CLI's environment: a broker URL, signing keys, private XDG folders, no profile."""
    return {
        "JIT_API_URL": API_URL,
        "AWS_ACCESS_KEY_ID": "AKIASIGNER0000000001",
        "AWS_SECRET_ACCESS_KEY": "signer-secret",
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }


def cached_session(
    environ: dict[str, str], grant_id: str, ends_at: int, api_url: str = API_URL
) -> None:
    """A cache entry of ``grant_id`` whose session and grant end at ``ends_at``."""
    entry_ = {
        "api_url": api_url,
        "profile": "s3-read",
        "grant": {"id": grant_id, "expires_at": ends_at},
        "credentials": {
            "access_key_id": f"ASIA{grant_id[-4:].upper()}",
            "secret_access_key": "session-secret",
            "session_token": "session-token",
            "expiration": ends_at,
        },
    }
    identity = cache.signing_identity(None, environ)
    cache.write(cache.key(api_url, identity, "profile", grant_id), entry_, environ)


def child_env(environ: dict[str, str], bin_folder: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "JIT_", "XDG_"))}
    # make test-future's shifted clock reaches the child too (tools/clock_shift)
    shift = os.environ.get("JIT_TEST_CLOCK_SHIFT_DAYS")
    if shift:
        env["JIT_TEST_CLOCK_SHIFT_DAYS"] = shift
    env.update(environ)
    if bin_folder is not None:
        env["PATH"] = f"{bin_folder}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_jit(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from jit_cli.entry import entry; entry()", *args],
        env=child_env(environ),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def completion_script(shell: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main.main(["completion", shell]) == 0
    return capsys.readouterr().out


# ---------------------------------------------------------------- the scripts


PROFILE_COMMANDS = ("request", "exec", "env", "configure", "console", "credential-process")


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_bash_and_zsh_scripts_ask_jit_complete_for_profile_and_grant_positionals(
    shell: str, capsys: pytest.CaptureFixture[str]
) -> None:
    script = completion_script(shell, capsys)

    cases = {
        line.split(")", 1)[0].strip(): line
        for line in script.splitlines()
        if line.strip().endswith(";;")
    }
    for command in PROFILE_COMMANDS:
        assert "names=profiles " in cases[command], command
    for command in ("creds", "grant", "approve", "deny", "review"):
        assert "names=grants " in cases[command], command
    assert "names=grants,profiles " in cases["revoke"]
    assert "names=" not in cases["status"] and "names=" not in cases["init"]
    assert 'COMPREPLY=($(jit __complete "$names" "$cur" "${typed[@]}" 2>/dev/null))' in script


def test_fish_script_asks_jit_complete_for_the_first_positional_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = completion_script("fish", capsys)

    dynamic = {
        line.split("'__jit_first_positional ", 1)[1].split("'", 1)[0]: line
        for line in script.splitlines()
        if line.startswith("complete -c jit -n '__jit_first_positional ")
    }
    by_commands = {tuple(commands.split()): line for commands, line in dynamic.items()}
    [profiles] = [line for commands, line in by_commands.items() if "request" in commands]
    assert set(PROFILE_COMMANDS) <= set(profiles.split("'")[1].split()[1:])
    assert "(jit __complete profiles (commandline -ct) (commandline -opc)[2..-1]" in profiles
    grant_ids = by_commands[("creds", "grant", "approve", "deny", "review")]  # their GRANT_ID
    assert "jit __complete grants " in grant_ids
    assert "jit __complete grants,profiles " in by_commands[("revoke",)]
    assert "function __jit_first_positional" in script


def _shim(tmp_path: Path) -> tuple[Path, Path]:
    """A ``jit`` on PATH that logs its arguments and runs the real entry point."""
    folder, log = tmp_path / "bin", tmp_path / "jit-calls.log"
    folder.mkdir()
    shim = folder / "jit"
    shim.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> {shlex.quote(str(log))}\n'
        f'exec {shlex.quote(sys.executable)} -c "from jit_cli.entry import entry; entry()" "$@"\n'
    )
    shim.chmod(0o755)
    return folder, log


def complete_in_bash(
    script: str, environ: dict[str, str], bin_folder: Path, *words: str
) -> list[str]:
    program = (
        f"{script}\nCOMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
        "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n_jit\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    done = subprocess.run(
        ["bash", "-c", program],
        env=child_env(environ, bin_folder),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.split()


def test_bash_completes_a_profile_by_running_jit_complete_into_compreply(
    environ: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = completion_script("bash", capsys)
    cache.remember_profiles(API_URL, None, PROFILES, environ)
    bin_folder, log = _shim(tmp_path)

    offered = complete_in_bash(script, environ, bin_folder, "jit", "request", "s3")

    assert offered == ["s3-read", "s3-write"]
    assert log.read_text().splitlines() == ["__complete profiles s3 request"]


def test_bash_completes_revoke_with_live_grants_and_profiles_of_the_broker_typed(
    environ: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = completion_script("bash", capsys)
    cache.remember_profiles(API_URL, None, PROFILES, environ)
    cache_other = ["only-there"]
    cache.remember_profiles(OTHER_URL, None, cache_other, environ)
    cached_session(environ, LIVE_GRANT, int(time.time()) + 3600)
    bin_folder, _ = _shim(tmp_path)

    here = complete_in_bash(script, environ, bin_folder, "jit", "revoke", "")
    # bash splits the URL at ':' (COMP_WORDBREAKS); the script glues it back
    there = complete_in_bash(
        script,
        environ,
        bin_folder,
        "jit",
        "--api-url",
        "https",
        ":",
        "//other-broker.example/prod",
        "revoke",
        "",
    )

    assert here == sorted([LIVE_GRANT, *PROFILES])
    assert there == cache_other


def test_bash_offers_options_once_the_positional_is_given_and_choices_without_jit(
    environ: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = completion_script("bash", capsys)
    cache.remember_profiles(API_URL, None, PROFILES, environ)
    bin_folder, log = _shim(tmp_path)

    after = complete_in_bash(script, environ, bin_folder, "jit", "exec", "s3-read", "")
    value = complete_in_bash(script, environ, bin_folder, "jit", "exec", "--reason", "")

    shells = complete_in_bash(script, environ, bin_folder, "jit", "completion", "")

    assert "--reason" in after and "s3-read" not in after
    assert value == []  # the value of --reason: nothing to suggest
    assert sorted(shells) == ["bash", "fish", "zsh"]  # a positional's choices, from the parser
    assert not log.exists()  # jit was never run


# ---------------------------------------------------------------- jit __complete


def test_complete_profiles_prints_the_remembered_names_that_start_with_the_prefix(
    environ: dict[str, str],
) -> None:
    cache.remember_profiles(API_URL, None, PROFILES, environ)

    done = run_jit(environ, "__complete", "profiles", "s3-")

    assert (done.returncode, done.stdout, done.stderr) == (0, "s3-read\ns3-write\n", "")
    assert entry.complete(["profiles", ""], environ) == PROFILES


def test_complete_grants_lists_live_cached_sessions_of_this_broker_only(
    environ: dict[str, str],
) -> None:
    now = int(time.time())
    cached_session(environ, LIVE_GRANT, now + 1800)
    cached_session(environ, ENDED_GRANT, now - 60)
    cached_session(environ, OTHER_BROKER_GRANT, now + 1800, api_url=OTHER_URL)

    assert entry.complete(["grants", "g-"], environ) == [LIVE_GRANT]
    assert entry.complete(["grants", "", "--api-url", OTHER_URL], environ) == [OTHER_BROKER_GRANT]


def test_complete_with_nothing_cached_prints_nothing_and_exits_0(environ: dict[str, str]) -> None:
    done = run_jit(environ, "__complete", "grants,profiles", "")

    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_complete_with_no_broker_named_or_a_bad_config_prints_nothing(
    environ: dict[str, str], tmp_path: Path
) -> None:
    del environ["JIT_API_URL"]
    config = tmp_path / "config" / "jit" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("default_environment = [\n")  # not TOML

    done = run_jit(environ, "__complete", "profiles", "")

    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_remembered_profiles_are_never_another_brokers_or_signers(
    environ: dict[str, str],
) -> None:
    cache.remember_profiles(API_URL, None, PROFILES, environ)
    cache.remember_profiles(API_URL, "admin", ["break-glass"], environ)

    assert cache.remembered_profiles(OTHER_URL, None, environ) == []
    assert cache.remembered_profiles(API_URL, "admin", environ) == ["break-glass"]
    assert entry.complete(["profiles", ""], {**environ, "AWS_PROFILE": "admin"}) == ["break-glass"]
    assert entry.complete(["profiles", "", "--aws-profile", "admin"], environ) == ["break-glass"]
    assert entry.complete(["profiles", "", "--api-url", OTHER_URL], environ) == []
    other_keys = {**environ, "AWS_ACCESS_KEY_ID": "AKIAOTHER00000000001"}
    assert entry.complete(["profiles", ""], other_keys) == []


def test_a_profile_name_a_shell_would_split_is_never_remembered(environ: dict[str, str]) -> None:
    cache.remember_profiles(API_URL, None, ["s3-read", "two words", "line\nbreak", "", 7], environ)  # type: ignore[list-item]

    assert cache.remembered_profiles(API_URL, None, environ) == ["s3-read"]


def test_the_profile_list_is_a_private_file_written_whole_and_ignored_if_not_private(
    environ: dict[str, str],
) -> None:
    cache.remember_profiles(API_URL, None, PROFILES, environ)
    cache.remember_profiles(API_URL, None, ["s3-read"], environ)  # replaced, not appended

    folder = Path(environ["XDG_CACHE_HOME"]) / "jit"
    [written] = list(folder.iterdir())
    assert written.suffix == cache.PROFILES_SUFFIX
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert cache.remembered_profiles(API_URL, None, environ) == ["s3-read"]
    written.chmod(0o644)
    assert cache.remembered_profiles(API_URL, None, environ) == []


def test_remember_profiles_never_fails_the_command_that_learnt_them(
    environ: dict[str, str],
) -> None:
    Path(environ["XDG_CACHE_HOME"]).write_text("a file where the cache folder would be")

    cache.remember_profiles(API_URL, None, PROFILES, environ)

    assert cache.remembered_profiles(API_URL, None, environ) == []


def test_cache_clear_forgets_the_profile_list_and_counts_sessions_only(
    environ: dict[str, str],
) -> None:
    cache.remember_profiles(API_URL, None, PROFILES, environ)
    cached_session(environ, LIVE_GRANT, int(time.time()) + 3600)

    assert cache.clear(environ) == 1
    assert list((Path(environ["XDG_CACHE_HOME"]) / "jit").iterdir()) == []


def test_the_profile_list_on_windows_needs_no_posix_owner_or_mode(
    msvcrt: test_cli_windows.FakeMsvcrt, environ: dict[str, str]
) -> None:
    cache.remember_profiles(API_URL, None, PROFILES, environ)

    assert cache.remembered_profiles(API_URL, None, environ) == PROFILES
    assert entry.complete(["profiles", "ec"], environ) == ["ec2-admin"]


def test_jit_complete_imports_neither_main_argparse_nor_botocore(environ: dict[str, str]) -> None:
    cache.remember_profiles(API_URL, None, PROFILES, environ)
    cached_session(environ, LIVE_GRANT, int(time.time()) + 3600)
    program = (
        "import sys\n"
        "before = set(sys.modules)  # the interpreter's own (and a sitecustomize's)\n"
        "from jit_cli import entry\n"
        "sys.argv = ['jit', '__complete', 'grants,profiles', '']\n"
        "try:\n"
        "    entry.entry()\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "heavy = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
        "('boto3', 'botocore', 'pydantic', 'argparse', 'urllib', 'typing') "
        "or m in ('jit_cli.main', 'jit_cli.broker', 'jit_cli.session', 'jit_cli.completion'))\n"
        "print(repr(heavy), file=sys.stderr)\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", program],
        env=child_env(environ),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == sorted([LIVE_GRANT, *PROFILES])
    assert done.stderr.strip() == "[]"


@pytest.mark.parametrize("flag", ["--broker", "--env"])
def test_complete_follows_a_broker_named_from_the_config_file(
    environ: dict[str, str], flag: str
) -> None:
    config = Path(environ["XDG_CONFIG_HOME"]) / "jit" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[environments.other]\napi_url = "{OTHER_URL}"\n')
    cache.remember_profiles(API_URL, None, PROFILES, environ)
    cache.remember_profiles(OTHER_URL, None, ["only-there"], environ)

    assert entry.complete(["profiles", "", "request", flag, "other"], environ) == ["only-there"]
    assert entry.complete(["profiles", "", "request", f"{flag}=other"], environ) == ["only-there"]
