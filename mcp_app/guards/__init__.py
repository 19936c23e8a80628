"""The guards in front of the MCP endpoints, as pure ASGI middleware.

``guarded(app)`` wraps a transport's ASGI app in, from the outside in:

1. ``CORSGuard`` (``cors.py``): answers preflights without credentials and adds
   CORS headers to every response, errors included;
2. ``OriginGuard`` (``origin.py``): Host must be in ``ALLOWED_HOSTS`` (400),
   Origin absent, same-origin or in ``MCP_ALLOWED_ORIGINS`` (403);
3. ``BearerGuard`` (``bearer.py``): a valid token for this server with the
   ``mcp`` scope (401 / 403 challenges from ``challenges.py``), whose
   ``Principal`` reaches the app as ``scope[PRINCIPAL_SCOPE_KEY]``.

Every refusal has the body ``{"error": ..., "error_description": ...}``
(``responses.py``).

May import: ``principal``, ``protocol``, and of ``oauth_app`` only its
``resource_server`` module. Never ``transport``, ``sessions``, ``cluster``,
``engine`` or ``tools``.
"""

from mcp_app.guards.bearer import BearerGuard
from mcp_app.guards.cors import CORSGuard
from mcp_app.guards.origin import OriginGuard
from mcp_app.guards.token_cache import token_cache
from mcp_app.principal import PRINCIPAL_SCOPE_KEY

__all__ = ["PRINCIPAL_SCOPE_KEY", "guarded", "token_cache"]


def guarded(app):
    """``app`` behind CORS, then the Host/Origin check, then the bearer token."""
    return CORSGuard(OriginGuard(BearerGuard(app)))
