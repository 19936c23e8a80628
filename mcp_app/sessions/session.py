"""MCP sessions: one protocol-engine task per session, owned by this process.

A session runs the `mcp` SDK's handshake-era loop (`engine/drivers.py`) over a pair
of in-memory streams. The transports put inbound JSON-RPC messages in; a
router task takes the engine's output, records it as an event in the
session's event log (for resumption) and hands it to whoever waits for it:

- a reply (result or error) goes to the POST that carries its request id;
- a message the engine sends *about* a request (progress, log, a
  server-to-client request such as elicitation) goes to that request's POST;
- anything else goes to the session's standalone stream (`GET /mcp`, or the
  one `/sse` stream of the legacy transport).

A POST whose client went away leaves its request *detached*: the engine goes
on, its events are still logged, and a `GET` with `Last-Event-ID` picks the
stream up again (MCP 2025-11-25: a disconnection is not a cancellation). What
bounds such a call is the tool-call time limit (`engine/limits.py`); a session
with a request in flight does not expire. The session ending (`close()`: DELETE,
a legacy stream's disconnect) ends that loop, which cancels every call still
running in it.

Nothing here imports Channels: the transport endpoints drive it, and tests can too.
"""

import asyncio
import logging
import secrets
import time
from functools import partial
from typing import Literal

import anyio
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp_types import ErrorData, JSONRPCError, JSONRPCMessage, JSONRPCRequest, JSONRPCResponse, RequestId

from mcp_app.engine.drivers import serve_session
from mcp_app.engine.server import get_server, initialization_options
from mcp_app.principal import Principal, RequestInfo
from mcp_app.protocol.errors import REQUEST_CANCELLED
from mcp_app.sessions.event_log import STANDALONE, EventLog, StreamClosed, UnknownEventId
from mcp_app.sessions.event_queue import EventQueue
from mcp_app.sessions.message_stream import message_streams

log = logging.getLogger(__name__)

Transport = Literal["streamable-http", "sse"]
# Messages the engine may emit before the transport drains them (progress bursts).
_STREAM_BUFFER = 64


class SessionClosed(Exception):
    """The session ended while a transport was waiting on it."""


class _Pending:
    """A request in flight: the stream its events belong to and the queue of the POST waiting, if any."""

    __slots__ = ("queue", "stream")

    def __init__(self, stream: str, queue: EventQueue | None):
        self.stream = stream
        self.queue = queue


