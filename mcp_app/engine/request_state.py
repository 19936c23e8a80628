"""Protection of ``requestState``, the state a stateless request hands back to the client.

A tool that needs input from the client answers with an input-required result
whose ``requestState`` the client echoes on its next request. The SDK seals it
(AES-256-GCM) and binds it to the method, the tool and its arguments, an expiry
and a principal; this module gives it what it cannot know by itself:

- keys every worker shares, derived from ``SECRET_KEY`` (and
  ``SECRET_KEY_FALLBACKS``, so rotating the secret key does not void states in
  flight), so a state sealed by one worker opens on any other;
- the principal: the user and the OAuth client of the bearer token, so a state
  is useless to anyone else. Tampered, expired or foreign state is refused
  with JSON-RPC -32602 "Invalid or expired requestState" (HTTP 400).
"""

import hashlib
import hmac
from typing import Any

from django.conf import settings
from mcp.server.context import ServerRequestContext
from mcp.server.request_state import RequestStateSecurity

from mcp_app.principal import RequestInfo

# Separates these keys from every other use of SECRET_KEY.
KEY_PURPOSE = b"mcp_app.engine.request_state"
# How long a client may take to answer an input request (a person filling in a form).
STATE_TTL_SECONDS = 600.0


def _derived_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), KEY_PURPOSE, hashlib.sha256).digest()


def principal_binding(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """``user id:client id`` of the caller; None (unbound) only for in-process callers without a token."""
    info = ctx.request
    if not isinstance(info, RequestInfo):
        return None
    return f"{info.principal.user_id}:{info.principal.client_id}"


def request_state_security() -> RequestStateSecurity:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
    return RequestStateSecurity(
        keys=[_derived_key(secret) for secret in secrets],
        ttl=STATE_TTL_SECONDS,
        bind_principal=principal_binding,
    )
