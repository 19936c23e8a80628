"""The tools this MCP server offers, registered in one place.

Each family is a module of plain typed functions: the SDK derives a tool's
input schema from the parameters, its output schema from the return
annotation, and its description from the docstring.

MCPServer runs a plain (sync) function in a worker thread. These tools are
pure and bounded (a few microseconds, `calculate` included: its input and
work are capped), so the thread hop would cost far more than the work, and
under load the thread fights the event loop for the GIL: they run on the
event loop instead (`_on_the_event_loop`). A tool that blocks (a database
query, a network call) must stay a plain function, or be async.

May import: ``principal`` and ``protocol``. Never ``transport``, ``sessions``,
``cluster``, ``guards`` or ``engine``: a tool knows only who calls and what it gets.
"""

import functools
import inspect

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from mcp_app.tools import arithmetic, calculator, identity

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


def _on_the_event_loop(function):
    """``function`` as a coroutine function with the same name, signature and docstring,
    so MCPServer calls it on the event loop rather than in a worker thread."""
    if inspect.iscoroutinefunction(function):
        return function

    @functools.wraps(function)
    async def run(*args, **kwargs):
        return function(*args, **kwargs)

    return run


def register_tools(server: MCPServer) -> None:
    """Add every tool to ``server``."""
    for function, title in TOOLS:
        server.add_tool(
            _on_the_event_loop(function),
            title=title,
            description=inspect.getdoc(function),  # the docstring without its source indentation
            annotations=PURE,
        )
