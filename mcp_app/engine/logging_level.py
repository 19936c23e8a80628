"""Log messages to the client (``notifications/message``) and the level that filters them.

MCPServer does not serve ``logging/setLevel``, and the SDK sends every log
message of a handshake-era session whatever the client asked for: the
filtering is the server's job. ``install_logging_level`` adds the method (and
with it the ``logging`` capability); the level is kept per session
(``connected``), and ``log`` sends a message about the current request
only when it is at or above that level.

Code on this server logs to the client through ``log``, not the SDK's
``ctx.info``/``ctx.log``, which would bypass the level.
"""

from typing import Any, get_args

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import (
    EmptyResult,
    LoggingLevel,
    SetLevelRequestParams,
)

from mcp_app.engine import sdk
from mcp_app.engine.connected import connected_client
from mcp_app.protocol.names import SET_LOGGING_LEVEL

# RFC 5424 severities, least severe first: the order of the spec's LoggingLevel.
LEVELS: tuple[LoggingLevel, ...] = get_args(LoggingLevel)
# Until the client chooses, everything goes out (the spec leaves this to the server).
DEFAULT_LEVEL: LoggingLevel = "debug"


def is_enabled(threshold: LoggingLevel | None, level: LoggingLevel) -> bool:
    return LEVELS.index(level) >= LEVELS.index(threshold or DEFAULT_LEVEL)


async def set_level(ctx: ServerRequestContext, params: SetLevelRequestParams) -> EmptyResult:
    connected_client(ctx).log_level = params.level
    return EmptyResult()


def install_logging_level(server: MCPServer) -> None:
    """Serve ``logging/setLevel`` on ``server`` (built with ``connected.session_lifespan``)."""
    sdk.lowlevel_server(server).add_request_handler(SET_LOGGING_LEVEL, SetLevelRequestParams, set_level)


async def log(ctx: Context, level: LoggingLevel, data: Any, *, logger_name: str | None = None) -> None:
    """Send a log message about the request ``ctx`` serves, unless the client asked for less.

    Handshake era: unless the session's level (``logging/setLevel``) is above ``level``.
    Stateless era: only if the request itself opted in (``_meta`` log level), at or above
    that level; the SDK's ``send_log_message`` applies that rule, and sends handshake-era
    messages as they are."""
    request = ctx.request_context
    if not is_enabled(connected_client(request).log_level, level):
        return
    # Related to the request: it travels on that request's stream, before its answer.
    await request.session.send_log_message(level, data, logger=logger_name, related_request_id=request.request_id)
