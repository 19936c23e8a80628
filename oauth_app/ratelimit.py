"""Per-address rate limits on the OAuth endpoints, applied in one place (oauth_app/urls.py).

django-ratelimit counts requests in Django's cache: per process by default, and
shared by every worker when REDIS_URL makes the cache Redis. Each endpoint's
limit is read from settings at request time, so tests (and a settings change)
take effect without a restart. Over the limit the client gets 429 with
`Retry-After` and an RFC 6749-shaped body (`temporarily_unavailable`).

The address counted is REMOTE_ADDR, which mcpsite/proxy_headers.py has already
replaced with the client's real address when the sender is a trusted proxy.
django-ratelimit groups IPv6 addresses by /64 (RATELIMIT_IPV6_MASK), since one
host usually owns a whole /64 and could otherwise rotate through it.
"""

import functools
import logging
from dataclasses import dataclass

from django.conf import settings
from django.shortcuts import render
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError

from oauth_app.client_address import client_address
from oauth_app.errors import oauth_error

log = logging.getLogger(__name__)

# Requests whose address is unknown (no REMOTE_ADDR, e.g. a Unix socket without a
# proxy header) share one bucket rather than escaping the limit.
UNKNOWN_ADDRESS = "0.0.0.0"
# Told to clients when the counter store (Redis) cannot be reached.
UNAVAILABLE_RETRY_SECONDS = 5


def counted_address(request) -> str:
    """The address django-ratelimit counts under (RATELIMIT_IP_META_KEY)."""
    return client_address(request) or UNKNOWN_ADDRESS


@dataclass(frozen=True)
class Limit:
    setting: str  # the setting holding how many requests one address may make per window
    window_seconds: int
    what: str  # for the error description
    page: bool = False  # a browser page: answer with HTML rather than JSON


LIMITS = {
    "register": Limit("MCP_REGISTRATIONS_PER_HOUR", 3600, "client registrations"),
    "token": Limit("MCP_TOKEN_REQUESTS_PER_MINUTE", 60, "token requests"),
    "revoke": Limit("MCP_REVOKE_REQUESTS_PER_MINUTE", 60, "revocation requests"),
    # A person's browser lands here, so the answer is a page they can read. RFC 6749
    # §4.1.2.1 would send `temporarily_unavailable` back to the client's redirect URI,
    # but only after validating the client and redirect URI, the very work the limit
    # is there to bound; and the client could only show the person the same message.
    "authorize": Limit("MCP_AUTHORIZE_REQUESTS_PER_MINUTE", 60, "authorization requests", page=True),
}


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
            usage = get_usage(
                request, group=f"oauth:{group}", key="ip", rate=(count, limit.window_seconds), increment=True
            )
        except (RedisError, OSError) as error:  # the cache (Redis) is down: refuse fast, like the rest of the site
            log.warning("rate limit store unavailable for /%s: %s", group, type(error).__name__)
            return _unavailable(request, limit)
        if usage is None:  # RATELIMIT_ENABLE = False
            return view(request, *args, **kwargs)
        if usage["should_limit"]:
            if usage["time_left"] < 0:  # django-ratelimit's answer when it could not count
                return _unavailable(request, limit)
            return _too_many(request, limit, retry_after=max(1, usage["time_left"]))
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
