"""The ``jit`` command line's grammar: argparse, its global flags, each command's flags and
examples, the value types, and the ``--`` that separates ``jit exec``'s command.

Each command's function lives in :mod:`jit_cli.commands`; a parsed command carries it as
``run`` (called with a signing client) or ``run_local`` (called with the arguments only).
Nothing here imports botocore: ``jit --help`` and a usage error stay light.

One word per thing, in every command: PROFILE is the JIT profile (the broker's); an AWS
profile is always ``--aws-profile`` (to sign with) or ``--aws-profile-name`` (the one
``jit configure`` writes); ``--broker NAME`` picks a broker of jit's config file; ``--format``
is a credential shape (sh, fish, json, ini) and ``--output`` how data is rendered (json,
text). The spellings of earlier releases still parse, hidden from ``--help``, each with one
deprecation line on stderr (:data:`DEPRECATED`), except in ``credential-process``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from jit_cli import didyoumean, output
from jit_cli.commands import approvals as approval_commands
from jit_cli.commands import broker as broker_commands
from jit_cli.commands import local as local_commands
from jit_cli.commands import session as session_commands
from jit_cli.commands import setup as setup_commands
from jit_cli.errors import EXIT_CODE_MEANINGS, ExitCode
from jit_cli.formats import DURATION_HELP, FORMATS, check_duration, parse_duration

if TYPE_CHECKING:
    from jit_cli.broker import BrokerClient

_GRANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_ACCOUNT = re.compile(r"[0-9]{12}")

Command = Callable[["BrokerClient", argparse.Namespace], str]
LocalCommand = Callable[[argparse.Namespace], str]

PRECEDENCE = """configuration (first found wins):
  broker URL   --api-url > --broker NAME > JIT_API_URL > JIT_ENV=NAME > default_environment,
               environments in $XDG_CONFIG_HOME/jit/config.toml (~/.config/jit/config.toml):
                 default_environment = "prod"
                 [environments.prod]
                 api_url = "https://ID.execute-api.REGION.amazonaws.com/prod"
  signing as   --aws-profile > AWS_PROFILE > AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY > the rest
               of the standard AWS chain (config files, SSO, container, instance role);
               credential-process signs only as the --aws-profile `jit configure`
               recorded (or the default chain), never as the caller's AWS_PROFILE
  region       --region > the execute-api URL's region > AWS_REGION > AWS_DEFAULT_REGION >
               the profile's region > us-east-1
  cache        $XDG_CACHE_HOME/jit (~/.cache/jit); --no-cache bypasses it"""

EXAMPLES: dict[str, str] = {
    "whoami": "jit whoami\n  jit whoami --output text",
    "profiles": "jit profiles --output text",
    "request": (
        'jit request s3-read --reason "Investigate the failed export" --duration 30m\n'
        '  jit request s3-read --account 210987654321 --reason "a member account\'s export"\n'
        "  jit request s3-read --duration 4h --explain   (would I get it? every rule that stops me)\n"
        '  jit request prod-admin --reason "INC-7 rollback" --wait   (a profile with approvers:\n'
        "  the request goes to them; --wait waits for their decision, Ctrl-C leaves it standing)"
    ),
    "approvals": (
        "jit approvals               (the requests you may decide: approvals so far/required,\n"
        "                              the review deadline with the time left)\n"
        "  jit approvals --output json"
    ),
    "approve": (
        'jit approve GRANT_ID --comment "matches INC-7, rollback only"\n'
        "  (never your own request: a second person must approve it)"
    ),
    "deny": 'jit deny GRANT_ID --comment "use the read-only profile for this"',
    "review": (
        'jit review GRANT_ID --comment "INC-9 outage: the restart was needed"\n'
        "  (a break-glass grant, after the fact: one of its profile's approvers, not its user)"
    ),
    "creds": 'jit creds GRANT_ID\n  eval "$(jit creds GRANT_ID --format sh)"',
    "grants": "jit grants --output text\n  jit grants --active",
    "grant": (
        "jit grant GRANT_ID\n"
        "  jit grant GRANT_ID --wait   (a request awaiting approval: wait for the decision)"
    ),
    "revoke": (
        "jit revoke GRANT_ID\n"
        '  jit revoke s3-read --reason "done with the export"   (your active grants of it)\n'
        '  jit revoke --all --reason "end of shift"'
    ),
    "status": (
        "jit status                 (from the cache alone: instant; text on a terminal)\n"
        "  jit status --check         (asks the broker too: who it sees you as, your active"
        " grants)\n"
        "  jit status --output json\n"
        "  (with --check and the broker unreachable: the cached sessions, and it says so)"
    ),
    "audit": "jit audit --dry-run\n  jit audit --at 2026-11-28T05:00:00Z   (local stack only)",
    "configure": (
        'jit configure s3-read --aws-profile work --reason "nightly export checks"\n'
        "  (credential-process will sign as AWS profile work, as this check does)\n"
        "  aws s3 ls s3://example-bucket/ --profile jit-s3-read\n"
        "  jit configure s3-read --account 210987654321 --aws-profile-name jit-s3-read-member-a"
    ),
    "init": (
        "jit init https://ID.execute-api.REGION.amazonaws.com/prod --aws-profile work\n"
        '  jit init URL --reason "daily operations" --broker prod\n'
        "  (one AWS profile per profile, jit-PROFILE; per account, jit-PROFILE-ACCOUNT;\n"
        "  a profile that needs a reason or a ticket is skipped unless one is given)"
    ),
    "credential-process": (
        "(written by jit configure into ~/.aws/config)\n"
        "  credential_process = jit credential-process s3-read --api-url URL "
        "--aws-profile work --reason R"
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
    "console": (
        "jit console s3-read --reason R\n"
        "  jit console s3-read --open --service s3\n"
        "  jit login s3-read --service ec2 --console-region eu-west-1   (login is console)\n"
        "  jit console s3-read --destination 'https://console.aws.amazon.com/cloudwatch/home#logsV2:'"
    ),
    "cache": "jit cache clear",
    "completion": (
        'eval "$(jit completion bash)"          # in ~/.bashrc\n'
        '  eval "$(jit completion zsh)"           # in ~/.zshrc\n'
        "  jit completion fish > ~/.config/fish/completions/jit.fish"
    ),
}


# Other names of a command (argparse aliases: one parser, listed as ``console (login)``).
ALIASES = {"login": "console"}


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


# ---------------------------------------------------------------- spellings of earlier releases

# Old spelling -> new one; each still parses this release, hidden from --help.
DEPRECATED = {
    "--profile": "--aws-profile",
    "--source-profile": "--aws-profile",
    "--name": "--aws-profile-name",
    "--env": "--broker",
    "--format env": "--format sh",
}
# Where a deprecated spelling is noted in the namespace (one attribute per spelling, so the
# notes of the top-level parser and of a subcommand's parser never overwrite each other).
_NOTE = "deprecated:"
# credential-process's stderr shows inside the AWS CLI on every call, and the AWS config
# files `jit configure` wrote before this release say --source-profile: it stays silent.
_SILENT_COMMANDS = frozenset({"credential-process"})


def _note(namespace: argparse.Namespace, old: str) -> None:
    setattr(namespace, _NOTE + old, f"jit: {old} is deprecated, use {DEPRECATED[old]}")


class _Deprecated(argparse.Action):
    """An old flag: stores its value where its new spelling does, and notes it."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        _note(namespace, option_string or self.option_strings[0])


