"""One virtual MCP client each: open a session, call `add`, close.

`HTTPClient` speaks Streamable HTTP (POST /mcp, JSON or a short SSE answer);
`SSEClient` speaks the 2024-11-05 transport (GET /sse, POST to the endpoint
it names, the reply on the stream). Both send what the SDK's client sends:
the same headers, a 2025-11-25 `initialize`, `notifications/initialized`,
then `tools/call add` with one request in flight at a time.
`StatelessClient` speaks 2026-07-28: no handshake and no session, each
`tools/call` a self-contained POST (its `_meta` names the version, the client
and its capabilities; `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name`
headers), over one kept-alive connection.
"""

import asyncio
import json

from bench.http11 import Connection, SSEParser

PROTOCOL_VERSION = "2025-11-25"
SESSION_HEADER = b"mcp-session-id"
POST = b"POST"
INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        },
    },
    separators=(",", ":"),
).encode()
INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
CALL = b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"add","arguments":{"a":%d,"b":2}}}'
STATELESS_VERSION = "2026-07-28"
STATELESS_CALL = (
    b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"add","arguments":{"a":%d,"b":2},'
    b'"_meta":{"io.modelcontextprotocol/protocolVersion":"' + STATELESS_VERSION.encode() + b'",'
    b'"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},'
    b'"io.modelcontextprotocol/clientCapabilities":{}}}}'
)
LISTEN = (
    STATELESS_CALL.replace(
        b'"name":"add","arguments":{"a":%d,"b":2}', b'"notifications":{"toolsListChanged":true}'
    ).replace(b'"tools/call"', b'"subscriptions/listen"')
    % 0
)


class CallFailed(Exception):
    pass


def _is_result(data: bytes) -> bool:
    return b'"result"' in data and b'"isError":true' not in data


def _reply_in(content_type: bytes, body: bytes) -> bytes:
    """The JSON-RPC reply in a POST answer: the body, or the last event of a short SSE answer."""
    if content_type.startswith(b"text/event-stream"):
        events = SSEParser().feed(body + b"\n\n")
        return events[-1][1] if events else b""
    return body


class HTTPClient:
    def __init__(self, host: str, port: int, token: str | None, path: str = "/mcp"):
        self.host, self.port, self.path = host, port, path.encode()
        self.base = b"content-type: application/json\r\naccept: application/json, text/event-stream\r\n"
        if token:
            self.base += b"authorization: Bearer %s\r\n" % token.encode()
        self.headers = self.base
        self.conn: Connection | None = None
        self.next_id = 1

    async def open(self) -> None:
        self.conn = await Connection.open(self.host, self.port)
        answer = await self.conn.request(POST, self.path, self.base, INITIALIZE)
        session_id = answer.headers.get(SESSION_HEADER)
        if (
            answer.status != 200
            or not session_id
            or not _is_result(_reply_in(answer.headers.get(b"content-type", b""), answer.body))
        ):
            raise CallFailed(f"initialize: {answer.status} {answer.body[:200]!r}")
        self.headers = self.base + b"mcp-session-id: %s\r\nmcp-protocol-version: %s\r\n" % (
            session_id,
            PROTOCOL_VERSION.encode(),
        )
        answer = await self.conn.request(POST, self.path, self.headers, INITIALIZED)
        if answer.status != 202:
            raise CallFailed(f"notifications/initialized: {answer.status} {answer.body[:200]!r}")

    call_body = CALL  # with the request id and the first argument to fill in

    async def call(self) -> None:
        n = self.next_id
        self.next_id += 1
        answer = await self.conn.request(POST, self.path, self.headers, self.call_body % (n, n))
        if answer.status != 200 or not _is_result(_reply_in(answer.headers.get(b"content-type", b""), answer.body)):
            raise CallFailed(f"tools/call: {answer.status} {answer.body[:200]!r}")

    async def open_standalone_stream(self) -> None:
        """GET /mcp on this session's connection and leave it open (idle-memory runs)."""
        self.conn.send(b"GET", self.path, self.headers.replace(b"accept: application/json, ", b"accept: "))
        status, _headers = await self.conn.read_head()
        if status != 200:
            raise CallFailed(f"GET {self.path.decode()}: {status}")

    async def close(self, end_session: bool = True) -> None:
        if self.conn is None:
            return
        try:
            if end_session:
                await asyncio.wait_for(self.conn.request(b"DELETE", self.path, self.headers), 5)
        except Exception:
            pass  # the session expires on its own
        finally:
            self.conn.close()


