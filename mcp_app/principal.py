"""Who is calling: the principal a validated bearer token stands for.

The bearer guard (``guards/bearer.py``) puts a ``Principal`` into the ASGI scope;
the transports hand it, wrapped in a ``RequestInfo``, to the protocol engine
with every message, and tools read it from their context.
"""

from dataclasses import dataclass, field
from datetime import datetime

PRINCIPAL_SCOPE_KEY = "mcp_principal"


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    client_id: str
    client_name: str
    scopes: frozenset[str]
    token_checksum: str  # SHA-256 of the bearer token: identifies it without holding it
    expires: datetime

    def same_owner(self, other: "Principal") -> bool:
        """Sessions are bound to the user and the OAuth client that created them."""
        return self.user_id == other.user_id and self.client_id == other.client_id


@dataclass(frozen=True)
class RequestInfo:
    """What the engine's handlers see as ``ctx.request`` for one inbound message."""

    principal: Principal
    session_id: str
    headers: dict[str, str] = field(default_factory=dict)


def principal_from_context(ctx) -> Principal:
    """The principal behind an MCP request context (``ServerRequestContext`` or an MCPServer ``Context``)."""
    request_context = getattr(ctx, "request_context", ctx)
    info = request_context.request
    if not isinstance(info, RequestInfo):
        raise LookupError("no authenticated principal on this request")
    return info.principal
