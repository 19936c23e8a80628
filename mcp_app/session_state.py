"""What the engine keeps per MCP session, and which sessions this process serves.

``sessions.py`` runs one ``serve_loop`` per MCP session inside the engine's
lifespan, so the lifespan's value is per-session state: a low-level handler
reads it as ``ctx.lifespan_context``, a tool as
``ctx.request_context.lifespan_context`` (``state_of`` takes either).

A session's ``channel`` is how the server reaches its client outside of any
request (resource updates, list changes): the SDK session object of the
client's ``notifications/initialized``, whose notifications without a related
request go to the session's standalone stream. Only sessions owned by this
process are known here; a session owned by another worker is that worker's.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.session import ServerSession
from mcp_types import LoggingLevel, NotificationParams, ServerNotification

INITIALIZED = "notifications/initialized"
# A session that cannot take a notification this fast is skipped: it must not hold up the others.
NOTIFY_TIMEOUT_SECONDS = 5.0


@dataclass(eq=False)  # identity: two sessions are never the same one
class SessionState:
    log_level: LoggingLevel | None = None  # None: the client never sent logging/setLevel
    subscriptions: set[str] = field(default_factory=set)  # resource URIs (resources/subscribe)
    channel: ServerSession | None = None  # set once the client is initialized


_live: set[SessionState] = set()


@asynccontextmanager
async def session_lifespan(_server: MCPServer) -> AsyncIterator[SessionState]:
    """The engine's lifespan: entered once per session, it yields that session's state."""
    state = SessionState()
    _live.add(state)
    try:
        yield state
    finally:
        _live.discard(state)


def state_of(ctx: Any) -> SessionState:
    """The state of the session a request belongs to (``ServerRequestContext`` or an MCPServer ``Context``)."""
    request_context = getattr(ctx, "request_context", ctx)
    state = request_context.lifespan_context
    if not isinstance(state, SessionState):
        raise LookupError("this server was built without session_lifespan")
    return state


def reachable_sessions() -> list[SessionState]:
    """The sessions of this process that the server may send notifications to."""
    return [state for state in _live if state.channel is not None]


async def notify_sessions(sessions: list[SessionState], notification: ServerNotification) -> int:
    """Send ``notification`` on the standalone stream of each session; how many took it."""
    delivered = 0
    for state in sessions:
        with anyio.move_on_after(NOTIFY_TIMEOUT_SECONDS):
            await state.channel.send_notification(notification)
            delivered += 1
    return delivered


async def _remember_channel(ctx: ServerRequestContext, _params: NotificationParams) -> None:
    # From here on the spec lets the server send notifications on its own.
    state_of(ctx).channel = ctx.session


def track_sessions(server: MCPServer) -> None:
    """Record each session's channel when its client completes the handshake.

    ``server`` must have been built with ``lifespan=session_lifespan``.
    """
    # Private, but it is how the SDK's own in-memory transport reaches the low-level server.
    server._lowlevel_server.add_notification_handler(INITIALIZED, NotificationParams, _remember_channel)
