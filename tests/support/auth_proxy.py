"""A loopback reverse proxy that adds ``Authorization: Bearer <token>``, for clients that cannot.

The official conformance suite (and any client without OAuth) cannot send an
access token. Put this proxy in front of a live server and give it the token:

    with AuthProxy(server.url) as proxy:          # listens on 127.0.0.1:<free port>
        ...  # an OAuth flow through proxy.url, then:
        proxy.token = access_token
        run_client(proxy.url + "/mcp")

It forwards every request as it came, ``Host`` and ``Origin`` included, so the
server sees the origin the client used: the proxy's. A token for it is
therefore obtained through the proxy, and the server's Host/Origin checks
(DNS-rebinding protection) judge what the client really sent. Until ``token``
is set, requests pass unchanged; after, a request without an Authorization
header gets one.

Each response streams through as the server writes it (SSE events are not
held back), with every end-to-end header both ways (``Mcp-Session-Id``,
``Last-Event-ID``, ``WWW-Authenticate``...). One request per client
connection: the response says ``Connection: close``, which lets a body of
unknown length end when the connection does, and lets a client's disconnect
reach the server as one. The proxy runs its own event loop in a thread, so
synchronous tests and subprocess clients can use it.
"""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import urlsplit

HOST = "127.0.0.1"
HEAD_TIMEOUT = 30.0  # seconds for a client to send the head of its request, and to connect to the server
BODY_TIMEOUT = 30.0  # seconds for each piece of a request body
# Seconds the server may stay silent: before its answer (a tool may be waiting for the
# client) and between events (an idle SSE stream gets pings far sooner).
IDLE_TIMEOUT = 600.0
START_TIMEOUT = 10.0
MAX_HEAD_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024
# Headers each hop sets for itself: the hop-by-hop ones of RFC 9110 §7.6.1, and the
# framing (Content-Length, Transfer-Encoding), which the proxy writes anew.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
        b"transfer-encoding",
        b"content-length",
    }
)
NO_BODY_STATUSES = frozenset({204, 304})


class ProxyError(Exception):
    pass


async def _read_head(reader: asyncio.StreamReader, timeout: float) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    """The start line and headers of one HTTP/1.1 message, or None at a clean EOF."""
    try:
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise ProxyError("connection closed inside a message head") from None
    except asyncio.LimitOverrunError:
        raise ProxyError("message head too large") from None
    start, *lines = raw[:-4].split(b"\r\n")
    headers = []
    for line in lines:
        name, _, value = line.partition(b":")
        headers.append((name.strip(), value.strip()))
    return start, headers


def _values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key.lower() == name]


async def _body(reader: asyncio.StreamReader, headers: list[tuple[bytes, bytes]], *, until_eof: bool, timeout: float):
    """The pieces of a message body, as they arrive: chunked, by Content-Length, or until EOF."""
    if any(b"chunked" in value.lower() for value in _values(headers, b"transfer-encoding")):
        while True:
            size_line = await asyncio.wait_for(reader.readline(), timeout)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await asyncio.wait_for(reader.readline(), timeout)) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: dropped, like every hop-by-hop field
                return
            yield await asyncio.wait_for(reader.readexactly(size), timeout)
            await asyncio.wait_for(reader.readexactly(2), timeout)  # CRLF after each chunk
    lengths = _values(headers, b"content-length")
    if lengths:
        remaining = int(lengths[0])
        while remaining > 0:
            piece = await asyncio.wait_for(reader.read(min(remaining, CHUNK_BYTES)), timeout)
            if not piece:
                raise ProxyError("connection closed inside a body")
            remaining -= len(piece)
            yield piece
    elif until_eof:
        while piece := await asyncio.wait_for(reader.read(CHUNK_BYTES), timeout):
            yield piece


def _end_to_end(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    named_in_connection = {
        token.strip().lower() for value in _values(headers, b"connection") for token in value.split(b",")
    }
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() not in named_in_connection]


def _head(start: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    return start + b"\r\n" + b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n"


class AuthProxy:
    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream = (parts.hostname, parts.port)
        self.token: str | None = None  # read by the proxy's thread on each request; assignment is atomic
        self.url = ""
        self.requests = 0  # requests forwarded so far
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="auth-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> AuthProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(START_TIMEOUT)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://{HOST}:{port}"
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(START_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(START_TIMEOUT)
        self._loop.close()

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, HOST, 0, limit=MAX_HEAD_BYTES)

    async def _close(self) -> None:
        self._server.close()
        for task in list(self._connections):
            task.cancel()  # open streams end: the server sees its clients leave
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    # -- one client connection, one request ------------------------------------------------
    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            await self._forward(client_reader, client_writer)
        except (ProxyError, ConnectionError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            pass  # one side broke the exchange; closing both ends tells the other
        finally:
            self._connections.discard(task)
            client_writer.close()

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        request = await _read_head(client_reader, HEAD_TIMEOUT)
        if request is None:
            return
        start, headers = request
        upstream_reader, upstream_writer = await asyncio.wait_for(
            asyncio.open_connection(*self.upstream, limit=MAX_HEAD_BYTES), HEAD_TIMEOUT
        )
        try:
            self.requests += 1
            await self._send_request(start, headers, client_reader, upstream_writer)
            await self._relay_response(start, upstream_reader, client_reader, client_writer)
        finally:
            upstream_writer.close()

    async def _send_request(self, start, headers, client_reader, upstream_writer) -> None:
        forwarded = _end_to_end(headers)
        if self.token is not None and not _values(headers, b"authorization"):
            forwarded.append((b"Authorization", f"Bearer {self.token}".encode()))
        body = b"".join([piece async for piece in _body(client_reader, headers, until_eof=False, timeout=BODY_TIMEOUT)])
        if body or start.split(b" ", 1)[0] in (b"POST", b"PUT", b"PATCH"):
            forwarded.append((b"Content-Length", str(len(body)).encode()))
        forwarded.append((b"Connection", b"close"))
        upstream_writer.write(_head(start, forwarded) + body)
        await upstream_writer.drain()

    async def _relay_response(self, request_start, upstream_reader, client_reader, client_writer) -> None:
        response = await _read_head(upstream_reader, IDLE_TIMEOUT)
        if response is None:
            raise ProxyError("the server closed the connection without answering")
        start, headers = response
        status = int(start.split(b" ", 2)[1])
        forwarded = _end_to_end(headers)
        lengths = _values(headers, b"content-length")
        if lengths:
            forwarded.append((b"Content-Length", lengths[0]))
        forwarded.append((b"Connection", b"close"))  # without a length, the body ends with the connection
        client_writer.write(_head(start, forwarded))
        await client_writer.drain()
        if request_start.startswith(b"HEAD ") or status in NO_BODY_STATUSES:
            return
        # The client sends nothing more on this connection: anything it does means it left,
        # and an SSE stream it left must end at the server too, even while no event comes.
        client_left = asyncio.ensure_future(client_reader.read(1))
        copy = asyncio.ensure_future(self._copy_body(upstream_reader, headers, client_writer))
        try:
            await asyncio.wait({client_left, copy}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (client_left, copy):
                task.cancel()
            await asyncio.gather(client_left, copy, return_exceptions=True)

    @staticmethod
    async def _copy_body(upstream_reader, headers, client_writer) -> None:
        async for piece in _body(upstream_reader, headers, until_eof=True, timeout=IDLE_TIMEOUT):
            client_writer.write(piece)
            await client_writer.drain()  # at once: an SSE event must not wait for the next one
