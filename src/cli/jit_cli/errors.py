"""Exit codes of ``jit`` and the one exception type that carries them to ``main``.

Every failure the CLI reports is a :class:`CliError`: a human message, a short
machine-readable code (the broker's own ``error.code`` when it sent one) and an exit code.
``main`` prints it as ``jit: error: <message> (<code>)`` on stderr.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit status; the table is repeated in ``jit --help``."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    NO_CREDENTIALS = 3
    DENIED = 4
    NOT_FOUND = 5
    CONFLICT = 6
    RATE_LIMITED = 7
    UNAVAILABLE = 8
    CLOCK_SKEW = 9
    NESTED = 10
    AWS_UNAVAILABLE = 11
    NOT_EXECUTABLE = 126
    COMMAND_NOT_FOUND = 127
    INTERRUPTED = 130


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.UNEXPECTED: "unexpected error (a bug, or a response the CLI does not understand)",
    ExitCode.USAGE: "usage or bad input (bad arguments, missing --api-url, broker answered 400)",
    ExitCode.NO_CREDENTIALS: "no AWS credentials found to sign the request with",
    ExitCode.DENIED: "denied (403 from the broker or from API Gateway's IAM authorization)",
    ExitCode.NOT_FOUND: "not found (404: no such grant or route)",
    ExitCode.CONFLICT: "the grant expired or was revoked: request a new one (409; also a "
    "replayed request, a request still awaiting approval, already decided or not reviewed "
    "in time)",
    ExitCode.RATE_LIMITED: "rate limited (429): wait and retry",
    ExitCode.UNAVAILABLE: "broker unreachable or failing (connection refused, timeout, DNS, 5xx)",
    ExitCode.CLOCK_SKEW: "this computer's clock is more than 5 minutes off: sync it and retry",
    ExitCode.NESTED: "refused: already inside `jit exec` (JIT_GRANT_ID is set)",
    ExitCode.AWS_UNAVAILABLE: "an AWS endpoint other than the broker is unreachable or failing "
    "(STS or SSO loading your credentials, the console's sign-in federation endpoint)",
    ExitCode.NOT_EXECUTABLE: "jit exec: the command is not executable",
    ExitCode.COMMAND_NOT_FOUND: "jit exec: the command was not found",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}


class CliError(Exception):
    """A failure reported to the user; never carries a secret in its message."""

    def __init__(self, message: str, *, code: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.exit_code = exit_code

    def render(self) -> str:
        return f"jit: error: {self.message} ({self.code})"


class Refused(Exception):
    """A command's complete answer that is a refusal: ``text`` goes to stdout like any answer
    and the exit code says no (``jit request --explain`` when the grant would be refused)."""

    def __init__(self, text: str, exit_code: ExitCode = ExitCode.DENIED) -> None:
        super().__init__(text)
        self.text = text
        self.exit_code = exit_code
