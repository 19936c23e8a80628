"""Change notifications for ``subscriptions/listen`` streams, across every worker process.

The SDK's listen handler takes events (tools, prompts or resources list
changed; a resource updated) from a ``SubscriptionBus``. This bus publishes
through a Channels group that every worker's bus joins, so an update published
on one worker reaches the listen streams held on all of them: through Redis
with ``REDIS_URL``, in-process otherwise. Each worker hands what arrives to its
own listeners (the SDK's in-memory bus does the local fan-out).

A worker joins the group before it acknowledges its first listen stream
(``join``, awaited by the transport), so an event published once a client holds
the acknowledgement reaches it. Publishing never waits for listeners, and a
full group drops the event rather than blocking (channels-redis
``group_send``): a listen stream is a hint to re-list, not a log.
"""

import logging
from collections.abc import Callable

from channels.layers import get_channel_layer
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)

from mcp_app.protocol.groups import GroupMember

log = logging.getLogger(__name__)

GROUP = "mcp-subscriptions"
EVENT_TYPE = "mcp.subscription.event"  # Channels message type
_KINDS: dict[str, ServerEvent] = {
    "tools": ToolsListChanged(),
    "prompts": PromptsListChanged(),
    "resources": ResourcesListChanged(),
}


def to_wire(event: ServerEvent) -> dict:
    if isinstance(event, ResourceUpdated):
        return {"type": EVENT_TYPE, "kind": "updated", "uri": event.uri}
    kind = next(name for name, known in _KINDS.items() if known == event)
    return {"type": EVENT_TYPE, "kind": kind}


def from_wire(message: dict) -> ServerEvent | None:
    if message.get("kind") == "updated" and isinstance(message.get("uri"), str):
        return ResourceUpdated(uri=message["uri"])
    return _KINDS.get(message.get("kind"))


class ChannelLayerBus:
    """A ``SubscriptionBus`` over a Channels group (see the module docstring)."""

    def __init__(self) -> None:
        self._local = InMemorySubscriptionBus()
        self._member = GroupMember(GROUP, self._received, name="mcp-subscription-bus")

    async def publish(self, event: ServerEvent) -> None:
        try:
            await get_channel_layer().group_send(GROUP, to_wire(event))
        except Exception as exc:  # the channel layer (Redis) is down: this worker's listeners still hear it
            log.warning("subscription event not shared with other workers: %s: %s", type(exc).__name__, exc)
            await self._local.publish(event)

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        return self._local.subscribe(listener)

    async def join(self) -> None:
        """Be in the group, receiving, before this returns (idempotent, once per event loop)."""
        await self._member.join()

    async def _received(self, message: dict) -> None:
        event = from_wire(message)
        if event is not None:
            await self._local.publish(event)

    async def close(self) -> None:
        await self._member.leave()


bus = ChannelLayerBus()
