"""The MCP endpoints, each behind the guards: the top of the request flow.

``mcpsite/asgi.py`` routes these paths here, ahead of Django; see
``docs/architecture.md`` for what happens below.
"""

from django.urls import path

from mcp_app.guards import guarded
from mcp_app.transport.legacy_sse import LegacyMessagesEndpoint, LegacySSEEndpoint
from mcp_app.transport.streamable_http import StreamableHTTPEndpoint

urlpatterns = [
    path("mcp", guarded(StreamableHTTPEndpoint.as_asgi())),
    path("sse", guarded(LegacySSEEndpoint.as_asgi())),
    path("messages", guarded(LegacyMessagesEndpoint.as_asgi())),
]
