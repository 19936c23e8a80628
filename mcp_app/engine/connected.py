"""What the engine keeps per connected client, and which clients this process serves.

``sessions/session.py`` enters the engine's lifespan once per MCP session and serves the
session's loops (``engine/drivers.py``) inside it, so the lifespan's value is per-session
state: a ``ConnectedClient``. A low-level handler reads it as ``ctx.lifespan_context``,
a tool as ``ctx.request_context.lifespan_context`` (``connected_client`` takes
either).

A client's ``connection`` is how the server reaches it outside of any request
(resource updates, list changes): the SDK ``Connection`` of its session (``attach``,
called by the session), whose notifications go to the session's standalone stream
whether the session's engine is awake or asleep; it is used once the client is
``reachable`` (initialized). It is the connection and not a request's
``ServerSession``, which would keep that request's dispatcher alive as long as the
client. Only sessions owned by this process are known here; a session owned by
another worker is that worker's.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp_types import LoggingLevel, NotificationParams, ServerNotification

from mcp_app.engine import sdk
from mcp_app.protocol.names import INITIALIZED

# A client that cannot take a notification this fast is skipped: it must not hold up the others.
NOTIFY_TIMEOUT_SECONDS = 5.0


@dataclass(eq=False)  # identity: two sessions are never the same one
class ConnectedClient:
    log_level: LoggingLevel | None = None  # None: the client never sent logging/setLevel
    subscriptions: set[str] = field(default_factory=set)  # resource URIs (resources/subscribe)
    connection: Connection | None = None  # its session's (attach)
    reachable: bool = False  # the client is initialized: the server may notify it on its own


_live: set[ConnectedClient] = set()


@asynccontextmanager
async def session_lifespan(_server: MCPServer) -> AsyncIterator[ConnectedClient]:
    """The engine's lifespan: entered once per session, it yields that session's client state."""
    client = ConnectedClient()
    _live.add(client)
    try:
        yield client
    finally:
        _live.discard(client)


def attach(state: Any, connection: Connection) -> None:
    """Give the client state a session's lifespan yielded the session's connection."""
    if isinstance(state, ConnectedClient):
        state.connection = connection


def connected_client(ctx: Any) -> ConnectedClient:
    """The client a request comes from (``ServerRequestContext`` or an MCPServer ``Context``)."""
    request_context = getattr(ctx, "request_context", ctx)
    client = request_context.lifespan_context
    if not isinstance(client, ConnectedClient):
        raise LookupError("this server was built without session_lifespan")
    return client


def reachable_clients() -> list[ConnectedClient]:
    """The clients of this process that the server may send notifications to."""
    return [client for client in _live if client.reachable and client.connection is not None]


async def notify(clients: list[ConnectedClient], notification: ServerNotification) -> int:
    """Send ``notification`` on the standalone stream of each client; how many took it."""
    wire = notification.model_dump(by_alias=True, mode="json", exclude_none=True)
    delivered = 0
    for client in clients:
        with anyio.move_on_after(NOTIFY_TIMEOUT_SECONDS):
            await client.connection.notify(wire["method"], wire.get("params"))
            delivered += 1
    return delivered


async def _reachable(ctx: ServerRequestContext, _params: NotificationParams) -> None:
    # From here on the spec lets the server send notifications on its own.
    connected_client(ctx).reachable = True


def track_sessions(server: MCPServer) -> None:
    """Mark each client reachable when it completes the handshake.

    ``server`` must have been built with ``lifespan=session_lifespan``.
    """
    sdk.lowlevel_server(server).add_notification_handler(INITIALIZED, NotificationParams, _reachable)
