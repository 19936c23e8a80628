"""The protocol engine: one `mcp` SDK server per process, with this project's
tools, the protocol features MCPServer leaves to its user, and the audit
middleware. Sessions drive its low-level server."""

from functools import cache

from django.conf import settings
from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.mcpserver import MCPServer

SERVER_NAME = "django-mcp"
INSTRUCTIONS = (
    "Math tools (add, subtract, multiply, divide, power, sqrt, calculate) and whoami, "
    "which tells who you are signed in as."
)


def build_server() -> MCPServer:
    from mcp_app.audit import install_audit
    from mcp_app.completions import install_completions
    from mcp_app.limits import install_limits
    from mcp_app.logging_level import install_logging_level
    from mcp_app.session_state import session_lifespan, track_sessions
    from mcp_app.subscriptions import install_subscriptions
    from mcp_app.tools import register_tools

    # The lifespan is entered once per session: its value is that session's state.
    server = MCPServer(name=SERVER_NAME, instructions=INSTRUCTIONS, lifespan=session_lifespan)
    if not settings.MCP_OPENTELEMETRY:
        # The SDK's documented opt-out: drop its span middleware from the list.
        server.middleware[:] = [m for m in server.middleware if not isinstance(m, OpenTelemetryMiddleware)]
    register_tools(server)
    track_sessions(server)
    install_logging_level(server)
    install_subscriptions(server)
    completions = install_completions(server)
    install_audit(server)
    install_limits(server)  # inside the audit: refused and timed-out calls are recorded
    if settings.MCP_CONFORMANCE_FIXTURES:
        from mcp_app.conformance import register_conformance_fixtures

        register_conformance_fixtures(server, completions)
    return server


@cache
def get_mcp_server() -> MCPServer:
    return build_server()


def get_server() -> Server:
    # MCPServer keeps its low-level server private; the SDK's own in-memory
    # transport drives it the same way.
    return get_mcp_server()._lowlevel_server


def initialization_options_for(server: Server) -> InitializationOptions:
    """What `initialize` answers with; `listChanged` because `mcp_app.list_changed` announces changes."""
    return server.create_initialization_options(
        NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
    )


@cache
def initialization_options() -> InitializationOptions:
    return initialization_options_for(get_server())