class _Format(argparse.Action):
    """``--format`` with the credential shapes of :data:`FORMATS`; ``old`` maps the values of
    earlier releases to their new one (noted as deprecated, never listed)."""

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        old: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.old = dict(old or {})
        super().__init__(option_strings, dest, metavar="{" + ",".join(FORMATS) + "}", **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if values in self.old:
            _note(namespace, f"--format {values}")
            values = self.old[values]
        if values not in FORMATS:
            parser.error(
                f"argument --format: invalid choice: {values!r} (choose from {', '.join(FORMATS)})"
            )
        setattr(namespace, self.dest, values)


def _add_format(sub: argparse.ArgumentParser, default: str, **kwargs: Any) -> None:
    sub.add_argument(
        "--format",
        action=_Format,
        default=default,
        help=f"the credentials as sh: export lines; fish: set -gx lines; json: the "
        f"credential_process shape; ini: a credentials-file section (default {default})",
        **kwargs,
    )


def deprecations(args: argparse.Namespace) -> list[str]:
    """The deprecation lines of the spellings ``args`` was parsed from (none for the commands
    whose stderr others read), and the notes taken out of ``args``."""
    notes = [name for name in vars(args) if name.startswith(_NOTE)]
    lines = [getattr(args, name) for name in notes]
    for name in notes:
        delattr(args, name)
    return [] if args.command in _SILENT_COMMANDS else lines


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
    # "--broker", not "--env": the name picks a broker (its URL) from jit's config file, and
    # "env" is already the `jit env` command and the shell's environment variables.
    flags.add_argument(
        "--broker",
        dest="broker_name",
        metavar="NAME",
        default=default,
        help="a broker named in jit's config file, [environments.NAME] (else JIT_ENV, "
        "default_environment)",
    )
    flags.add_argument(
        "--env", action=_Deprecated, dest="broker_name", metavar="NAME", default=default
    )
    flags.add_argument(
        "--aws-profile",
        dest="aws_profile",
        metavar="NAME",
        default=default,
        help="the AWS profile to sign with (else AWS_PROFILE, then the standard chain); "
        "configure and init record it for credential-process",
    )
    flags.add_argument(
        "--profile", action=_Deprecated, dest="aws_profile", metavar="NAME", default=default
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
        help="text (tables with local times and time left; the default on a terminal) or json "
        "(the default when piped or redirected: epoch seconds, for scripts)",
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


def _add_source_profile(sub: argparse.ArgumentParser) -> None:
    """The old name of --aws-profile on the commands that record or use it."""
    sub.add_argument(
        "--source-profile",
        action=_Deprecated,
        dest="aws_profile",
        metavar="NAME",
        default=argparse.SUPPRESS,
    )


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
            aliases=[alias for alias, of in ALIASES.items() if of == name],
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
    status = add(
        "status",
        "who you sign as, your active grants and the cached sessions",
        local=local_commands.cmd_status,
    )
    status.add_argument(
        "--check",
        action="store_true",
        help="ask the broker too: who it sees you as and your active grants (without it, the "
        "cache alone answers, at once)",
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
    request.add_argument(
        "profile_name", metavar="PROFILE", help="the JIT profile (see jit profiles)"
    )
    request.add_argument(
        "--reason", type=_text, help="why you need access (required, but with --explain)"
    )
    request.add_argument("--duration", type=_duration, help=f"grant window: {DURATION_HELP}")
    request.add_argument("--ticket", type=_text, help="change or incident ticket")
    request.add_argument(
        "--explain",
        action="store_true",
        help="create nothing: say whether you would get the grant and, if not, every rule that "
        "stops you (exit 0 if you would, 4 if not)",
    )
    _add_account(request)
    _add_wait(request, "request")
    creds = add("creds", "fresh credentials for a grant", broker_commands.cmd_creds)
    creds.add_argument("grant_id", type=_grant_id, metavar="GRANT_ID")
    _add_format(creds, "json", old={"env": "sh"})
    creds.add_argument("--section", help="ini section name (default jit-GRANT_ID)")
    grants = add("grants", "list your grants", broker_commands.cmd_grants)
    grants.add_argument(
        "--active", action="store_true", help="only your grants that are active now"
    )
    grant = add("grant", "show one grant", broker_commands.cmd_grant)
    grant.add_argument("grant_id", type=_grant_id, metavar="GRANT_ID")
    _add_wait(grant, "grant")
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
    add(
        "approvals",
        "list the requests awaiting approval that you may decide",
        approval_commands.cmd_approvals,
    )
    for verdict, command, words in (
        ("approve", approval_commands.cmd_approve, "approve a request (not your own)"),
        ("deny", approval_commands.cmd_deny, "deny a request: final"),
        (
            "review",
            approval_commands.cmd_review,
            "close the review of a break-glass grant (an approver, not its user)",
        ),
    ):
        decide = add(verdict, words, command)
        decide.add_argument(
            "grant_id", type=_grant_id, metavar="GRANT_ID", help="the request (see jit approvals)"
        )
        decide.add_argument(
            "--comment",
            type=_text,
            required=True,
            help="why (required: the broker records it with your decision, and its requester "
            "and the auditors read it)",
        )


def _add_wait(sub: argparse.ArgumentParser, command: str) -> None:
    what = "the request" if command == "request" else "a request"
    sub.add_argument(
        "--wait",
        action="store_true",
        help=f"for {what} awaiting approval: wait for the decision (bounded by its review "
        "deadline; exit 0 approved, 4 denied, 6 lapsed; Ctrl-C stops waiting, the request "
        "stands)",
    )


def _add_setup_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    configure = add(
        "configure",
        "write an AWS config profile that runs jit credential-process",
        local=setup_commands.cmd_configure,
    )
    _add_wanted(configure, "recorded reason")
    configure.add_argument(
        "--aws-profile-name",
        metavar="NAME",
        help="the AWS profile to write (default jit-PROFILE)",
    )
    configure.add_argument(
        "--name", action=_Deprecated, dest="aws_profile_name", metavar="NAME", default=None
    )
    _add_source_profile(configure)
    init = add(
        "init",
        "name a broker URL in jit's config file and configure every profile you may request",
        local=setup_commands.cmd_init,
    )
    init.add_argument("broker_url", metavar="BROKER_URL", help="the broker's URL (with the stage)")
    init.add_argument("--reason", type=_text, help="recorded reason (profiles that need one)")
    init.add_argument("--ticket", type=_text, help="recorded ticket (profiles that need one)")
    init.add_argument("--duration", type=_duration, help=f"grant window: {DURATION_HELP}")
    _add_source_profile(init)


def _add_session_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    process = add(
        "credential-process",
        "print credentials for an AWS credential_process (cached)",
        local=session_commands.cmd_credential_process,
    )
    _add_wanted(process)
    _add_source_profile(process)
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
    _add_format(env, "sh")
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
    console.add_argument(
        "--service",
        metavar="NAME",
        help="land on that service's console page (s3, ec2, cloudwatch, ...: "
        "https://console.aws.amazon.com/NAME/home)",
    )
    # Not --region: that is the region requests to the broker are signed for, which must be
    # the broker's own; the console page may be in any region.
    console.add_argument(
        "--console-region",
        metavar="REGION",
        help="the region of the console page (REGION.console.aws.amazon.com, ?region=REGION); "
        "--region stays the broker's signing region",
    )
    console.add_argument(
        "--destination",
        metavar="URL",
        help="land on this console URL (https://console.aws.amazon.com/... or "
        "https://REGION.console.aws.amazon.com/...; no other host)",
    )


# ---------------------------------------------------------------- jit exec's `--`


def _split_exec(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """``jit exec ... -- CMD ARGS``: the words before ``--`` and the command after it."""
    words = list(argv)
    if "exec" in words and "--" in words and words.index("exec") < words.index("--"):
        cut = words.index("--")
        return words[:cut], words[cut + 1 :]
    return words, None


# Flags of jit (and of jit exec) that take a value, to find where exec's command begins.
_VALUE_FLAGS = frozenset(
    {"--api-url", "--broker", "--env", "--aws-profile", "--profile", "--region", "--output"}
)
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
    for line in deprecations(args):
        print(line, file=sys.stderr)
    return args, rest
