"""Resource subscriptions: ``resources/subscribe``, ``resources/unsubscribe`` and
``notifications/resources/updated``.

MCPServer serves neither method in the handshake era (its own subscription
bus is for the stateless 2026 era). A session's subscribed URIs live in its
state (``session_state``); ``publish_resource_updated(uri)`` tells every
session of this process that subscribed to ``uri``, on its standalone stream.

Any URI can be subscribed to, known or not (a resource may appear later); the
number per session and their length are bounded so a client cannot grow the
server's memory without limit.
"""

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    EmptyResult,
    ResourceUpdatedNotification,
    ResourceUpdatedNotificationParams,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)

from mcp_app.session_state import notify_sessions, reachable_sessions, state_of

SUBSCRIBE = "resources/subscribe"
UNSUBSCRIBE = "resources/unsubscribe"
MAX_SUBSCRIPTIONS_PER_SESSION = 100
MAX_URI_CHARS = 2048


async def subscribe(ctx: ServerRequestContext, params: SubscribeRequestParams) -> EmptyResult:
    uri = str(params.uri)
    if len(uri) > MAX_URI_CHARS:
        raise MCPError(INVALID_PARAMS, f"Resource URI longer than {MAX_URI_CHARS} characters")
    state = state_of(ctx)
    if uri not in state.subscriptions and len(state.subscriptions) >= MAX_SUBSCRIPTIONS_PER_SESSION:
        raise MCPError(INVALID_PARAMS, f"At most {MAX_SUBSCRIPTIONS_PER_SESSION} subscriptions per session")
    state.subscriptions.add(uri)
    if state.channel is None:  # a client that skipped notifications/initialized still gets its updates
        state.channel = ctx.session
    return EmptyResult()


async def unsubscribe(ctx: ServerRequestContext, params: UnsubscribeRequestParams) -> EmptyResult:
    state_of(ctx).subscriptions.discard(str(params.uri))
    return EmptyResult()


def install_subscriptions(server: MCPServer) -> None:
    """Serve both methods on ``server`` (built with ``session_state.session_lifespan``);
    its ``resources`` capability then says ``subscribe: true``."""
    # Private, but it is how the SDK's own in-memory transport reaches the low-level server.
    lowlevel = server._lowlevel_server
    lowlevel.add_request_handler(SUBSCRIBE, SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler(UNSUBSCRIBE, UnsubscribeRequestParams, unsubscribe)


async def publish_resource_updated(uri: str) -> int:
    """Send ``notifications/resources/updated`` for ``uri`` to its subscribers; how many there were."""
    subscribers = [state for state in reachable_sessions() if uri in state.subscriptions]
    return await notify_sessions(subscribers, ResourceUpdatedNotification(params=ResourceUpdatedNotificationParams(uri=uri)))
