"""``jit``: just-in-time AWS access from the broker, as credentials your tools already use.

Commands (``jit COMMAND --help`` shows each one's flags and examples)::

    jit configure PROFILE [--name jit-PROFILE] [--source-profile P] [--account ID] [--reason R]
                          [--duration D]   an AWS config profile whose credential_process is jit
    jit init BROKER_URL [--source-profile P] [--reason R]   the broker in jit's config file and
                          an AWS profile for every profile you may request (checked first)
    jit credential-process PROFILE ...   what that profile runs (JSON for the SDKs)
    jit exec PROFILE [--reason R] -- CMD ARGS...   run CMD with the credentials in its env
                                     (no CMD: a subshell, $SHELL else /bin/sh)
    jit env PROFILE [--format sh|fish|json|ini]   credentials to eval or to paste
    jit console PROFILE [--open]     an AWS console sign-in URL for the grant
    jit whoami | profiles | grants [--active] | grant ID | request PROFILE | creds ID
    jit status                       who you sign as, active grants, cached sessions
    jit revoke GRANT_ID|PROFILE|--all [--reason R]   end grants now
    jit audit [--dry-run] [--at TIME]   run the auditor now (administrators)
    jit cache clear                  forget cached sessions
    jit completion bash|zsh|fish     shell completion script
    jit local ...                    run the embedded local stack

Every command that may request a grant takes ``--account ID``: the account (12 digits) of a
profile that names several (``jit profiles`` lists them); a cached session is the account's own.

Data goes to stdout (``--output json`` by default, or ``text``), messages to stderr as
``jit: error: <message> (<code>)``; a failed command prints nothing on stdout. Exit codes are
in :mod:`jit_cli.errors` and at the end of ``jit --help``.

Start-up stays light: botocore is imported only when a request is signed, and a cache hit of
``credential-process`` is answered by :mod:`jit_cli.entry` before this module is imported.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

from jit_cli import cache, didyoumean, guard, output, session
from jit_cli.broker import BrokerClient, clean_text
from jit_cli.errors import EXIT_CODE_MEANINGS, CliError, ExitCode
from jit_cli.formats import (
    DURATION_HELP,
    check_duration,
    credential_env,
    credential_process_json,
    credential_variables,
    credentials_from,
    fish_exports,
    grant_from,
    ini_section,
    parse_duration,
    sh_exports,
)
from jit_cli.progress import GRANT_WAIT
from jit_cli.signing import (
    load_identity,
    region_from_url,
    resolve_api_url,
    resolve_region,
    sign,
    signing_profile,
)

log = logging.getLogger("jit_cli")

_GRANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_GRANT_ID_SHAPE = re.compile(r"g-[0-9a-f]{24}")  # the broker's ids; any other word is a profile
_ACCOUNT = re.compile(r"[0-9]{12}")
_REQUEST_FIELDS = ("id", "profile", "account", "status", "expires_at")
_NESTING_VARIABLE = "JIT_GRANT_ID"
_PROMPT_VARIABLE = "JIT_PROMPT"
_CALLER_PROFILE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")

Command = Callable[[BrokerClient, argparse.Namespace], str]
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


def _add_account(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--account",
        type=_account,
        metavar="ID",
        help="the account to be granted access in (12 digits): one of the profile's accounts "
        "(see jit profiles); needed when the profile names several",
    )


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

    add("whoami", "show who the broker sees you as", cmd_whoami)
    add("profiles", "list the profiles you may request", cmd_profiles)
    request = add("request", "request a grant for a profile", cmd_request)
    request.add_argument("profile_name", metavar="PROFILE", help="profile name")
    request.add_argument("--reason", required=True, type=_text, help="why you need access")
    request.add_argument("--duration", type=_duration, help=f"grant window: {DURATION_HELP}")
    request.add_argument("--ticket", type=_text, help="change or incident ticket")
    _add_account(request)
    creds = add("creds", "fresh credentials for a grant", cmd_creds)
    creds.add_argument("grant_id", type=_grant_id, metavar="GRANT_ID")
    creds.add_argument(
        "--format",
        choices=("json", "env"),
        default="json",
        help="json: the credential_process shape (default); env: shell export lines",
    )
    grants = add("grants", "list your grants", cmd_grants)
    grants.add_argument(
        "--active", action="store_true", help="only your grants that are active now"
    )
    grant = add("grant", "show one grant", cmd_grant)
    grant.add_argument("grant_id", type=_grant_id, metavar="GRANT_ID")
    revoke = add("revoke", "revoke a grant, your active grants of a profile, or all", cmd_revoke)
    revoke.add_argument(
        "target",
        metavar="GRANT_ID|PROFILE",
        nargs="?",
        help="a grant id (g-...), or a profile: your active grants of it",
    )
    revoke.add_argument("--all", action="store_true", help="all your active grants")
    revoke.add_argument("--reason", type=_text, help="why (recorded by the broker)")
    add("status", "who you sign as, your active grants and the cached sessions", local=cmd_status)
    audit = add("audit", "run the auditor now and print its report (administrators)", cmd_audit)
    audit.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    audit.add_argument(
        "--at",
        type=parse_time,
        metavar="TIME",
        help="audit as of TIME (epoch seconds or ISO 8601; accepted by the local stack only)",
    )
    _add_session_commands(add)
    cache_command = add("cache", "manage the session cache", local=cmd_cache)
    cache_command.add_argument("action", choices=("clear",), help="clear: forget every session")
    completion = add("completion", "print a shell completion script", local=cmd_completion)
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))
    commands.add_parser(
        "local", help="run the embedded local stack (arguments pass through)", add_help=False
    ).set_defaults(run=None, run_local=None)
    return parser


def _add_session_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    configure = add(
        "configure",
        "write an AWS config profile that runs jit credential-process",
        local=cmd_configure,
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
        local=cmd_init,
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
    process = add(
        "credential-process",
        "print credentials for an AWS credential_process (cached)",
        local=cmd_credential_process,
    )
    _add_wanted(process)
    process.add_argument("--source-profile", help="AWS profile to sign with")
    _add_no_cache(process)
    run = add(
        "exec",
        "run a command (none: a subshell) with the profile's credentials in its environment",
        local=cmd_exec,
    )
    _add_wanted(run)
    _add_no_cache(run)
    _add_new(run)
    env = add(
        "env", "print the profile's credentials for a shell or a credentials file", local=cmd_env
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
    console = add("console", "print an AWS console sign-in URL for the profile", local=cmd_console)
    _add_wanted(console)
    _add_no_cache(console)
    _add_new(console)
    console.add_argument("--open", action="store_true", help="open it in the browser instead")


# ---------------------------------------------------------------- broker commands


def _render(args: argparse.Namespace, value: Any, columns: Sequence[str] | None = None) -> str:
    return output.render(value, getattr(args, "output", "json"), columns)


def cmd_whoami(client: BrokerClient, args: argparse.Namespace) -> str:
    return _render(args, client.call("GET", "/v1/whoami"))


def cmd_profiles(client: BrokerClient, args: argparse.Namespace) -> str:
    profiles = client.call("GET", "/v1/profiles").get("profiles", [])
    if getattr(args, "output", "json") == "text":
        profiles = [_joined_accounts(p) if isinstance(p, dict) else p for p in profiles]
    columns = (
        "name",
        "accounts",
        "mode",
        "max_window",
        "max_session",
        "reason_required",
        "description",
    )
    return _render(args, profiles, columns)


def _joined_accounts(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile with its accounts as one cell (``111111111111,222222222222``)."""
    accounts = profile.get("accounts")
    if isinstance(accounts, list) and all(isinstance(a, str) for a in accounts):
        return {**profile, "accounts": ",".join(accounts)}
    return profile


