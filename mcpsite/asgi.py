"""ASGI entry point: `daphne mcpsite.asgi:application` (or uvicorn, or `python -m mcpsite.serve`).

Django's ASGI app serves the site, the admin and the OAuth endpoints; the MCP
endpoints (`mcp_app/routing.py`) go through the guards to the transports,
ahead of Django. A configuration that is malformed or unsafe stops the
process here, with the reasons and no traceback (`mcpsite/checks.py`).
"""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpsite.settings")


from mcpsite.checks import refuse_insecure_configuration, refuse_to_start_on_bad_configuration

with refuse_to_start_on_bad_configuration():
    from mcpsite.memory_trace import start_if_asked

    start_if_asked()  # MCP_TRACEMALLOC (soak runs only): before the application is built

    from django.core.asgi import get_asgi_application

    django_application = get_asgi_application()  # sets Django up before anything imports models
    refuse_insecure_configuration()

    from mcp_app.engine.server import get_mcp_server

    get_mcp_server()  # built now: an extension that cannot load stops the start, not the first request

    if "daphne.cli" in sys.modules:  # daphne's command line; uvicorn asks at lifespan start-up
        from mcpsite.reachability import refuse_unreachable_services

        refuse_unreachable_services()

from channels.routing import ProtocolTypeRouter, URLRouter
from django.conf import settings
from django.urls import path, re_path

from mcp_app.cluster import shutdown
from mcp_app.routing import urlpatterns as mcp_urlpatterns
from mcpsite import allocator, daphne_requests, daphne_writes
from mcpsite.collector import tune_for_serving
from mcpsite.health import healthz
from mcpsite.proxy_headers import TrustedProxyHeaders
from mcpsite.reachability import checked_lifespan

shutdown.close_sessions_when_daphne_stops()
daphne_requests.install()  # a deadline for reading each request, no form parsing
daphne_writes.install()  # responses sent in the turn they are written, not after another poll

# /mcp, /sse and /messages skip Django's middleware (the hot path), /healthz too; everything
# else is Django. X-Forwarded-* apply first, and only from trusted proxies.
application = ProtocolTypeRouter(
    {
        "http": TrustedProxyHeaders(
            URLRouter([*mcp_urlpatterns, path("healthz", healthz), re_path(r"", django_application)])
        ),
        "lifespan": checked_lifespan(shutdown.lifespan),
    }
)
tune_for_serving()  # last: everything built so far lives as long as the process
allocator.release_periodically(settings.MCP_MALLOC_TRIM_SECONDS)  # the C heap's free pages, back to the system
