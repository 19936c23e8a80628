"""The MCP endpoints, each a Channels consumer behind the guards."""

from django.urls import path

from mcp_app.consumers.legacy_sse import MessagesConsumer, SSEConsumer
from mcp_app.consumers.streamable_http import StreamableHTTPConsumer
from mcp_app.guards import guarded

urlpatterns = [
    path("mcp", guarded(StreamableHTTPConsumer.as_asgi())),
    path("sse", guarded(SSEConsumer.as_asgi())),
    path("messages", guarded(MessagesConsumer.as_asgi())),
]
