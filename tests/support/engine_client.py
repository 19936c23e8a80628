"""MCP client for engine tests: the ``mcp`` SDK's client connected to an ``MCPServer``
over memory streams, with no HTTP, guard or session in between; for tools and middleware.
The server side is the engine's own driver for one client over a stream pair
(``engine/drivers.serve_streams``).

Like the real transports, it attaches a ``RequestInfo`` (the caller) to every
message it delivers to the server; an ``mcp.Client`` drives the other end
through the handshake era, as the SDK's own in-memory transport does.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial

import anyio
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import ServerMessageMetadata, SessionMessage

from mcp_app.engine.drivers import serve_streams
from mcp_app.engine.server import initialization_options_for
from mcp_app.principal import Principal, RequestInfo

SESSION_ID = "0123456789abcdef0123456789abcdef"


def request_info(user_id=1, username="alice", client_id="test-client", scopes=("mcp",)) -> RequestInfo:
    principal = Principal(
        user_id=user_id,
        username=username,
        client_id=client_id,
        client_name="Test client",
        scopes=frozenset(scopes),
        token_checksum="0" * 64,
        expires=datetime.now(UTC) + timedelta(hours=1),
    )
    return RequestInfo(principal=principal, session_id=SESSION_ID)


@asynccontextmanager
async def tagged_streams(server: MCPServer, info: RequestInfo | None):
    """``(read, write)`` streams for a client of ``server``; what the client writes
    reaches the server carrying ``info`` as its request context."""
    lowlevel = server._lowlevel_server
    client_write, relay_read = anyio.create_memory_object_stream[SessionMessage](0)
    relay_write, server_read = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    server_write, client_read = anyio.create_memory_object_stream[SessionMessage | Exception](0)

    async def relay() -> None:
        async with relay_read, relay_write:
            async for message in relay_read:
                metadata = ServerMessageMetadata(request_context=info)
                await relay_write.send(SessionMessage(message.message, metadata=metadata))

    async with anyio.create_task_group() as tasks, client_read:
        tasks.start_soon(relay)
        options = initialization_options_for(lowlevel)
        tasks.start_soon(partial(serve_streams, lowlevel, server_read, server_write, init_options=options))
        try:
            yield client_read, client_write
        finally:
            await client_write.aclose()  # EOF: the relay ends, then the server


@asynccontextmanager
async def connect(server: MCPServer, info: RequestInfo | None = None) -> AsyncIterator[Client]:
    async with Client(tagged_streams(server, info), mode="legacy") as client:
        yield client
