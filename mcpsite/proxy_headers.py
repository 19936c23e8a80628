"""X-Forwarded-For / X-Forwarded-Proto, believed only from trusted proxies.

nginx in front of the workers sets both (deploy/nginx/mcp-proxy.conf); a
client talking to a worker directly could send them too, so they are applied
to the ASGI scope only when the connection comes from an address listed in
`MCP_TRUSTED_PROXIES`. Django (REMOTE_ADDR, is_secure), the rate limits and
the MCP guards then all see the real client and scheme.
"""

from django.conf import settings

from mcp_app.protocol.scope import header_values

FORWARDED_FOR = "x-forwarded-for"
FORWARDED_PROTO = "x-forwarded-proto"
SCHEMES = {"http", "https"}


class TrustedProxyHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        trusted = settings.MCP_TRUSTED_PROXIES
        if scope["type"] == "http" and trusted and (scope.get("client") or ("",))[0] in trusted:
            scope = self._apply(scope)
        await self.app(scope, receive, send)

    def _apply(self, scope):
        scope = dict(scope)
        forwarded_for = header_values(scope, FORWARDED_FOR)
        if forwarded_for:
            # The address the trusted proxy saw is the last one it appended.
            client = forwarded_for[-1].split(",")[-1].strip()
            if client:
                scope["client"] = (client, 0)
        forwarded_proto = header_values(scope, FORWARDED_PROTO)
        if forwarded_proto:
            scheme = forwarded_proto[-1].strip().lower()
            if scheme in SCHEMES:
                scope["scheme"] = scheme
        return scope
