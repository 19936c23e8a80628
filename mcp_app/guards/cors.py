"""CORS for browser-based MCP clients (the MCP Inspector, web apps).

Outermost guard: a preflight carries no credentials, so it is answered here
before the bearer guard could refuse it, and every response from further in
(401 challenges included) gets the CORS headers a browser needs to read it.
Origins get CORS headers by the Origin guard's rule and no other: a preflight
from a refused origin gets that guard's error instead of a 204.

No ``Access-Control-Allow-Credentials``: MCP clients authenticate with a
bearer header, never cookies.
"""

from mcp_app.guards.origin import refusal
from mcp_app.guards.responses import send_no_content
from mcp_app.protocol.names import MCP_REQUEST_HEADERS, MCP_RESPONSE_HEADERS
from mcp_app.protocol.scope import header

ALLOW_METHODS = b"GET, POST, DELETE, OPTIONS"
ALLOW_HEADERS = ", ".join(MCP_REQUEST_HEADERS).encode()
# What a browser page may read from a response: the session id to send back,
# the challenge that starts the OAuth flow, the negotiated protocol version.
EXPOSE_HEADERS = ", ".join(MCP_RESPONSE_HEADERS).encode()
# Short enough that a change of the lists above reaches browsers within minutes.
PREFLIGHT_MAX_AGE_SECONDS = 600

# Every response depends on the request's Origin, so caches must key on it.
VARY = (b"vary", b"Origin")


def _is_preflight(scope) -> bool:
    return (
        scope["method"] == "OPTIONS"
        and header(scope, "origin") is not None
        and header(scope, "access-control-request-method") is not None
    )


class CORSGuard:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _is_preflight(scope):
            await self._answer_preflight(scope, send)
            return
        origin = header(scope, "origin")
        cors_headers = [VARY]
        if origin is not None and refusal(scope) is None:
            cors_headers += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-expose-headers", EXPOSE_HEADERS),
            ]

        async def send_with_cors(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *cors_headers]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _answer_preflight(self, scope, send):
        problem = refusal(scope)
        if problem is not None:
            await problem.send(send, [VARY])
            return
        await send_no_content(
            send,
            [
                VARY,
                (b"access-control-allow-origin", header(scope, "origin").encode("latin-1")),
                (b"access-control-allow-methods", ALLOW_METHODS),
                (b"access-control-allow-headers", ALLOW_HEADERS),
                (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_SECONDS).encode()),
            ],
        )
