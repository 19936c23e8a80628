"""The services the configuration names must answer: at start, and while serving.

At start (``refuse_unreachable_services``): the database of ``DATABASE_URL`` and, when
set, the Redis of ``REDIS_URL`` are asked once, each within a bounded wait (PostgreSQL's
``connect_timeout``, Redis's connect and socket time-outs); if either does not answer, the
server refuses to start, naming the variable and the cause, instead of serving pages that
look fine while ``/token`` and ``/register`` fail (found by hostile testing). daphne's
command line (and ``python -m mcpsite.serve``) asks when it loads the application; uvicorn,
at ASGI lifespan start-up, which it fails (``mcp_app/cluster/shutdown.py``).

While serving (``DatabaseUnavailable``, Django middleware; the MCP endpoints' bearer
guard does the same): a request that finds the database gone is answered 503 with
``Retry-After``, never 500, and the log line names ``DATABASE_URL``.
"""

import json
import logging

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.http import HttpResponse

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5  # what a client is told to wait when the database is away


class ServiceUnreachable(Exception):
    """A service the configuration names does not answer; the message says which and why, one a line."""


def problems() -> list[str]:
    found = []
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        found.append(f"DATABASE_URL: the database does not answer: {type(exc).__name__}: {_first_line(exc)}")
    finally:
        connection.close()
    if settings.REDIS_URL:
        import redis

        timeout = settings.REDIS_CONNECT_TIMEOUT_SECONDS
        try:
            with redis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
            ) as client:
                client.ping()
        except Exception as exc:
            found.append(f"REDIS_URL: Redis does not answer: {type(exc).__name__}: {_first_line(exc)}")
    return found


def refuse_unreachable_services() -> None:
    found = problems()
    if found:
        raise ServiceUnreachable("\n".join(found))


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def database_unavailable_response(exc: Exception, wants_html: bool) -> HttpResponse:
    log.warning("database unavailable (DATABASE_URL): %s: %s; answered 503", type(exc).__name__, _first_line(exc))
    if wants_html:
        body, content_type = b"<h1>Service unavailable</h1><p>Please try again in a moment.</p>", "text/html"
    else:
        error = {"error": "temporarily_unavailable", "error_description": "The database is unavailable; retry."}
        body, content_type = json.dumps(error).encode(), "application/json"
    response = HttpResponse(body, status=503, content_type=content_type)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailable:
    """Django middleware: a view that met a lost database is answered 503 with Retry-After."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, (OperationalError, InterfaceError)) or type(exception) is DatabaseError:
            return database_unavailable_response(exception, "text/html" in request.headers.get("Accept", ""))
        return None


def checked_lifespan(inner):
    """The ASGI lifespan ``inner``, refusing start-up (``lifespan.startup.failed``: uvicorn exits)
    when ``problems()`` finds a service that does not answer."""

    async def lifespan(scope, receive, send):
        import asyncio

        first = await receive()
        if first["type"] == "lifespan.startup":
            found = await asyncio.to_thread(problems)
            if found:
                message = "a service the configuration names does not answer:\n" + "\n".join(found)
                log.error("Refusing to start: %s", message)
                await send({"type": "lifespan.startup.failed", "message": message})
                return
        pending = [first]

        async def receive_again():
            return pending.pop() if pending else await receive()

        await inner(scope, receive_again, send)

    return lifespan
