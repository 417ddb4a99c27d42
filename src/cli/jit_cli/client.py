"""The signing client of the commands that call the broker: URL, credentials and region
resolved in that order, credentials loaded only when the client is made, and never a JIT
grant's own session (:mod:`jit_cli.guard`)."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from typing import Any

from jit_cli import __version__, cache, didyoumean, guard
from jit_cli.broker import BrokerClient
from jit_cli.errors import CliError
from jit_cli.signing import load_identity, resolve_api_url, resolve_region, sign, signing_profile

log = logging.getLogger("jit_cli")


def connect(
    api_url: str, profile: str | None, region_flag: str | None, profile_from_flag: bool = False
) -> Callable[[], BrokerClient]:
    """A factory for a signing client: credentials are loaded only when it is called, and
    never a JIT grant's session (:mod:`jit_cli.guard`)."""

    def make() -> BrokerClient:
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

        return GuardedClient(
            api_url, signer, region, user_agent=f"jit-cli/{__version__}", profile=profile
        )

    return make


# 403s that say what the request was, not who signed it: no whoami to explain them.
_NOT_ABOUT_THE_SIGNER = frozenset({"self_approval_refused"})


class GuardedClient(BrokerClient):
    """A 403 because the signer is one of the broker's sessions says what to unset."""

    def __init__(self, *args: Any, profile: str | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._profile = profile

    def call(self, method: str, path: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            answer = super().call(method, path, *args, **kwargs)
        except CliError as error:
            if (method, path) == ("POST", "/v1/grants"):  # an unknown profile: the nearest one
                payload = args[0] if args else kwargs.get("payload")
                error = didyoumean.with_profile_hint(
                    error, (payload or {}).get("profile"), self._profile_names
                )
            whoami = (
                None
                if path == "/v1/whoami" or error.code in _NOT_ABOUT_THE_SIGNER
                else lambda: super(GuardedClient, self).call("GET", "/v1/whoami")
            )
            raise guard.explain_denied(error, whoami, profile=self._profile) from None
        if (method, path) == ("GET", "/v1/profiles"):
            self._remember(answer)
        return answer

    def _profile_names(self) -> list[str]:
        answer = super().call("GET", "/v1/profiles")
        self._remember(answer)
        return didyoumean.profile_names(answer)

    def _remember(self, profiles_answer: Any) -> None:
        """Every listing of the profiles feeds ``jit __complete profiles`` (the fast path
        never asks the broker itself): jit profiles, configure, init and did-you-mean."""
        names = didyoumean.profile_names(profiles_answer)
        cache.remember_profiles(self._api_url, self._profile, names, os.environ)


def for_args(args: argparse.Namespace) -> BrokerClient:
    """Resolve URL, credentials and region, in that order, into a signing client."""
    api_url = resolve_api_url(args.api_url, os.environ, args.broker_name)
    profile = signing_profile(args.aws_profile, os.environ)
    return connect(api_url, profile, args.region, bool(args.aws_profile))()
