"""The one door to the ``mcp`` SDK's private API.

``MCPServer`` gives no public way to reach its low-level server (where
request and notification handlers are added, and which the sessions drive),
or to recognise its OpenTelemetry middleware, and the filter its listen handler
acknowledges is a private function. This server needs all three, and
reaches them here and nowhere else, so an SDK upgrade that moves one breaks this module only,
and ``tests/mcp/test_sdk_private_api.py`` names the attribute that went missing.
"""

from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import _honored_subset
from mcp_types import SubscriptionFilter

__all__ = ["PRIVATE_API", "drop_opentelemetry", "honored_subset", "lowlevel_server"]

# Every private name used here, as (module, dotted attribute): the test above checks each.
PRIVATE_API = (
    ("mcp.server.mcpserver", "MCPServer._lowlevel_server"),
    ("mcp.server._otel", "OpenTelemetryMiddleware"),
    ("mcp.server.subscriptions", "_honored_subset"),
)


def lowlevel_server(server: MCPServer) -> Server:
    """The low-level server inside ``server``; the SDK's own in-memory transport drives it the same way."""
    return server._lowlevel_server


def drop_opentelemetry(server: MCPServer) -> None:
    """Remove the SDK's OpenTelemetry span middleware (the SDK's documented opt-out: drop it from the list)."""
    server.middleware[:] = [m for m in server.middleware if not isinstance(m, OpenTelemetryMiddleware)]


def honored_subset(requested: SubscriptionFilter) -> SubscriptionFilter:
    """What a ``subscriptions/listen`` stream acknowledges of what it asked for, as the SDK's own
    listen handler decides it (``engine/listen.py`` serves the stream)."""
    return _honored_subset(requested)
