"""Outbound HTTP under the egress rules: resolve, check every address, connect to the checked one.

`CheckedAdapter` is a requests transport adapter (the technique of requests-hardened's IP filter): it resolves the
URL's host through a resolver port, refuses the request when any address is one the policy refuses, and hands
urllib3 the checked IP as the host to connect to, keeping the name for the `Host` header, TLS SNI and the
certificate check. urllib3 never resolves the name again, so DNS rebinding between check and connect cannot
happen; every request resolves anew (pools are keyed by the IP). Without a policy (development) sessions are
plain `requests` sessions.

The environment is read once, when a session is built: requests otherwise re-reads the proxy variables, the CA
bundle variables and ~/.netrc on every request (~5% of a refresh's CPU). Without proxy variables the session
stops trusting the environment (a CA bundle named by REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE becomes its `verify`;
~/.netrc is never read: the broker authenticates each provider call itself); with them, requests keeps its own
per-request proxy and NO_PROXY handling.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.request import getproxies

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.util.connection import allowed_gai_family

from shared.domain.egress import EgressPolicy

if TYPE_CHECKING:
    from requests.adapters import _HostParams, _PoolKwargs

log = logging.getLogger("broker.egress")

Resolver = Callable[[str, int], Sequence[str]]


class EgressRefused(requests.exceptions.ConnectionError):
    """The destination resolves to an address the egress rules refuse; nothing was sent."""


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, family=allowed_gai_family(), type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class CheckedAdapter(HTTPAdapter):
    def __init__(self, policy: EgressPolicy, resolver: Resolver = system_resolver, *, pool_maxsize: int = 10) -> None:
        super().__init__(pool_maxsize=pool_maxsize)
        self._policy = policy
        self._resolver = resolver

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: str | tuple[str, str] | None = None
    ) -> tuple[_HostParams, _PoolKwargs]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        host: str = host_params["host"]
        port: int = host_params["port"] or (443 if host_params["scheme"] == "https" else 80)
        address = self._checked(request, host, port)
        # A copy: callers (and libraries) may share one headers dict between requests.
        headers = CaseInsensitiveDict(request.headers)
        headers["Host"] = f"[{host}]" if ":" in host else host
        if host_params["port"] is not None:
            headers["Host"] += f":{host_params['port']}"
        request.headers = headers
        if host_params["scheme"] == "https":
            tls = cast(dict[str, Any], pool_kwargs)  # urllib3 takes both; the stubs list fewer keys
            tls["server_hostname"] = host  # SNI
            tls["assert_hostname"] = host  # the certificate is checked against the name, not the IP
        host_params["host"] = f"[{address}]" if ":" in address else address
        return host_params, pool_kwargs

    def _checked(self, request: requests.PreparedRequest, host: str, port: int) -> str:
        try:
            addresses = self._resolver(host, port)
        except OSError as exc:  # what urllib3 would have raised resolving the name itself
            raise requests.exceptions.ConnectionError(f"cannot resolve the host: {type(exc).__name__}") from None
        if not addresses:
            raise requests.exceptions.ConnectionError("the host resolves to no address")
        for address in addresses:
            reason = self._policy.refusal(address)
            if reason is not None:
                log.warning("egress refused: %s resolves to %s, %s (EGRESS_ALLOWED_NETWORKS)", host, address, reason)
                raise EgressRefused(f"the destination resolves to {reason}", request=request)
        return addresses[0]


def egress_session(
    policy: EgressPolicy | None, resolver: Resolver = system_resolver, *, pool_maxsize: int = 10
) -> requests.Session:
    """A session for calls to providers and issuers: checked under `policy`, plain when it is None; `pool_maxsize`
    connections kept alive per host."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_maxsize=pool_maxsize) if policy is None else CheckedAdapter(
        policy, resolver, pool_maxsize=pool_maxsize
    )  # fmt: skip
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if not getproxies():
        session.trust_env = False
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
    return session
