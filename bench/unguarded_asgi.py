"""A bench-only ASGI application: this server without the bearer-token guard.

Identical to `mcpsite.asgi` (but for `/healthz` and the start-up checks) except that the MCP endpoints skip `BearerGuard`
and every request carries one fixed principal (the one `BENCH_TOKEN` stands
for), so that comparing the two measures what the token guard costs. Never
serve this: it lets anyone in as that user.

    BENCH_TOKEN=... daphne bench.unguarded_asgi:application
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpsite.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402
from oauth2_provider.models import get_access_token_model  # noqa: E402

from mcp_app import shutdown  # noqa: E402
from mcp_app.consumers.legacy_sse import MessagesConsumer, SSEConsumer  # noqa: E402
from mcp_app.consumers.streamable_http import StreamableHTTPConsumer  # noqa: E402
from mcp_app.guards.cors import CORSGuard  # noqa: E402
from mcp_app.guards.origin import OriginGuard  # noqa: E402
from mcp_app.principal import PRINCIPAL_SCOPE_KEY, Principal  # noqa: E402
from mcpsite.collector import tune_for_serving  # noqa: E402
from mcpsite.proxy_headers import TrustedProxyHeaders  # noqa: E402
from oauth_app.validators import checksum  # noqa: E402


def _principal() -> Principal:
    token = get_access_token_model().objects.select_related("user", "application").get(
        token_checksum=checksum(os.environ["BENCH_TOKEN"])
    )
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


shutdown.close_sessions_when_daphne_stops()

application = ProtocolTypeRouter(
    {
        "http": TrustedProxyHeaders(
            URLRouter(
                [
                    path("mcp", unguarded(StreamableHTTPConsumer.as_asgi())),
                    path("sse", unguarded(SSEConsumer.as_asgi())),
                    path("messages", unguarded(MessagesConsumer.as_asgi())),
                    re_path(r"", django_application),
                ]
            )
        ),
        "lifespan": shutdown.lifespan,
    }
)
tune_for_serving()
