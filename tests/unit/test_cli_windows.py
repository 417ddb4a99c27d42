"""The CLI's cache on Windows, run on Linux: ``sys.platform`` says ``win32``, a fake ``msvcrt``
stands in for the real one, ``fcntl`` cannot be imported, and the POSIX-only calls Windows
lacks (``os.getuid``, ``os.fchmod``) are gone while ``os.chmod`` fails."""

from __future__ import annotations

import os
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jit_cli import awsconfig, cache, entry, session

GRANT_ID = "g-00000000000000000000000a"
API_URL = "https://broker.example/prod"
BOUND = 10  # seconds: every wait below gives up after this


class FakeMsvcrt(types.ModuleType):
    """``msvcrt.locking`` on one byte at offset 0, per lock file, with the events it saw."""

    LK_UNLCK, LK_LOCK, LK_NBLCK = 0, 1, 2

    def __init__(self) -> None:
        super().__init__("msvcrt")
        self.events: list[tuple[str, str]] = []
        self.waiting = threading.Condition()
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock_of(self, fd: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(os.fstat(fd).st_ino, threading.Lock())

    def record(self, event: str) -> None:
        with self.waiting:
            self.events.append((threading.current_thread().name, event))
            self.waiting.notify_all()

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        assert nbytes == 1 and os.lseek(fd, 0, os.SEEK_CUR) == 0
        lock = self._lock_of(fd)
        if mode == self.LK_LOCK:
            self.record("wait")
            if not lock.acquire(timeout=BOUND):
                raise OSError(36, "Resource deadlock avoided")
            self.record("lock")
        elif mode == self.LK_UNLCK:
            if not lock.locked():
                raise OSError(13, "Permission denied")  # what msvcrt says for an unlocked byte
            self.record("unlock")
            lock.release()
        else:
            raise AssertionError(f"unexpected mode {mode}")


def _no_posix_modes(*args: Any, **kwargs: Any) -> None:
    raise OSError("POSIX modes do not apply on Windows")


@pytest.fixture
def msvcrt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeMsvcrt]:
    # tmp_path first: pytest itself asks os.getuid for it
    fake = FakeMsvcrt()
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    monkeypatch.setitem(sys.modules, "fcntl", None)  # importing it raises ImportError
    monkeypatch.delattr(os, "getuid")
    monkeypatch.delattr(os, "fchmod")
    monkeypatch.setattr(os, "chmod", _no_posix_modes)
    yield fake


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {"XDG_CACHE_HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "AKIASIGNER000000"}


def _entry(number: int = 1) -> dict[str, Any]:
    at = int(time.time())
    return {
        "credentials": {
            "access_key_id": f"ASIASESSION{number:09d}",
            "secret_access_key": f"secret-{number}",
            "session_token": f"token-{number}",
            "expiration": at + 3600,
        },
        "grant": {"id": GRANT_ID, "profile": "s3-read", "expires_at": at + 7200},
    }


def _key(environ: dict[str, str]) -> str:
    return cache.key(API_URL, cache.signing_identity(None, environ), "profile", "s3-read")


def _recording_fetch(msvcrt: FakeMsvcrt, before_write: threading.Event | None = None) -> Any:
    def fetch(*args: Any, **kwargs: Any) -> dict[str, Any]:
        msvcrt.record("fetch")
        if before_write is not None:
            with msvcrt.waiting:  # hold the lock until the other writer is waiting for it
                msvcrt.waiting.wait_for(
                    lambda: sum(event == "wait" for _, event in msvcrt.events) >= 2,
                    timeout=BOUND,
                )
        name = threading.current_thread().name
        return _entry(int(name[-1]) if name[-1].isdigit() else 1)

    return fetch


def _recording_write(msvcrt: FakeMsvcrt, monkeypatch: pytest.MonkeyPatch) -> None:
    write = cache.write

    def recorded(cache_key: str, entry: dict, environ: cache.Environ) -> None:
        msvcrt.record("write")
        write(cache_key, entry, environ)

    monkeypatch.setattr(cache, "write", recorded)


def test_on_windows_is_decided_when_asked_from_sys_platform(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    assert not cache.on_windows()
    monkeypatch.setattr(sys, "platform", "win32")
    assert cache.on_windows()


def test_a_cache_write_on_windows_happens_inside_msvcrt_lock_and_unlock(
    msvcrt: FakeMsvcrt, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "fetch", _recording_fetch(msvcrt))
    _recording_write(msvcrt, monkeypatch)
    wanted = session.Wanted(profile="s3-read", reason="test")

    got = session.obtain(lambda: None, wanted, API_URL, _key(environ), environ)  # type: ignore[arg-type,return-value]

    assert [event for _, event in msvcrt.events] == ["wait", "lock", "fetch", "write", "unlock"]
    assert got["credentials"] == cache.read(_key(environ), environ)["credentials"]  # type: ignore[index]
    assert (Path(environ["XDG_CACHE_HOME"]) / "jit" / (_key(environ) + ".lock")).is_file()


def test_concurrent_writers_on_windows_take_turns(
    msvcrt: FakeMsvcrt, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "fetch", _recording_fetch(msvcrt, threading.Event()))
    _recording_write(msvcrt, monkeypatch)
    wanted = session.Wanted(profile="s3-read", new=True)  # both fetch and write
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            session.obtain(lambda: None, wanted, API_URL, _key(environ), environ)  # type: ignore[arg-type,return-value]
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=writer, name=f"writer-{n}") for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=BOUND)
    assert not errors and not any(thread.is_alive() for thread in threads)

    held = [(name, event) for name, event in msvcrt.events if event != "wait"]
    assert len(held) == 8
    first, second = held[0][0], held[4][0]
    assert first != second
    assert held == [
        *((first, event) for event in ("lock", "fetch", "write", "unlock")),
        *((second, event) for event in ("lock", "fetch", "write", "unlock")),
    ]
    written = cache.read(_key(environ), environ)
    assert written is not None and written["credentials"]["access_key_id"].endswith(second[-1])


