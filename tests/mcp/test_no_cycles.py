"""What a session or a request leaves behind when it ends: nothing that only the cyclic
garbage collector can free (``engine/drivers.py``).

The SDK's own drivers left each session's and each stateless request's runner in a
reference cycle with everything it reached; under churn that memory waited for the
collector's rare full passes and the heap kept growing (the 60-minute soak). Here the
collector is switched off while sessions and requests run and end through the real ASGI
application: everything they built must already be gone by reference counting, and a
collection afterwards must find nothing of theirs.
"""

import gc
from collections import Counter

import pytest
from mcp.server.connection import Connection
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext

from mcp_app.engine.drivers import serve_request
from mcp_app.engine.exchange import Exchange
from mcp_app.engine.server import get_server
from tests.mcp.test_stateless import call as stateless_call
from tests.support.asgi_client import LegacySSEClient, StreamableHTTPClient, close_stream, open_get_stream

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio, pytest.mark.usefixtures("worker")]

ROUNDS = 20
ADD = {"name": "add", "arguments": {"a": 1, "b": 2}}
# What a session or request builds in the SDK, and the server's own per-request object.
WATCHED = (
    "ServerRunner",
    "JSONRPCDispatcher",
    "Connection",
    "ServerSession",
    "InitializeRequestParams",
    "_MemoryObjectStreamState",
    "RequestInfo",
    "MCPSession",
)


def live_objects() -> Counter:
    return Counter(name for o in gc.get_objects() if (name := type(o).__name__) in WATCHED)


async def streamable_http_session(app, token) -> None:
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    reply = await client.request("tools/call", ADD)
    assert reply["result"]["structuredContent"]["result"] == 3
    stream = await open_get_stream(app, "/mcp", client.headers(accept="text/event-stream"))
    await close_stream(stream)
    await client.close()


async def legacy_sse_session(app, token) -> None:
    client = LegacySSEClient(app, token)
    await client.initialize()
    reply = await client.request("tools/call", ADD)
    assert reply["result"]["structuredContent"]["result"] == 3
    await client.close()


async def stateless_request(app, token) -> None:
    reply = await stateless_call(app, token, "tools/call", ADD)
    assert reply["result"]["structuredContent"]["result"] == 3


@pytest.mark.parametrize("run", [streamable_http_session, legacy_sse_session, stateless_request])
async def test_ended_sessions_and_requests_are_freed_without_the_cycle_collector(app, token, run):
    for _ in range(3):  # first uses fill caches (URL resolvers, the token cache, compiled schemas)
        await run(app, token)
    gc.collect()
    before = live_objects()
    gc.disable()
    try:
        for _ in range(ROUNDS):
            await run(app, token)
        left = live_objects() - before
        gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection would free stays inspectable in gc.garbage
        gc.collect()
        garbage = Counter(type(o).__name__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not left, f"still alive after {ROUNDS} ended: {dict(left)}"
    assert not garbage, f"cyclic garbage left by {ROUNDS} ended: {garbage.most_common(12)}"


async def test_a_request_unwinds_what_was_registered_on_its_connection():
    """The request driver skips the shielded unwind only when nothing was registered."""

    async def ignore(message):
        pass

    unwound = []
    connection = Connection.from_envelope("2026-07-28", {"name": "tests", "version": "1"}, {})
    connection.exit_stack.callback(unwound.append, "clean-up ran")
    exchange = Exchange(
        transport=TransportContext(kind="streamable-http", can_send_request=False, headers={}),
        request_id=1,
        message_metadata=ServerMessageMetadata(),
        on_notification=ignore,
    )
    with pytest.raises(MCPError):  # no ping in this era: the request fails, and still unwinds
        await serve_request(get_server(), exchange, "ping", None, connection=connection, lifespan_state=None)
    assert unwound == ["clean-up ran"]
