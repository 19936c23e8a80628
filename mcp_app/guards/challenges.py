"""Every answer of the bearer guard: 401 and 403 with ``WWW-Authenticate``.

RFC 6750 §3 challenges with RFC 9728's ``resource_metadata`` (where an MCP
client starts its OAuth discovery) and the ``scope`` this server needs (the
MCP authorization spec asks for it so clients request the right scope).
The header string comes from DOT's ``build_bearer_challenge``, which quotes
values safely; the body is the guards' one error shape (``responses.py``),
whose ``error`` repeats the challenge's code.

The root metadata document is advertised, not the path-suffixed one: RFC 9728
allows either, this server serves both, and their ``resource`` is the same.
"""

from django.conf import settings
from oauth2_provider.www_authenticate import build_bearer_challenge

from mcp_app.guards.responses import send_error
from oauth_app.resource_server import resource_metadata_url

# RFC 6750 §3.1 gives no error code when the request carried no credentials;
# the JSON body still needs one.
NO_CREDENTIALS_ERROR = "unauthorized"


class BearerChallenge(Exception):
    """Why a request is refused; raised while authenticating, answered by ``send_challenge``."""

    status = 401
    error: str | None = None

    def __init__(self, description: str, scope: str | None = None):
        super().__init__(description)
        self.description = description
        self.scope = scope  # the scope to ask for; the server's own scope when None


class MissingToken(BearerChallenge):
    """No bearer credentials at all: the challenge names no error (RFC 6750 §3.1)."""


class InvalidRequest(BearerChallenge):
    error = "invalid_request"


class InvalidToken(BearerChallenge):
    error = "invalid_token"


class InsufficientScope(BearerChallenge):
    status = 403
    error = "insufficient_scope"


def www_authenticate(challenge: BearerChallenge, origin: str) -> str:
    params = {}
    if challenge.error:
        params = {"error": challenge.error, "error_description": challenge.description}
    params["scope"] = challenge.scope or settings.MCP_SCOPE
    # DOT only reads the request when it has to derive the metadata URL itself.
    return build_bearer_challenge(None, params, resource_metadata_url=resource_metadata_url(origin))


async def send_challenge(send, challenge: BearerChallenge, origin: str) -> None:
    await send_error(
        send,
        challenge.status,
        challenge.error or NO_CREDENTIALS_ERROR,
        challenge.description,
        [(b"www-authenticate", www_authenticate(challenge, origin).encode("latin-1"))],
    )


RETRY_AFTER_SECONDS = 5  # what a client is told to wait when the database is away


async def send_unavailable(send) -> None:
    """503 with Retry-After: the token could not be checked because the database is away."""
    await send_error(
        send,
        503,
        "temporarily_unavailable",
        "The server cannot check tokens right now; retry shortly.",
        [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())],
    )
