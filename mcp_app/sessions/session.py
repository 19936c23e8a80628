"""MCP sessions: a protocol engine per session, owned by this process, asleep while idle.

A session runs the `mcp` SDK's handshake-era loop (`engine/drivers.py`) over an
in-memory inbound stream. The transports put inbound JSON-RPC messages in; what the
engine sends goes straight to the session's router (`_route`), which records it as an
event in the session's event log (for resumption) and hands it to whoever waits for it:

- a reply (result or error) goes to the POST that carries its request id;
- a message the engine sends *about* a request (progress, log, a
  server-to-client request such as elicitation) goes to that request's POST;
- anything else goes to the session's standalone stream (`GET /mcp`, or the
  one `/sse` stream of the legacy transport).

The engine sleeps while the session is idle. A session spends most of its life
waiting for its client, and a waiting engine holds its loop task, dispatcher,
runner and inbound stream for nothing (about a quarter of an idle session's
memory). Once nothing has arrived for `ENGINE_IDLE_SECONDS` and nothing runs in
it (no handler, no request to the client waiting), the engine's loop is ended;
the next message starts a new one. What must last lives on the session, not in
the loop: the SDK `Connection` (the client's `initialize` parameters, the
negotiated version, `initialized`) and the lifespan's per-client state
(`engine/connected.py`: log level, subscriptions), entered once per session. The
connection's standalone channel (`_Standalone`) sends a notification straight to
the router, so list changes and resource updates reach a sleeping session's
stream without waking it.

A POST whose client went away leaves its request *detached*: the engine goes
on, its events are still logged, and a `GET` with `Last-Event-ID` picks the
stream up again (MCP 2025-11-25: a disconnection is not a cancellation). What
bounds such a call is the tool-call time limit (`engine/limits.py`); a session
with a request in flight does not expire. The session ending (`close()`: DELETE,
a legacy stream's disconnect, expiry) ends the engine's loop, which cancels every
call still running in it.

Nothing here imports Channels: the transport endpoints drive it, and tests can too.
"""

import asyncio
import logging
import secrets
import time
from functools import partial, wraps
from typing import Any, Literal

import anyio
from mcp.server.connection import Connection
from mcp.server.runner import aclose_shielded
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp_types import (
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
)

from mcp_app.engine.connected import attach
from mcp_app.engine.drivers import serve_session, session_dispatcher
from mcp_app.engine.server import get_server, initialization_options
from mcp_app.principal import Principal, RequestInfo
from mcp_app.protocol import jsonrpc
from mcp_app.protocol.errors import REQUEST_CANCELLED
from mcp_app.sessions.event_log import STANDALONE, EventLog, StreamClosed, UnknownEventId
from mcp_app.sessions.event_queue import EventQueue
from mcp_app.sessions.message_stream import SendEnd, message_streams

log = logging.getLogger(__name__)

Transport = Literal["streamable-http", "sse"]
# Messages a transport may queue for the engine before it takes them (backpressure).
_STREAM_BUFFER = 64
# An engine with nothing to do for this long goes to sleep (module docstring). Long enough that a
# client's next call right behind the last finds it awake; short, because sessions opened in a
# burst are all awake at once until then, and what they free stays in the heap (docs/performance.md).
# Waking costs about 0.04 ms.
ENGINE_IDLE_SECONDS = 0.25
CLOSE_TIMEOUT_SECONDS = 5.0  # for the engine's loop to end its calls when the session closes


class SessionClosed(Exception):
    """The session ended while a transport was waiting on it."""


class _Pending:
    """A request in flight: the stream its events belong to and the queue of the POST waiting, if any."""

    __slots__ = ("queue", "stream")

    def __init__(self, stream: str, queue: EventQueue | None):
        self.stream = stream
        self.queue = queue


class _EngineOutput:
    """The write stream of one engine loop: each message goes straight to the session's router
    (no task, no buffer: routing only queues it for the transports)."""

    __slots__ = ("_route",)

    def __init__(self, route):
        self._route = route

    async def send(self, session_message: SessionMessage) -> None:
        metadata = session_message.metadata
        related = metadata.related_request_id if isinstance(metadata, ServerMessageMetadata) else None
        self._route(session_message.message, related)

    async def aclose(self) -> None:
        pass

    async def __aenter__(self) -> "_EngineOutput":
        return self

    async def __aexit__(self, *exc_info) -> None:
        pass


