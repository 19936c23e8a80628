"""The protocol engine: one `mcp` SDK server per process, with this project's
tools and the audit middleware. Sessions drive its low-level server."""

from functools import cache

from mcp.server.lowlevel import Server
from mcp.server.mcpserver import MCPServer

SERVER_NAME = "django-mcp"
INSTRUCTIONS = (
    "Math tools (add, subtract, multiply, divide, power, sqrt, calculate) and whoami, "
    "which tells who you are signed in as."
)


def build_server() -> MCPServer:
    from mcp_app.audit import install_audit
    from mcp_app.tools import register_tools

    server = MCPServer(name=SERVER_NAME, instructions=INSTRUCTIONS)
    register_tools(server)
    install_audit(server)
    return server


@cache
def get_mcp_server() -> MCPServer:
    return build_server()


def get_server() -> Server:
    # MCPServer keeps its low-level server private; the SDK's own in-memory
    # transport drives it the same way.
    return get_mcp_server()._lowlevel_server
