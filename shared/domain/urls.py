"""URL rules shared by settings and the handshake: `http` is accepted for loopback hosts only."""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit

LOOPBACK_NAMES = frozenset({"localhost"})


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
    """Return why `url` is unacceptable as a broker or return URL, or None when it is fine."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an absolute http(s) URL"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return "http is accepted only for loopback hosts (127.0.0.1, ::1, localhost); use https"
    if parts.username or parts.password:
        return "must not carry credentials"
    if parts.fragment:
        return "must not carry a fragment"
    return None


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def allowed_return_url(candidate: str, allowlist: list[str]) -> bool:
    """Same scheme, host and port as an allowlist entry, and a path under the entry's path.

    An entry ending in `/` admits every path below it; otherwise the path must match exactly. Query strings
    on the candidate are allowed (the broker appends its own parameters).
    """
    if len(candidate) > 2048 or check_url(candidate) is not None:
        return False
    try:
        parts = urlsplit(candidate)
        origin = _origin(parts)
    except ValueError:
        return False
    for entry in allowlist:
        allowed = urlsplit(entry)
        if origin != _origin(allowed):
            continue
        base = allowed.path or "/"
        path = parts.path or "/"
        if (base.endswith("/") and path.startswith(base)) or path == base:
            return True
    return False
