"""`/mcp`: the Streamable HTTP transport of both protocol eras.

A stateless-era request (MCP 2026-07-28) goes to `stateless_http.py`; what
follows is the handshake era (MCP 2025-11-25, compatible with 2025-06-18 and
2025-03-26), with sessions.

POST carries one JSON-RPC message. A request is answered with one
`application/json` body, or with a short `text/event-stream` when the engine
sends something about the request (progress, a log line, an elicitation)
before its answer. Notifications and responses get 202. GET opens the
session's server-to-client stream; DELETE ends the session.
"""

import logging

from mcp_types import JSONRPCRequest, JSONRPCResponse

from mcp_app.cluster import directory
from mcp_app.cluster.forwarding import WorkerUnavailable
from mcp_app.protocol.errors import INVALID_REQUEST, METHOD_NOT_FOUND, SESSION_NOT_FOUND
from mcp_app.protocol.names import (
    DISCOVER,
    EVENT_STREAM,
    INITIALIZE,
    JSON,
    LAST_EVENT_ID_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    MCP_SESSION_ID_HEADER,
    SUPPORTED_PROTOCOL_VERSIONS,
)
from mcp_app.protocol.scope import accepts, header
from mcp_app.sessions.event_log import StreamClosed
from mcp_app.transport.endpoint import UNREACHED, Endpoint
from mcp_app.transport.stateless_http import StatelessPost, header_is_stateless, is_stateless

log = logging.getLogger(__name__)


