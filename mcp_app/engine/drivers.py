"""How the engine runs the SDK for a 2025 session and for one 2026 request, leaving no
reference cycle behind.

The SDK's own drivers (``serve_loop`` for a session, ``serve_one`` for a request) build a
``ServerRunner`` and hand its ``on_request`` / ``on_notify`` to the dispatcher. Those two
are ``cached_property``s that return the runner's own bound methods, so once read they sit
in the runner's ``__dict__`` and the runner holds itself. When the session or the request
ends, the runner and everything it reaches (its connection, the dispatcher and its streams,
the client's ``initialize`` parameters, the request contexts: about 45 objects per
session) become cyclic garbage, freed only by the garbage collector's next full pass, which
comes ever more rarely as the heap grows. Under churn that is memory held for nothing and a
heap that keeps growing (the soak's late rise, ``docs/performance.md``), and work for the
collector on every pass.

``serve_session`` and ``serve_request`` do what those drivers do, and forget the cached
methods when the runner is done, so reference counting frees it all at once.
``tests/mcp/test_no_cycles.py`` holds them to that with the collector switched off.

``serve_session`` serves one loop of a session on a connection the caller keeps: a session
of ``sessions/session.py`` ends its loop while idle and serves its next messages from a new
one on the same connection. ``serve_streams`` is a session's whole life in one loop over a
stream pair, with its own lifespan and connection (the engine's tests drive it).

One more difference, for the request: the connection's exit stack (where a handler may
register clean-up) is unwound under the SDK's shielded, time-bounded scope only when
something was registered. Nothing is, on almost every request, and building that scope was
2-3% of a busy worker's time (py-spy at 32 users).
"""

from collections.abc import Callable, Mapping
from typing import Any

import anyio
from mcp.server.connection import Connection
from mcp.server.lowlevel import Server
from mcp.server.models import InitializationOptions
from mcp.server.runner import ServerRunner, aclose_shielded
from mcp.shared.dispatcher import DispatchContext
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp.shared.transport_context import TransportContext

from mcp_app.engine.connected import attach
from mcp_app.protocol.names import INITIALIZE

__all__ = ["serve_request", "serve_session", "serve_streams", "session_dispatcher"]

# The runner's cached properties that hold its own bound methods.
_SELF_REFERENCES = ("on_request", "on_notify")


def _release(runner: ServerRunner) -> None:
    for name in _SELF_REFERENCES:
        vars(runner).pop(name, None)


def session_dispatcher(read_stream, write_stream) -> JSONRPCDispatcher:
    """The dispatcher of one handshake-era session loop over its stream pair."""
    # `initialize` is handled inline, so a request the client sends right behind it (allowed,
    # if discouraged) already sees the session initialized.
    return JSONRPCDispatcher(read_stream, write_stream, inline_methods=frozenset({INITIALIZE}))


async def serve_session(
    server: Server,
    dispatcher: JSONRPCDispatcher,
    connection: Connection,
    *,
    lifespan_state: Any,
    init_options: InitializationOptions,
    wrap: Callable[[Callable], Callable] = lambda handler: handler,
    task_status=anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a handshake-era session's messages until the dispatcher's inbound stream ends (the
    SDK's ``serve_loop``). The connection is the caller's and outlives the loop: a session may
    serve its next messages from a new loop on the same connection (``sessions/session.py``).
    ``wrap`` wraps the request and the notification handler (the session counts what runs);
    ``task_status`` is told once the dispatcher can send requests."""
    runner = ServerRunner(server, connection, lifespan_state, init_options=init_options)
    try:
        await dispatcher.run(wrap(runner.on_request), wrap(runner.on_notify), task_status=task_status)
    finally:
        _release(runner)


async def serve_streams(server: Server, read_stream, write_stream, *, init_options: InitializationOptions) -> None:
    """Serve one handshake-era client over a stream pair until its inbound stream closes: the
    whole life of a session in one loop, with its lifespan and its own connection (the engine's
    tests drive it so; a session of ``sessions/session.py`` sleeps between loops instead)."""
    dispatcher = session_dispatcher(read_stream, write_stream)
    connection = Connection.for_loop(dispatcher)
    try:
        async with server.lifespan(server) as state:
            attach(state, connection)
            await serve_session(server, dispatcher, connection, lifespan_state=state, init_options=init_options)
    finally:
        await aclose_shielded(connection)


async def serve_request(
    server: Server,
    dctx: DispatchContext[TransportContext],
    method: str,
    params: Mapping[str, Any] | None,
    *,
    connection: Connection,
    lifespan_state: Any,
) -> dict[str, Any]:
    """Serve one request and return its result, or raise what its handlers raised (the SDK's
    ``serve_one``)."""
    runner = ServerRunner(server, connection, lifespan_state)
    try:
        return await runner.on_request(dctx, method, params)
    finally:
        _release(runner)
        # contextlib's list of what the stack will unwind; if it is ever renamed, always unwind.
        if getattr(connection.exit_stack, "_exit_callbacks", True):
            await aclose_shielded(connection)