def test_a_failed_fetch_on_windows_still_unlocks_the_cache(
    msvcrt: FakeMsvcrt, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("broker unreachable")

    monkeypatch.setattr(session, "fetch", failing)
    wanted = session.Wanted(profile="s3-read")

    with pytest.raises(RuntimeError):
        session.obtain(lambda: None, wanted, API_URL, _key(environ), environ)  # type: ignore[arg-type,return-value]

    assert [event for _, event in msvcrt.events] == ["wait", "lock", "unlock"]


def test_cache_files_on_windows_need_no_posix_owner_or_mode(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = Path(environ["XDG_CACHE_HOME"]) / "jit"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)  # on POSIX the write would chmod this back to 0700
    cache.write(_key(environ), _entry(), environ)
    os.chmod(folder / (_key(environ) + ".json"), 0o644)  # what Windows reports for any file
    aws_config = folder.parent / "aws" / "config"
    fake = FakeMsvcrt()
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    monkeypatch.delattr(os, "getuid")
    monkeypatch.delattr(os, "fchmod")
    monkeypatch.setattr(os, "chmod", _no_posix_modes)

    assert cache.read(_key(environ), environ) is not None
    cache.write(_key(environ), _entry(2), environ)
    with cache.Lock(_key(environ), environ):
        pass
    assert cache.read(_key(environ), environ)["credentials"]["session_token"] == "token-2"  # type: ignore[index]
    assert cache.grant_of_access_key("ASIASESSION000000002", environ) == GRANT_ID
    assert cache.forget_grant(GRANT_ID, environ) == 1
    assert cache.revoked_grant(_key(environ), environ) == GRANT_ID
    assert cache.clear(environ) == 0
    awsconfig.write_atomically(str(aws_config), "[profile jit-s3-read]\nregion = eu-west-1\n")
    assert aws_config.read_text(encoding="utf-8").startswith("[profile jit-s3-read]")


def test_the_fast_path_on_windows_answers_a_hit_without_a_lock_module(
    msvcrt: FakeMsvcrt, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.write(_key(environ), _entry(), environ)
    monkeypatch.setitem(sys.modules, "msvcrt", None)  # a read must not import it either

    document = entry.cached_credential_process(["s3-read", "--api-url", API_URL], environ)

    assert document is not None and '"AccessKeyId": "ASIASESSION000000001"' in document


@pytest.mark.skipif(sys.platform == "win32", reason="the POSIX branch")
def test_the_posix_branch_locks_with_fcntl_and_never_imports_msvcrt(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    monkeypatch.setitem(sys.modules, "msvcrt", None)
    with cache.Lock(_key(environ), environ):
        other = os.open(
            Path(environ["XDG_CACHE_HOME"]) / "jit" / (_key(environ) + ".lock"), os.O_RDWR
        )
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)


def _replace_refused(times: int) -> tuple[list[float], Any]:
    replace = os.replace
    refused: list[float] = []

    def flaky(source: str, target: str) -> None:
        if len(refused) < times:
            refused.append(0)
            raise PermissionError(13, "The process cannot access the file")  # a reader has it
        replace(source, target)

    return refused, flaky


def test_a_write_on_windows_retries_while_a_reader_holds_the_file(
    msvcrt: FakeMsvcrt, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    refused, flaky = _replace_refused(2)
    slept: list[float] = []
    monkeypatch.setattr(os, "replace", flaky)
    monkeypatch.setattr(cache.time, "sleep", slept.append)

    cache.write(_key(environ), _entry(), environ)

    assert len(refused) == 2 and len(slept) == 2
    assert cache.read(_key(environ), environ) is not None
    assert not [p for p in (Path(environ["XDG_CACHE_HOME"]) / "jit").iterdir() if ".tmp-" in p.name]


def test_a_write_on_windows_gives_up_after_bounded_attempts_and_leaves_no_temporary(
    msvcrt: FakeMsvcrt, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    refused, flaky = _replace_refused(cache.REPLACE_ATTEMPTS + 5)
    monkeypatch.setattr(os, "replace", flaky)
    monkeypatch.setattr(cache.time, "sleep", lambda seconds: None)

    with pytest.raises(PermissionError):
        cache.write(_key(environ), _entry(), environ)

    assert len(refused) == cache.REPLACE_ATTEMPTS
    assert not list((Path(environ["XDG_CACHE_HOME"]) / "jit").iterdir())


def test_a_refused_replace_on_posix_is_not_retried(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    refused, flaky = _replace_refused(1)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "replace", flaky)

    with pytest.raises(PermissionError):
        cache.write(_key(environ), _entry(), environ)

    assert len(refused) == 1