class MCPSession:
    def __init__(
        self,
        principal: Principal,
        transport: Transport,
        idle_seconds: float,
        on_end=None,
        event_capacity: int = 1000,
        event_bytes: int = 1 << 20,
        process_event_bytes: int = 64 << 20,
        route: str = "",
    ):
        # Unguessable: it is a capability next to the token. A worker route in front lets a
        # proxy send the session's requests to this worker (MCP_WORKER_ROUTE, deploy/nginx).
        secret = secrets.token_urlsafe(32)
        self.id = f"{route}.{secret}" if route else secret
        self.principal = principal
        self.transport = transport
        self.protocol_version: str | None = None
        self.idle_seconds = idle_seconds
        self.last_activity = time.monotonic()
        self.published_at = 0.0  # when the directory last wrote this session's shared record
        self._pending: dict[RequestId, _Pending] = {}
        self._request_streams = 0
        self._standalone: EventQueue | None = None
        self.events = EventLog(event_capacity, event_bytes, process_event_bytes)
        self._inbound_send, self._inbound_recv = message_streams(_STREAM_BUFFER)
        self._outbound_send, self._outbound_recv = message_streams(_STREAM_BUFFER)
        self.closed = asyncio.Event()
        self._on_end = on_end  # the session directory forgets the session
        self._task: asyncio.Task | None = None
        self._expiry: asyncio.TimerHandle | None = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"mcp-session-{self.id[:8]}")

    async def _run(self) -> None:
        server = get_server()
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._route_outbound)
                self._expire_when_idle(group.cancel_scope)
                async with server.lifespan(server) as state:
                    await serve_session(
                        server,
                        self._inbound_recv,
                        self._outbound_send,
                        lifespan_state=state,
                        session_id=self.id,
                        init_options=initialization_options(),
                    )
                group.cancel_scope.cancel()
        except Exception:
            log.exception("MCP session %s failed", self.id[:8])
        finally:
            self._finish()

    def _finish(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        self.closed.set()
        for queue in [*(pending.queue for pending in self._pending.values()), self._standalone]:
            if queue is not None:
                queue.put_nowait(None)  # wakes every waiting transport: the session is gone
        self._pending.clear()
        self._standalone = None
        self.events.clear()
        if self._on_end is not None:
            self._on_end(self)

    async def close(self) -> None:
        """End the session (DELETE, disconnect of a legacy stream, expiry)."""
        if self._task is None or self.closed.is_set():
            return
        await self._inbound_send.aclose()  # EOF: the session loop returns
        try:
            await asyncio.wait_for(self.closed.wait(), timeout=5)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _expire_when_idle(self, scope: anyio.CancelScope) -> None:
        """End the session (cancel `scope`) once it has been idle for idle_seconds.

        A timer, not a task (an idle session holds as little as it can), that fires
        when the session could first have been idle that long and looks then; activity
        only moves `last_activity`, so a busy session costs nothing per message.
        """
        idle_until = self.last_activity + self.idle_seconds
        now = time.monotonic()
        if now < idle_until:
            delay = idle_until - now
        elif not self._pending and self._standalone is None:
            log.info("MCP session %s expired after %ss idle", self.id[:8], self.idle_seconds)
            scope.cancel()
            return
        else:
            delay = self.idle_seconds  # a request in flight or a stream open is use: look again later
        self._expiry = asyncio.get_running_loop().call_later(delay, self._expire_when_idle, scope)

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    # -- inbound -------------------------------------------------------------
    async def deliver(self, message: JSONRPCMessage, info: RequestInfo, *, can_send_request: bool = True) -> None:
        if self.closed.is_set():
            raise SessionClosed(self.id)
        self.touch()
        metadata = ServerMessageMetadata(request_context=info, can_send_request=can_send_request)
        if isinstance(message, JSONRPCRequest):
            metadata.on_request_unanswered = partial(self._answer_unanswered, message.id)
            metadata.close_sse_stream = partial(self._close_request_stream, message.id)
            metadata.close_standalone_sse_stream = self._close_standalone_stream
        try:
            await self._inbound_send.send(SessionMessage(message, metadata=metadata))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise SessionClosed(self.id) from None

    def expect_reply(self, request_id: RequestId) -> EventQueue | None:
        """A queue for the events of one request, or None if that id is already in flight."""
        if request_id in self._pending:
            return None
        self._request_streams += 1
        queue = EventQueue()
        self._pending[request_id] = _Pending(f"r{self._request_streams}", queue)
        return queue

    def forget_request(self, request_id: RequestId) -> None:
        """The POST waiting for this request is done or gone; an unanswered request stays, detached."""
        pending = self._pending.get(request_id)
        if pending is not None:
            pending.queue = None
        self.touch()

    # -- streams opened by GET ------------------------------------------------------
    async def open_stream(self, last_event_id: str | None = None) -> tuple[EventQueue, str | None] | None:
        """A queue for a GET stream and the id of its priming event, or None when taken (409).

        Without `last_event_id`: the standalone stream, from now on. With it:
        the stream that event belongs to, replayed from after it, then live while
        it lasts. Raises UnknownEventId for an id this session never issued.
        """
        if self.closed.is_set():
            raise SessionClosed(self.id)
        if last_event_id is None:
            if self._standalone is not None:
                return None
            self._standalone = EventQueue()
            self.touch()
            return self._standalone, self.events.priming_id(STANDALONE)
        stream, missed = self.events.after(last_event_id)
        queue = EventQueue()
        for event in missed:
            queue.put_nowait(event)
        if stream == STANDALONE:
            if self._standalone is not None:
                return None
            self._standalone = queue
        else:
            pending = next((p for p in self._pending.values() if p.stream == stream), None)
            if pending is None:
                if not stream.startswith("r") or not stream[1:].isdigit() or int(stream[1:]) > self._request_streams:
                    raise UnknownEventId(last_event_id)
                queue.put_nowait(None)  # that request was answered: the replay is all there is
            elif pending.queue is not None:
                return None  # its POST is still connected
            else:
                pending.queue = queue
        self.touch()
        return queue, None

    async def close_stream(self, queue: EventQueue) -> None:
        if self._standalone is queue:
            self._standalone = None
        for pending in self._pending.values():
            if pending.queue is queue:
                pending.queue = None
        self.touch()

    # -- outbound ------------------------------------------------------------
    async def _route_outbound(self) -> None:
        async for session_message in self._outbound_recv:
            related = None
            if isinstance(session_message.metadata, ServerMessageMetadata):
                related = session_message.metadata.related_request_id
            self._route(session_message.message, related)

    def _route(self, message: JSONRPCMessage, related_request_id: RequestId | None) -> None:
        is_reply = isinstance(message, (JSONRPCResponse, JSONRPCError))
        request_id = message.id if is_reply else related_request_id
        pending = self._pending.get(request_id) if request_id is not None else None
        if pending is not None:
            event = self.events.append(pending.stream, message)
            if pending.queue is not None:
                pending.queue.put_nowait(event)
            if is_reply:
                del self._pending[request_id]
        else:
            # Kept for a client that reconnects with Last-Event-ID even when no stream is open.
            event = self.events.append(STANDALONE, message)
            if self._standalone is not None:
                self._standalone.put_nowait(event)

    # -- callbacks the engine runs ---------------------------------------------------
    async def _answer_unanswered(self, request_id: RequestId) -> None:
        """A request settled without an answer (it was cancelled): end its POST with an error."""
        if request_id in self._pending:
            error = ErrorData(code=REQUEST_CANCELLED, message="Request cancelled")
            self._route(JSONRPCError(jsonrpc="2.0", id=request_id, error=error), None)

    async def _close_request_stream(self, request_id: RequestId) -> None:
        """The engine ends a request's SSE stream early; the client resumes it with Last-Event-ID."""
        pending = self._pending.get(request_id)
        if pending is not None and pending.queue is not None:
            pending.queue.put_nowait(StreamClosed(pending.stream))

    async def _close_standalone_stream(self) -> None:
        if self._standalone is not None:
            self._standalone.put_nowait(StreamClosed(STANDALONE))
