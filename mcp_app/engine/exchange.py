"""How the engine serves one request outside of any session: an ``Exchange``, the SDK's
dispatch context for it, and ``serve_exchange``.

A stateless-era POST (``stateless.py``) has no back channel: the engine's
notifications about the request go to its response stream. A task's call
(``tasks/runner.py``) builds on it with a back channel of its own.
"""

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.server.connection import Connection
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import ProgressToken, RequestId

from mcp_app.engine.connected import ConnectedClient
from mcp_app.engine.drivers import serve_request
from mcp_app.protocol import jsonrpc

Notify = Callable[[dict[str, Any]], Awaitable[None]]

# What stateless requests see as their per-session state: they have no session, and the
# features that kept per-session state (logging/setLevel, resources/subscribe) are not
# served in this era. Never in the set of notifiable clients (`connected.reachable_clients`).
_STATELESS = ConnectedClient()


@dataclass(eq=False)
class Exchange:
    """The SDK's dispatch context for one HTTP exchange: no back-channel, notifications on this request's stream.
    (A task's call has one of its own, ``tasks/runner.py``.)"""

    transport: TransportContext
    request_id: RequestId
    message_metadata: ServerMessageMetadata
    on_notification: Notify
    progress_token: ProgressToken | None = None
    can_send_request: bool = False

    @functools.cached_property
    def cancel_requested(self) -> anyio.Event:
        # Made when first asked for: no client message sets it in this era (a client cancels by
        # leaving), and most handlers never look, so most exchanges never need one (2 µs each).
        return anyio.Event()

    async def send_raw_request(self, method: str, params: Mapping[str, Any] | None, opts=None) -> dict[str, Any]:
        # The stateless era asks the client for input through input-required results, never mid-request.
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts=None) -> None:
        await self.on_notification(jsonrpc.notification(method, params))

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        if self.progress_token is None:
            return
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self.notify("notifications/progress", params)


async def serve_exchange(exchange, method: str, params: Mapping[str, Any] | None, envelope: tuple) -> dict[str, Any]:
    """Serve ``method`` through ``exchange``, for a client described by ``envelope``:
    (protocol version, client info, client capabilities) as its request's ``_meta`` gave them."""
    from mcp_app.engine.server import get_server  # here: the engine's modules (tasks too) are imported by it

    connection = Connection.from_envelope(*envelope)
    return await serve_request(get_server(), exchange, method, params, connection=connection, lifespan_state=_STATELESS)
