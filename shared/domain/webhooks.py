"""Standard Webhooks signing, pure (https://www.standardwebhooks.com, "Symmetric signatures").

`webhook-signature` is `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`, once per secret,
space-separated: every configured secret signs, so a receiver can rotate its secret without missing a delivery.
Hand-written (a dozen lines of the standard library): the tests verify it with the `standardwebhooks` package,
an independent implementation, which signing with that same package would make circular.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:  # settings read webhook secrets with this module: their start-up loads no delivery machinery
    from shared.domain.delivery import Destination

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # the spec: secrets are 24 to 64 random bytes
MAX_SECRET_BYTES = 64


def parse_secret(value: str) -> bytes:
    """The key of a `whsec_<base64>` secret; ValueError (never quoting the value) when it is not one."""
    if not value.startswith(SECRET_PREFIX):
        raise ValueError("must start with 'whsec_'")
    try:
        key = base64.b64decode(value[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be 'whsec_' followed by base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"must decode to {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes, found {len(key)}")
    return key


def signature(keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join("v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode() for key in keys)


def headers(keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one delivery attempt (`timestamp`: Unix seconds when it is sent)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(keys, message_id, timestamp, body),
        "Content-Type": "application/json",
    }


def destination(url: str) -> Destination:
    """A webhook endpoint as a destination: keyed by a digest of the whole URL (a query may carry the receiver's
    own token), shown without its query."""
    from shared.domain.delivery import Destination

    parts = urlsplit(url)
    shown = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
    return Destination("webhook:" + hashlib.sha256(url.encode()).hexdigest()[:16], "webhook", shown)
