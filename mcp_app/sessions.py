"""MCP sessions: one protocol-engine task per session, owned by this process.

A session wraps the `mcp` SDK's handshake-era loop (`serve_loop`) over a pair
of in-memory streams. The transports put inbound JSON-RPC messages in; a
router task takes the engine's output and hands each message to whoever waits
for it:

- a reply (result or error) goes to the POST that carries its request id;
- a message the engine sends *about* a request (progress, log, a
  server-to-client request such as elicitation) goes to that request's POST;
- anything else goes to the session's standalone stream (`GET /mcp`, or the
  one `/sse` stream of the legacy transport), and is dropped when none is open.

Nothing here imports Channels: the consumers drive it, and tests can too.
"""

import asyncio
import logging
import secrets
import time
from typing import Literal

import anyio
from mcp.server.runner import serve_loop
from mcp.shared._context_streams import create_context_streams  # the SDK transports' own stream pair
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp_types import JSONRPCError, JSONRPCMessage, JSONRPCResponse, RequestId

from mcp_app.engine import get_server
from mcp_app.principal import Principal, RequestInfo

log = logging.getLogger(__name__)

Transport = Literal["streamable-http", "sse"]
# Messages the engine may emit before the transport drains them (progress bursts).
_STREAM_BUFFER = 64


class SessionClosed(Exception):
    """The session ended while a transport was waiting on it."""


class MCPSession:
    def __init__(self, principal: Principal, transport: Transport, idle_seconds: float, on_end=None):
        self.id = secrets.token_urlsafe(32)  # unguessable: it is a capability next to the token
        self.principal = principal
        self.transport = transport
        self.protocol_version: str | None = None
        self.idle_seconds = idle_seconds
        self.last_activity = time.monotonic()
        self.published_at = 0.0  # when the registry last wrote this session's shared record
        self._activity = asyncio.Event()
        self._pending: dict[RequestId, asyncio.Queue] = {}
        self._standalone: asyncio.Queue | None = None
        self._inbound_send, self._inbound_recv = create_context_streams[SessionMessage | Exception](_STREAM_BUFFER)
        self._outbound_send, self._outbound_recv = create_context_streams[SessionMessage](_STREAM_BUFFER)
        self.closed = asyncio.Event()
        self._on_end = on_end  # the registry forgets the session
        self._task: asyncio.Task | None = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"mcp-session-{self.id[:8]}")

    async def _run(self) -> None:
        server = get_server()
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._route_outbound)
                group.start_soon(self._expire_when_idle, group.cancel_scope)
                async with server.lifespan(server) as state:
                    await serve_loop(server, self._inbound_recv, self._outbound_send, lifespan_state=state, session_id=self.id)
                group.cancel_scope.cancel()
        except Exception:
            log.exception("MCP session %s failed", self.id[:8])
        finally:
            self._finish()

    def _finish(self) -> None:
        self.closed.set()
        for queue in [*self._pending.values(), self._standalone]:
            if queue is not None:
                queue.put_nowait(None)  # wakes every waiting transport: the session is gone
        self._pending.clear()
        self._standalone = None
        if self._on_end is not None:
            self._on_end(self)

    async def close(self) -> None:
        """End the session (DELETE, disconnect of a legacy stream, expiry)."""
        if self._task is None or self.closed.is_set():
            return
        await self._inbound_send.aclose()  # EOF: serve_loop returns
        try:
            await asyncio.wait_for(self.closed.wait(), timeout=5)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _expire_when_idle(self, scope: anyio.CancelScope) -> None:
        while True:
            try:
                await asyncio.wait_for(self._activity.wait(), timeout=self.idle_seconds)
                self._activity.clear()
            except TimeoutError:
                if not self._pending and self._standalone is None:
                    log.info("MCP session %s expired after %ss idle", self.id[:8], self.idle_seconds)
                    scope.cancel()
                    return

    def touch(self) -> None:
        self.last_activity = time.monotonic()
        self._activity.set()

    # -- inbound -------------------------------------------------------------
    async def deliver(self, message: JSONRPCMessage, info: RequestInfo, *, can_send_request: bool = True) -> None:
        if self.closed.is_set():
            raise SessionClosed(self.id)
        self.touch()
        metadata = ServerMessageMetadata(request_context=info, can_send_request=can_send_request)
        try:
            await self._inbound_send.send(SessionMessage(message, metadata=metadata))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise SessionClosed(self.id) from None

    def expect_reply(self, request_id: RequestId) -> asyncio.Queue | None:
        """A queue for everything about one request, or None if that id is already in flight."""
        if request_id in self._pending:
            return None
        queue: asyncio.Queue = asyncio.Queue()
        self._pending[request_id] = queue
        return queue

    def forget_request(self, request_id: RequestId) -> None:
        self._pending.pop(request_id, None)
        self.touch()

    # -- the standalone stream ----------------------------------------------------
    async def open_stream(self) -> asyncio.Queue | None:
        """The server-to-client stream, or None when one is already open (409)."""
        if self._standalone is not None or self.closed.is_set():
            return None
        self._standalone = asyncio.Queue()
        self.touch()
        return self._standalone

    async def close_stream(self, queue: asyncio.Queue) -> None:
        if self._standalone is queue:
            self._standalone = None
            self.touch()

    # -- outbound ------------------------------------------------------------
    async def _route_outbound(self) -> None:
        async for session_message in self._outbound_recv:
            message = session_message.message
            queue = None
            if isinstance(message, (JSONRPCResponse, JSONRPCError)) and message.id is not None:
                queue = self._pending.get(message.id)
            elif isinstance(session_message.metadata, ServerMessageMetadata):
                related = session_message.metadata.related_request_id
                if related is not None:
                    queue = self._pending.get(related)
            if queue is None:
                queue = self._standalone
            if queue is None:
                log.debug("MCP session %s: no open stream for %s; dropped", self.id[:8], type(message).__name__)
                continue
            queue.put_nowait(message)
