"""List-changed notifications: ``notifications/{tools,resources,prompts}/list_changed``.

``announce_list_changed(kind)`` tells every initialized session of this
process that a list changed, on its standalone stream, so clients list again.

The capabilities must say so (``listChanged: true``). The SDK derives them from
``NotificationOptions`` that only the caller of ``serve_loop`` can pass, so a
middleware sets the flags on the answer to ``initialize`` instead: the SDK's
documented place to wrap the handshake.
"""

from collections.abc import Mapping
from typing import Any, Literal

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp_types import PromptListChangedNotification, ResourceListChangedNotification, ToolListChangedNotification

from mcp_app.session_state import notify_sessions, reachable_sessions

INITIALIZE = "initialize"
ListKind = Literal["tools", "resources", "prompts"]
NOTIFICATIONS = {
    "tools": ToolListChangedNotification,
    "resources": ResourceListChangedNotification,
    "prompts": PromptListChangedNotification,
}


async def advertise_list_changed(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Server middleware: ``listChanged: true`` on every list capability the server has."""
    result = await call_next(ctx)
    if ctx.method == INITIALIZE and isinstance(result, dict):
        capabilities = result.get("capabilities")
        if isinstance(capabilities, Mapping):
            for kind in NOTIFICATIONS:
                if isinstance(capabilities.get(kind), dict):
                    capabilities[kind]["listChanged"] = True
    return result


def install_list_changed(server: MCPServer) -> None:
    server.middleware.append(advertise_list_changed)


async def announce_list_changed(kind: ListKind) -> int:
    """Send the ``kind`` list-changed notification to every initialized session; how many there were."""
    return await notify_sessions(reachable_sessions(), NOTIFICATIONS[kind]())
