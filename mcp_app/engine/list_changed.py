"""List-changed notifications: ``notifications/{tools,resources,prompts}/list_changed``.

``announce_list_changed(kind)`` tells every initialized session of this
process that a list changed, on its standalone stream, so clients list again.

The capabilities say so (``listChanged: true``): the sessions pass
``engine.server.initialization_options()`` to the SDK's loop.
"""

from typing import Literal

from mcp_types import PromptListChangedNotification, ResourceListChangedNotification, ToolListChangedNotification

from mcp_app.engine.connected import notify, reachable_clients

ListKind = Literal["tools", "resources", "prompts"]
NOTIFICATIONS = {
    "tools": ToolListChangedNotification,
    "resources": ResourceListChangedNotification,
    "prompts": PromptListChangedNotification,
}


async def announce_list_changed(kind: ListKind) -> int:
    """Send the ``kind`` list-changed notification to every initialized session; how many there were."""
    return await notify(reachable_clients(), NOTIFICATIONS[kind]())
