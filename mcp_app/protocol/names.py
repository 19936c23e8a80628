"""Names from the MCP specification and HTTP, written once."""

from mcp_types import CLIENT_CAPABILITIES_META_KEY as CLIENT_CAPABILITIES_META_KEY  # re-exported
from mcp_types import CLIENT_INFO_META_KEY as CLIENT_INFO_META_KEY  # re-exported
from mcp_types import PROTOCOL_VERSION_META_KEY as PROTOCOL_VERSION_META_KEY  # re-exported
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

# -- JSON-RPC methods this server treats specially ---------------------------------------
INITIALIZE = "initialize"
INITIALIZED = "notifications/initialized"
DISCOVER = "server/discover"  # the stateless era's probe of what a server supports
LISTEN = "subscriptions/listen"  # the stateless era's one long-lived stream
TOOLS_CALL = "tools/call"
RESOURCES_READ = "resources/read"
SET_LOGGING_LEVEL = "logging/setLevel"
SUBSCRIBE = "resources/subscribe"
UNSUBSCRIBE = "resources/unsubscribe"
# The tasks extension (SEP-2663, stateless era): tool calls that run on after their request.
TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
TASKS_GET = "tasks/get"
TASKS_UPDATE = "tasks/update"
TASKS_CANCEL = "tasks/cancel"
TASK_METHODS = (TASKS_GET, TASKS_UPDATE, TASKS_CANCEL)  # their Mcp-Name header is params.taskId

# -- HTTP headers (lower case, as ASGI delivers them) ---------------------------------------
MCP_SESSION_ID_HEADER = "mcp-session-id"
MCP_PROTOCOL_VERSION_HEADER = "mcp-protocol-version"
LAST_EVENT_ID_HEADER = "last-event-id"
MCP_METHOD_HEADER = "mcp-method"  # 2026-07-28: the body's method, for intermediaries that route on it
MCP_NAME_HEADER = "mcp-name"  # 2026-07-28: the tool, prompt or resource the request names
# What a browser-based MCP client may send to the MCP endpoints and the OAuth endpoints
# (CORS Access-Control-Allow-Headers), and may read from their answers.
MCP_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "Mcp-Protocol-Version",
    "Mcp-Session-Id",
    "Last-Event-ID",
    "Mcp-Method",
    "Mcp-Name",
)
MCP_RESPONSE_HEADERS = ("Mcp-Session-Id", "WWW-Authenticate", "Mcp-Protocol-Version")

# -- media types ----------------------------------------------------------------------------
JSON = "application/json"
EVENT_STREAM = "text/event-stream"

# -- protocol versions ---------------------------------------------------------------------
# The handshake era (initialize, Mcp-Session-Id) and the stateless era (each request self-contained).
SUPPORTED_PROTOCOL_VERSIONS = frozenset(HANDSHAKE_PROTOCOL_VERSIONS)
STATELESS_PROTOCOL_VERSIONS = frozenset(MODERN_PROTOCOL_VERSIONS)
# A stateless request names its protocol version in params._meta[PROTOCOL_VERSION_META_KEY].
# Clients that send no MCP-Protocol-Version header are taken to speak 2025-03-26 (spec, "Protocol Version Header").
DEFAULT_PROTOCOL_VERSION = "2025-03-26"
# Resumable streams (and their priming event) came with this protocol version.
RESUMABLE_SINCE = "2025-11-25"
