"""Bearer guard: who is calling, from ``Authorization: Bearer`` and nothing else.

A token is accepted when DOT has it (looked up by its SHA-256 checksum, one
query with its user and client), it has not expired, it stands for an active
user of a registered client, its RFC 8707 ``resource`` names this endpoint,
and it carries the ``mcp`` scope. Revoked access tokens are deleted by DOT,
so "unknown" covers them. The resulting ``Principal`` goes into the scope
under ``PRINCIPAL_SCOPE_KEY`` for the endpoints.

Validated tokens are cached in-process (``token_cache.py``): a hit costs no
query and no thread hop; a revoked one is dropped when the authorization server
announces it (``revocations.py``).
"""

import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError

from mcp_app.guards.audience import request_url, server_origin
from mcp_app.guards.challenges import (
    BearerChallenge,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingToken,
    send_challenge,
    send_unavailable,
)
from mcp_app.guards.revocations import revocations
from mcp_app.guards.token_cache import TokenCache, token_cache
from mcp_app.principal import PRINCIPAL_SCOPE_KEY, Principal
from mcp_app.protocol.scope import HEADER_ENCODING, header_values
from oauth_app.resource_server import load_access_token, token_checksum

log = logging.getLogger(__name__)

AUTH_SCHEME = "bearer"  # compared case-insensitively (RFC 9110 §11.1)
# RFC 6750 §2.3 allows a token in the URL; refused here because URLs end up in
# logs, browser history and Referer headers.
TOKEN_QUERY_PARAMETER = "access_token"


def _token_in_query(scope) -> bool:
    query = scope.get("query_string", b"")
    if TOKEN_QUERY_PARAMETER.encode() not in query:  # the common case, without parsing
        return False
    return TOKEN_QUERY_PARAMETER in parse_qs(query.decode(HEADER_ENCODING), keep_blank_values=True)


def bearer_token(scope) -> str:
    """The raw token from the Authorization header; raises the challenge for anything else."""
    if _token_in_query(scope):
        raise InvalidRequest("Send the access token in the Authorization header, never in the URL.")
    values = header_values(scope, "authorization")
    if not values:
        raise MissingToken("This endpoint needs an OAuth access token: Authorization: Bearer <token>.")
    if len(values) > 1:
        raise InvalidRequest("Send exactly one Authorization header.")
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != AUTH_SCHEME:
        # Other schemes are no credentials for this server: challenge as if none were sent.
        raise MissingToken("This endpoint takes OAuth bearer tokens only: Authorization: Bearer <token>.")
    token = token.strip()
    if not token:
        raise InvalidRequest("The Authorization header has no token after Bearer.")
    return token


_load_token = database_sync_to_async(load_access_token)


def principal_for_token(token, audience: str) -> Principal:
    """The principal a loaded token stands for at ``audience``; raises the challenge if it does not.

    Runs on the event loop: everything it reads was loaded by ``_load_token``,
    and Django refuses a stray query here (SynchronousOnlyOperation).
    """
    if token is None:
        raise InvalidToken("The access token is unknown or has been revoked.")
    if token.is_expired():
        raise InvalidToken("The access token has expired.")
    if token.user is None or not token.user.is_active or token.application is None:
        raise InvalidToken("The access token does not stand for an active user of a registered client.")
    # DOT lets a token without `resource` through everywhere; here a token must name this server
    # (DCR registration tokens carry none, so they stop here too).
    if not token.resource or not token.allows_audience(audience):
        raise InvalidToken("The access token was not issued for this server (RFC 8707 resource).")
    if not token.allow_scopes([settings.MCP_SCOPE]):
        raise InsufficientScope(f"The access token lacks the {settings.MCP_SCOPE!r} scope.")
    return Principal(
        user_id=token.user_id,
        username=token.user.get_username(),
        client_id=token.application.client_id,
        client_name=token.application.name,
        scopes=frozenset(token.scope.split()),
        token_checksum=token.token_checksum,
        expires=token.expires,
    )


class BearerGuard:
    def __init__(self, app, cache: TokenCache = token_cache):
        self.app = app
        self.cache = cache

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            # Passing another protocol through would let it in unauthenticated.
            raise ValueError(f"the bearer guard serves HTTP only, not {scope['type']!r}")
        try:
            principal = await self.authenticate(scope)
        except DatabaseError as exc:  # the database is away: try again soon, never a 500
            log.warning("database unavailable (DATABASE_URL): %s: %s; answered 503", type(exc).__name__, exc)
            await send_unavailable(send)
            return
        except BearerChallenge as challenge:
            if not isinstance(challenge, MissingToken):  # a missing token is how every client starts
                log.info("refused %s %s: %s", scope["method"], scope["path"], challenge.description)
            await send_challenge(send, challenge, server_origin(scope))
            return
        await self.app({**scope, PRINCIPAL_SCOPE_KEY: principal}, receive, send)

    async def authenticate(self, scope) -> Principal:
        key = (token_checksum(bearer_token(scope)), request_url(scope))
        principal = self.cache.get(key)
        if principal is None:
            # Hear revocations before caching anything (idempotent: one check once joined), so a token
            # revoked after this lookup is forgotten; the lookup itself reads committed rows.
            await revocations.join()
            principal = principal_for_token(await _load_token(key[0]), key[1])
            self.cache.put(key, principal)
        return principal
