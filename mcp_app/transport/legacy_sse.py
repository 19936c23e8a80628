"""`/sse` + `/messages`: the HTTP+SSE transport of MCP 2024-11-05.

`GET /sse` opens a session whose one stream carries everything the server
sends; its first event, `endpoint`, says where to POST messages. Each POST to
`/messages?sessionId=…` is answered 202 and its reply arrives on the stream.
The session ends when the stream disconnects.
"""

from urllib.parse import parse_qs

from mcp_types import JSONRPCRequest

from mcp_app.cluster import directory
from mcp_app.protocol.errors import INVALID_REQUEST, SESSION_NOT_FOUND
from mcp_app.protocol.names import EVENT_STREAM
from mcp_app.protocol.scope import accepts
from mcp_app.transport.endpoint import UNREACHED, Endpoint
from mcp_app.transport.sse import sse_event

MESSAGES_PATH = "/messages"
SESSION_QUERY_PARAMETER = "sessionId"


class LegacySSEEndpoint(Endpoint):
    async def handle(self, body: bytes) -> None:
        if self.scope["method"] != "GET":
            await self.respond_error(405, INVALID_REQUEST, "Method not allowed", headers=[("Allow", "GET")])
            return
        if not accepts(self.scope, EVENT_STREAM):
            await self.respond_error(406, INVALID_REQUEST, "Not Acceptable: the client must accept text/event-stream")
            return
        session = await self.create_session("sse")
        if session is None:
            return
        queue, _priming_id = await session.open_stream()  # the 2024-11-05 transport has no resumption
        try:
            await self.start_stream()
            endpoint = f"{self.scope.get('root_path', '')}{MESSAGES_PATH}?{SESSION_QUERY_PARAMETER}={session.id}"
            await self.send_chunk(sse_event(endpoint.encode(), event="endpoint"))
            await self.pump_events(queue, stop_at_reply=False, with_ids=False)
            await self.end_stream()
        finally:
            # The stream is the session: when it goes, so does the session.
            await session.close_stream(queue)
            await session.close()


class LegacyMessagesEndpoint(Endpoint):
    async def handle(self, body: bytes) -> None:
        if self.scope["method"] != "POST":
            await self.respond_error(405, INVALID_REQUEST, "Method not allowed", headers=[("Allow", "POST")])
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        session_id = (query.get(SESSION_QUERY_PARAMETER) or [""])[0]
        if not session_id:
            await self.respond_error(
                400, INVALID_REQUEST, f"Bad Request: the {SESSION_QUERY_PARAMETER} query parameter is required"
            )
            return
        session = await self.reach(directory.this_worker.locate(session_id, self.principal))
        if session is UNREACHED:
            return
        if session is None:
            await self.respond_error(404, SESSION_NOT_FOUND, "Session not found")
            return
        message = await self.read_message(body)
        if isinstance(message, JSONRPCRequest) and await self.refused_for_scope(message.method, message.params):
            return
        if (
            message is not None
            and await self.reach(session.deliver(message, self.request_info(session.id))) is not UNREACHED
        ):
            await self.respond(202, b"Accepted", content_type="text/plain; charset=utf-8")
