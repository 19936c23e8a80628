"""Ending every session when the server stops.

A session that ran a plain (sync) function keeps an anyio worker thread,
which only stops when its session task ends; left alone, it keeps the
process alive after SIGTERM. daphne sends no ASGI lifespan events, so under
daphne the sessions are closed from a Twisted shutdown trigger; under servers
that do send lifespan events (uvicorn), from `lifespan.shutdown`. The tasks
this process runs are stopped (each fails, saying the server stopped: no other
worker can resume a call). Then the audit rows still being written
(`engine/audit.py`) are waited for.
"""

import asyncio
import logging
import sys

log = logging.getLogger(__name__)


async def close_all_sessions() -> None:
    from mcp_app.cluster import directory
    from mcp_app.engine import audit
    from mcp_app.engine.tasks import runner

    await directory.this_worker.shutdown()
    await runner.stop_everything_here()
    await audit.flush()  # the audit rows of the last calls, if a write is still under way


def close_sessions_when_daphne_stops() -> None:
    if "twisted.internet.reactor" not in sys.modules:
        return  # not under daphne
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: Deferred.fromFuture(asyncio.ensure_future(close_all_sessions()))
    )


async def lifespan(scope, receive, send) -> None:
    """The ASGI lifespan protocol, for servers that speak it."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await close_all_sessions()
            await send({"type": "lifespan.shutdown.complete"})
            return
