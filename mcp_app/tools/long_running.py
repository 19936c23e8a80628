"""A long call, to show tasks: ``countdown`` takes as long as it is asked to (two minutes by default).

Clients that take tasks (the 2026-07-28 era with the ``io.modelcontextprotocol/tasks``
extension) get a task at once and poll it; its status message says how far the
countdown is. Other clients wait for the call, which ``MCP_TOOL_CALL_TIMEOUT_SECONDS``
(60 s by default) cuts short: the reason tasks exist.
"""

from typing import Annotated

import anyio
from mcp.server.mcpserver import Context
from pydantic import Field

from mcp_app.tools.registry import mcp_tool

MAX_SECONDS = 3600


@mcp_tool(title="Countdown (a long call that runs as a task)", read_only=True, task="optional")
async def countdown(
    ctx: Context,
    seconds: Annotated[int, Field(ge=1, le=MAX_SECONDS, description="How long to count down, in seconds.")] = 120,
) -> str:
    """Counts down from `seconds` to zero, one a second, reporting its progress, then says so.
    A demonstration of a call that takes minutes: clients that support tasks get a task to poll."""
    for elapsed in range(seconds):
        await ctx.report_progress(elapsed, seconds, f"{seconds - elapsed} s to go")
        await anyio.sleep(1)  # the work this tool stands for
    return f"Countdown from {seconds} s finished."
