"""``subscriptions/listen`` without an engine task held open for each stream.

The SDK's ``ListenHandler`` serves a listen stream as one request that never
returns: its handler, the middleware chain around it, the connection, the
request's parsed parameters and a memory-object stream stay alive for as long
as the client listens, about 15 KiB per idle stream (tracemalloc, 200
streams in-process), most of what a listen stream costs beyond the HTTP
connection itself.

``DetachedListenHandler`` does the same work while the request is served
(the parameters checked, the honored filter, the subscription on the bus, the
acknowledgement as the first frame) through the whole engine, middleware
included, and then returns: the stream goes on as a ``ListenStream``, a
filter and a bus subscription that write each matching event's notification
straight onto the transport's queue. The transport (``transport/stateless_http.py``)
makes the ``ListenStream`` and sets it in ``current_listen_stream`` for the
request; without one (any other caller of the engine) the SDK's own handler
serves the stream as before.

What the wire sees is the same: the acknowledgement first, every frame stamped
with the subscription id, only the kinds the client asked for and the server
honors, and, when the server closes the streams (``close()``), the listen
result as the last frame.
"""

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import ListenHandler, SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY, ServerEvent, event_matches, event_to_notification
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    SubscriptionsAcknowledgedNotification,
    SubscriptionsAcknowledgedNotificationParams,
    SubscriptionsListenRequestParams,
    SubscriptionsListenResult,
)

from mcp_app.engine import sdk
from mcp_app.protocol import jsonrpc
from mcp_app.protocol.names import LISTEN

__all__ = ["DetachedListenHandler", "ListenStream", "current_listen_stream", "install_detached_listen"]

Emit = Callable[[dict[str, Any] | None], None]  # a wire message for the stream; None: the stream is done

# Listen streams open at once in this process (the SDK's own handler's default bound).
MAX_SUBSCRIPTIONS = 1024
# The stream the transport holds for the listen request being served (in that request's task only).
current_listen_stream: ContextVar["ListenStream | None"] = ContextVar("current_listen_stream", default=None)


class ListenStream:
    """One listen stream once its request has been served: what it delivers, and where to."""

    __slots__ = ("_emit", "_held", "_honored", "_meta", "_owner", "_result", "_unsubscribe", "_uris")

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self._honored = None
        self._uris: frozenset[str] = frozenset()
        self._meta: dict[str, Any] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._owner: set[ListenStream] | None = None  # the handler's count of open streams
        self._held: list[ServerEvent] | None = []  # events that came before the acknowledgement went out
        self._result: dict[str, Any] | None = None

    # -- while the request is served (DetachedListenHandler) --------------------------------
    def subscribe(self, bus: SubscriptionBus, honored, meta: dict[str, Any], owner: "set[ListenStream]") -> None:
        self._honored, self._uris, self._meta = honored, frozenset(honored.resource_subscriptions or ()), meta
        self._unsubscribe = bus.subscribe(self._deliver)
        self._owner = owner
        owner.add(self)

    def go_live(self) -> None:
        """The acknowledgement is out: what was held goes after it, and the rest as it comes."""
        held, self._held = self._held or [], None
        for event in held:
            self._deliver(event)

    @property
    def live(self) -> bool:
        """Whether the handler acknowledged the stream and left it to this object."""
        return self._held is None

    # -- after (the transport) --------------------------------------------------------------
    def keep_result(self, result_message: dict[str, Any]) -> None:
        """The stream's last frame, for when the server closes it (the handler's result, as the wire has it)."""
        self._result = result_message

    def close(self) -> None:
        """The server ends the stream gracefully: the listen result, then the end."""
        self.unsubscribe()
        if self._result is not None:
            self._emit(self._result)
            self._result = None
        self._emit(None)

    def unsubscribe(self) -> None:
        """Off the bus and out of the handler's count (the client left, or the stream was closed)."""
        if self._owner is not None:
            self._owner.discard(self)
            self._owner = None
        if self._unsubscribe is not None:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
            try:
                unsubscribe()
            except Exception:  # a bus that already forgot the listener: nothing left to undo
                pass

    def _deliver(self, event: ServerEvent) -> None:
        if self._held is not None:
            self._held.append(event)
            return
        if not event_matches(self._honored, self._uris, event):
            return
        wire = event_to_notification(event, self._meta).model_dump(by_alias=True, mode="json", exclude_none=True)
        self._emit(jsonrpc.notification(wire["method"], wire.get("params")))


class DetachedListenHandler:
    """Serves ``subscriptions/listen``, returning once the stream is acknowledged when the transport
    holds a ``ListenStream`` for the request (see the module docstring); the SDK's own handler
    serves any other caller."""

    def __init__(self, bus: SubscriptionBus, *, max_subscriptions: int = MAX_SUBSCRIPTIONS) -> None:
        self._bus = bus
        self._max_subscriptions = max_subscriptions
        self._open: set[ListenStream] = set()
        self._attached = ListenHandler(bus, max_subscriptions=max_subscriptions)

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], params: SubscriptionsListenRequestParams
    ) -> SubscriptionsListenResult:
        stream = current_listen_stream.get()
        if stream is None:
            return await self._attached(ctx, params)
        subscription_id = ctx.request_id
        if subscription_id is None:
            raise MCPError(INVALID_REQUEST, "subscriptions/listen requires a request id")
        if len(self._open) >= self._max_subscriptions:
            raise MCPError(INTERNAL_ERROR, "Subscription limit reached")
        honored = sdk.honored_subset(params.notifications)
        meta: dict[str, Any] = {SUBSCRIPTION_ID_META_KEY: subscription_id}
        # Subscribed before the acknowledgement, so nothing published meanwhile is lost; held
        # until it is out, so the acknowledgement is the first frame.
        stream.subscribe(self._bus, honored, meta, self._open)
        try:
            await ctx.session.send_notification(
                SubscriptionsAcknowledgedNotification(
                    params=SubscriptionsAcknowledgedNotificationParams(notifications=honored, _meta=meta)
                ),
                related_request_id=subscription_id,
            )
        except BaseException:
            stream.unsubscribe()
            raise
        stream.go_live()
        return SubscriptionsListenResult(_meta=meta)

    def close(self) -> None:
        """End every listen stream gracefully: each sends its listen result as its last frame."""
        self._attached.close()
        for stream in list(self._open):
            stream.close()


def install_detached_listen(server: MCPServer, bus: SubscriptionBus) -> None:
    """Serve ``subscriptions/listen`` on ``server`` with ``DetachedListenHandler`` over ``bus``
    (in place of the handler ``MCPServer`` registers for the same bus)."""
    handler = DetachedListenHandler(bus)
    sdk.lowlevel_server(server).add_request_handler(LISTEN, SubscriptionsListenRequestParams, handler)
