"""MCP client for in-process transport tests: raw HTTP exchanges with the real ASGI
application (`mcpsite.asgi`), no server process, over each transport, so one protocol
test runs over both (the `transport` fixture).

The other MCP clients of the tests, one job each: `engine_client.py` (the engine alone,
no HTTP), `wire_client.py` (raw HTTP to live servers at addresses the test picks),
`sdk_oauth.py` (the `mcp` SDK's own client with OAuth, against a live server).

They speak raw HTTP messages through Channels' ApplicationCommunicator: every
byte goes through the real guards and endpoints. Every wait has a timeout.
"""

import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from channels.testing import ApplicationCommunicator

TIMEOUT = 10
PROTOCOL_VERSION = "2025-11-25"


@dataclass
class HTTPResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    def events(self) -> list[dict]:
        """The JSON messages of an SSE body."""
        return [json.loads(line[6:]) for line in self.body.decode().split("\n") if line.startswith("data: {")]


def request_scope(method: str, path: str, headers: dict | None = None, host: str = "testserver") -> dict:
    """The ASGI scope of one HTTP request to the application, as daphne would build it."""
    path, _, query = path.partition("?")
    raw = [(b"host", host.encode())] + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": raw,
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
    }


async def send_request(app, method: str, path: str, body: bytes = b"", headers: dict | None = None, host="testserver"):
    """Send one request and return its ApplicationCommunicator, the response not yet read."""
    communicator = ApplicationCommunicator(app, request_scope(method, path, headers, host))
    await communicator.send_input({"type": "http.request", "body": body})
    return communicator


async def http(
    app, method: str, path: str, body: bytes = b"", headers: dict | None = None, host="testserver"
) -> HTTPResult:
    """One complete HTTP exchange (the response must end)."""
    communicator = await send_request(app, method, path, body, headers, host)
    start = await communicator.receive_output(TIMEOUT)
    chunks = []
    while True:
        message = await communicator.receive_output(TIMEOUT)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await communicator.wait(TIMEOUT)
    headers_out = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return HTTPResult(start["status"], headers_out, b"".join(chunks))


def initialize_message(request_id=0, version=PROTOCOL_VERSION, capabilities: dict | None = None):
    client = {"name": "tests", "version": "1"}
    params = {"protocolVersion": version, "capabilities": capabilities or {}, "clientInfo": client}
    return {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}


@dataclass
class StreamableHTTPClient:
    app: object
    token: str
    session_id: str | None = None
    name: str = "streamable-http"
    _next_id: int = 1

    def headers(self, **extra) -> dict:
        headers = {
            "authorization": f"Bearer {self.token}",
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
        }
        if self.session_id:
            headers["mcp-session-id"] = self.session_id
            headers["mcp-protocol-version"] = PROTOCOL_VERSION
        headers.update(extra)
        return headers

    async def post(self, message: dict, **headers) -> HTTPResult:
        return await http(self.app, "POST", "/mcp", json.dumps(message).encode(), self.headers(**headers))

    async def initialize(self, capabilities: dict | None = None) -> dict:
        result = await self.post(initialize_message(capabilities=capabilities))
        assert result.status == 200, result
        self.session_id = result.headers["mcp-session-id"]
        assert (await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})).status == 202
        return result.json()

    async def request(self, method: str, params: dict | None = None) -> dict:
        """The JSON-RPC reply to one request (from a JSON or an SSE answer)."""
        self._next_id += 1
        message = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        result = await self.post(message)
        assert result.status == 200, result
        if result.headers["content-type"].startswith("text/event-stream"):
            return result.events()[-1]
        return result.json()

    async def close(self) -> None:
        if self.session_id:
            await http(self.app, "DELETE", "/mcp", headers=self.headers())


@dataclass
class LegacySSEClient:
    """HTTP+SSE (2024-11-05): a held-open GET /sse, POSTs to the endpoint it names."""

    app: object
    token: str
    name: str = "sse"
    endpoint: str | None = None
    session_id: str | None = None
    _stream: ApplicationCommunicator | None = None
    _buffer: bytes = b""
    _next_id: int = 1
    pending: list = field(default_factory=list)

    async def open(self) -> None:
        headers = {"accept": "text/event-stream", "authorization": f"Bearer {self.token}"}
        self._stream = await send_request(self.app, "GET", "/sse", headers=headers)
        start = await self._stream.receive_output(TIMEOUT)
        assert start["status"] == 200, start
        event, data = await self.next_event()
        assert event == "endpoint"
        self.endpoint = data
        self.session_id = urlsplit(data).query.split("=", 1)[1]

    async def next_event(self) -> tuple[str, str]:
        while b"\n\n" not in self._buffer:
            message = await self._stream.receive_output(TIMEOUT)
            self._buffer += message.get("body", b"")
        raw, self._buffer = self._buffer.split(b"\n\n", 1)
        event, data = "message", []
        for line in raw.decode().split("\n"):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        return event, "\n".join(data)

    async def next_message(self) -> dict:
        while True:
            event, data = await self.next_event()
            if event == "message":
                return json.loads(data)

    async def post(self, message: dict, **headers) -> HTTPResult:
        all_headers = {"authorization": f"Bearer {self.token}", "content-type": "application/json", **headers}
        return await http(self.app, "POST", self.endpoint, json.dumps(message).encode(), all_headers)

    async def initialize(self) -> dict:
        await self.open()
        assert (await self.post(initialize_message(version="2024-11-05"))).status == 202
        reply = await self.next_message()
        assert (await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})).status == 202
        return reply

    async def request(self, method: str, params: dict | None = None) -> dict:
        self._next_id += 1
        message = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        assert (await self.post(message)).status == 202
        while True:
            reply = await self.next_message()
            if reply.get("id") == self._next_id and "method" not in reply:
                return reply
            self.pending.append(reply)

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.send_input({"type": "http.disconnect"})
            await self._stream.wait(TIMEOUT)
            self._stream = None


async def open_get_stream(app, path: str, headers: dict) -> ApplicationCommunicator:
    """A held-open GET (an SSE stream) whose response headers have arrived with status 200."""
    stream = await send_request(app, "GET", path, headers=headers)
    start = await stream.receive_output(TIMEOUT)
    assert start["status"] == 200, start
    return stream


async def close_stream(stream: ApplicationCommunicator) -> None:
    await stream.send_input({"type": "http.disconnect"})
    await stream.wait(TIMEOUT)


def parse_events(raw: bytes) -> list[dict]:
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        fields = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ") if ": " in line else line.partition(":")
            fields[name] = value
        events.append(fields)
    return events


async def read_until(stream, predicate, buffer=b"") -> bytes:
    while not predicate(buffer):
        message = await stream.receive_output(TIMEOUT)
        buffer += message.get("body", b"")
        if not message.get("more_body", True):
            break
    return buffer


async def start_call(app, client, name, request_id):
    """POST a tools/call with a progress token, held open as a stream."""
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": name, "arguments": {}, "_meta": {"progressToken": "t"}},
        }
    ).encode()
    post = await send_request(app, "POST", "/mcp", body, client.headers())
    start = await post.receive_output(TIMEOUT)
    assert start["status"] == 200
    assert dict(start["headers"])[b"content-type"].startswith(b"text/event-stream")
    return post
