"""The tools this MCP server offers, registered in one place.

Each family is a module of plain typed functions: the SDK derives a tool's
input schema from the parameters, its output schema from the return
annotation, and its description from the docstring.
"""

import inspect

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from mcp_app.tools import arithmetic, calculator, identity
from mcp_app.tools.arguments import require_valid_arguments

# Every tool here only computes or reads the caller's own identity: no side
# effects, the same answer for the same input, and nothing outside this server.
PURE = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

TOOLS = (
    (arithmetic.add, "Add"),
    (arithmetic.subtract, "Subtract"),
    (arithmetic.multiply, "Multiply"),
    (arithmetic.divide, "Divide"),
    (arithmetic.power, "Power"),
    (arithmetic.sqrt, "Square root"),
    (calculator.calculate, "Calculator"),
    (identity.whoami, "Who am I"),
)


def register_tools(server: MCPServer) -> None:
    """Add every tool to ``server``, with unknown tools and bad arguments answered as invalid params."""
    for function, title in TOOLS:
        server.add_tool(
            function,
            title=title,
            description=inspect.getdoc(function),  # the docstring without its source indentation
            annotations=PURE,
        )
    require_valid_arguments(server)
