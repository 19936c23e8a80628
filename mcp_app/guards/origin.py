"""Host and Origin guard: DNS-rebinding protection for the MCP endpoints.

A page on ``http://evil.example`` whose name an attacker re-points at
127.0.0.1 reaches a local server with ``Host: evil.example`` and
``Origin: http://evil.example``. The Host check stops it (the endpoints skip
Django's middleware, so nothing else validates Host), and the Origin check
stops a browser page on any origin not allowed here from driving the server.

Allowed origins: no ``Origin`` header at all (non-browser clients), this
server's own origin, and ``MCP_ALLOWED_ORIGINS``. The CORS guard answers
preflights by the same rule (``refusal`` below).
"""

from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http.request import split_domain_port, validate_host

from mcp_app.guards.audience import server_origin
from mcp_app.guards.responses import send_error
from mcp_app.protocol.scope import header, request_host
from oauth_app.resource_server import normalize_origin

# Django's own fallback when debugging with an empty ALLOWED_HOSTS (HttpRequest.get_host).
DEBUG_ALLOWED_HOSTS = [".localhost", "127.0.0.1", "[::1]"]


@dataclass(frozen=True)
class Refusal:
    status: int
    error: str
    description: str

    async def send(self, send, headers=()) -> None:
        await send_error(send, self.status, self.error, self.description, headers)


@lru_cache(maxsize=4)  # keyed by the setting's value, so an override in tests takes effect
def _normalized_allowed_origins(configured: tuple[str, ...]) -> frozenset[str]:
    normalized = set()
    for value in configured:
        origin = normalize_origin(value)
        if origin is None:
            raise ImproperlyConfigured(
                f"MCP_ALLOWED_ORIGINS entries must be origins such as http://localhost:6274, got {value!r}"
            )
        normalized.add(origin)
    return frozenset(normalized)


def allowed_origins() -> frozenset[str]:
    """``MCP_ALLOWED_ORIGINS``, normalized; a malformed entry raises ImproperlyConfigured."""
    return _normalized_allowed_origins(tuple(settings.MCP_ALLOWED_ORIGINS))


def host_is_allowed(scope) -> bool:
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = DEBUG_ALLOWED_HOSTS
    return _host_is_allowed(request_host(scope), tuple(allowed_hosts))


# Every request asks; a server sees few Host values (a flood of others only cycles the cache).
@lru_cache(maxsize=256)
def _host_is_allowed(host: str, allowed_hosts: tuple[str, ...]) -> bool:
    domain, _port = split_domain_port(host)  # ("", "") for a malformed Host
    return bool(domain) and validate_host(domain, allowed_hosts)


def origin_is_allowed(origin: str, scope) -> bool:
    """Whether a browser page on ``origin`` may call this server. Call only for an allowed Host."""
    normalized = normalize_origin(origin)
    if normalized is None:
        return False
    return normalized == normalize_origin(server_origin(scope)) or normalized in allowed_origins()


def refusal(scope) -> Refusal | None:
    """Why the Host or Origin of this request is refused, or None."""
    if not host_is_allowed(scope):
        # 400, as Django answers DisallowedHost: the request names a server that is not this one.
        return Refusal(400, "invalid_host", "The Host header does not name this server.")
    origin = header(scope, "origin")
    if origin is not None and not origin_is_allowed(origin, scope):
        return Refusal(403, "invalid_origin", f"Requests from the origin {origin!r} are not allowed.")
    return None


class OriginGuard:
    def __init__(self, app):
        self.app = app
        allowed_origins()  # a malformed MCP_ALLOWED_ORIGINS fails at start-up, not on a request

    async def __call__(self, scope, receive, send):
        problem = refusal(scope) if scope["type"] == "http" else None
        if problem is not None:
            await problem.send(send)
            return
        await self.app(scope, receive, send)
