"""JSON-RPC error codes, each defined once: JSON-RPC 2.0's own (as ``mcp_types`` has
them) and the server-defined ones (JSON-RPC 2.0 §5.1 leaves -32000..-32099 to servers)."""

from mcp_types import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    PARSE_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
)

__all__ = [
    "HEADER_MISMATCH",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "MISSING_REQUIRED_CLIENT_CAPABILITY",
    "PARSE_ERROR",
    "RATE_LIMITED",
    "REQUEST_CANCELLED",
    "SESSION_NOT_FOUND",
    "TOO_MANY_RUNNING_CALLS",
    "TOO_MANY_SESSIONS",
    "UNSUPPORTED_PROTOCOL_VERSION",
]
# The 2026-07-28 codes (HEADER_MISMATCH -32020, MISSING_REQUIRED_CLIENT_CAPABILITY -32021,
# UNSUPPORTED_PROTOCOL_VERSION -32022) are the SDK's, as the spec defines them.

# The SDK answers an unknown session with this code; so does this server.
SESSION_NOT_FOUND = -32001
# tools/call over the per-token rate (29 as in HTTP 429); data.retryAfter says when to retry.
RATE_LIMITED = -32029
# tools/call while the session already runs as many calls as it may.
TOO_MANY_RUNNING_CALLS = -32030
# A new session or stream while its person (or token) already holds as many as they may (HTTP 429).
TOO_MANY_SESSIONS = -32031
# What a cancelled request is answered with, so the POST waiting for it ends (as the SDK's own transport does).
REQUEST_CANCELLED = -32800
