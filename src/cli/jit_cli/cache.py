"""The credential cache: one small JSON file per (API URL, signing identity, JIT profile,
account asked for).

This module imports only the standard library (and only cheap parts of it at import time):
it is the whole cache-hit path of ``jit credential-process``, which must cost little more
than starting Python. botocore, boto3 and pydantic are never imported here.

Where: ``$XDG_CACHE_HOME/jit`` (an absolute path) or ``~/.cache/jit``; the directory is
created 0700 and each file 0600, written to a temporary file in the same directory and
moved into place with ``os.replace`` (a reader sees the old file or the new one, never half).
Beside the sessions, ``<key>.profiles`` keeps the profile names a broker listed, for shell
completion (:func:`remember_profiles`).

The key is the SHA-256 of (format version, API URL, signing identity, kind, name, account):
a session of a grant in one account is never served for another (no account named: the
profile's only one, under a key of its own). The signing identity is derived *without*
asking botocore who we are, from what decides it:

* a named profile (``--source-profile`` recorded by ``jit configure``, ``--profile``,
  AWS_PROFILE): ``profile:NAME`` plus a fingerprint (inode, size, mtime) of the AWS config
  and credentials files, so editing what the profile resolves to starts a new cache entry;
* else keys in the environment: ``env:AWS_ACCESS_KEY_ID`` (the key id names the identity);
* else the default chain: ``default`` plus the same file fingerprint (instance or container
  roles are fixed per machine).

What it cannot see: a different person signed in behind the *same* profile and unchanged
files (e.g. ``aws sso login`` into another account of an SSO profile whose config names no
account). Run ``jit cache clear`` (or pass ``--no-cache``) after such a switch.

A file is used only if it is a regular file owned by this user with no group/other
permission bits, in a directory owned by this user (on Windows, where modes and owners do not
apply, the per-user profile directory's ACL is what keeps it private), parses as JSON, has this format version
and this exact key, and holds well-formed credentials. Anything else is a miss (and is
overwritten on the next write). A hit needs more than :data:`REFRESH_MARGIN` seconds left
before the session *or* the grant ends, whichever is first.

The lock (:class:`Lock`) is ``fcntl.flock`` on POSIX and ``msvcrt.locking`` on Windows, chosen
when it is taken (:func:`on_windows`); a read never imports either.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time

try:  # the builtin module: hashlib would load OpenSSL, a few ms on every hit
    from _sha2 import sha256
except ImportError:  # pragma: no cover - other Python builds
    from hashlib import sha256

TYPE_CHECKING = False  # typing itself costs a few ms on every cache hit
if TYPE_CHECKING:
    from collections.abc import Iterable

Environ = dict[str, str] | os._Environ[str]

VERSION = 1
REFRESH_MARGIN = 300
CREDENTIAL_FIELDS = ("access_key_id", "secret_access_key", "session_token")
CLOCK_OFFSET_VARIABLE = "JIT_CLOCK_OFFSET"
_AWS_FILES = (
    ("AWS_CONFIG_FILE", "~/.aws/config"),
    ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
)


def on_windows() -> bool:
    """Windows (no POSIX owners, modes or flock): read when asked, so tests can pretend."""
    return sys.platform == "win32"


def now(environ: Environ | None = None) -> float:
    """Epoch seconds; JIT_CLOCK_OFFSET (seconds, tests only) shifts the CLI's clock."""
    offset = (os.environ if environ is None else environ).get(CLOCK_OFFSET_VARIABLE, "")
    try:
        return time.time() + float(offset or 0)
    except ValueError:
        return time.time()


def directory(environ: Environ) -> str:
    """``$XDG_CACHE_HOME/jit`` when that is an absolute path, else ``~/.cache/jit``."""
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jit")


def _fingerprint(environ: Environ) -> str:
    parts = []
    for variable, default in _AWS_FILES:
        path = os.path.expanduser(environ.get(variable) or default)
        try:
            info = os.stat(path)
        except OSError:
            parts.append("-")
            continue
        parts.append(f"{info.st_ino}:{info.st_size}:{info.st_mtime_ns}")
    return ",".join(parts)


