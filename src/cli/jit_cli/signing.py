"""Who signs and where: AWS credentials, the signing region, and SigV4 via botocore.

botocore is imported only inside the functions that need it, so ``jit --help`` and
argument errors never pay for importing it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from jit_cli.errors import CliError, ExitCode

if TYPE_CHECKING:
    from botocore.credentials import ReadOnlyCredentials

SERVICE = "execute-api"
DEFAULT_REGION = "us-east-1"

_EXECUTE_API_HOST = re.compile(
    r"^[a-z0-9-]+\.execute-api\.(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]+)\.amazonaws\.com(?:\.cn)?$"
)

SIGN_IN_HINT = (
    "sign in first, e.g. `aws sso login --profile NAME` and then `jit --aws-profile NAME ...`, "
    "or set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)


@dataclass(frozen=True)
class Identity:
    """Frozen credentials to sign with, where they came from, and the profile's region."""

    credentials: ReadOnlyCredentials
    source: str
    profile_region: str | None


def resolve_api_url(
    flag: str | None, environ: Mapping[str, str], env_name: str | None = None
) -> str:
    """The broker's base URL (no trailing slash); precedence in :mod:`jit_cli.config`."""
    from jit_cli import config

    url = config.api_url(flag, env_name, environ)
    if not url:
        raise CliError(
            "no broker URL: pass --api-url or --broker, set JIT_API_URL, or name a "
            f"default_environment in {config.config_path(environ)}",
            code="missing_api_url",
            exit_code=ExitCode.USAGE,
        )
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise CliError(
            f"invalid broker URL {url!r}: expected https://HOST[/STAGE]",
            code="invalid_api_url",
            exit_code=ExitCode.USAGE,
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise CliError(
            f"refusing plain http to {parts.hostname}: signed requests and credentials "
            "travel only over https (http is allowed for localhost)",
            code="insecure_api_url",
            exit_code=ExitCode.USAGE,
        )
    return url.rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def region_from_url(api_url: str) -> str | None:
    """The region in an ``<id>.execute-api.<region>.amazonaws.com`` host, else None."""
    match = _EXECUTE_API_HOST.match(urlsplit(api_url).hostname or "")
    return match.group("region") if match else None


def resolve_region(
    flag: str | None,
    api_url: str,
    environ: Mapping[str, str],
    profile_region: str | None,
) -> tuple[str, str]:
    """The signing region and where it came from.

    ``--region`` wins. Next the region in an execute-api host: the API lives there, and a
    signature scoped to any other region is rejected, whatever the shell's default region.
    Then AWS_REGION, AWS_DEFAULT_REGION, the profile's region, and finally us-east-1.
    """
    candidates = (
        ("--region", flag),
        ("api url", region_from_url(api_url)),
        ("AWS_REGION", environ.get("AWS_REGION")),
        ("AWS_DEFAULT_REGION", environ.get("AWS_DEFAULT_REGION")),
        ("profile", profile_region),
    )
    for source, region in candidates:
        if region:
            return region, source
    return DEFAULT_REGION, "default"


def signing_profile(flag: str | None, environ: Mapping[str, str]) -> str | None:
    """The AWS profile to sign with: ``--aws-profile``, else AWS_PROFILE, else None (env keys,
    then the rest of the standard chain). A named profile takes precedence over keys in the
    environment (botocore drops its environment provider for an explicit profile)."""
    return flag or environ.get("AWS_PROFILE") or None


def load_identity(profile: str | None) -> Identity:
    """Credentials from the standard chain (``profile``, else env keys, config files...)."""
    import botocore.exceptions
    import botocore.session

    try:
        session = botocore.session.Session(profile=profile)
        found = session.get_credentials()
        if found is None:
            raise CliError(
                f"no AWS credentials found: {SIGN_IN_HINT}",
                code="no_credentials",
                exit_code=ExitCode.NO_CREDENTIALS,
            )
        frozen = found.get_frozen_credentials()
        region = session.get_config_variable("region")
    except botocore.exceptions.ProfileNotFound as error:
        raise CliError(
            f"AWS profile {error.kwargs.get('profile')!r} is not configured: {SIGN_IN_HINT}",
            code="no_credentials",
            exit_code=ExitCode.NO_CREDENTIALS,
        ) from None
    except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as error:
        raise CliError(
            f"cannot reach the AWS endpoint that issues your credentials (STS or SSO, not the "
            f"broker): {error}",
            code="credentials_endpoint_unreachable",
            exit_code=ExitCode.AWS_UNAVAILABLE,
        ) from None
    except botocore.exceptions.ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if status >= 500:
            raise CliError(
                f"the AWS endpoint that issues your credentials (STS or SSO, not the broker) "
                f"failed: {error}",
                code="credentials_endpoint_failed",
                exit_code=ExitCode.AWS_UNAVAILABLE,
            ) from None
        raise CliError(
            f"could not load AWS credentials: {error}; {SIGN_IN_HINT}",
            code="no_credentials",
            exit_code=ExitCode.NO_CREDENTIALS,
        ) from None
    except botocore.exceptions.BotoCoreError as error:
        raise CliError(
            f"could not load AWS credentials: {error}; {SIGN_IN_HINT}",
            code="no_credentials",
            exit_code=ExitCode.NO_CREDENTIALS,
        ) from None
    if not frozen.access_key or not frozen.secret_key:
        raise CliError(
            f"no AWS credentials found: {SIGN_IN_HINT}",
            code="no_credentials",
            exit_code=ExitCode.NO_CREDENTIALS,
        )
    return Identity(credentials=frozen, source=str(found.method), profile_region=region)


def sign(
    method: str,
    url: str,
    body: bytes | None,
    headers: Mapping[str, str],
    credentials: ReadOnlyCredentials,
    region: str,
    service: str = SERVICE,
) -> dict[str, str]:
    """``headers`` plus X-Amz-Date, X-Amz-Security-Token and Authorization, by botocore."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(credentials, service, region).add_auth(request)
    return dict(request.headers.items())