def cmd_request(client: BrokerClient, args: argparse.Namespace) -> str:
    body: dict[str, Any] = {
        "profile": args.profile_name,
        "reason": args.reason,
        "nonce": session.nonce(),
    }
    if args.duration is not None:
        body["duration"] = args.duration
    if args.ticket is not None:
        body["ticket"] = args.ticket
    if args.account is not None:
        body["account"] = args.account
    grant = grant_from(client.call("POST", "/v1/grants", body, wait=GRANT_WAIT))
    return _render(args, {field: grant.get(field) for field in _REQUEST_FIELDS})


def cmd_creds(client: BrokerClient, args: argparse.Namespace) -> str:
    answer = client.call(
        "POST", session.grant_path(args.grant_id, "/credentials"), {"nonce": session.nonce()}
    )
    creds = credentials_from(answer)
    return credential_env(creds) if args.format == "env" else credential_process_json(creds)


def cmd_grants(client: BrokerClient, args: argparse.Namespace) -> str:
    grants = client.call("GET", session.ACTIVE_GRANTS_PATH if args.active else "/v1/grants").get(
        "grants", []
    )
    if args.active:  # a broker without the active view answers with every grant
        grants = [g for g in grants if isinstance(g, dict) and g.get("status") == "active"]
    return _render(args, grants, ("id", "profile", "account", "status", "expires_at", "reason"))


