"""Reading an ASGI HTTP scope: headers, the Host, content negotiation.

The MCP routes bypass Django's request machinery (the guards and endpoints
are plain ASGI), so this is where they read what Django's ``HttpRequest``
would give them. Header names are lower case, as ASGI servers deliver them.
"""

from functools import lru_cache

from mcp_app.protocol.names import JSON

# ASGI header values are bytes; HTTP defines them as ISO-8859-1.
HEADER_ENCODING = "latin-1"


def header(scope, name: str) -> str | None:
    """The first value of the header ``name`` (lower case), or None."""
    key = name.encode(HEADER_ENCODING)
    for header_name, value in scope.get("headers", ()):
        if header_name == key:
            return value.decode(HEADER_ENCODING)
    return None


def header_values(scope, name: str) -> list[str]:
    """Every value of the header ``name`` (lower case)."""
    key = name.encode(HEADER_ENCODING)
    return [value.decode(HEADER_ENCODING) for header_name, value in scope.get("headers", ()) if header_name == key]


def request_host(scope) -> str:
    """The Host the client asked for (``host[:port]``), or ``""`` when it named none.

    HTTP/1.1 requires the header; the ASGI ``server`` address is the fallback
    Django uses too (HTTP/1.0 clients).
    """
    host = header(scope, "host")
    if host is not None:
        return host
    server = scope.get("server")
    if server and server[0]:
        address, port = server
        return f"{address}:{port}" if port else address
    return ""


def request_scheme(scope) -> str:
    return scope.get("scheme") or "http"  # ASGI: "http" when the server leaves it out


def media_types(value: str | None) -> frozenset[str]:
    if not value:
        return frozenset()
    return _media_types(value)


# Read two or three times per request, from the few Accept and Content-Type values clients send
# (a flood of others only cycles the cache).
@lru_cache(maxsize=256)
def _media_types(value: str) -> frozenset[str]:
    return frozenset(part.split(";", 1)[0].strip().lower() for part in value.split(",") if part.strip())


def accepts(scope, media_type: str) -> bool:
    """Does the Accept header admit ``media_type``? (No header admits anything.)"""
    value = header(scope, "accept")
    if value is None:
        return True
    types = media_types(value)
    return bool(types & {media_type, "*/*", media_type.split("/")[0] + "/*"})


def is_json_content(scope) -> bool:
    return media_types(header(scope, "content-type")) == {JSON}
