"""Errors that echo what the client sent, cut to a short prefix.

Many errors name the input they refuse: "Unknown resource: <uri>", an unknown
method or tool in ``data``. Echoed whole, a client that sends megabytes in a
URI or a name gets megabytes back, twice, and the session's event log holds
them. ``cut_echoed_input`` (server middleware, outermost of this project's)
cuts every string of an error's message and data to ``ECHO_CHARS`` characters,
ending in "…"; the error's code and shape stay as they were.

The SDK's prompt and resource managers refuse a bad name or bad arguments with a
plain ``ValueError`` ("Unknown prompt: <name>"), which its handshake-era
dispatcher answers with code 0 (no JSON-RPC code) and the whole message. Such a
refusal is the client's input being wrong: it is answered -32602 with the message
cut, in both eras.
"""

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from mcp_app.protocol.errors import INVALID_PARAMS

ECHO_CHARS = 200  # enough to recognise what was refused
MAX_DEPTH = 5  # error data is small by nature; deeper structures are not walked further


def install_echo_limit(server: MCPServer) -> None:
    server.middleware.append(cut_echoed_input)


async def cut_echoed_input(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    try:
        return await call_next(ctx)
    except MCPError as exc:
        message, data = cut(exc.error.message), cut(exc.error.data)
        if message is exc.error.message and data is exc.error.data:
            raise
        raise MCPError(exc.error.code, message, data) from None
    except ValueError as exc:  # pydantic's ValidationError is one too: the runner answers it -32602 itself
        if isinstance(exc, ValidationError):
            raise
        raise MCPError(INVALID_PARAMS, cut(str(exc))) from None


def cut(value: Any, depth: int = 0) -> Any:
    """``value`` with every string longer than ``ECHO_CHARS`` cut; the same object when nothing was."""
    if isinstance(value, str):
        return value if len(value) <= ECHO_CHARS else value[:ECHO_CHARS] + "…"
    if depth >= MAX_DEPTH:
        return value
    if isinstance(value, dict):
        cut_items = {key: cut(item, depth + 1) for key, item in value.items()}
        return value if all(cut_items[key] is item for key, item in value.items()) else cut_items
    if isinstance(value, list):
        cut_list = [cut(item, depth + 1) for item in value]
        return value if all(a is b for a, b in zip(cut_list, value, strict=True)) else cut_list
    return value
