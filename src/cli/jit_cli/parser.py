"""The ``jit`` command line's grammar: argparse, its global flags, each command's flags and
examples, the value types, and the ``--`` that separates ``jit exec``'s command.

Each command's function lives in :mod:`jit_cli.commands`; a parsed command carries it as
``run`` (called with a signing client) or ``run_local`` (called with the arguments only).
Nothing here imports botocore: ``jit --help`` and a usage error stay light.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from jit_cli import didyoumean, output
from jit_cli.commands import broker as broker_commands
from jit_cli.commands import local as local_commands
from jit_cli.commands import session as session_commands
from jit_cli.commands import setup as setup_commands
from jit_cli.errors import EXIT_CODE_MEANINGS, ExitCode
from jit_cli.formats import DURATION_HELP, check_duration, parse_duration

if TYPE_CHECKING:
    from jit_cli.broker import BrokerClient

_GRANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_ACCOUNT = re.compile(r"[0-9]{12}")

Command = Callable[["BrokerClient", argparse.Namespace], str]
LocalCommand = Callable[[argparse.Namespace], str]

PRECEDENCE = """configuration (first found wins):
  broker URL   --api-url > --env NAME > JIT_API_URL > JIT_ENV=NAME > default_environment,
               environments in $XDG_CONFIG_HOME/jit/config.toml (~/.config/jit/config.toml):
                 default_environment = "prod"
                 [environments.prod]
                 api_url = "https://ID.execute-api.REGION.amazonaws.com/prod"
  signing as   --profile > AWS_PROFILE > AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY > the rest
               of the standard AWS chain (config files, SSO, container, instance role);
               credential-process signs only as the source profile `jit configure`
               recorded (or the default chain), never as the caller's AWS_PROFILE
  region       --region > the execute-api URL's region > AWS_REGION > AWS_DEFAULT_REGION >
               the profile's region > us-east-1
  cache        $XDG_CACHE_HOME/jit (~/.cache/jit); --no-cache bypasses it"""

EXAMPLES: dict[str, str] = {
    "whoami": "jit whoami\n  jit whoami --output text",
    "profiles": "jit profiles --output text",
    "request": (
        'jit request s3-read --reason "Investigate the failed export" --duration 30m\n'
        '  jit request s3-read --account 210987654321 --reason "a member account\'s export"'
    ),
    "creds": 'jit creds GRANT_ID\n  eval "$(jit creds GRANT_ID --format env)"',
    "grants": "jit grants --output text\n  jit grants --active",
    "grant": "jit grant GRANT_ID",
    "revoke": (
        "jit revoke GRANT_ID\n"
        '  jit revoke s3-read --reason "done with the export"   (your active grants of it)\n'
        '  jit revoke --all --reason "end of shift"'
    ),
    "status": (
        "jit status                 (text on a terminal, JSON when piped)\n"
        "  jit status --output json\n"
        "  (the broker unreachable: the cached sessions only, and it says so)"
    ),
    "audit": "jit audit --dry-run\n  jit audit --at 2026-11-28T05:00:00Z   (local stack only)",
    "configure": (
        'jit configure s3-read --source-profile work --reason "nightly export checks"\n'
        "  aws s3 ls s3://example-bucket/ --profile jit-s3-read\n"
        "  jit configure s3-read --account 210987654321 --name jit-s3-read-member-a"
    ),
    "init": (
        "jit init https://ID.execute-api.REGION.amazonaws.com/prod --source-profile work\n"
        '  jit init URL --reason "daily operations" --env prod\n'
        "  (one AWS profile per profile, jit-PROFILE; per account, jit-PROFILE-ACCOUNT;\n"
        "  a profile that needs a reason or a ticket is skipped unless one is given)"
    ),
    "credential-process": (
        "(written by jit configure into ~/.aws/config)\n"
        "  credential_process = jit credential-process s3-read --api-url URL --reason R"
    ),
    "exec": (
        'jit exec s3-read --reason "look at the export" -- aws s3 ls s3://example-bucket/\n'
        "  jit exec s3-read            (a subshell with the credentials, JIT_PROMPT=jit:s3-read;\n"
        "                              add $JIT_PROMPT to PS1 to see it; exit to leave)"
    ),
    "env": (
        'eval "$(jit env s3-read --reason R)"\n'
        "  jit env s3-read --format fish | source\n"
        "  jit env s3-read --format ini >> ~/.aws/credentials"
    ),
    "console": "jit console s3-read --reason R\n  jit console s3-read --open",
    "cache": "jit cache clear",
    "completion": (
        'eval "$(jit completion bash)"          # in ~/.bashrc\n'
        '  eval "$(jit completion zsh)"           # in ~/.zshrc\n'
        "  jit completion fish > ~/.config/fish/completions/jit.fish"
    ),
}


class _Parser(argparse.ArgumentParser):
    """argparse with errors in jit's format (``jit: error: ... (usage)``), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"jit: error: {message} (usage)\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """An unknown command: the nearest one, not argparse's list of every choice."""
        if isinstance(action, argparse._SubParsersAction) and value not in action.choices:
            self.exit(ExitCode.USAGE, didyoumean.unknown_command(value, action.choices) + "\n")
        super()._check_value(action, value)


def version() -> str:
    from jit_cli import __version__

    return __version__


# ---------------------------------------------------------------- value types


def _duration(text: str) -> int:
    """Seconds in ``text`` (15m, 90min, 1h30m, 3600), within the broker's 15m to 12h."""
    try:
        return check_duration(text, parse_duration(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _grant_id(text: str) -> str:
    if not _GRANT_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"invalid grant id {text!r}")
    return text


def _account(text: str) -> str:
    if not _ACCOUNT.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"invalid account {text!r}: an AWS account id is 12 digits"
        )
    return text


