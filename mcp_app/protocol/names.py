"""Names from the MCP specification and HTTP, written once."""

from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

# -- JSON-RPC methods this server treats specially ---------------------------------------
INITIALIZE = "initialize"
INITIALIZED = "notifications/initialized"
DISCOVER = "server/discover"  # the stateless 2026 era's probe; this server speaks the handshake era
TOOLS_CALL = "tools/call"
SET_LOGGING_LEVEL = "logging/setLevel"
SUBSCRIBE = "resources/subscribe"
UNSUBSCRIBE = "resources/unsubscribe"

# -- HTTP headers (lower case, as ASGI delivers them) ---------------------------------------
MCP_SESSION_ID_HEADER = "mcp-session-id"
MCP_PROTOCOL_VERSION_HEADER = "mcp-protocol-version"
LAST_EVENT_ID_HEADER = "last-event-id"
# What a browser-based MCP client may send to the MCP endpoints and the OAuth endpoints
# (CORS Access-Control-Allow-Headers), and may read from their answers.
MCP_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "Mcp-Protocol-Version",
    "Mcp-Session-Id",
    "Last-Event-ID",
)
MCP_RESPONSE_HEADERS = ("Mcp-Session-Id", "WWW-Authenticate", "Mcp-Protocol-Version")

# -- media types ----------------------------------------------------------------------------
JSON = "application/json"
EVENT_STREAM = "text/event-stream"

# -- protocol versions ---------------------------------------------------------------------
SUPPORTED_PROTOCOL_VERSIONS = frozenset(HANDSHAKE_PROTOCOL_VERSIONS)
# Clients that send no MCP-Protocol-Version header are taken to speak 2025-03-26 (spec, "Protocol Version Header").
DEFAULT_PROTOCOL_VERSION = "2025-03-26"
# Resumable streams (and their priming event) came with this protocol version.
RESUMABLE_SINCE = "2025-11-25"
