"""Origins: this server's public origin, and the one parser every origin goes through.

This server's origin is the OAuth issuer, the RFC 9728 protected resource and
the base of every URL it advertises. With ``MCP_PUBLIC_URL`` set, that is the
origin; unset (development), it is the origin the client used, so
``localhost`` and ``127.0.0.1`` both work.

Every comparison of origins (the MCP endpoints' Origin check, RFC 8707
resource indicators, the configured public URL) goes through ``split_origin``,
so they all agree on case, default ports and IPv6 brackets.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def split_origin(url: object) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of an absolute URL, lower-cased, the port defaulted
    from the scheme when known; None for anything that has no such parts, or that
    carries credentials or a fragment."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    if parts.fragment:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS.get(scheme)


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) origin, the default port dropped; None for
    anything else (``null``, a URL with a path or query, credentials...)."""
    split = split_origin(value)
    if split is None:
        return None
    scheme, host, port = split
    parts = urlsplit(value.strip())
    if scheme not in DEFAULT_PORTS or parts.path not in ("", "/") or parts.query:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port == DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{port}"


def parse_public_url(raw: str) -> str:
    """``MCP_PUBLIC_URL`` as a normalised origin; empty stays empty."""
    if not raw:
        return ""
    origin = normalize_origin(raw)
    if origin is None:
        raise ImproperlyConfigured(
            "MCP_PUBLIC_URL must be an http(s) origin without path, query or credentials, "
            f"such as https://mcp.example.com; got {raw!r}"
        )
    return origin


def is_loopback_host(host: str | None) -> bool:
    return (host or "").strip("[]").lower() in LOOPBACK_HOSTS


def public_origin(scheme: str, host: str) -> str:
    """This server's origin for a request that reached it as ``scheme://host``."""
    return settings.MCP_PUBLIC_URL or f"{scheme}://{host.lower()}"


def request_origin(request) -> str:
    """This server's origin for a Django request."""
    return public_origin(request.scheme, request.get_host())


def same_origin(uri: object, origin: str) -> bool:
    """Whether ``uri`` is on ``origin`` (the origin itself, or any path on it)."""
    split = split_origin(uri)
    return split is not None and split == split_origin(origin)
