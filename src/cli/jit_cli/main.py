"""``jit``: just-in-time AWS access from the broker, as credentials your tools already use.

Commands (``jit COMMAND --help`` shows each one's flags and examples)::

    jit configure PROFILE [--aws-profile-name jit-PROFILE] [--aws-profile P] [--account ID]
                          [--reason R] [--duration D]   an AWS config profile whose
                          credential_process is jit (signing as --aws-profile)
    jit init BROKER_URL [--aws-profile P] [--reason R] [--broker NAME]   the broker in jit's
                          config file and an AWS profile for every profile you may request
    jit credential-process PROFILE ...   what that profile runs (JSON for the SDKs)
    jit exec PROFILE [--reason R] -- CMD ARGS...   run CMD with the credentials in its env
                                     (no CMD: a subshell, $SHELL else /bin/sh)
    jit env PROFILE [--format sh|fish|json|ini]   credentials to eval or to paste
    jit console PROFILE [--service NAME] [--console-region R] [--destination URL] [--open]
                                     an AWS console sign-in URL for the grant (alias: login)
    jit whoami | profiles | grants [--active] | grant ID [--wait] | request PROFILE [--wait]
    jit approvals | approve GRANT_ID --comment C | deny GRANT_ID --comment C   an approver's
                                     requests to decide, and the decision (never one's own)
    jit creds GRANT_ID [--format json|sh|fish|ini]
    jit status                       who you sign as, active grants, cached sessions
    jit revoke GRANT_ID|PROFILE|--all [--reason R]   end grants now
    jit audit [--dry-run] [--at TIME]   run the auditor now (administrators)
    jit cache clear                  forget cached sessions
    jit completion bash|zsh|fish     shell completion script
    jit local ...                    run the embedded local stack

PROFILE is always the JIT profile; the AWS profile to sign with is ``--aws-profile`` and a
broker named in jit's config file ``--broker NAME`` (:mod:`jit_cli.parser` lists the words of
earlier releases, which still work for now). Every command that may request a grant takes
``--account ID``: the account (12 digits) of a profile that names several (``jit profiles``
lists them); a cached session is the account's own.

Data goes to stdout (``--output json`` by default, or ``text``), messages to stderr as
``jit: error: <message> (<code>)``; a failed command prints nothing on stdout. Exit codes are
in :mod:`jit_cli.errors` and at the end of ``jit --help``.

Here: parse (:mod:`jit_cli.parser`), run the command (:mod:`jit_cli.commands`, with a signing
client from :mod:`jit_cli.client` for those that call the broker), print, exit. Start-up stays
light: botocore is imported only when a request is signed, and a cache hit of
``credential-process`` is answered by :mod:`jit_cli.entry` before this module is imported.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from jit_cli import client
from jit_cli.broker import clean_text
from jit_cli.commands.local import run_local
from jit_cli.errors import CliError, ExitCode, Refused
from jit_cli.parser import build_parser, parse

__all__ = ["build_parser", "entry", "main"]

log = logging.getLogger("jit_cli")


def _configure_debug(enabled: bool) -> logging.Handler | None:
    if not enabled:
        return None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("jit: debug: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    return handler


def _execute(args: argparse.Namespace, rest: list[str]) -> tuple[int, str]:
    if args.command == "local":
        return run_local(rest), ""
    if args.run_local is not None:
        return int(ExitCode.OK), args.run_local(args)
    return int(ExitCode.OK), args.run(client.for_args(args), args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``jit`` command; the exit code (see :mod:`jit_cli.errors`)."""
    try:
        args, rest = parse(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else int(ExitCode.USAGE)
    handler = _configure_debug(args.debug)
    try:
        code, text = _execute(args, rest)
    except Refused as refused:
        code, text = int(refused.exit_code), refused.text
    except CliError as error:
        print(error.render(), file=sys.stderr)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("jit: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except Exception as error:
        log.debug("unexpected error", exc_info=True)
        message = clean_text(f"unexpected {type(error).__name__}: {error}")
        print(f"jit: error: {message} (internal)", file=sys.stderr)
        return int(ExitCode.UNEXPECTED)
    finally:
        if handler is not None:
            log.removeHandler(handler)
    if text:
        print(text)
    return code


def entry() -> None:
    """Console-script entry point (the installed ``jit`` uses :func:`jit_cli.entry.entry`)."""
    from jit_cli.entry import entry as fast_entry

    fast_entry()


if __name__ == "__main__":
    entry()
