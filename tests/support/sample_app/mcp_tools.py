"""Tools of an app that is not mcp_app: found at start-up, with no line of mcp_app changed."""

import threading

from django.contrib.auth import get_user_model
from mcp.server.mcpserver import Context

from mcp_app.principal import principal_from_context
from mcp_app.tools import mcp_tool


@mcp_tool(title="Count users", read_only=True)
def count_users() -> int:
    """How many accounts this server has (a plain function using the ORM: it runs in a thread)."""
    return get_user_model().objects.count()


@mcp_tool(read_only=True)
def where_do_i_run(ctx: Context) -> dict[str, str]:
    """Which thread runs a plain tool, and for whom."""
    return {"thread": threading.current_thread().name, "user": principal_from_context(ctx).username}


@mcp_tool(name="echo_on_the_loop", on_event_loop=True)
def echo(text: str) -> str:
    """Says the text back, on the event loop."""
    return f"{text} ({threading.current_thread().name})"
