"""This server's external origin: the issuer, the protected-resource identifier
and the base of every URL it advertises.

With ``MCP_PUBLIC_URL`` set, that is the origin; unset (development), it is the
origin the client used, so ``localhost`` and ``127.0.0.1`` both work.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def parse_public_url(raw: str) -> str:
    """Normalise ``MCP_PUBLIC_URL`` to ``scheme://host[:port]``; empty stays empty."""
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(f"MCP_PUBLIC_URL must be an http(s) origin such as https://mcp.example.com, got {raw!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ImproperlyConfigured(f"MCP_PUBLIC_URL must be an origin without path, query or credentials, got {raw!r}")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def is_loopback_host(host: str | None) -> bool:
    return (host or "").strip("[]").lower() in LOOPBACK_HOSTS


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"


def request_origin(request) -> str:
    """The public origin for a Django request."""
    return settings.MCP_PUBLIC_URL or origin_of(request.build_absolute_uri("/"))


def url_origin(absolute_url: str) -> str:
    """The public origin for a request known only by its absolute URL (oauthlib requests)."""
    return settings.MCP_PUBLIC_URL or origin_of(absolute_url)
