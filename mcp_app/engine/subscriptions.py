"""Resource subscriptions: ``resources/subscribe``, ``resources/unsubscribe`` and
``notifications/resources/updated``.

MCPServer serves neither method in the handshake era (its own subscription
bus serves the stateless era's ``subscriptions/listen``). A session's
subscribed URIs live in its client state (``connected``);
``publish_resource_updated(uri)`` tells every session of this process that
subscribed to ``uri``, on its standalone stream, and every listen stream that
asked for it, on any worker (``fanout.py``).

Any URI can be subscribed to, known or not (a resource may appear later); the
number per session and their length are bounded so a client cannot grow the
server's memory without limit.
"""

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ResourceUpdated
from mcp_types import (
    INVALID_PARAMS,
    EmptyResult,
    ResourceUpdatedNotification,
    ResourceUpdatedNotificationParams,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)

from mcp_app.engine import sdk
from mcp_app.engine.connected import connected_client, notify, reachable_clients
from mcp_app.engine.fanout import bus
from mcp_app.protocol.names import SUBSCRIBE, UNSUBSCRIBE

MAX_SUBSCRIPTIONS_PER_SESSION = 100
MAX_URI_CHARS = 2048


async def subscribe(ctx: ServerRequestContext, params: SubscribeRequestParams) -> EmptyResult:
    uri = str(params.uri)
    if len(uri) > MAX_URI_CHARS:
        raise MCPError(INVALID_PARAMS, f"Resource URI longer than {MAX_URI_CHARS} characters")
    client = connected_client(ctx)
    if uri not in client.subscriptions and len(client.subscriptions) >= MAX_SUBSCRIPTIONS_PER_SESSION:
        raise MCPError(INVALID_PARAMS, f"At most {MAX_SUBSCRIPTIONS_PER_SESSION} subscriptions per session")
    client.subscriptions.add(uri)
    client.reachable = True  # a client that skipped notifications/initialized still gets its updates
    return EmptyResult()


async def unsubscribe(ctx: ServerRequestContext, params: UnsubscribeRequestParams) -> EmptyResult:
    connected_client(ctx).subscriptions.discard(str(params.uri))
    return EmptyResult()


def install_subscriptions(server: MCPServer) -> None:
    """Serve both methods on ``server`` (built with ``connected.session_lifespan``);
    its ``resources`` capability then says ``subscribe: true``."""
    lowlevel = sdk.lowlevel_server(server)
    lowlevel.add_request_handler(SUBSCRIBE, SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler(UNSUBSCRIBE, UnsubscribeRequestParams, unsubscribe)


async def publish_resource_updated(uri: str) -> int:
    """Send ``notifications/resources/updated`` for ``uri`` to its subscribers; how many there were."""
    await bus.publish(ResourceUpdated(uri=uri))  # subscriptions/listen streams, on every worker
    subscribers = [client for client in reachable_clients() if uri in client.subscriptions]
    return await notify(subscribers, ResourceUpdatedNotification(params=ResourceUpdatedNotificationParams(uri=uri)))
