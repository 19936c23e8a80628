"""Per-address rate limits on the OAuth endpoints, applied in one place (oauth_app/urls.py).

Each endpoint lets one address make `limit` requests in any `window` seconds: a moving
window, kept as the times of the requests it accepted within the last window. A fixed
window (a counter per calendar minute) would let a burst at the end of one window and
another at the start of the next through, twice the limit in a moment; here a request is
accepted only if fewer than `limit` were accepted in the `window` seconds before it.
Refused requests are not recorded, so `Retry-After` is exact: it says when the oldest
accepted request leaves the window, and a request sent then is accepted.

Where the times live: with REDIS_URL, in Redis, shared by every worker (a sorted set per
endpoint and address, read and changed by one Lua script, so workers racing on one
address cannot both take its last place); without it, in this process. The clock is
`time.time()`, read at each request: in Redis the workers' clocks meet, so they must agree
(NTP), as for token expiry. Each endpoint's limit is read from settings at request time,
so tests (and a settings change) take effect without a restart. Over the limit the client
gets 429 with `Retry-After` and an RFC 6749-shaped body (`temporarily_unavailable`).
Not the `limits` library's moving window (mcp_app uses its fixed window): its Redis form
walks a list by index and needs a second round trip to tell when a place frees up, and
its in-process form keeps an expiry timer thread scanning every key.

If Redis cannot be reached, the limits cannot be counted, and letting everything through
would lift them: the endpoint answers 503 with `Retry-After`, like the rest of the site
with Redis down. One log line says so when it starts and one when Redis answers again;
in between Redis is asked again every UNAVAILABLE_RETRY_SECONDS, not on every request,
so a Redis that hangs costs one request its timeout, not each of them.

The address counted is REMOTE_ADDR, which mcpsite/proxy_headers.py has already
replaced with the client's real address when the sender is a trusted proxy. IPv6
addresses are counted by /64, since one host usually owns a whole /64 and could
otherwise rotate through it.
"""

import functools
import ipaddress
import logging
import math
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from django.conf import settings
from django.shortcuts import render
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from oauth_app.client_address import client_address
from oauth_app.errors import oauth_error

log = logging.getLogger(__name__)

# Requests whose address is unknown (no REMOTE_ADDR, e.g. a Unix socket without a
# proxy header) share one bucket rather than escaping the limit.
UNKNOWN_ADDRESS = "0.0.0.0"
IPV6_PREFIX = 64
# Told to clients when the store (Redis) cannot be reached; also how long it is left alone then.
UNAVAILABLE_RETRY_SECONDS = 5
REDIS_KEY_PREFIX = "mcp:oauth-limit:"
# How often the in-process store drops the addresses whose requests have all left their window.
SWEEP_SECONDS = 60.0


def counted_address(request) -> str:
    """What one address's requests are counted under: the address, or its /64 for IPv6."""
    address = client_address(request)
    if address is None:
        return UNKNOWN_ADDRESS
    parsed = ipaddress.ip_address(address)
    if parsed.version == 6:
        if parsed.ipv4_mapped is not None:  # an IPv4 client seen through a dual-stack socket
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return address


@dataclass(frozen=True)
class Limit:
    setting: str  # the setting holding how many requests one address may make per window
    window_seconds: int
    what: str  # for the error description
    page: bool = False  # a browser page: answer with HTML rather than JSON


LIMITS = {
    "register": Limit("MCP_REGISTRATIONS_PER_HOUR", 3600, "client registrations"),
    # RFC 7592 /register/<client_id>: counted before the registration access token is looked
    # at, so guessing tokens costs requests like anything else.
    "register-management": Limit(
        "MCP_REGISTRATION_MANAGEMENT_REQUESTS_PER_MINUTE", 60, "client configuration requests"
    ),
    "token": Limit("MCP_TOKEN_REQUESTS_PER_MINUTE", 60, "token requests"),
    "revoke": Limit("MCP_REVOKE_REQUESTS_PER_MINUTE", 60, "revocation requests"),
    # A person's browser lands here, so the answer is a page they can read. RFC 6749
    # §4.1.2.1 would send `temporarily_unavailable` back to the client's redirect URI,
    # but only after validating the client and redirect URI, the very work the limit
    # is there to bound; and the client could only show the person the same message.
    "authorize": Limit("MCP_AUTHORIZE_REQUESTS_PER_MINUTE", 60, "authorization requests", page=True),
}


class StoreUnavailable(Exception):
    """The moving windows cannot be read (Redis is down)."""


class LocalWindows:
    """Moving windows in this process: per key, the times of the requests accepted in its
    last window, oldest first (at most `limit` of them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # sync views run in several threads
        self._accepted: dict[str, tuple[float, deque]] = {}  # key -> (window, accepted times)
        self._next_sweep = 0.0

    def hit(self, key: str, limit: int, window: float, now: float) -> float | None:
        """Accept one request of `key` at `now` (None), or refuse it: seconds until one may pass."""
        with self._lock:
            if now >= self._next_sweep:
                self._accepted = {k: (w, t) for k, (w, t) in self._accepted.items() if t and t[-1] > now - w}
                self._next_sweep = now + SWEEP_SECONDS
            entry = self._accepted.get(key)
            if entry is None:
                entry = self._accepted[key] = (window, deque())
            times = entry[1]
            while times and times[0] <= now - window:
                times.popleft()
            if len(times) >= limit:
                # The request that must leave the window first: the limit-th most recent.
                return times[len(times) - limit] + window - now
            times.append(now)
            return None

    def clear(self) -> None:
        with self._lock:
            self._accepted.clear()


# KEYS[1]: sorted set of the accepted requests of one endpoint and address, scored by time.
# ARGV: now, the time at or before which a request has left the window, the limit, a member
# name unique to this request, the key's lifetime in ms. Returns nil when the request is
# accepted (and recorded), else the time of the accepted request that must leave first.
_MOVING_WINDOW_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local count = redis.call('ZCARD', KEYS[1])
local limit = tonumber(ARGV[3])
if count >= limit then
    return redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')[2]
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return false
"""