def signing_identity(profile: str | None, environ: Environ) -> str:
    """What decides the signing identity (see the module docstring), as one string."""
    if profile:
        return f"profile:{profile}|{_fingerprint(environ)}"
    access_key = environ.get("AWS_ACCESS_KEY_ID", "")
    if access_key:
        return f"env:{access_key}"
    return f"default|{_fingerprint(environ)}"


def key(api_url: str, identity: str, kind: str, name: str, account: str | None = None) -> str:
    """The cache key: hex SHA-256 of the version, URL, identity, kind, name and account."""
    material = json.dumps([VERSION, api_url.rstrip("/"), identity, kind, name, account])
    return sha256(material.encode()).hexdigest()


def path_for(cache_key: str, environ: Environ) -> str:
    return os.path.join(directory(environ), cache_key + ".json")


def _private_to_me(info: os.stat_result) -> bool:
    if on_windows():  # no owner or group/other bits: the profile directory's ACL decides
        return True
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)


def _owned_by_me(info: os.stat_result) -> bool:
    return on_windows() or info.st_uid == os.getuid()


_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def _read_bytes(path: str) -> bytes | None:
    """The file's bytes if it and its directory are ours and private; else None."""
    try:
        if not _owned_by_me(os.stat(os.path.dirname(path))):
            return None
        fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or not _private_to_me(info):
            return None
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _well_formed(entry: object, cache_key: str) -> bool:
    if not isinstance(entry, dict) or entry.get("version") != VERSION:
        return False
    if entry.get("key") != cache_key:
        return False
    creds, grant = entry.get("credentials"), entry.get("grant")
    if not isinstance(creds, dict) or not isinstance(grant, dict):
        return False
    if not all(isinstance(creds.get(f), str) and creds[f] for f in CREDENTIAL_FIELDS):
        return False
    if not isinstance(grant.get("id"), str):
        return False
    return all(_is_int(value) for value in (creds.get("expiration"), grant.get("expires_at")))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read(cache_key: str, environ: Environ) -> dict | None:
    """The entry under ``cache_key`` if present and trustworthy (any age); else None."""
    data = _read_bytes(path_for(cache_key, environ))
    if data is None:
        return None
    try:
        entry = json.loads(data)
    except ValueError:
        return None
    return entry if _well_formed(entry, cache_key) else None


def ends_at(entry: dict) -> int:
    """When the cached credentials stop working: the session's or the grant's end."""
    return min(int(entry["credentials"]["expiration"]), int(entry["grant"]["expires_at"]))


def is_fresh(entry: dict, at: float) -> bool:
    """More than REFRESH_MARGIN seconds left: use it without asking the broker."""
    return ends_at(entry) - at > REFRESH_MARGIN


