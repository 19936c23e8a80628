"""The base of the MCP endpoints: one plain ASGI app instance per request.

Not a Channels consumer: Channels' AsyncHttpConsumer ends when `handle()`
returns and cannot see `http.disconnect` while `handle()` is still running,
which is exactly what a streaming endpoint must do. So each endpoint reads
its body (bounded), then runs `handle()` while a watcher task waits for
`http.disconnect`; whichever ends first ends the other. No channel is
allocated per request: the channel layer is used only to reach another
worker (`cluster/`).
"""

import asyncio
import functools
import logging

from django.conf import settings

from mcp_app.cluster import directory
from mcp_app.cluster.forwarding import DuplicateRequest, WorkerUnavailable
from mcp_app.engine.access import missing_scopes
from mcp_app.guards.audience import server_origin
from mcp_app.guards.challenges import InsufficientScope, send_challenge
from mcp_app.principal import PRINCIPAL_SCOPE_KEY, Principal, RequestInfo
from mcp_app.protocol import jsonrpc
from mcp_app.protocol.errors import INTERNAL_ERROR, INVALID_REQUEST, SESSION_NOT_FOUND, TOO_MANY_SESSIONS
from mcp_app.protocol.names import JSON, RESUMABLE_SINCE
from mcp_app.protocol.scope import header, is_json_content
from mcp_app.sessions.event_log import StreamClosed, UnknownEventId
from mcp_app.sessions.event_queue import EventQueue
from mcp_app.sessions.session import SessionClosed
from mcp_app.transport.sse import SSE_HEADERS, SSE_PING, sse_event, sse_priming

log = logging.getLogger(__name__)


UNREACHED = object()  # what `reach` and `read_json` return after they have answered an error


class BodyTooLarge(Exception):
    pass


# The setting behind each limit of what one person holds open (its name goes into the error).
PERSONAL_LIMIT_SETTINGS = {
    "person": "MCP_MAX_SESSIONS_PER_USER",
    "token": "MCP_MAX_SESSIONS_PER_TOKEN",
    "listen": "MCP_MAX_LISTEN_STREAMS_PER_USER",
}


