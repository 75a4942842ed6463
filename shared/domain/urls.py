"""URL rules shared by settings and the handshake: `http` is accepted for loopback hosts only.

Return URLs are normalised the way a browser reads them (the WHATWG URL Standard, parsed by Ada, the parser
Node.js uses) before they are matched against the allowlist, and the browser is sent to the normalised form:
what was checked is what the browser follows. Matching the raw text instead let `/app/../admin` (or
`/app/%2e%2e/admin`) pass as "under /app/" while every browser goes to `/admin`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from ada_url import URL

from shared.domain.text import has_invisible

LOOPBACK_NAMES = frozenset({"localhost"})
MAX_URL_LENGTH = 2048
INVISIBLE = "must not contain control, format or space characters"
NOT_WEB = "must be an absolute http(s) URL"
PLAIN_HTTP = "http is accepted only for loopback hosts (127.0.0.1, ::1, localhost); use https"
# A server that decodes `%2F` or `%5C` before routing would climb out of the allowed path after all.
_ENCODED_SEPARATOR = re.compile("%(2f|5c)", re.IGNORECASE)


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str | None:
    """Return why `url` is unacceptable as a broker URL (settings, discovered endpoints), or None when it is fine."""
    if has_invisible(url):
        return INVISIBLE
    try:
        parts = urlsplit(url)
        hostname, _ = parts.hostname, parts.port  # both raise ValueError on a malformed authority
    except ValueError:
        return NOT_WEB
    if parts.scheme not in ("https", "http") or not hostname:
        return NOT_WEB
    if parts.scheme == "http" and not is_loopback_host(hostname):
        return PLAIN_HTTP
    if parts.username or parts.password:
        return "must not carry credentials"
    if parts.fragment:
        return "must not carry a fragment"
    return None


def normalise_web_url(url: str) -> str:
    """`url` as a browser resolves it: scheme and host lower-cased, the host in IDNA (ASCII) form, the default
    port dropped, dot segments resolved (percent-encoded ones too), `\\` read as `/`, other characters
    percent-encoded. ValueError saying why when it is not an acceptable absolute http(s) URL."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    if has_invisible(url):  # browsers silently drop tabs, newlines and edge spaces: refuse rather than guess
        raise ValueError(INVISIBLE)
    if "#" in url:
        raise ValueError("must not carry a fragment")
    try:
        parsed = URL(url)
    except ValueError:
        raise ValueError(NOT_WEB) from None
    if parsed.protocol not in ("https:", "http:") or not parsed.hostname:
        raise ValueError(NOT_WEB)
    if parsed.protocol == "http:" and not is_loopback_host(parsed.hostname):
        raise ValueError(PLAIN_HTTP)
    if parsed.username or parsed.password:
        raise ValueError("must not carry credentials")
    if _ENCODED_SEPARATOR.search(parsed.pathname):
        raise ValueError("must not carry an encoded '/' or '\\' in its path")
    if len(parsed.href) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters once normalised")
    return str(parsed.href)


def match_return_url(candidate: str, allowlist: Sequence[str]) -> str | None:
    """The normalised `candidate` when it has an entry's scheme, host and port and a path under the entry's
    path (both normalised); None otherwise. An entry ending in `/` admits every path below it, any other entry
    exactly its path. The candidate may carry a query (the broker appends its own parameters)."""
    try:
        href = normalise_web_url(candidate)
    except ValueError:
        return None
    target = URL(href)
    for entry in allowlist:
        try:
            allowed = URL(normalise_web_url(entry))
        except ValueError:
            continue
        if (target.protocol, target.hostname, target.port) != (allowed.protocol, allowed.hostname, allowed.port):
            continue
        base = allowed.pathname or "/"
        if (base.endswith("/") and target.pathname.startswith(base)) or target.pathname == base:
            return href
    return None
