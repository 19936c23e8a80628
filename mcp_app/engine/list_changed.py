"""List-changed notifications: ``notifications/{tools,resources,prompts}/list_changed``.

``announce_list_changed(kind)`` tells every client that a list changed, so it
lists again: each initialized handshake-era session of this process, on its
standalone stream, and every ``subscriptions/listen`` stream that asked for
that kind, on any worker (``fanout.py``).

The capabilities say so (``listChanged: true``): the sessions pass
``engine.server.initialization_options()`` to the SDK's loop.
"""

from typing import Literal

from mcp.shared.subscriptions import PromptsListChanged, ResourcesListChanged, ToolsListChanged
from mcp_types import PromptListChangedNotification, ResourceListChangedNotification, ToolListChangedNotification

from mcp_app.engine.connected import notify, reachable_clients
from mcp_app.engine.fanout import bus

ListKind = Literal["tools", "resources", "prompts"]
NOTIFICATIONS = {
    "tools": ToolListChangedNotification,
    "resources": ResourceListChangedNotification,
    "prompts": PromptListChangedNotification,
}
EVENTS = {"tools": ToolsListChanged(), "resources": ResourcesListChanged(), "prompts": PromptsListChanged()}


async def announce_list_changed(kind: ListKind) -> int:
    """Send the ``kind`` list-changed notification to every client; how many handshake-era sessions of
    this process took it (listen streams are counted by nobody: they may be on any worker)."""
    await bus.publish(EVENTS[kind])
    return await notify(reachable_clients(), NOTIFICATIONS[kind]())
