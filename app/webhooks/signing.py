"""The `Warmline-Signature` header: Stripe's scheme, so receivers can reuse what they know.

Pure: no I/O, no clock (the timestamp is passed in). The header is
`t=<unix seconds>,v1=<hex HMAC-SHA256>`, the HMAC keyed with the endpoint's whole secret
(`whsec_…`, as UTF-8) over `"<t>.<raw body>"`. Receivers recompute it over the bytes they
received, compare in constant time and refuse timestamps too far from their clock (replays).
docs/api.md#verifying-signatures.
"""

from __future__ import annotations

import hashlib
import hmac

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
# What receivers are told to accept by default (and what `verify` uses): five minutes covers
# clock skew and a slow network, and bounds how long a captured request can be replayed.
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def header(secret: str, body: bytes, timestamp: int) -> str:
    """The `Warmline-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={signature(secret, body, timestamp)}"


def verify(
    secret: str,
    body: bytes,
    value: str,
    *,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether `value` (a `Warmline-Signature` header) signs `body` with `secret`, at a
    timestamp within `tolerance` seconds of `now`. Several `v1=` entries may be present (the
    receiver's side of a future secret rotation with overlap); one matching is enough."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t" and item.isdigit():
            timestamp = int(item)
        elif key == "v1":
            candidates.append(item)
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, body, timestamp)
    return any(hmac.compare_digest(expected, c) for c in candidates)
