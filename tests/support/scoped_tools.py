"""An engine extension with a tool that needs a scope of its own, for the scope and step-up tests.

Loaded with ``MCP_EXTENSIONS=tests.support.scoped_tools``: importing it declares the scope and
the tool (``@mcp_tool``), which the engine then offers like any app's.
"""

from typing import Annotated

from pydantic import Field

from mcp_app.tools import mcp_tool

SCOPED_TOOLS = __name__
SHOUT_SCOPE = "extras:shout"
SHOUT_SCOPE_DESCRIPTION = "Shout text in capitals for you"


@mcp_tool(title="Shout", read_only=True, on_event_loop=True, scopes={SHOUT_SCOPE: SHOUT_SCOPE_DESCRIPTION})
def shout(text: Annotated[str, Field(description="What to shout.", max_length=1000)]) -> str:
    """The text in capitals (needs the extras:shout scope)."""
    return text.upper()


def install(server, features) -> None:
    """Nothing to add by hand: the tool above is in the registry the engine offers."""