def iso_utc(epoch_seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


def time_left(seconds: float) -> str:
    """``42 min left``, ``1 h 05 min left``."""
    minutes = max(0, int(seconds) // 60)
    if minutes < 60:
        return f"{minutes} min left"
    return f"{minutes // 60} h {minutes % 60:02d} min left"


def local_time(epoch: float, at: float) -> str:
    """``19:50`` in local time (with the date when that is not today's)."""
    moment, today = time.localtime(epoch), time.localtime(at)
    if moment[:3] == today[:3]:
        return time.strftime("%H:%M", moment)
    return time.strftime("%Y-%m-%d %H:%M", moment)


def credential_process_json(entry: dict) -> str:
    """The credential_process document; Expiration is when the credentials stop working."""
    creds = entry["credentials"]
    document = {
        "Version": 1,
        "AccessKeyId": creds["access_key_id"],
        "SecretAccessKey": creds["secret_access_key"],
        "SessionToken": creds["session_token"],
        "Expiration": iso_utc(ends_at(entry)),
    }
    return json.dumps(document, indent=2)


def _ensure_directory(environ: Environ) -> str:
    folder = directory(environ)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    if on_windows():  # mode is ignored there and there is no owner to compare
        return folder
    info = os.stat(folder)
    if info.st_uid != os.getuid():
        raise PermissionError(f"cache directory {folder} belongs to another user")
    if info.st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


def write(cache_key: str, entry: dict, environ: Environ) -> None:
    """Store ``entry`` under ``cache_key``: 0600 temporary file, fsync, os.replace."""
    document = {**entry, "version": VERSION, "key": cache_key}
    _write_private(path_for(cache_key, environ), document, environ)


def _write_private(path: str, document: dict, environ: Environ) -> None:
    """``document`` as JSON at ``path`` in the cache directory, atomically and 0600."""
    import tempfile

    folder = _ensure_directory(environ)
    fd, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        _replace(temporary, path)
    except BaseException:
        with _ignored_os_error():
            os.unlink(temporary)
        raise


REPLACE_ATTEMPTS = 20


def _replace(source: str, target: str) -> None:
    """``os.replace``; on Windows it fails while a reader has ``target`` open (the
    reader holds it for microseconds): a bounded retry there, never on POSIX."""
    for attempt in range(REPLACE_ATTEMPTS):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if not on_windows() or attempt == REPLACE_ATTEMPTS - 1:
                raise
            time.sleep(0.005 * (attempt + 1))


class _ignored_os_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, value: object, traceback: object) -> bool:
        return isinstance(value, OSError)


class Lock:
    """An exclusive lock on ``<key>.lock``: one process fetches, the others then hit.

    ``fcntl.flock`` on POSIX; on Windows ``msvcrt.locking`` of the file's first byte (its
    ``LK_LOCK`` tries for about 10 s, then raises: retried up to :attr:`WINDOWS_ATTEMPTS`
    times). The module is imported here, never by a read.
    """

    WINDOWS_ATTEMPTS = 30

    def __init__(self, cache_key: str, environ: Environ) -> None:
        self._path = os.path.join(_ensure_directory(environ), cache_key + ".lock")
        self._fd = -1
        self._windows = False

    def __enter__(self) -> Lock:
        self._windows = on_windows()
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o600)
        try:
            if self._windows:
                _lock_windows(fd, self.WINDOWS_ATTEMPTS)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        fd, self._fd = self._fd, -1
        try:
            if self._windows:
                import msvcrt

                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        finally:
            os.close(fd)  # on POSIX, closing releases the lock


def _lock_windows(fd: int, attempts: int) -> None:
    import msvcrt

    for attempt in range(attempts):
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # type: ignore[attr-defined]
            return
        except OSError:
            if attempt == attempts - 1:
                raise


def clear(environ: Environ) -> int:
    """Remove every cache entry (and lock file); the number of entries removed."""
    folder = directory(environ)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 0
    removed = 0
    for name in names:
        if name.endswith((".json", ".lock", REVOKED_SUFFIX, PENDING_SUFFIX, PROFILES_SUFFIX)):
            with _ignored_os_error():
                os.unlink(os.path.join(folder, name))
                removed += name.endswith(".json") and not name.startswith(".tmp-")
    return removed


REVOKED_SUFFIX = ".revoked"


def revoked_grant(cache_key: str, environ: Environ) -> str | None:
    """The grant id a revoke removed from under ``cache_key`` (so the next new grant there
    is announced as replacing it), else None."""
    data = _read_bytes(os.path.join(directory(environ), cache_key + REVOKED_SUFFIX))
    try:
        note = json.loads(data) if data else None
    except ValueError:
        return None
    grant_id = note.get("grant") if isinstance(note, dict) else None
    return grant_id if isinstance(grant_id, str) else None


def forget_revoked(cache_key: str, environ: Environ) -> None:
    with _ignored_os_error():
        os.unlink(os.path.join(directory(environ), cache_key + REVOKED_SUFFIX))


def _note_revoked(folder: str, cache_key: str, grant_id: str) -> None:
    path = os.path.join(folder, cache_key + REVOKED_SUFFIX)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _OPEN_FLAGS
    with _ignored_os_error():
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"grant": grant_id}, handle)


PENDING_SUFFIX = ".pending"


def pending_request(cache_key: str, environ: Environ) -> str | None:
    """The request awaiting approval made under ``cache_key`` (a profile with approvers),
    which the next session under that key takes up once approved; else None."""
    data = _read_bytes(os.path.join(directory(environ), cache_key + PENDING_SUFFIX))
    try:
        note = json.loads(data) if data else None
    except ValueError:
        return None
    grant_id = note.get("grant") if isinstance(note, dict) else None
    return grant_id if isinstance(grant_id, str) else None