class RedisWindows:
    """Moving windows in Redis, shared by every worker: one script call per request."""

    def __init__(self, url: str) -> None:
        # As the site's other Redis clients (settings): short timeouts, and one retry on a
        # fresh connection for a connection left from before a Redis restart.
        timeout = settings.REDIS_CONNECT_TIMEOUT_SECONDS
        self._redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[RedisConnectionError],
        )
        self._script = self._redis.register_script(_MOVING_WINDOW_SCRIPT)

    def hit(self, key: str, limit: int, window: float, now: float) -> float | None:
        # Times travel as repr() strings, which Redis reads back to the same double: the
        # window's edge is where the in-process store puts it.
        member = f"{now!r}:{secrets.token_hex(6)}"  # two requests at one instant are two entries
        blocking = self._script(
            keys=[REDIS_KEY_PREFIX + key],
            args=[repr(now), repr(now - window), limit, member, math.ceil(window * 1000)],
        )
        return None if blocking is None else float(blocking) + window - now


class Windows:
    """Where each request is counted: Redis when REDIS_URL is set (503 while it is down),
    else this process."""

    def __init__(self) -> None:
        self.local = LocalWindows()
        self._lock = threading.Lock()
        self._redis: tuple[str, RedisWindows] | None = None  # (URL, its windows)
        self._retry_at: float | None = None  # set while Redis is down: when to ask it again

    def hit(self, key: str, limit: int, window: float) -> float | None:
        now = time.time()
        url = settings.REDIS_URL
        if not url:
            return self.local.hit(key, limit, window, now)
        redis = self._redis_windows(url)
        retry_at = self._retry_at
        # Left alone until retry_at; a clock set back past the failure does not stretch that.
        if retry_at is not None and retry_at - UNAVAILABLE_RETRY_SECONDS <= now < retry_at:
            raise StoreUnavailable
        try:
            retry_after = redis.hit(key, limit, window, now)
        except (RedisError, OSError) as error:
            with self._lock:
                first = self._retry_at is None
                self._retry_at = now + UNAVAILABLE_RETRY_SECONDS
            if first:  # once per outage, not once per request
                log.warning(
                    "OAuth rate limits: Redis unavailable (%s: %s); the limited endpoints answer 503 "
                    "until it answers again (asked every %s s)",
                    type(error).__name__,
                    error,
                    UNAVAILABLE_RETRY_SECONDS,
                )
            raise StoreUnavailable from error
        if self._retry_at is not None:
            with self._lock:
                back, self._retry_at = self._retry_at is not None, None
            if back:
                log.info("OAuth rate limits: Redis answers again; counting there")
        return retry_after

    def _redis_windows(self, url: str) -> RedisWindows:
        with self._lock:
            if self._redis is None or self._redis[0] != url:
                self._redis = (url, RedisWindows(url))
                self._retry_at = None  # another Redis: nothing is known about it yet
            return self._redis[1]

    def clear(self) -> None:
        """Forget this process's windows and Redis state (tests start each from nothing)."""
        self.local.clear()
        with self._lock:
            self._redis = None
            self._retry_at = None


windows = Windows()


def rate_limited(group: str, view):
    """`view`, with the per-address limit of endpoint `group` (a key of LIMITS) in front."""
    limit = LIMITS[group]

    @functools.wraps(view)  # keeps csrf_exempt and the other marks Django reads off the view
    def limited_view(request, *args, **kwargs):
        # CORS preflights are answered by corsheaders before they get here; any other
        # OPTIONS costs nothing and is not counted either.
        if request.method == "OPTIONS":
            return view(request, *args, **kwargs)
        count = getattr(settings, limit.setting)
        try:
            retry_after = windows.hit(f"{group}:{counted_address(request)}", count, limit.window_seconds)
        except StoreUnavailable:
            return _unavailable(request, limit)
        if retry_after is not None:
            # At most the window, the longest a client should ever wait: more would come from
            # requests timed ahead of this clock (another worker's clock, or this one set back).
            seconds = min(limit.window_seconds, max(1, math.ceil(retry_after)))
            return _too_many(request, limit, retry_after=seconds)
        return view(request, *args, **kwargs)

    return limited_view


def _too_many(request, limit: Limit, retry_after: int):
    description = f"Too many {limit.what} from this address; try again in {retry_after} seconds."
    return _answer(request, limit, 429, description, retry_after)


def _unavailable(request, limit: Limit):
    description = "The server cannot take this request right now; try again shortly."
    return _answer(request, limit, 503, description, UNAVAILABLE_RETRY_SECONDS)


def _answer(request, limit: Limit, status: int, description: str, retry_after: int):
    if not limit.page:
        return oauth_error("temporarily_unavailable", description, status=status, Retry_After=str(retry_after))
    response = render(
        request,
        "oauth/error.html",
        {"error": "temporarily_unavailable", "description": description},
        status=status,
    )
    response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response