class _Started:
    """The engine loop's `task_status`: lets a server-to-client request wait until the loop runs."""

    __slots__ = ("future",)

    def __init__(self):
        self.future = asyncio.get_running_loop().create_future()

    def started(self, value=None) -> None:
        if not self.future.done():
            self.future.set_result(None)


class _Standalone:
    """The session's standalone channel (`Connection.outbound`): what the server sends on its own.

    A notification is routed at once, awake or asleep. A request to the client (rare outside
    a request; inside one it rides the request's own channel) needs the engine's dispatcher
    to match the answer: it wakes the engine and keeps it awake until answered.
    """

    __slots__ = ("_session",)

    def __init__(self, session: "MCPSession"):
        self._session = session

    async def notify(self, method: str, params, opts=None) -> None:
        self._session._route(JSONRPCNotification(**jsonrpc.notification(method, params)), None)

    async def send_raw_request(self, method: str, params, opts=None) -> dict[str, Any]:
        session = self._session
        session._running += 1
        try:
            dispatcher = await session._awake_dispatcher()
            return await dispatcher.send_raw_request(method, params, opts)
        finally:
            session._running -= 1
            session.touch()


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
        self.closed = asyncio.Event()
        self._on_end = on_end  # the session directory forgets the session
        self._expiry: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task | None = None
        # What outlives the engine's loops (module docstring).
        self._connection: Connection | None = Connection.for_loop(_Standalone(self), session_id=self.id)
        self._lifespan = None  # the engine's lifespan, entered by the first loop, left by _finish
        self._client_state: Any = None  # what the lifespan yielded: this session's client state
        # The awake engine: its loop task, the stream into it, its dispatcher once running.
        self._engine: asyncio.Task | None = None
        self._inbound: SendEnd | None = None
        self._dispatcher = None
        self._started: _Started | None = None
        self._running = 0  # handlers running in the engine, and requests to the client awaiting answers
        self._doze: asyncio.TimerHandle | None = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        self._wake()
        self._expire_when_idle()

    def _wake(self) -> SendEnd:
        """Start an engine loop (the first, or after a sleep); the stream into it."""
        inbound, inbound_recv = message_streams(_STREAM_BUFFER)
        self._inbound = inbound
        self._started = _Started()
        loop = asyncio.get_running_loop()
        self._engine = loop.create_task(self._serve(inbound_recv, self._started), name=f"mcp-session-{self.id[:8]}")
        self._doze = loop.call_later(ENGINE_IDLE_SECONDS, self._sleep_if_idle)
        return inbound

    async def _serve(self, inbound_recv, started: _Started) -> None:
        server = get_server()
        dispatcher = None
        try:
            if self._lifespan is None:
                self._lifespan = server.lifespan(server)
                self._client_state = await self._lifespan.__aenter__()
                attach(self._client_state, self._connection)
            dispatcher = self._dispatcher = session_dispatcher(inbound_recv, _EngineOutput(self._route))
            await serve_session(
                server,
                dispatcher,
                self._connection,
                lifespan_state=self._client_state,
                init_options=initialization_options(),
                wrap=self._counted,
                task_status=started,
            )
        except Exception:
            log.exception("MCP session %s failed", self.id[:8])
            self._end()
        finally:
            started.started()  # a request waiting for this loop to run finds it gone (_awake_dispatcher)
            if self._dispatcher is dispatcher:
                self._dispatcher = None
            if self._engine is asyncio.current_task():
                self._engine = None  # a sleeping session holds no task, not even a finished one

    def _counted(self, handler):
        """`handler`, counted in `_running` while it runs: a session does not sleep under it."""

        @wraps(handler)
        async def counted(*args):
            self._running += 1
            try:
                return await handler(*args)
            finally:
                self._running -= 1
                self.touch()

        return counted

    def _sleep_if_idle(self) -> None:
        """End the engine's loop once the session has had nothing for it for ENGINE_IDLE_SECONDS.

        A timer, like expiry, that looks when the engine could first have been idle that long.
        A message that arrives meanwhile has touched the session, and ends up in the loop: the
        loop takes every queued message before it sees the end of its stream.
        """
        self._doze = None
        if self._inbound is None:
            return
        remaining = self._idle_remaining(ENGINE_IDLE_SECONDS)
        if remaining or self._running:
            delay = remaining or ENGINE_IDLE_SECONDS
            self._doze = asyncio.get_running_loop().call_later(delay, self._sleep_if_idle)
            return
        inbound, self._inbound = self._inbound, None
        self._started = None
        inbound.close()  # end of stream: the loop returns, with nothing running in it

    async def _awake_dispatcher(self):
        """The running engine's dispatcher, waking the engine if it sleeps."""
        if self.closed.is_set() or self._closing is not None:
            raise SessionClosed(self.id)
        if self._inbound is None:
            self._wake()
        await asyncio.shield(self._started.future)
        if self._dispatcher is None:  # the loop failed before it ran: the session is closing
            raise SessionClosed(self.id)
        return self._dispatcher

    def _end(self) -> None:
        """Close the session from a callback (expiry, a failed loop)."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())

    async def close(self) -> None:
        """End the session (DELETE, disconnect of a legacy stream, expiry)."""
        self._end()
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        inbound, self._inbound = self._inbound, None
        if inbound is not None:
            inbound.close()  # end of stream: the loop returns, cancelling what still runs in it
        engine = self._engine
        if engine is not None and engine is not asyncio.current_task() and not engine.done():
            try:
                await asyncio.wait_for(asyncio.shield(engine), timeout=CLOSE_TIMEOUT_SECONDS)
            except TimeoutError:
                engine.cancel()
                await asyncio.gather(engine, return_exceptions=True)
        await self._finish()

    async def _finish(self) -> None:
        for timer in (self._expiry, self._doze):
            if timer is not None:
                timer.cancel()
        self._expiry = self._doze = None
        self.closed.set()
        for queue in [*(pending.queue for pending in self._pending.values()), self._standalone]:
            if queue is not None:
                queue.put_nowait(None)  # wakes every waiting transport: the session is gone
        self._pending.clear()
        self._standalone = None
        self.events.clear()
        self._engine = self._started = None
        lifespan, self._lifespan = self._lifespan, None
        connection, self._connection = self._connection, None  # and with it the cycle through _Standalone
        self._client_state = None
        try:
            if lifespan is not None:
                await lifespan.__aexit__(None, None, None)
            if connection is not None:
                await aclose_shielded(connection)
        except Exception:
            log.exception("MCP session %s: clean-up failed", self.id[:8])
        if self._on_end is not None:
            self._on_end(self)

    def _expire_when_idle(self) -> None:
        """End the session once it has been idle for idle_seconds.

        A timer, not a task (an idle session holds as little as it can), that fires
        when the session could first have been idle that long and looks then; activity
        only moves `last_activity`, so a busy session costs nothing per message.
        """
        self._expiry = None
        if self.closed.is_set() or self._closing is not None:
            return
        remaining = self._idle_remaining(self.idle_seconds)
        if not remaining and not self._pending and self._standalone is None and not self._running:
            log.info("MCP session %s expired after %ss idle", self.id[:8], self.idle_seconds)
            self._end()
            return
        # A request in flight or a stream open is use: look again a whole idle time later.
        self._expiry = asyncio.get_running_loop().call_later(remaining or self.idle_seconds, self._expire_when_idle)

    def _idle_remaining(self, seconds: float) -> float:
        """Seconds until the session will have been idle for `seconds`; 0 once it has."""
        return max(0.0, self.last_activity + seconds - time.monotonic())

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    # -- inbound -------------------------------------------------------------
    async def deliver(self, message: JSONRPCMessage, info: RequestInfo, *, can_send_request: bool = True) -> None:
        if self.closed.is_set() or self._closing is not None:
            raise SessionClosed(self.id)
        self.touch()
        metadata = ServerMessageMetadata(request_context=info, can_send_request=can_send_request)
        if isinstance(message, JSONRPCRequest):
            metadata.on_request_unanswered = partial(self._answer_unanswered, message.id)
            metadata.close_sse_stream = partial(self._close_request_stream, message.id)
            metadata.close_standalone_sse_stream = self._close_standalone_stream
        item = SessionMessage(message, metadata=metadata)
        while True:
            inbound = self._inbound or self._wake()
            try:
                await inbound.send(item)
                return
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                if self.closed.is_set() or self._closing is not None:
                    raise SessionClosed(self.id) from None
                # The engine went to sleep while this send waited for room: a new loop takes it.

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
    def _route(self, message: JSONRPCMessage, related_request_id: RequestId | None) -> None:
        if self.closed.is_set():
            return  # an ended session keeps nothing (nor counts it against the process's event bytes)
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
