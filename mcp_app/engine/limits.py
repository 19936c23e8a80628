"""Abuse limits on ``tools/call``: a rate per access token, a number of calls running at
once per session, and a time limit per call.

``limit_tool_calls`` is a low-level server middleware; ``install_limits(server)`` adds it
*after* the audit middleware, i.e. inside it, so that the audit trail records what the
limits do: a refused call as a protocol error with the code below, a call that ran out of
time as a tool error.

- **Rate** (``MCP_TOOL_CALLS_PER_MINUTE``, 0 = off): calls per person and OAuth client in
  fixed one-minute windows, each starting at the first call in it. Not per access token:
  a client that refreshes gets a new token, and must not get a new allowance with it (nor
  may a second session or a retried authorization). Past the limit a call
  is refused with JSON-RPC error ``RATE_LIMITED``, whose ``data.retryAfter`` says in how
  many seconds the window ends (refused calls count too). With ``REDIS_URL`` the counters
  live in Redis, shared by every worker: the ``limits`` library's fixed window on
  redis-py's asyncio client, one round trip per call, on the event loop, never a thread.
  If Redis fails, the call is *not* failed: this worker counts on its own (the limit then
  holds per worker) for ``REDIS_RETRY_SECONDS``, says so in one log line, and tries Redis
  again after that. Without Redis the counters are this process's.
- **Concurrency** (``MCP_MAX_CONCURRENT_CALLS_PER_SESSION``, 0 = off): a call arriving
  while that many calls of its session are running is refused with
  ``TOO_MANY_RUNNING_CALLS``. A session is owned by one worker, so the count is in-process.
  A stateless-era call has no session: its token's calls running in this worker count instead.
- **Tasks**: a call that runs as a task (``engine/tasks/``) was counted when the request that
  created it was; its own run is not counted again, and its time limit is
  ``MCP_TASK_TIMEOUT_SECONDS``.
- **Time** (``MCP_TOOL_CALL_TIMEOUT_SECONDS``): past it the call is cancelled (an anyio
  cancel scope around the handler, which the SDK runs under anyio) and answered as a
  tool error, ``isError: true`` with "Tool call timed out after N s". A tool cancels at
  its next ``await``; a tool the SDK runs in a worker thread (a plain function, see
  ``mcp_app.tools``) is answered once the thread returns, since a thread cannot be
  interrupted. The limit also bounds a call whose POST went away: Streamable HTTP keeps
  such a call running, detached, so that the client can resume its stream
  (``mcp_app.sessions``). The session ending (DELETE, the legacy SSE stream closing)
  cancels every call still running in it; a session with a call running is in use, so
  it does not expire before the time limit has ended the call.

The common path costs no thread hop and no task: two dictionary operations, a cancel
scope (a timer handle), and, with Redis, one awaited round trip.
"""

import asyncio
import logging
import math
import time
from typing import Any

import anyio
from django.conf import settings
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from mcp_app.engine.tasks.current import current_task
from mcp_app.principal import Principal, RequestInfo
from mcp_app.protocol.errors import RATE_LIMITED, TOO_MANY_RUNNING_CALLS
from mcp_app.protocol.names import STATELESS_PROTOCOL_VERSIONS, TOOLS_CALL

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# After a Redis failure, count in-process this long before trying Redis again: a Redis that is
# down must not add its connect timeout to every call.
REDIS_RETRY_SECONDS = 10.0
_REDIS_KEY_PREFIX = "mcp:limits"
_RATE_NAMESPACE = "tools-call"


def install_limits(server: MCPServer) -> None:
    """Limit every ``tools/call`` that ``server`` answers; install after ``install_audit``."""
    server.middleware.append(limit_tool_calls)


