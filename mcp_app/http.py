"""HTTP details shared by the MCP transports: header names, media types, SSE framing."""

from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

MCP_SESSION_ID_HEADER = "mcp-session-id"
MCP_PROTOCOL_VERSION_HEADER = "mcp-protocol-version"
LAST_EVENT_ID_HEADER = "last-event-id"
JSON = "application/json"
EVENT_STREAM = "text/event-stream"
# Clients that send no MCP-Protocol-Version header are taken to speak 2025-03-26 (spec, "Protocol Version Header").
DEFAULT_PROTOCOL_VERSION = "2025-03-26"
SUPPORTED_PROTOCOL_VERSIONS = frozenset(HANDSHAKE_PROTOCOL_VERSIONS)
SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),  # nginx: pass events through unbuffered
)


def header(scope, name: str) -> str | None:
    key = name.encode("latin-1")
    for header_name, value in scope.get("headers", ()):
        if header_name.lower() == key:
            return value.decode("latin-1")
    return None


def media_types(value: str | None) -> set[str]:
    if not value:
        return set()
    return {part.split(";", 1)[0].strip().lower() for part in value.split(",") if part.strip()}


def accepts(scope, media_type: str) -> bool:
    """Does the Accept header admit `media_type`? (No header admits anything.)"""
    value = header(scope, "accept")
    if value is None:
        return True
    types = media_types(value)
    return bool(types & {media_type, "*/*", media_type.split("/")[0] + "/*"})


def is_json_content(scope) -> bool:
    return media_types(header(scope, "content-type")) == {JSON}


def sse_event(data: bytes, event: str | None = None, event_id: str | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(b"id: " + event_id.encode())
    if event is not None:
        lines.append(b"event: " + event.encode())
    lines.extend(b"data: " + line for line in data.split(b"\n"))
    return b"\n".join(lines) + b"\n\n"


SSE_PING = b": ping\n\n"
# Resumability (and its priming event) came with this protocol version.
RESUMABLE_SINCE = "2025-11-25"


def sse_priming(event_id: str, retry_ms: int) -> bytes:
    """The empty first event of 2025-11-25: gives the client an id to resume from, and how soon to retry."""
    return f"id: {event_id}\ndata: \nretry: {retry_ms}\n\n".encode()
