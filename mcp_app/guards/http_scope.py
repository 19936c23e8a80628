"""What the guards read from an ASGI HTTP scope: headers, the Host, and this
server's origin.

The MCP routes bypass Django's request machinery (the consumers are plain
ASGI), so this is the scope-side twin of ``mcpsite.public_url.request_origin``:
``MCP_PUBLIC_URL`` when set, otherwise the scheme and Host the client used.
"""

from django.conf import settings

# ASGI header values are bytes; HTTP defines them as ISO-8859-1.
HEADER_ENCODING = "latin-1"


def header_values(scope, name: bytes) -> list[str]:
    """Every value of the header ``name`` (lower-case bytes, as ASGI delivers names)."""
    return [value.decode(HEADER_ENCODING) for key, value in scope["headers"] if key == name]


def header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode(HEADER_ENCODING)
    return None


def request_host(scope) -> str:
    """The Host the client asked for (``host[:port]``), or ``""`` when it named none.

    HTTP/1.1 requires the header; the ASGI ``server`` address is the fallback
    Django uses too (HTTP/1.0 clients).
    """
    host = header(scope, b"host")
    if host is not None:
        return host
    server = scope.get("server")
    if server and server[0]:
        address, port = server
        return f"{address}:{port}" if port else address
    return ""


def request_scheme(scope) -> str:
    return scope.get("scheme") or "http"  # ASGI: "http" when the server leaves it out


def server_origin(scope) -> str:
    """This server's public origin for the request (``scheme://host[:port]``).

    Only meaningful once the Host passed the Host guard: unset
    ``MCP_PUBLIC_URL`` means the origin is whatever the client called.
    """
    return settings.MCP_PUBLIC_URL or f"{request_scheme(scope)}://{request_host(scope).lower()}"


def request_url(scope) -> str:
    """Absolute URL of the request without its query string: the token's audience.

    ``path`` already includes any ``root_path`` (as Channels' URLRouter reads it).
    """
    return server_origin(scope) + scope["path"]
