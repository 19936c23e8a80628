"""RFC 8707 resource indicators: which resources belong to this server.

Tokens are bound to this server's origin (the RFC 9728 ``resource``, a prefix
of both ``/mcp`` and ``/sse``); a request naming any other server is refused
with ``invalid_target``.
"""

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _authority(uri: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(uri)
        port = parts.port
    except (ValueError, TypeError, AttributeError):
        return None
    if not parts.scheme or not parts.hostname or parts.username is not None or parts.fragment:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS.get(scheme)


def is_resource_of(uri: object, server_origin: str) -> bool:
    """True when ``uri`` names this server (its origin, or a path on it)."""
    if not isinstance(uri, str):
        return False
    authority = _authority(uri)
    return authority is not None and authority == _authority(server_origin)