def note_pending(cache_key: str, grant_id: str, environ: Environ) -> None:
    """Remember ``grant_id``, a request awaiting approval, under ``cache_key``."""
    document = {"grant": grant_id}
    with _ignored_os_error():
        _write_private(
            os.path.join(directory(environ), cache_key + PENDING_SUFFIX), document, environ
        )


def forget_pending(cache_key: str, environ: Environ) -> None:
    with _ignored_os_error():
        os.unlink(os.path.join(directory(environ), cache_key + PENDING_SUFFIX))


def forget_grant(grant_id: str, environ: Environ) -> int:
    """Remove the entries that hold sessions of ``grant_id`` (after a revoke), leaving a
    note under each key (:func:`revoked_grant`)."""
    folder = directory(environ)
    try:
        names = [name for name in os.listdir(folder) if name.endswith(".json")]
    except FileNotFoundError:
        return 0
    removed = 0
    for name in names:
        data = _read_bytes(os.path.join(folder, name))
        try:
            entry = json.loads(data) if data else None
        except ValueError:
            entry = None
        if isinstance(entry, dict) and (entry.get("grant") or {}).get("id") == grant_id:
            with _ignored_os_error():
                os.unlink(os.path.join(folder, name))
                removed += 1
            _note_revoked(folder, name.removesuffix(".json"), grant_id)
    return removed


def grant_of_access_key(access_key: str, environ: Environ) -> str | None:
    """The grant id of the cached session whose access key id is ``access_key``, else None
    (the signing keys are a grant's session: see :mod:`jit_cli.guard`)."""
    folder = directory(environ)
    try:
        names = [name for name in os.listdir(folder) if name.endswith(".json")]
    except OSError:
        return None
    for name in names:
        data = _read_bytes(os.path.join(folder, name))
        try:
            entry = json.loads(data) if data else None
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        creds, grant = entry.get("credentials"), entry.get("grant")
        if isinstance(creds, dict) and creds.get("access_key_id") == access_key:
            grant_id = grant.get("id") if isinstance(grant, dict) else None
            return grant_id if isinstance(grant_id, str) else "(unknown)"
    return None


# ---------------------------------------------------------------- profile names (completion)

PROFILES_SUFFIX = ".profiles"


def _names_identity(profile: str | None, environ: Environ) -> str:
    """Who a profile list was asked as. Coarser than :func:`signing_identity`: no fingerprint
    of the AWS files, which ``jit configure`` and ``jit init`` edit right after listing the
    profiles (the list would be orphaned at once). A stale list only suggests names."""
    if profile:
        return f"profile:{profile}"
    access_key = environ.get("AWS_ACCESS_KEY_ID", "")
    return f"env:{access_key}" if access_key else "default"


def _profiles_file(api_url: str, profile: str | None, environ: Environ) -> tuple[str, str]:
    names_key = key(api_url, _names_identity(profile, environ), "profiles", "")
    return names_key, os.path.join(directory(environ), names_key + PROFILES_SUFFIX)


def _completable(name: object) -> bool:
    """A name a shell can be offered as one word."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 256
        and name.isprintable()
        and not any(character.isspace() for character in name)
    )


def remember_profiles(
    api_url: str, profile: str | None, names: Iterable[str], environ: Environ
) -> None:
    """Keep the profile names the broker listed for this broker (``api_url``) and signer
    (``profile``, else AWS_ACCESS_KEY_ID, else the default chain), for ``jit __complete
    profiles``: a 0600 file beside the sessions, written like them. Never fails the
    command that learnt them: a file that cannot be written is skipped."""
    names_key, path = _profiles_file(api_url, profile, environ)
    document = {
        "version": VERSION,
        "key": names_key,
        "names": sorted({name for name in names if _completable(name)}),
    }
    with _ignored_os_error():
        _write_private(path, document, environ)


def remembered_profiles(api_url: str, profile: str | None, environ: Environ) -> list[str]:
    """The names :func:`remember_profiles` kept for this broker and signer; [] if none (or
    the file is not ours, private and well formed)."""
    names_key, path = _profiles_file(api_url, profile, environ)
    data = _read_bytes(path)
    try:
        document = json.loads(data) if data else None
    except ValueError:
        return []
    if not isinstance(document, dict) or document.get("version") != VERSION:
        return []
    names = document.get("names") if document.get("key") == names_key else None
    return [name for name in names if _completable(name)] if isinstance(names, list) else []