class Endpoint:
    """One HTTP request to an MCP endpoint; subclasses implement `handle(body)`."""

    @classmethod
    def as_asgi(cls):
        """The ASGI app that serves each request with a new instance of this endpoint."""

        async def app(scope, receive, send):
            await cls()(scope, receive, send)

        functools.update_wrapper(app, cls, updated=())
        return app

    async def __call__(self, scope, receive, send):
        self.scope = scope
        self._send = send
        self.response_started = False
        try:
            body = await self._read_body(receive)
        except BodyTooLarge:
            await self.respond_error(
                413, INVALID_REQUEST, f"Request body larger than {settings.MCP_MAX_BODY_BYTES} bytes"
            )
            return
        if body is None:
            return  # the client left before sending its body
        # `handle()` runs in this task (one task per request, not two plus a wait: this
        # is the hot path); the watcher cancels it if the client leaves first.
        this = asyncio.current_task()
        watcher = asyncio.ensure_future(self._wait_for_disconnect(receive))
        client_left = False

        def on_disconnect(finished: asyncio.Task) -> None:
            nonlocal client_left
            if not finished.cancelled():
                finished.exception()  # retrieved: a failed receive() also ends the request
                client_left = True
                this.cancel()

        watcher.add_done_callback(on_disconnect)
        try:
            await self._handle_safely(body)
        except asyncio.CancelledError:
            # Ours to swallow only if the only cancellation was the disconnect's.
            if not client_left or this.uncancel() > 0:
                raise
        finally:
            watcher.remove_done_callback(on_disconnect)
            watcher.cancel()

    async def _read_body(self, receive) -> bytes | None:
        declared = header(self.scope, "content-length")
        if declared and declared.isdigit() and int(declared) > settings.MCP_MAX_BODY_BYTES:
            raise BodyTooLarge
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > settings.MCP_MAX_BODY_BYTES:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    @staticmethod
    async def _wait_for_disconnect(receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def _handle_safely(self, body: bytes) -> None:
        try:
            await self.handle(body)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("MCP endpoint %s failed", self.scope.get("path"))
            if not self.response_started:
                await self.respond_error(500, INTERNAL_ERROR, "Internal error")
            else:
                await self.end_stream()

    async def handle(self, body: bytes) -> None:
        raise NotImplementedError

    # -- who is asking --------------------------------------------------------
    @property
    def principal(self) -> Principal:
        return self.scope[PRINCIPAL_SCOPE_KEY]

    def request_info(self, session_id: str) -> RequestInfo:
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in self.scope.get("headers", ())}
        headers.pop("authorization", None)  # tools never need the raw token
        return RequestInfo(principal=self.principal, session_id=session_id, headers=headers)

    async def refused_for_scope(self, method, params) -> bool:
        """For a ``tools/call`` or ``resources/read`` that needs scopes the token lacks: answer HTTP
        403 ``insufficient_scope`` naming the scope to ask for (what the token has and what is
        needed), so the client authorizes again for it (MCP authorization, scope challenge)."""
        missing = missing_scopes(self.principal, method, params)
        if not missing:
            return False
        scope = " ".join(sorted(self.principal.scopes | missing))
        challenge = InsufficientScope(f"This {method} needs the scope {' '.join(sorted(missing))}.", scope)
        self.response_started = True
        await send_challenge(self._send, challenge, server_origin(self.scope))
        return True

    # -- reading a message and reaching its session -----------------------------------
    async def read_message(self, body: bytes):
        """The one JSON-RPC message of a POST, or None after answering 415/400."""
        data = await self.read_json(body)
        return None if data is UNREACHED else await self.to_message(data)

    async def read_json(self, body: bytes):
        """The decoded JSON of a POST (any JSON value, null included), or UNREACHED after answering 415/400."""
        if not is_json_content(self.scope):
            await self.respond_error(
                415, INVALID_REQUEST, "Unsupported Media Type: Content-Type must be application/json"
            )
            return UNREACHED
        try:
            return jsonrpc.decode(body)
        except jsonrpc.InboundError as error:
            await self.respond_error(400, error.code, error.message, error.request_id)
            return UNREACHED

    async def to_message(self, data):
        """The JSON-RPC message of decoded JSON, or None after answering 400."""
        try:
            return jsonrpc.to_message(data)
        except jsonrpc.InboundError as error:
            await self.respond_error(400, error.code, error.message, error.request_id)
            return None

    async def reach(self, action, request_id=None):
        """Await `action` on a session (local or on another worker) and return its
        result; UNREACHED after answering what went wrong: the session is gone
        (404), the request id is taken or the Last-Event-ID unknown (400), or
        the owning worker cannot be reached (503)."""
        try:
            return await action
        except SessionClosed:
            await self.respond_error(404, SESSION_NOT_FOUND, "Session not found", request_id)
        except DuplicateRequest:
            await self.respond_error(
                400, INVALID_REQUEST, f"Request id {request_id!r} is already in flight", request_id
            )
        except WorkerUnavailable:
            await self.respond_error(
                503, INTERNAL_ERROR, "The worker that owns this session is unavailable", request_id
            )
        except UnknownEventId:
            await self.respond_error(400, INVALID_REQUEST, "Unknown Last-Event-ID for this session", request_id)
        return UNREACHED

    async def create_session(self, transport, request_id=None):
        """A new session owned by this worker, or None after answering 503."""
        try:
            created = await self.reach(directory.this_worker.create(self.principal, transport), request_id)
        except directory.TooManySessions:
            await self.respond_error(503, INTERNAL_ERROR, "Too many open sessions; try again later", request_id)
            return None
        except directory.PersonalLimit as limit:
            await self.refuse_personal_limit(limit.what, limit.limit, request_id)
            return None
        return None if created is UNREACHED else created

    async def refuse_personal_limit(self, what: str, limit: int, request_id=None) -> None:
        """429: this person (or token) already holds as many sessions or streams as they may."""
        setting = PERSONAL_LIMIT_SETTINGS[what]
        await self.respond_error(
            429,
            TOO_MANY_SESSIONS,
            f"Too many open {'streams' if what == 'listen' else 'sessions'} for this "
            f"{'token' if what == 'token' else 'person'}: at most {limit} on this server ({setting}); "
            "end one (DELETE, or close its stream) and try again",
            request_id,
            data={"limit": setting, "max": limit},
        )

    # -- answers --------------------------------------------------------------
    async def respond(self, status: int, body: bytes = b"", content_type: str | None = JSON, headers=()) -> None:
        # With its length declared, the answer goes out as one plain body: without it, HTTP/1.1
        # servers frame it in chunks and end it with a chunk of its own (under uvicorn, a third
        # `send` per response).
        raw_headers = [(b"content-length", str(len(body)).encode())]
        if content_type:
            raw_headers.append((b"content-type", content_type.encode()))
        raw_headers += [(name.encode(), value.encode()) for name, value in headers]
        self.response_started = True
        await self._send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await self._send({"type": "http.response.body", "body": body})

    async def respond_error(self, status: int, code: int, message: str, request_id=None, headers=(), data=None) -> None:
        await self.respond(status, jsonrpc.error_body(code, message, request_id, data), headers=headers)

    async def start_stream(self, headers=()) -> None:
        raw_headers = list(SSE_HEADERS) + [(name.encode(), value.encode()) for name, value in headers]
        self.response_started = True
        await self._send({"type": "http.response.start", "status": 200, "headers": raw_headers})
        # Flush the headers now: clients wait for them before reading events.
        await self._send({"type": "http.response.body", "body": b"", "more_body": True})

    async def send_chunk(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end_stream(self) -> None:
        await self._send({"type": "http.response.body", "body": b""})

    async def pump_events(self, queue: EventQueue, *, stop_at_reply: bool, with_ids: bool = True) -> None:
        """Write queued events as SSE, with comment pings while idle.

        Returns when the session (or a replayed stream) ends, when the engine
        closes the stream early (polling), or after the first reply when
        `stop_at_reply` (a POST's stream ends with its answer).
        """
        while True:
            try:
                event = await queue.get(timeout=settings.MCP_SSE_PING_SECONDS)
            except TimeoutError:
                await self.send_chunk(SSE_PING)
                continue
            if event is None or isinstance(event, StreamClosed):
                return
            await self.send_event(event, with_id=with_ids)
            if stop_at_reply and event.is_reply:
                return

    async def send_event(self, event, with_id: bool = True) -> None:
        """One logged event as an SSE message (with its id, for resumption, unless told not to)."""
        await self.send_chunk(sse_event(event.data, event="message", event_id=event.id if with_id else None))

    async def prime(self, session, event_id: str) -> None:
        """Send the priming event to clients of a protocol version that resumes streams."""
        if (session.protocol_version or "") >= RESUMABLE_SINCE:
            await self.send_chunk(sse_priming(event_id, settings.MCP_SSE_RETRY_MS))
