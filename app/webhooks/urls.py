"""Which endpoint URLs are accepted: the pragmatic guard against server-side request forgery.

Pure: no I/O (names are resolved by the dispatcher, which calls `is_private_address` on what
the name resolves to). Refused always: schemes other than http and https, credentials in the
URL, a missing host. Refused unless `WARMLINE_WEBHOOK_ALLOW_PRIVATE` (true by default): hosts
that are, or resolve to, addresses that are not globally routable (private, loopback,
link-local, carrier-grade NAT, reserved) and the names `localhost` and `*.localhost`.
docs/api.md#webhooks-and-your-network.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048


def is_private_address(address: str) -> bool:
    """Whether an IP address is not globally routable (true for anything not an address)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global


def problem(url: str, *, allow_private: bool) -> str | None:
    """Why `url` cannot be an endpoint, or None when it can."""
    if len(url) > MAX_URL_LENGTH:
        return f"At most {MAX_URL_LENGTH} characters."
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError:
        return "Not a valid URL."
    del port
    if parts.scheme not in ("http", "https"):
        return "The URL must start with https:// or http://."
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "Credentials in the URL are not allowed; authenticate with the signature."
    host = parts.hostname
    if not host:
        return "The URL has no host."
    if not allow_private and _private_host(host):
        return (
            "This host is on a private, loopback or link-local network, which this server "
            "does not call (WARMLINE_WEBHOOK_ALLOW_PRIVATE=false)."
        )
    return None


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


def _private_host(host: str) -> bool:
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False  # a name: judged on what it resolves to, when sending
    return is_private_address(name)
