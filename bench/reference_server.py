"""The reference: the `mcp` SDK's own MCPServer with the same `add` tool, served
as the SDK serves it (`MCPServer.run`: uvicorn, one process, no authentication).

    python bench/reference_server.py streamable-http 8200   # stateful, JSON replies, /mcp
    python bench/reference_server.py stateless 8202         # stateless, JSON replies, /mcp
    python bench/reference_server.py sse 8201               # GET /sse + POST /messages/

A 2026-07-28 request (its `MCP-Protocol-Version` header names that version) is
served by the SDK's single-exchange path whichever of the first two runs;
`stateless` is the SDK's own stateless mode for everything else.
"""

import sys
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

Number = Annotated[float, Field(description="A finite number.")]

mcp = MCPServer("reference")


@mcp.tool(title="Add")
def add(a: Number, b: Number) -> Annotated[float, Field(description="a + b")]:
    """Add two numbers: a + b."""
    return a + b


def main() -> None:
    transport, port = sys.argv[1], int(sys.argv[2])
    if transport == "sse":
        mcp.run("sse", host="127.0.0.1", port=port)
    else:
        stateless = transport == "stateless"
        mcp.run("streamable-http", host="127.0.0.1", port=port, json_response=True, stateless_http=stateless)


if __name__ == "__main__":
    main()
