"""ASGI entry point: `daphne mcpsite.asgi:application` (or uvicorn).

Django's ASGI app serves the site, the admin and the OAuth endpoints. The MCP
transports are added by `mcp_app` (see `mcp_app/routing.py`).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpsite.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()  # sets Django up before anything imports models

from channels.routing import ProtocolTypeRouter  # noqa: E402

from mcpsite.checks import refuse_insecure_configuration  # noqa: E402

refuse_insecure_configuration()

application = ProtocolTypeRouter({"http": django_application})