def cmd_grant(client: BrokerClient, args: argparse.Namespace) -> str:
    return _render(args, grant_from(client.call("GET", session.grant_path(args.grant_id))))


def _revoke_one(client: BrokerClient, grant_id: str, reason: str | None) -> dict[str, Any]:
    body = {} if reason is None else {"reason": reason}
    grant = grant_from(client.call("POST", session.grant_path(grant_id, "/revoke"), body))
    cache.forget_grant(grant_id, dict(os.environ))
    return grant


def cmd_revoke(client: BrokerClient, args: argparse.Namespace) -> str:
    """A grant id revokes that grant; a profile, your active grants of it; --all, all of them."""
    if args.all == (args.target is not None):
        raise CliError(
            "revoke what? jit revoke GRANT_ID, jit revoke PROFILE or jit revoke --all",
            code="usage",
            exit_code=ExitCode.USAGE,
        )
    if args.target is not None and _GRANT_ID_SHAPE.fullmatch(args.target):
        return _render(args, _revoke_one(client, args.target, args.reason))
    grants = [
        grant
        for grant in client.call("GET", session.ACTIVE_GRANTS_PATH).get("grants", [])
        if isinstance(grant, dict)
        and grant.get("status") == "active"
        and isinstance(grant.get("id"), str)
        and (args.all or grant.get("profile") == args.target)
    ]
    if not grants and not args.all:
        raise CliError(
            f"you have no active grant of profile {clean_text(args.target, 80)!r} "
            "(jit status lists yours)",
            code="no_active_grant",
            exit_code=ExitCode.NOT_FOUND,
        )
    revoked = []
    for grant in grants:
        revoked.append(_revoke_one(client, grant["id"], args.reason))
        _say(f"revoked grant {grant['id']} ({clean_text(str(grant.get('profile')), 80)})")
    if not revoked:
        _say("you have no active grants: nothing to revoke")
    return _render(args, revoked, ("id", "profile", "account", "status", "revoked_at"))


def cmd_audit(client: BrokerClient, args: argparse.Namespace) -> str:
    body: dict[str, Any] = {"dry_run": bool(args.dry_run)}
    if args.at is not None:
        body["at"] = args.at
    report = client.call("POST", "/v1/audit", body).get("report")
    if not isinstance(report, dict):
        raise CliError(
            "the broker's answer has no valid report",
            code="unexpected_response",
            exit_code=ExitCode.UNEXPECTED,
        )
    return _render(args, report)


# ---------------------------------------------------------------- signing and sessions


