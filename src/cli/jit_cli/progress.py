"""A progress indicator on stderr for waits longer than a second, only on a terminal.

``with progress("requesting a grant"):`` draws nothing at all when stderr is not a TTY
(pipes, credential_process, CI logs) or when the wait ends within ``delay`` seconds; else a
spinner with the message, erased when the wait ends. A request names its own ``Wait``:
a new grant's says what it waits for (IAM making the new role assumable, several seconds).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

FRAMES = "|/-\\"
DELAY_SECONDS = 1.0
INTERVAL_SECONDS = 0.1


@dataclass(frozen=True)
class Wait:
    """What to show while a request is under way, once it has taken ``delay`` seconds."""

    message: str
    delay: float = DELAY_SECONDS


# A new grant's role is usually assumable only after several seconds (IAM propagation): the
# broker retries AssumeRole meanwhile, so a grant taking longer than this is waiting on AWS.
GRANT_WAIT = Wait("waiting for AWS to make the role usable", delay=1.5)


def _spin(stream: TextIO, message: str, done: threading.Event, delay: float) -> None:
    if done.wait(delay):
        return
    frame = 0
    while True:
        stream.write(f"\r{FRAMES[frame % len(FRAMES)]} {message}...")
        stream.flush()
        frame += 1
        if done.wait(INTERVAL_SECONDS):
            break
    stream.write("\r\x1b[K")
    stream.flush()


@contextmanager
def progress(
    message: str, stream: TextIO | None = None, delay: float = DELAY_SECONDS
) -> Iterator[None]:
    """Show a spinner with ``message`` on ``stream`` (stderr) while the block runs."""
    target = sys.stderr if stream is None else stream
    isatty = getattr(target, "isatty", None)
    if not (isatty and isatty()):
        yield
        return
    done = threading.Event()
    spinner = threading.Thread(target=_spin, args=(target, message, done, delay), daemon=True)
    spinner.start()
    try:
        yield
    finally:
        done.set()
        spinner.join()
