"""Server-Sent Events framing for the MCP streams."""

SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),  # nginx: pass events through unbuffered
)
SSE_PING = b": ping\n\n"  # a comment line: keeps idle connections (and proxies) open


def sse_event(data: bytes, event: str | None = None, event_id: str | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(b"id: " + event_id.encode())
    if event is not None:
        lines.append(b"event: " + event.encode())
    lines.extend(b"data: " + line for line in data.split(b"\n"))
    return b"\n".join(lines) + b"\n\n"


def sse_priming(event_id: str, retry_ms: int) -> bytes:
    """The empty first event of 2025-11-25: gives the client an id to resume from, and how soon to retry."""
    return f"id: {event_id}\ndata: \nretry: {retry_ms}\n\n".encode()
