"""``jit configure`` and ``jit init``: AWS config profiles whose credential_process is jit,
written only after the broker says the profile may be requested as asked
(:mod:`jit_cli.onboard`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from jit_cli import client
from jit_cli.commands import render
from jit_cli.errors import CliError, ExitCode
from jit_cli.signing import resolve_api_url, signing_profile


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

    name = awsconfig.check_profile_name(args.aws_profile_name or f"jit-{args.profile_name}")
    source = signing_profile(args.aws_profile, os.environ)
    if source == name:
        raise CliError(
            f"the AWS profile to sign with, {source!r}, is the profile being written: it would "
            "call itself; pass --aws-profile with the AWS profile you sign in with (or "
            "--aws-profile-name to write another)",
            code="recursive_profile",
            exit_code=ExitCode.USAGE,
        )
    api_url = resolve_api_url(args.api_url, os.environ, args.broker_name)
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
    broker = client.connect(api_url, source, args.region)()
    views = onboard.profile_views(broker.call("GET", "/v1/profiles"))
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
    return render(args, result)


def cmd_init(args: argparse.Namespace) -> str:
    """The CLI's config file for BROKER_URL, then every profile the caller may request."""
    from jit_cli import awsconfig, onboard

    api_url = resolve_api_url(args.broker_url, os.environ)
    source = signing_profile(args.aws_profile, os.environ)
    broker = client.connect(api_url, source, args.region)()
    views = onboard.profile_views(broker.call("GET", "/v1/profiles"))
    environment = args.broker_name or "default"
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
                        f"the AWS profile to sign with, {source!r}, is the profile to write",
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
    return render(args, result)
