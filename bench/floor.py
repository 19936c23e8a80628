"""The floor: the smallest Channels consumers that look like an MCP server from outside.

`POST /mcp` answers a fixed `tools/call` result (and a fixed session id);
`GET /mcp` and `GET /sse` hold an idle event stream (`/sse` first names its
endpoint); `POST /messages?sessionId=` pushes the fixed result onto that
stream and answers 202. No guards, no engine, no database, no channel layer:
what is left is daphne (or uvicorn) plus Channels' `AsyncHttpConsumer`,
the cost of the stack itself.

    daphne -b 127.0.0.1 -p 8100 bench.floor:application
"""

import itertools

import django
from django.conf import settings

settings.configure(DEBUG=False, CHANNEL_LAYERS={}, ALLOWED_HOSTS=["127.0.0.1"])
django.setup()

from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from channels.routing import URLRouter
from django.urls import path

RESULT = (
    b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"3.0"}],'
    b'"structuredContent":{"result":3.0},"isError":false}}'
)
JSON_HEADERS = [(b"content-type", b"application/json"), (b"mcp-session-id", b"floor")]
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]

_streams: dict[str, "StreamConsumer"] = {}
_ids = itertools.count()


class StreamConsumer(AsyncHttpConsumer):
    """GET: an idle event stream (named in `_streams` for /messages). POST: the fixed result."""

    async def http_request(self, message):
        if self.scope["method"] == "POST":  # one-message bodies only, as the load generator sends
            if b'"id"' in message.get("body", b""):
                await self.send_response(200, RESULT, headers=JSON_HEADERS)
            else:  # a notification
                await self.send_response(202, b"", headers=JSON_HEADERS)
            raise StopConsumer
        if self.scope["method"] == "DELETE":
            await self.send_response(200, b"", headers=JSON_HEADERS)
            raise StopConsumer
        await self.send_headers(headers=SSE_HEADERS)
        self.stream_id = str(next(_ids))
        if self.scope["path"] == "/sse":
            _streams[self.stream_id] = self
            await self.send_body(
                b"event: endpoint\ndata: /messages?sessionId=%s\n\n" % self.stream_id.encode(), more_body=True
            )
        else:
            await self.send_body(b"", more_body=True)

    async def http_disconnect(self, message):
        _streams.pop(getattr(self, "stream_id", None), None)
        raise StopConsumer


class MessagesConsumer(AsyncHttpConsumer):
    async def handle(self, body):
        stream = _streams.get(self.scope["query_string"].decode().rpartition("=")[2])
        if stream is None:
            await self.send_response(404, b"", headers=JSON_HEADERS)
            return
        if b'"id"' in body:  # a request, not a notification
            await stream.send_body(b"event: message\ndata: %s\n\n" % RESULT, more_body=True)
        await self.send_response(202, b"Accepted", headers=[(b"content-type", b"text/plain")])


application = URLRouter(
    [
        path("mcp", StreamConsumer.as_asgi()),
        path("sse", StreamConsumer.as_asgi()),
        path("messages", MessagesConsumer.as_asgi()),
    ]
)