class StatelessClient(HTTPClient):
    call_body = STATELESS_CALL

    def __init__(self, host: str, port: int, token: str | None, path: str = "/mcp"):
        self.host, self.port, self.path = host, port, path.encode()
        self.headers = (
            b"content-type: application/json\r\naccept: application/json, text/event-stream\r\n"
            b"mcp-protocol-version: %s\r\nmcp-method: tools/call\r\nmcp-name: add\r\n" % STATELESS_VERSION.encode()
        )
        if token:
            self.headers += b"authorization: Bearer %s\r\n" % token.encode()
        self.conn: Connection | None = None
        self.next_id = 1

    async def open(self) -> None:
        self.conn = await Connection.open(self.host, self.port)  # nothing to negotiate in this era

    async def open_listen_stream(self) -> None:
        """A `subscriptions/listen` stream (tool list changes) on this connection, left open once
        its acknowledgement arrived (idle-memory runs)."""
        headers = self.headers.replace(
            b"mcp-method: tools/call\r\nmcp-name: add\r\n", b"mcp-method: subscriptions/listen\r\n"
        )
        self.conn.send(POST, self.path, headers, LISTEN)
        status, _headers = await self.conn.read_head()
        if status != 200:
            raise CallFailed(f"subscriptions/listen: {status}")
        chunk = await self.conn.read_chunk()
        if chunk is None or b"notifications/subscriptions/acknowledged" not in chunk:
            raise CallFailed(f"subscriptions/listen: no acknowledgement ({chunk!r:.200})")

    async def close(self, end_session: bool = True) -> None:
        if self.conn is not None:
            self.conn.close()


class SSEClient:
    def __init__(self, host: str, port: int, token: str | None, path: str = "/sse"):
        self.host, self.port, self.path = host, port, path.encode()
        self.headers = b"content-type: application/json\r\naccept: application/json, text/event-stream\r\n"
        if token:
            self.headers += b"authorization: Bearer %s\r\n" % token.encode()
        self.stream: Connection | None = None
        self.post: Connection | None = None
        self.endpoint: bytes = b""
        self.reader: asyncio.Task | None = None
        self.endpoint_ready: asyncio.Future | None = None
        self.waiting: asyncio.Future | None = None
        self.next_id = 1

    async def open(self, keep_post_connection: bool = True) -> None:
        loop = asyncio.get_running_loop()
        self.stream = await Connection.open(self.host, self.port)
        self.stream.send(b"GET", self.path, self.headers.replace(b"accept: application/json, ", b"accept: "))
        status, _headers = await self.stream.read_head()
        if status != 200:
            raise CallFailed(f"GET {self.path.decode()}: {status}")
        self.endpoint_ready = loop.create_future()
        self.reader = loop.create_task(self._read_events())
        self.endpoint = await self.endpoint_ready
        self.post = await Connection.open(self.host, self.port)
        await self._exchange(INITIALIZE, "initialize")
        answer = await self.post.request(POST, self.endpoint, self.headers, INITIALIZED)
        if answer.status not in (200, 202):
            raise CallFailed(f"notifications/initialized: {answer.status}")
        if not keep_post_connection:
            self.post.close()
            self.post = None

    async def _read_events(self) -> None:
        parser = SSEParser()
        try:
            while (chunk := await self.stream.read_chunk()) is not None:
                for name, data in parser.feed(chunk):
                    if name == b"endpoint":
                        self.endpoint_ready.set_result(data.strip())
                    elif (
                        self.waiting is not None
                        and not self.waiting.done()
                        and (b'"result"' in data or b'"error"' in data)
                    ):
                        self.waiting.set_result(data)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for future in (self.endpoint_ready, self.waiting):
                if future is not None and not future.done():
                    future.set_exception(CallFailed("the stream ended"))

    async def _exchange(self, body: bytes, what: str) -> None:
        if self.reader.done():
            raise ConnectionError("the stream ended")
        self.waiting = asyncio.get_running_loop().create_future()
        answer = await self.post.request(POST, self.endpoint, self.headers, body)
        if answer.status not in (200, 202):
            raise CallFailed(f"{what}: {answer.status} {answer.body[:200]!r}")
        reply = await self.waiting
        if not _is_result(reply):
            raise CallFailed(f"{what}: {reply[:200]!r}")

    async def call(self) -> None:
        n = self.next_id
        self.next_id += 1
        await self._exchange(CALL % (n, n), "tools/call")

    async def close(self, end_session: bool = True) -> None:
        if self.reader is not None:
            self.reader.cancel()
        for conn in (self.post, self.stream):
            if conn is not None:
                conn.close()


def make_client(transport: str, host: str, port: int, token: str | None):
    kinds = {"http": HTTPClient, "sse": SSEClient, "stateless": StatelessClient}
    return kinds[transport](host, port, token)