def _connect(
    api_url: str, profile: str | None, region_flag: str | None, profile_from_flag: bool = False
) -> Callable[[], BrokerClient]:
    """A factory for a signing client: credentials are loaded only when it is called, and
    never a JIT grant's session (:mod:`jit_cli.guard`)."""

    def connect() -> BrokerClient:
        guard.check_before_loading(profile, os.environ, profile_from_flag=profile_from_flag)
        identity = load_identity(profile)
        where = f"the keys of AWS profile {profile!r}" if profile else "the AWS keys in this shell"
        guard.check_access_key(identity.credentials.access_key, os.environ, where)
        region, region_source = resolve_region(
            region_flag, api_url, os.environ, identity.profile_region
        )
        log.debug(
            "signing as %s... (from %s) for %s, region %s (from %s)",
            identity.credentials.access_key[:4],
            identity.source,
            api_url,
            region,
            region_source,
        )

        def signer(method: str, url: str, body: bytes | None, headers: Any) -> dict[str, str]:
            return sign(method, url, body, headers, identity.credentials, region)

        return _GuardedClient(
            api_url, signer, region, user_agent=f"jit-cli/{version()}", profile=profile
        )

    return connect


class _GuardedClient(BrokerClient):
    """A 403 because the signer is one of the broker's sessions says what to unset."""

    def __init__(self, *args: Any, profile: str | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._profile = profile

    def call(self, method: str, path: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return super().call(method, path, *args, **kwargs)
        except CliError as error:
            if (method, path) == ("POST", "/v1/grants"):  # an unknown profile: the nearest one
                payload = args[0] if args else kwargs.get("payload")
                error = didyoumean.with_profile_hint(
                    error, (payload or {}).get("profile"), self._profile_names
                )
            whoami = (
                None
                if path == "/v1/whoami"
                else lambda: super(_GuardedClient, self).call("GET", "/v1/whoami")
            )
            raise guard.explain_denied(error, whoami, profile=self._profile) from None

    def _profile_names(self) -> list[str]:
        return didyoumean.profile_names(super().call("GET", "/v1/profiles"))


def _client(args: argparse.Namespace) -> BrokerClient:
    """Resolve URL, credentials and region, in that order, into a signing client."""
    api_url = resolve_api_url(args.api_url, os.environ, args.env_name)
    profile = signing_profile(args.aws_profile, os.environ)
    return _connect(api_url, profile, args.region, bool(args.aws_profile))()


def _wanted(args: argparse.Namespace) -> session.Wanted:
    return session.Wanted(
        args.profile_name,
        args.reason,
        args.duration,
        args.ticket,
        account=args.account,
        new=bool(getattr(args, "new", False)),
        # a credential_process profile's recorded flags never refuse a grant to reuse
        strict=args.command != "credential-process",
    )


def _say(line: str) -> None:
    """One decision, on stderr (stdout is the credentials)."""
    print(f"jit: {line}", file=sys.stderr)


def _session_entry(args: argparse.Namespace, profile: str | None) -> dict[str, Any]:
    """Credentials for ``args.profile_name`` signed as ``profile`` (cache unless --no-cache)."""
    api_url = resolve_api_url(args.api_url, os.environ, args.env_name)
    environ = dict(os.environ)
    cache_key = None
    if not args.no_cache:
        identity = cache.signing_identity(profile, environ)
        cache_key = cache.key(api_url, identity, "profile", args.profile_name, args.account)
    from_flag = bool(args.aws_profile or getattr(args, "source_profile", None))
    connect = _connect(api_url, profile, args.region, from_flag)
    return session.obtain(connect, _wanted(args), api_url, cache_key, environ, _say)


def _work_region(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """The region for commands run with the credentials: --region, the usual variables,
    else the API's own region, else us-east-1."""
    api_url = environ.get("JIT_API_URL", "") if args.api_url is None else args.api_url
    return (
        args.region
        or environ.get("AWS_REGION")
        or environ.get("AWS_DEFAULT_REGION")
        or region_from_url(api_url)
        or "us-east-1"
    )


def cmd_credential_process(args: argparse.Namespace) -> str:
    # The caller's AWS_PROFILE names the JIT profile itself: signing with it would recurse.
    for name in _CALLER_PROFILE_VARIABLES:
        os.environ.pop(name, None)
    entry = _session_entry(args, args.source_profile)
    return cache.credential_process_json(entry)


def _variables(entry: Mapping[str, Any]) -> dict[str, str]:
    return credential_variables(entry["credentials"], cache.ends_at(dict(entry)))


def cmd_env(args: argparse.Namespace) -> str:
    if args.unset:
        if args.format not in ("sh", "fish"):
            raise CliError(
                "--unset prints shell lines: use --format sh or fish",
                code="usage",
                exit_code=ExitCode.USAGE,
            )
        return guard.unset_lines(args.format)
    if args.profile_name is None:
        raise CliError(
            "which profile? jit env PROFILE (or jit env --unset)",
            code="usage",
            exit_code=ExitCode.USAGE,
        )
    entry = _session_entry(args, signing_profile(args.aws_profile, os.environ))
    variables = _variables(entry)
    if args.format == "json":
        return cache.credential_process_json(entry)
    if args.format == "ini":
        return ini_section(args.section or f"jit-{args.profile_name}", variables)
    variables[guard.GRANT_VARIABLE] = entry["grant"]["id"]  # the nesting guard sees it
    if args.format == "fish":
        return fish_exports(variables)
    return sh_exports(variables)


def child_environment(
    environ: Mapping[str, str], entry: Mapping[str, Any], region: str
) -> dict[str, str]:
    """The environment of ``jit exec``'s command: credentials in, AWS_PROFILE out."""
    child = {
        name: value for name, value in environ.items() if name not in _CALLER_PROFILE_VARIABLES
    }
    child.update(_variables(entry))
    child.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            _NESTING_VARIABLE: entry["grant"]["id"],
        }
    )
    return child


def cmd_exec(args: argparse.Namespace) -> str:
    if os.environ.get(_NESTING_VARIABLE):
        raise CliError(
            f"already inside `jit exec` for grant {clean_text(os.environ[_NESTING_VARIABLE], 80)}: "
            "nesting would mix two grants' credentials; exit that shell first",
            code="nested_exec",
            exit_code=ExitCode.NESTED,
        )
    entry = _session_entry(args, signing_profile(args.aws_profile, os.environ))
    environment = child_environment(os.environ, entry, _work_region(args, os.environ))
    argv = list(args.command_argv)
    if not argv:  # no command: a subshell, with a variable for the prompt
        argv = [os.environ.get("SHELL") or "/bin/sh"]
        environment[_PROMPT_VARIABLE] = f"jit:{args.profile_name}"
        _say(
            f"a subshell ({argv[0]}) with grant {entry['grant']['id']}'s credentials: "
            f"exit to leave; ${_PROMPT_VARIABLE} is {environment[_PROMPT_VARIABLE]!r} for PS1"
        )
    program = argv[0]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(program, argv, environment)  # noqa: S606  # runs the user's own command, as `jit exec` is asked to  # nosec B606
    except FileNotFoundError:
        raise CliError(
            f"command not found: {clean_text(program, 200)}",
            code="command_not_found",
            exit_code=ExitCode.COMMAND_NOT_FOUND,
        ) from None
    except OSError as error:
        raise CliError(
            f"cannot run {clean_text(program, 200)}: {error.strerror}",
            code="not_executable",
            exit_code=ExitCode.NOT_EXECUTABLE,
        ) from None
    raise AssertionError("unreachable: execvpe returned")  # pragma: no cover


def cmd_console(args: argparse.Namespace) -> str:
    from jit_cli import console

    endpoint = console.federation_url(os.environ)
    entry = _session_entry(args, signing_profile(args.aws_profile, os.environ))
    url = console.login_url(endpoint, console.signin_token(endpoint, entry["credentials"]))
    if not args.open:
        return url
    import webbrowser

    if not webbrowser.open(url):
        return url
    print("jit: opened the AWS console in your browser", file=sys.stderr)
    return ""


# ---------------------------------------------------------------- local commands


def jit_executable() -> str:
    """The absolute path of this ``jit`` (so credential_process does not depend on PATH)."""
    import shutil

    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "jit" and os.path.isfile(argv0):
        return os.path.abspath(argv0)
    beside = os.path.join(os.path.dirname(sys.executable), "jit")
    if os.path.isfile(beside):
        return beside
    return shutil.which("jit") or "jit"


def _work_region_for_config(args: argparse.Namespace) -> str | None:
    return args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def cmd_configure(args: argparse.Namespace) -> str:
    from jit_cli import awsconfig, onboard

    name = awsconfig.check_profile_name(args.name or f"jit-{args.profile_name}")
    source = args.source_profile or signing_profile(args.aws_profile, os.environ)
    if source == name:
        raise CliError(
            f"the source profile {source!r} is the profile being written: it would call itself; "
            "pass --source-profile with the profile you sign in with",
            code="recursive_profile",
            exit_code=ExitCode.USAGE,
        )
    api_url = resolve_api_url(args.api_url, os.environ, args.env_name)
    values = onboard.process_values(
        jit_executable(),
        args.profile_name,
        api_url,
        source=source,
        account=args.account,
        reason=args.reason,
        ticket=args.ticket,
        duration=args.duration,
        region=_work_region_for_config(args),
    )
    # Asked as the identity credential_process will sign with: what it may request.
    client = _connect(api_url, source, args.region)()
    views = onboard.profile_views(client.call("GET", "/v1/profiles"))
    onboard.check(
        onboard.find(views, args.profile_name),
        reason=args.reason,
        ticket=args.ticket,
        duration=args.duration,
        duration_text=None,
        account=args.account,
    )
    path = awsconfig.config_path(os.environ)
    replaced = awsconfig.configure(path, name, values)
    print(f"jit: try it: aws sts get-caller-identity --profile {name}", file=sys.stderr)
    result = {
        "aws_profile": name,
        "config_file": path,
        "replaced": replaced,
        "signs_as": f"profile {source}" if source else "the default credential chain",
        **values,
    }
    return _render(args, result)


def cmd_init(args: argparse.Namespace) -> str:
    """The CLI's config file for BROKER_URL, then every profile the caller may request."""
    from jit_cli import awsconfig, onboard

    api_url = resolve_api_url(args.broker_url, os.environ)
    source = args.source_profile or signing_profile(args.aws_profile, os.environ)
    client = _connect(api_url, source, args.region)()
    views = onboard.profile_views(client.call("GET", "/v1/profiles"))
    environment = args.env_name or "default"
    config_file, config_changed = onboard.write_cli_config(os.environ, environment, api_url)
    aws_config = awsconfig.config_path(os.environ)
    configured: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for view in views:
        for account, aws_name in onboard.aws_profiles(view):
            try:
                awsconfig.check_profile_name(aws_name)
                if source == aws_name:
                    raise onboard.Refusal(
                        f"the source profile {source!r} is the profile to write",
                        "recursive_profile",
                    )
                onboard.check(
                    view,
                    reason=args.reason,
                    ticket=args.ticket,
                    duration=args.duration,
                    duration_text=None,
                    account=account,
                )
            except CliError as refusal:
                print(f"jit: skipped {aws_name}: {refusal.message}", file=sys.stderr)
                skipped.append(
                    {"aws_profile": aws_name, "profile": view["name"], "why": refusal.message}
                )
                continue
            values = onboard.process_values(
                jit_executable(),
                view["name"],
                api_url,
                source=source,
                account=account,
                reason=args.reason,
                ticket=args.ticket,
                duration=args.duration,
                region=_work_region_for_config(args),
            )
            replaced = awsconfig.configure(aws_config, aws_name, values)
            configured.append(
                {
                    "aws_profile": aws_name,
                    "profile": view["name"],
                    "account": account,
                    "replaced": replaced,
                }
            )
    if configured:
        first = configured[0]["aws_profile"]
        print(f"jit: try it: aws sts get-caller-identity --profile {first}", file=sys.stderr)
    result = {
        "api_url": api_url,
        "environment": environment,
        "config_file": config_file,
        "config_file_changed": config_changed,
        "aws_config_file": aws_config,
        "signs_as": f"profile {source}" if source else "the default credential chain",
        "configured": configured,
        "skipped": skipped,
    }
    return _render(args, result)


# Failures after which `jit status` still answers from the cache: the broker (or the AWS
# endpoint that loads the signing keys) unreachable, no keys, or keys that are a grant's.
_STATUS_FALLBACK = frozenset(
    {ExitCode.UNAVAILABLE, ExitCode.AWS_UNAVAILABLE, ExitCode.NO_CREDENTIALS}
)


def cmd_status(args: argparse.Namespace) -> str:
    """Who you sign as, your active grants (the broker), the cached sessions (the cache)."""
    from jit_cli import status

    api_url = resolve_api_url(args.api_url, os.environ, args.env_name)
    profile = signing_profile(args.aws_profile, os.environ)
    document: dict[str, Any] = {
        "api_url": api_url,
        "signs_with": status.signs_with(profile, os.environ),
        "broker_answered": False,
        "whoami": None,
        "grants": None,
    }
    try:
        client = _connect(api_url, profile, args.region, bool(args.aws_profile))()
        document["whoami"] = client.call("GET", "/v1/whoami")
        grants = client.call("GET", session.ACTIVE_GRANTS_PATH).get("grants", [])
        document["broker_answered"] = True
    except CliError as error:
        if error.exit_code not in _STATUS_FALLBACK and error.code != guard.CODE:
            raise
        _say(f"{error.message} ({error.code}): showing the cached sessions only")
        document["error"] = {"code": error.code, "message": error.message}
    at = cache.now(os.environ)
    if document["broker_answered"]:
        document["grants"] = status.active_grants(grants, at)
    document["sessions"] = status.sessions(os.environ, at)
    text_wanted = args.output == "text" or (args.output is None and sys.stdout.isatty())
    return status.human(document, at) if text_wanted else _render(args, document)


def cmd_cache(args: argparse.Namespace) -> str:
    removed = cache.clear(dict(os.environ))
    return _render(args, {"removed": removed, "directory": cache.directory(dict(os.environ))})


def cmd_completion(args: argparse.Namespace) -> str:
    from jit_cli import completion

    return completion.script(args.shell, build_parser()).rstrip("\n")


def _run_local(rest: list[str]) -> int:
    try:
        from jit_local.server import main as local_main
    except ModuleNotFoundError as error:
        raise CliError(
            f"the local stack is not available (cannot import {error.name}): "
            "install jit-broker[local]",
            code="local_unavailable",
            exit_code=ExitCode.UNEXPECTED,
        ) from None
    return int(local_main(rest) or 0)


def _configure_debug(enabled: bool) -> logging.Handler | None:
    if not enabled:
        return None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("jit: debug: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    return handler


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


def _parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
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


def _execute(args: argparse.Namespace, rest: list[str]) -> tuple[int, str]:
    if args.command == "local":
        return _run_local(rest), ""
    if args.run_local is not None:
        return int(ExitCode.OK), args.run_local(args)
    return int(ExitCode.OK), args.run(_client(args), args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``jit`` command; the exit code (see :mod:`jit_cli.errors`)."""
    try:
        args, rest = _parse(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else int(ExitCode.USAGE)
    handler = _configure_debug(args.debug)
    try:
        code, text = _execute(args, rest)
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
