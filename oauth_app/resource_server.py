"""What the MCP endpoints, the resource server, use of this authorization server.

The one module of ``oauth_app`` that ``mcp_app`` imports (besides DOT's
models): how a bearer token is found (by its SHA-256 checksum, never by the
token itself), this server's origin (the audience tokens are bound to), where a
client starts its OAuth discovery (RFC 9728 metadata), the scopes tools
declare (``declare_scope``), and where revoked tokens are announced
(``REVOCATIONS_GROUP``, read with ``revoked_checksums``).
"""

import hashlib

from django.urls import reverse
from oauth2_provider.models import get_access_token_model

from oauth_app.origins import normalize_origin, public_origin
from oauth_app.revocations import REVOCATIONS_GROUP, revoked_checksums
from oauth_app.scopes import declare_scope

__all__ = [
    "REVOCATIONS_GROUP",
    "declare_scope",
    "load_access_token",
    "normalize_origin",
    "public_origin",
    "resource_metadata_url",
    "revoked_checksums",
    "token_checksum",
]


def token_checksum(token: str) -> str:
    """How DOT stores and finds tokens (COMPLIANT_BCP_RFC9700_TOKEN_STORAGE)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load_access_token(checksum: str):
    """The access token with that checksum, its user and client loaded (one query), or None.
    Synchronous: call it through ``database_sync_to_async``."""
    model = get_access_token_model()
    try:
        return model.objects.select_related("user", "application").get(token_checksum=checksum)
    except model.DoesNotExist:
        return None


def resource_metadata_url(origin: str) -> str:
    """The RFC 9728 protected-resource metadata of this server, as a client must fetch it."""
    return origin + reverse("oauth2_provider:oauth-resource-metadata")