class StreamableHTTPEndpoint(Endpoint):
    async def handle(self, body: bytes) -> None:
        method = self.scope["method"]
        if method == "POST":
            await self.post(body)
        elif header_is_stateless(header(self.scope, MCP_PROTOCOL_VERSION_HEADER)):
            # The stateless era has no server stream and no session to end (spec: 405).
            await self.respond_error(
                405, INVALID_REQUEST, f"{method} is not part of the stateless protocol", headers=[("Allow", "POST")]
            )
        elif method == "GET":
            await self.get()
        elif method == "DELETE":
            await self.delete()
        else:
            await self.respond_error(
                405, INVALID_REQUEST, f"Method {method} not allowed", headers=[("Allow", "GET, POST, DELETE")]
            )

    # -- checks shared by the three methods -------------------------------------
    async def _version_ok(self) -> bool:
        version = header(self.scope, MCP_PROTOCOL_VERSION_HEADER)
        if version is not None and version not in SUPPORTED_PROTOCOL_VERSIONS:
            await self.respond_error(
                400,
                INVALID_REQUEST,
                f"Unsupported MCP-Protocol-Version {version!r}; "
                f"supported: {', '.join(sorted(SUPPORTED_PROTOCOL_VERSIONS))}",
            )
            return False
        return True

    async def _session(self):
        """The caller's session named by Mcp-Session-Id, or None after answering 400/404."""
        session_id = header(self.scope, MCP_SESSION_ID_HEADER)
        if not session_id:
            await self.respond_error(400, INVALID_REQUEST, "Bad Request: Mcp-Session-Id header is required")
            return None
        session = await self.reach(directory.this_worker.locate(session_id, self.principal))
        if session is UNREACHED:
            return None
        if session is None:
            await self.respond_error(404, SESSION_NOT_FOUND, "Session not found")
            return None
        return session

    # -- POST -----------------------------------------------------------------
    async def post(self, body: bytes) -> None:
        if not accepts(self.scope, JSON):
            await self.respond_error(406, INVALID_REQUEST, "Not Acceptable: the client must accept application/json")
            return
        data = await self.read_json(body)
        if data is UNREACHED:
            return
        if is_stateless(header(self.scope, MCP_PROTOCOL_VERSION_HEADER), data):
            await StatelessPost(self, data).run()
            return
        message = await self.to_message(data)
        if message is None:
            return
        if isinstance(message, JSONRPCRequest) and message.method == DISCOVER:
            # server/discover without the stateless era's _meta: not a request of either era.
            await self.respond_error(
                200, METHOD_NOT_FOUND, "Method not found: server/discover needs the 2026-07-28 _meta", message.id
            )
            return
        if not await self._version_ok():
            return
        if isinstance(message, JSONRPCRequest) and message.method == INITIALIZE:
            await self._initialize(message)
            return
        session = await self._session()
        if session is None:
            return
        if isinstance(message, JSONRPCRequest):
            if not await self.refused_for_scope(message.method, message.params):
                await self._request(session, message)
            return
        if await self.reach(session.deliver(message, self.request_info(session.id))) is not UNREACHED:
            await self.respond(202, content_type=None, headers=[(MCP_SESSION_ID_HEADER, session.id)])

    async def _initialize(self, message: JSONRPCRequest) -> None:
        if header(self.scope, MCP_SESSION_ID_HEADER):
            await self.respond_error(400, INVALID_REQUEST, "initialize must not carry Mcp-Session-Id", message.id)
            return
        session = await self.create_session("streamable-http", message.id)
        if session is None:
            return
        answered = await self._request(session, message)
        reply = answered.message if answered is not None else None  # parsed here only: the handshake's
        if isinstance(reply, JSONRPCResponse):
            session.protocol_version = reply.result.get("protocolVersion")
            try:
                await directory.this_worker.publish(session)
            except WorkerUnavailable:
                pass  # the session works here; its record is refreshed on a later request
        else:
            await session.close()

    async def _request(self, session, message: JSONRPCRequest):
        """Deliver a request and answer the POST with what the session says about it; the reply
        event when it came as the POST's JSON answer, else None."""
        queue = session.expect_reply(message.id)
        if queue is None:
            await self.respond_error(
                400, INVALID_REQUEST, f"Request id {message.id!r} is already in flight", message.id
            )
            return None
        session_header = [(MCP_SESSION_ID_HEADER, session.id)]
        streaming = accepts(self.scope, EVENT_STREAM)
        try:
            delivered = session.deliver(message, self.request_info(session.id), can_send_request=streaming)
            if await self.reach(delivered, message.id) is UNREACHED:
                return None
            while True:
                event = await queue.get()
                if event is None:
                    await self.respond_error(404, SESSION_NOT_FOUND, "Session ended", message.id)
                    return None
                if isinstance(event, StreamClosed):
                    if streaming:  # polling: prime, end, and let the client resume with Last-Event-ID
                        await self.start_stream(headers=session_header)
                        await self.prime(session, f"{event.stream}.0")
                        await self.end_stream()
                        return None
                    continue  # a JSON-only client keeps waiting for the answer
                if event.is_reply:
                    await self.respond(200, event.data, headers=session_header)
                    return event
                if streaming:
                    # Something about this request came before its answer: switch to SSE.
                    await self.start_stream(headers=session_header)
                    await self.prime(session, f"{event.stream}.0")
                    # This event first, then what queued behind it (never put back: it would go last).
                    await self.send_event(event)
                    await self.pump_events(queue, stop_at_reply=True)
                    await self.end_stream()
                    return None
                # A JSON-only client cannot receive it; the answer still comes.
        finally:
            session.forget_request(message.id)

    # -- GET: the server-to-client stream ----------------------------------------
    async def get(self) -> None:
        if not accepts(self.scope, EVENT_STREAM) or header(self.scope, "accept") is None:
            await self.respond_error(406, INVALID_REQUEST, "Not Acceptable: the client must accept text/event-stream")
            return
        if not await self._version_ok():
            return
        session = await self._session()
        if session is None:
            return
        opened = await self.reach(session.open_stream(header(self.scope, LAST_EVENT_ID_HEADER)))
        if opened is UNREACHED:
            return
        if opened is None:
            await self.respond_error(409, INVALID_REQUEST, "Conflict: that stream is already open")
            return
        queue, priming_id = opened
        try:
            await self.start_stream(headers=[(MCP_SESSION_ID_HEADER, session.id)])
            if priming_id is not None:
                await self.prime(session, priming_id)
            # The standalone stream never carries replies; a resumed request stream ends with its answer.
            await self.pump_events(queue, stop_at_reply=True)
            await self.end_stream()
        finally:
            await session.close_stream(queue)

    # -- DELETE: end the session ---------------------------------------------------
    async def delete(self) -> None:
        if not await self._version_ok():
            return
        session = await self._session()
        if session is None:
            return
        if await self.reach(session.close()) is not UNREACHED:
            await self.respond(200, content_type=None)