async def limit_tool_calls(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Server middleware: refuse a ``tools/call`` over the limits, bound the time of the others."""
    if ctx.method != TOOLS_CALL or ctx.request_id is None:
        return await call_next(ctx)
    # A task's own call was counted when the request that created the task was; it has its own time limit.
    in_task = current_task() is not None
    # Calls come from the transports with the caller attached; one without (in-process tests
    # of tools) has no token and no session to count against, only the time limit applies.
    info = ctx.request if isinstance(ctx.request, RequestInfo) and not in_task else None
    session_key = _start_running(_running_key(info)) if info is not None else None
    try:
        if info is not None:
            await _check_rate(rate_key(info.principal))
        timeout = settings.MCP_TASK_TIMEOUT_SECONDS if in_task else settings.MCP_TOOL_CALL_TIMEOUT_SECONDS
        with anyio.move_on_after(timeout):
            return await call_next(ctx)
        # Only the deadline gets here: any other cancellation (the client's notifications/cancelled,
        # the session ending) propagates through the scope.
        return _timed_out(timeout, stateless=ctx.protocol_version in STATELESS_PROTOCOL_VERSIONS)
    finally:
        if session_key is not None:
            _stop_running(session_key)


def _timed_out(timeout: float, *, stateless: bool) -> dict[str, Any]:
    # The wire form, as the handler chain returns it (a middleware that answers owns the envelope,
    # and every stateless-era result says what kind of result it is).
    result = {"content": [{"type": "text", "text": f"Tool call timed out after {timeout:g} s"}], "isError": True}
    if stateless:
        result["resultType"] = "complete"
    return result


_TOKEN_KEY = "token:"  # prefix of a stateless-era caller's key (session ids never contain ':')


def _running_key(info: RequestInfo) -> str:
    """What calls running at once are counted by: the session, or the token for stateless-era calls."""
    return info.session_id or f"{_TOKEN_KEY}{info.principal.token_checksum}"


# -- calls running at once, per session -----------------------------------------------------
_running: dict[str, int] = {}  # session id -> calls running; a session with none has no entry


def _start_running(session_id: str) -> str | None:
    """Count one more running call of ``session_id``, or refuse it; the key to release, if counted."""
    limit = settings.MCP_MAX_CONCURRENT_CALLS_PER_SESSION
    if not limit:
        return None
    running = _running.get(session_id, 0)
    if running >= limit:
        # Named as the caller knows it: a stateless-era caller has no session, only its token.
        counted = "for this access token" if session_id.startswith(_TOKEN_KEY) else "in this session"
        raise MCPError(
            TOO_MANY_RUNNING_CALLS,
            f"Too many tool calls running: at most {limit} at once {counted}; retry when one has finished",
            {"maxConcurrentCalls": limit},
        )
    _running[session_id] = running + 1  # counted before any await, so concurrent arrivals see it
    return session_id


def _stop_running(session_id: str) -> None:
    left = _running[session_id] - 1
    if left:
        _running[session_id] = left
    else:
        del _running[session_id]


def running_calls(session_id: str) -> int:
    """How many calls of ``session_id`` are running in this process."""
    return _running.get(session_id, 0)


# -- calls per person and client per minute ---------------------------------------------------
def rate_key(principal: Principal) -> str:
    """What the rate counts by: the person and the OAuth client, across every token of theirs."""
    return f"{principal.user_id}:{principal.client_id}"


async def _check_rate(key: str) -> None:
    limit = settings.MCP_TOOL_CALLS_PER_MINUTE
    if not limit:
        return
    retry_after = await _counters.hit(key, limit)
    if retry_after is not None:
        seconds = max(1, math.ceil(retry_after))
        raise MCPError(
            RATE_LIMITED,
            f"Rate limit exceeded: {limit} tools/call per minute for you through this client; retry in {seconds} s",
            {"retryAfter": seconds, "limit": limit},
        )


class LocalCounter:
    """Calls per key in this process, in fixed one-minute windows that start at a key's
    first call (as ``limits``' fixed window does in Redis).

    Not the ``limits`` library's in-memory storage: that one starts an expiry task on
    nearly every hit and scans every key in it. Here a hit is a dictionary update; once a
    minute the keys whose window has ended are dropped, each of them paid for by a call.
    """

    def __init__(self) -> None:
        self._windows: dict[str, list] = {}  # key -> [window end (monotonic), calls in it]
        self._next_sweep = 0.0

    def hit(self, key: str, limit: int) -> float | None:
        """Count one call of ``key``; None if within ``limit``, else seconds until its window ends."""
        now = time.monotonic()
        if now >= self._next_sweep:
            self._windows = {k: w for k, w in self._windows.items() if w[0] > now}
            self._next_sweep = now + WINDOW_SECONDS
        window = self._windows.get(key)
        if window is None or window[0] <= now:
            window = self._windows[key] = [now + WINDOW_SECONDS, 0]
        window[1] += 1
        return None if window[1] <= limit else window[0] - now


class RedisCounter:
    """Calls per key in fixed one-minute windows kept in Redis (``limits``' fixed-window
    strategy: an atomic INCR that sets the key's expiry on the window's first call).

    Async redis-py connections belong to the event loop that opened them: a counter
    serves one loop (``_counter`` makes one per loop).
    """

    def __init__(self, url: str) -> None:
        from limits.aio.storage import RedisStorage
        from limits.aio.strategies import FixedWindowRateLimiter
        from redis.asyncio import ConnectionPool

        # Timeouts as for every Redis client of this project (settings): a hung Redis costs a
        # call seconds at most, then the local fallback takes over.
        timeout = settings.REDIS_CONNECT_TIMEOUT_SECONDS
        pool = ConnectionPool.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        # The URL given to `limits` only picks its redis-py bridge; the pool is REDIS_URL's.
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix=_REDIS_KEY_PREFIX,
            connection_pool=pool,
        )
        self._limiter = FixedWindowRateLimiter(storage)
        self._items: dict[int, Any] = {}

    def _item(self, limit: int):
        item = self._items.get(limit)
        if item is None:
            from limits import RateLimitItemPerMinute

            item = self._items[limit] = RateLimitItemPerMinute(limit, namespace=_RATE_NAMESPACE)
        return item

    async def hit(self, key: str, limit: int) -> float | None:
        item = self._item(limit)
        if await self._limiter.hit(item, key):
            return None
        stats = await self._limiter.get_window_stats(item, key)
        return stats.reset_time - time.time()


class _Counters:
    """The counter a call uses: Redis's when REDIS_URL is set and Redis answers, else this process's."""

    def __init__(self) -> None:
        self.local = LocalCounter()
        self._shared: tuple[Any, str, RedisCounter] | None = None  # (event loop, URL, counter)
        self._redis_down_until: float | None = None  # set while Redis is being left alone after a failure

    async def hit(self, key: str, limit: int) -> float | None:
        url = settings.REDIS_URL
        if not url:
            return self.local.hit(key, limit)
        if self._redis_down_until is not None and time.monotonic() < self._redis_down_until:
            return self.local.hit(key, limit)
        try:
            retry_after = await self._redis(url).hit(key, limit)
        except Exception as exc:  # limits' StorageError, or anything else from the client: never the call's failure
            self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            log.warning(
                "tools/call rate limit: Redis unavailable (%s: %s); counting in this worker for %ss",
                type(exc).__name__,
                exc,
                REDIS_RETRY_SECONDS,
            )
            return self.local.hit(key, limit)
        if self._redis_down_until is not None:
            self._redis_down_until = None
            log.info("tools/call rate limit: Redis answers again; counting there")
        return retry_after

    def _redis(self, url: str) -> RedisCounter:
        loop = asyncio.get_running_loop()
        if self._shared is None or self._shared[0] is not loop or self._shared[1] != url:
            self._shared = (loop, url, RedisCounter(url))
        return self._shared[2]


_counters = _Counters()
