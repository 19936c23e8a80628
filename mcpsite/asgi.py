"""ASGI entry point: `daphne mcpsite.asgi:application` (or uvicorn).

Django's ASGI app serves the site, the admin and the OAuth endpoints; the MCP
transports (`mcp_app/routing.py`) go through the guards to their consumers.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpsite.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()  # sets Django up before anything imports models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from mcp_app import shutdown  # noqa: E402
from mcp_app.routing import urlpatterns as mcp_urlpatterns  # noqa: E402
from mcpsite.checks import refuse_insecure_configuration  # noqa: E402
from mcpsite.collector import tune_for_serving  # noqa: E402
from mcpsite.health import healthz  # noqa: E402
from mcpsite.proxy_headers import TrustedProxyHeaders  # noqa: E402

refuse_insecure_configuration()
shutdown.close_sessions_when_daphne_stops()

# /mcp, /sse and /messages skip Django's middleware (the hot path), /healthz too; everything
# else is Django. X-Forwarded-* apply first, and only from trusted proxies.
application = ProtocolTypeRouter(
    {
        "http": TrustedProxyHeaders(
            URLRouter([*mcp_urlpatterns, path("healthz", healthz), re_path(r"", django_application)])
        ),
        "lifespan": shutdown.lifespan,
    }
)
tune_for_serving()  # last: everything built so far lives as long as the process
