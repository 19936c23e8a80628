"""GET /healthz for load balancers: 200 when the database, the channel layer and
the cache answer, 503 (saying which did not) otherwise. Each check is bounded,
so a dead dependency gives a fast 503, never a hung probe.

Served as a bare ASGI app ahead of Django: a load balancer probes by address,
and Django's Host check would refuse it.
"""

import asyncio
import json

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection

CHECK_TIMEOUT_SECONDS = 3


def _query_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def _database() -> None:
    await database_sync_to_async(_query_database)()


async def _channel_layer() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel(settings.CHANNEL_PREFIX)
    await layer.send(channel, {"type": "health.ping"})
    await layer.receive(channel)


async def _cache() -> None:
    await cache.aset("health:ping", 1, timeout=10)
    if await cache.aget("health:ping") != 1:
        raise RuntimeError("the cache did not return what was stored")


CHECKS = {"database": _database, "channel_layer": _channel_layer, "cache": _cache}


async def _run(check) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
        return "ok"
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_SECONDS}s"
    except Exception as exc:  # any failure of a dependency is the answer, not a crash
        return f"{type(exc).__name__}: {str(exc)[:200]}"


async def healthz(scope, receive, send) -> None:
    if scope["method"] not in ("GET", "HEAD"):
        await _respond(send, 405, {"error": "method_not_allowed"}, [(b"allow", b"GET, HEAD")])
        return
    results = dict(zip(CHECKS, await asyncio.gather(*(_run(check) for check in CHECKS.values())), strict=True))
    healthy = all(result == "ok" for result in results.values())
    await _respond(send, 200 if healthy else 503, {"status": "ok" if healthy else "unavailable", **results})


async def _respond(send, status: int, body: dict, headers=()) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": payload})
