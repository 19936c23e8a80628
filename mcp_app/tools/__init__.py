"""The tools this MCP server offers, from every installed app.

An app declares its tools with ``@mcp_tool`` in its ``mcp_tools.py``
(``registry.py`` says how, and where each kind of function runs); this app's
own are the arithmetic tools, the calculator and ``whoami`` (``mcp_app/mcp_tools.py``).
Each family is a module of plain typed functions: the SDK derives a tool's
input schema from the parameters, its output schema from the return
annotation, and its description from the docstring.

May import: ``principal`` and ``protocol``. Never ``transport``, ``sessions``,
``cluster``, ``guards`` or ``engine``: a tool knows only who calls and what it gets.
"""

from mcp.server.mcpserver import MCPServer

from mcp_app.tools.registry import (
    discover,
    mcp_resource,
    mcp_scope,
    mcp_tool,
    registered,
    registered_resources,
)

__all__ = ["mcp_resource", "mcp_scope", "mcp_tool", "register_tools"]


def register_tools(server: MCPServer) -> None:
    """Add every registered tool and resource of every installed app to ``server``."""
    discover()
    for spec in registered():
        server.add_tool(
            spec.runnable(),
            name=spec.name,
            title=spec.title,
            description=spec.description,
            annotations=spec.annotations,
            structured_output=spec.structured_output,
        )
    for resource in registered_resources():
        server.resource(
            resource.uri,
            name=resource.name,
            title=resource.title,
            description=resource.description,
            mime_type=resource.mime_type,
        )(resource.runnable())