def parse_time(text: str) -> int:
    """Epoch seconds from ``1795842000`` or ISO 8601 with a zone (``2026-11-28T05:00:00Z``)."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: epoch seconds or ISO 8601 like 2026-11-28T05:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"time {text!r} has no zone: add Z (UTC) or an offset like +01:00"
        )
    return int(moment.astimezone(UTC).timestamp())


# ---------------------------------------------------------------- flags shared by commands


def _add_account(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--account",
        type=_account,
        metavar="ID",
        help="the account to be granted access in (12 digits): one of the profile's accounts "
        "(see jit profiles); needed when the profile names several",
    )


def _global_flags(suppress: bool) -> _Parser:
    """The global flags; on subcommands they default to SUPPRESS so they do not overwrite."""
    default: Any = argparse.SUPPRESS if suppress else None
    flags = _Parser(add_help=False)
    flags.add_argument("--api-url", default=default, help="broker URL (else see configuration)")
    flags.add_argument(
        "--env",
        dest="env_name",
        metavar="NAME",
        default=default,
        help="a named environment of the config file (else JIT_ENV, default_environment)",
    )
    flags.add_argument(
        "--profile",
        dest="aws_profile",
        default=default,
        help="AWS profile to sign with (else AWS_PROFILE, then the standard chain)",
    )
    flags.add_argument(
        "--region",
        default=default,
        help="signing region (else the execute-api URL's region, AWS_REGION, "
        "AWS_DEFAULT_REGION, the profile's region, us-east-1)",
    )
    flags.add_argument(
        "--output",
        choices=output.OUTPUTS,
        default=argparse.SUPPRESS if suppress else None,
        help="json (default; jit status: text on a terminal) or text (tables and lines for people)",
    )
    flags.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="log requests and tracebacks on stderr (never secrets)",
    )
    return flags


def _epilog() -> str:
    lines = [f"  {int(code):>3}  {meaning}" for code, meaning in EXIT_CODE_MEANINGS.items()]
    return PRECEDENCE + "\n\nexit codes:\n" + "\n".join(lines)


def _add_wanted(
    sub: argparse.ArgumentParser,
    reason_help: str = "why you need access",
    *,
    optional_profile: bool = False,
) -> None:
    sub.add_argument(
        "profile_name",
        metavar="PROFILE",
        nargs="?" if optional_profile else None,
        help="the JIT profile (see jit profiles)",
    )
    sub.add_argument("--reason", type=_text, help=f"{reason_help} (for a new grant)")
    sub.add_argument("--duration", type=_duration, help=f"grant window: {DURATION_HELP}")
    sub.add_argument("--ticket", type=_text, help="change or incident ticket")
    _add_account(sub)


def _add_new(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--new",
        action="store_true",
        help="a new grant even if one of the profile is active (its reason/duration may differ)",
    )


def _add_no_cache(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor write the session cache (always ask the broker)",
    )


# ---------------------------------------------------------------- the parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jit",
        description="Just-in-time AWS access: request a grant, then use short-lived credentials.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_flags(suppress=False)],
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"jit {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    flags = [_global_flags(suppress=True)]

    def add(
        name: str, help_text: str, command: Command | None = None, local: LocalCommand | None = None
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=flags,
            allow_abbrev=False,
            epilog=f"examples:\n  {EXAMPLES[name]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=command, run_local=local)
        return sub

    _add_broker_commands(add)
    add(
        "status",
        "who you sign as, your active grants and the cached sessions",
        local=local_commands.cmd_status,
    )
    audit = add(
        "audit",
        "run the auditor now and print its report (administrators)",
        broker_commands.cmd_audit,
    )
    audit.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    audit.add_argument(
        "--at",
        type=parse_time,
        metavar="TIME",
        help="audit as of TIME (epoch seconds or ISO 8601; accepted by the local stack only)",
    )
    _add_setup_commands(add)
    _add_session_commands(add)
    cache_command = add("cache", "manage the session cache", local=local_commands.cmd_cache)
    cache_command.add_argument("action", choices=("clear",), help="clear: forget every session")
    completion = add(
        "completion", "print a shell completion script", local=local_commands.cmd_completion
    )
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))
    commands.add_parser(
        "local", help="run the embedded local stack (arguments pass through)", add_help=False
    ).set_defaults(run=None, run_local=None)
    return parser


def _add_broker_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    add("whoami", "show who the broker sees you as", broker_commands.cmd_whoami)
    add("profiles", "list the profiles you may request", broker_commands.cmd_profiles)
    request = add("request", "request a grant for a profile", broker_commands.cmd_request)
    request.add_argument("profile_name", metavar="PROFILE", help="profile name")
    request.add_argument("--reason", required=True, type=_text, help="why you need access")
    request.add_argument("--duration", type=_duration, help=f"grant window: {DURATION_HELP}")
    request.add_argument("--ticket", type=_text, help="change or incident ticket")
    _add_account(request)
    creds = add("creds", "fresh credentials for a grant", broker_commands.cmd_creds)
    creds.add_argument("grant_id", type=_grant_id, metavar="GRANT_ID")
    creds.add_argument(
        "--format",
        choices=("json", "env"),
        default="json",
        help="json: the credential_process shape (default); env: shell export lines",
    )
    grants = add("grants", "list your grants", broker_commands.cmd_grants)
    grants.add_argument(
        "--active", action="store_true", help="only your grants that are active now"
    )
    grant = add("grant", "show one grant", broker_commands.cmd_grant)
    grant.add_argument("grant_id", type=_grant_id, metavar="GRANT_ID")
    revoke = add(
        "revoke",
        "revoke a grant, your active grants of a profile, or all",
        broker_commands.cmd_revoke,
    )
    revoke.add_argument(
        "target",
        metavar="GRANT_ID|PROFILE",
        nargs="?",
        help="a grant id (g-...), or a profile: your active grants of it",
    )
    revoke.add_argument("--all", action="store_true", help="all your active grants")
    revoke.add_argument("--reason", type=_text, help="why (recorded by the broker)")


def _add_setup_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    configure = add(
        "configure",
        "write an AWS config profile that runs jit credential-process",
        local=setup_commands.cmd_configure,
    )
    _add_wanted(configure, "recorded reason")
    configure.add_argument("--name", help="AWS profile name to write (default jit-PROFILE)")
    configure.add_argument(
        "--source-profile",
        help="AWS profile credential-process signs with (default: --profile, AWS_PROFILE, "
        "else the default chain)",
    )
    init = add(
        "init",
        "name a broker URL in jit's config file and configure every profile you may request",
        local=setup_commands.cmd_init,
    )
    init.add_argument("broker_url", metavar="BROKER_URL", help="the broker's URL (with the stage)")
    init.add_argument("--reason", type=_text, help="recorded reason (profiles that need one)")
    init.add_argument("--ticket", type=_text, help="recorded ticket (profiles that need one)")
    init.add_argument("--duration", type=_duration, help=f"grant window: {DURATION_HELP}")
    init.add_argument(
        "--source-profile",
        help="AWS profile credential-process signs with (default: --profile, AWS_PROFILE, "
        "else the default chain)",
    )


def _add_session_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    process = add(
        "credential-process",
        "print credentials for an AWS credential_process (cached)",
        local=session_commands.cmd_credential_process,
    )
    _add_wanted(process)
    process.add_argument("--source-profile", help="AWS profile to sign with")
    _add_no_cache(process)
    run = add(
        "exec",
        "run a command (none: a subshell) with the profile's credentials in its environment",
        local=session_commands.cmd_exec,
    )
    _add_wanted(run)
    _add_no_cache(run)
    _add_new(run)
    env = add(
        "env",
        "print the profile's credentials for a shell or a credentials file",
        local=session_commands.cmd_env,
    )
    _add_wanted(env, optional_profile=True)
    _add_no_cache(env)
    _add_new(env)
    env.add_argument(
        "--format",
        choices=("sh", "fish", "json", "ini"),
        default="sh",
        help="sh: export lines (default); fish: set -gx lines; json: credential_process "
        "shape; ini: a credentials-file section",
    )
    env.add_argument(
        "--unset",
        action="store_true",
        help="print the lines that clear what jit env sets (sh or fish), for eval/source",
    )
    env.add_argument("--section", help="ini section name (default jit-PROFILE)")
    console = add(
        "console",
        "print an AWS console sign-in URL for the profile",
        local=session_commands.cmd_console,
    )
    _add_wanted(console)
    _add_no_cache(console)
    _add_new(console)
    console.add_argument("--open", action="store_true", help="open it in the browser instead")


# ---------------------------------------------------------------- jit exec's `--`


def _split_exec(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """``jit exec ... -- CMD ARGS``: the words before ``--`` and the command after it."""
    words = list(argv)
    if "exec" in words and "--" in words and words.index("exec") < words.index("--"):
        cut = words.index("--")
        return words[:cut], words[cut + 1 :]
    return words, None


# Flags of jit (and of jit exec) that take a value, to find where exec's command begins.
_VALUE_FLAGS = frozenset({"--api-url", "--env", "--profile", "--region", "--output"})
_EXEC_VALUE_FLAGS = _VALUE_FLAGS | {"--reason", "--duration", "--ticket", "--account"}


def _positionals(words: Sequence[str], value_flags: frozenset[str]) -> list[int]:
    """The indexes of the words that are neither flags nor a flag's value."""
    found, index = [], 0
    while index < len(words):
        word = words[index]
        if word in value_flags:
            index += 2
            continue
        if not word.startswith("-"):
            found.append(index)
        index += 1
    return found


def _forgotten_separator(words: Sequence[str]) -> str | None:
    """For ``jit exec PROFILE CMD ARGS`` without ``--``: the line to type instead; else None."""
    top = _positionals(words, _VALUE_FLAGS)
    if not top or words[top[0]] != "exec":
        return None
    after = list(words[top[0] + 1 :])
    positionals = _positionals(after, _EXEC_VALUE_FLAGS)
    if len(positionals) < 2:
        return None
    cut = positionals[1]
    import shlex

    return shlex.join(["jit", *words[: top[0] + 1], *after[:cut], "--", *after[cut:]])


def parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """The parsed arguments and, for ``jit local``, the words passed through."""
    parser = build_parser()
    words, command_argv = _split_exec(argv)
    fixed = None if command_argv is not None else _forgotten_separator(words)
    if fixed is not None:
        parser.exit(
            ExitCode.USAGE,
            f"jit: error: put -- before the command to run: {fixed} (usage)\n",
        )
    args, rest = parser.parse_known_args(words)
    if args.command == "exec":
        args.command_argv = command_argv or []
    elif command_argv is not None:
        args, rest = parser.parse_known_args(argv)
    if rest and args.command != "local":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args, rest
