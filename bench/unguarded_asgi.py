"""A bench-only ASGI application: this server without the bearer-token guard.

Identical to `mcpsite.asgi` except that the MCP endpoints skip `BearerGuard` and every
request carries one fixed principal (the one `BENCH_TOKEN` stands for), so that comparing
the two measures what the token guard costs. Never serve this: it lets anyone in as that
user.

    BENCH_TOKEN=... daphne bench.unguarded_asgi:application

It imports `mcpsite.asgi` for everything that module sets up besides its routes (daphne's
request class without form parsing, the collector's tuning, the allocator's trim, the
start-up checks): an earlier copy that set up only some of it measured the Twisted form
parsing it lacked, not the guard (the unguarded server came out 36-41% slower).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpsite.settings")

from mcpsite import asgi as served  # noqa: I001 (first: it sets Django and the server up)

from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path, re_path

from mcp_app.guards.cors import CORSGuard
from mcp_app.guards.origin import OriginGuard
from mcp_app.principal import PRINCIPAL_SCOPE_KEY, Principal
from mcp_app.transport.legacy_sse import LegacyMessagesEndpoint, LegacySSEEndpoint
from mcp_app.transport.streamable_http import StreamableHTTPEndpoint
from mcpsite.collector import tune_for_serving
from mcpsite.health import healthz
from mcpsite.proxy_headers import TrustedProxyHeaders
from oauth_app.resource_server import load_access_token, token_checksum


def _principal() -> Principal:
    token = load_access_token(token_checksum(os.environ["BENCH_TOKEN"]))
    return Principal(
        user_id=token.user_id,
        username=token.user.get_username(),
        client_id=token.application.client_id,
        client_name=token.application.name,
        scopes=frozenset(token.scope.split()),
        token_checksum=token.token_checksum,
        expires=token.expires,
    )


PRINCIPAL = _principal()


class FixedPrincipal:
    """Stands where BearerGuard stands and puts the same kind of principal in the scope."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app({**scope, PRINCIPAL_SCOPE_KEY: PRINCIPAL}, receive, send)


def unguarded(app):
    return CORSGuard(OriginGuard(FixedPrincipal(app)))


# The routes of `mcpsite.asgi`, the MCP ones without the token guard.
application = ProtocolTypeRouter(
    {
        "http": TrustedProxyHeaders(
            URLRouter(
                [
                    path("mcp", unguarded(StreamableHTTPEndpoint.as_asgi())),
                    path("sse", unguarded(LegacySSEEndpoint.as_asgi())),
                    path("messages", unguarded(LegacyMessagesEndpoint.as_asgi())),
                    path("healthz", healthz),
                    re_path(r"", served.django_application),
                ]
            )
        ),
        "lifespan": served.application.application_mapping["lifespan"],
    }
)
tune_for_serving()  # again: the objects built here live as long as the process too
