"""This server's origin for a request, and the URL a bearer token must be issued for.

The scope-side use of ``oauth_app``'s public origin: ``MCP_PUBLIC_URL`` when
set, otherwise the scheme and Host the client used. Only meaningful once the
Host passed the Host guard.
"""

from mcp_app.protocol.scope import request_host, request_scheme
from oauth_app.resource_server import public_origin


def server_origin(scope) -> str:
    """This server's public origin for the request (``scheme://host[:port]``)."""
    return public_origin(request_scheme(scope), request_host(scope))


def request_url(scope) -> str:
    """Absolute URL of the request without its query string: the token's audience.

    ``path`` already includes any ``root_path`` (as Channels' URLRouter reads it).
    """
    return server_origin(scope) + scope["path"]
