"""``jit configure``: a ``credential_process`` profile section in the AWS config file.

The file is ``AWS_CONFIG_FILE`` or ``~/.aws/config``. Only the target section changes: its
lines (header to the next header) are replaced, or a new section is appended; every other
byte stays as it was. The result is checked with configparser before it replaces the file,
which happens atomically (temporary file in the same directory, the old file's mode or
0600, fsync, ``os.replace``; a symlinked file is written through to its target).
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import tempfile
from collections.abc import Mapping, Sequence

from jit_cli.cache import on_windows
from jit_cli.errors import CliError, ExitCode

_PROFILE_NAME = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")
_HEADER = re.compile(r"^\s*\[\s*(?P<name>[^\]]+?)\s*\]\s*(?:[#;].*)?$")
MARK = "# written by `jit configure`: rerun it to change this section"


def config_path(environ: Mapping[str, str]) -> str:
    return os.path.expanduser(environ.get("AWS_CONFIG_FILE") or "~/.aws/config")


def check_profile_name(name: str) -> str:
    if not _PROFILE_NAME.fullmatch(name):
        raise CliError(
            f"invalid AWS profile name {name!r}: use letters, digits and _.@+-",
            code="invalid_profile_name",
            exit_code=ExitCode.USAGE,
        )
    return name


def single_line(what: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise CliError(
            f"{what} must be one line to fit in the AWS config file",
            code="bad_input",
            exit_code=ExitCode.USAGE,
        )
    return value


def command_line(words: Sequence[str]) -> str:
    """The credential_process value: shlex-quoted words, as botocore splits them back."""
    return " ".join(shlex.quote(word) for word in words)


def section_text(profile_name: str, values: Mapping[str, str]) -> str:
    header = "[default]" if profile_name == "default" else f"[profile {profile_name}]"
    lines = [header, MARK, *(f"{key} = {single_line(key, value)}" for key, value in values.items())]
    return "\n".join(lines) + "\n"


def _section_name(line: str) -> str | None:
    match = _HEADER.match(line)
    if match is None:
        return None
    name = match["name"]
    if name.startswith("profile "):
        return name.removeprefix("profile ").strip()
    return name


def replace_section(text: str, profile_name: str, section: str) -> str:
    """``text`` with the profile's section replaced by ``section`` (appended if missing)."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if _section_name(line) == profile_name), None)
    if start is None:
        separator = (
            "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        )
        return text + separator + section
    end = next(
        (i for i in range(start + 1, len(lines)) if _section_name(lines[i]) is not None),
        len(lines),
    )
    tail = lines[end:]
    replacement = section + ("\n" if tail else "")
    return "".join(lines[:start]) + replacement + "".join(tail)


def _check(text: str, path: str) -> None:
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string(text, source=path)
    except configparser.Error as error:
        raise CliError(
            f"{path} would not parse after the change ({type(error).__name__}); left unchanged",
            code="bad_aws_config",
            exit_code=ExitCode.USAGE,
        ) from None


def write_atomically(path: str, text: str) -> None:
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    try:
        mode = os.stat(target).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    fd, temporary = tempfile.mkstemp(prefix=".jit-", dir=folder)
    try:
        if not on_windows():  # no POSIX modes there (and no os.fchmod before 3.13)
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def configure(path: str, profile_name: str, values: Mapping[str, str]) -> bool:
    """Write the section; True if it replaced an existing one."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        text = ""
    existed = any(_section_name(line) == profile_name for line in text.splitlines())
    _check(text, path)
    updated = replace_section(text, profile_name, section_text(profile_name, values))
    _check(updated, path)
    write_atomically(path, updated)
    return existed
