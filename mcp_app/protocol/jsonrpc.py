"""The JSON-RPC codec: one inbound body to a message, a message to bytes, error bodies.

The transports and the forwarding between workers both frame messages with
it; JSON-RPC error bodies are built only here.
"""

import json
from dataclasses import dataclass
from typing import Any

from mcp_types import (
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)
from pydantic import ValidationError

from mcp_app.protocol.errors import INVALID_REQUEST, PARSE_ERROR


@dataclass(frozen=True)
class InboundError(Exception):
    """An inbound body that cannot be taken: answered with this JSON-RPC error."""

    code: int
    message: str
    request_id: str | int | None = None


def parse_message(body: bytes) -> JSONRPCMessage:
    """One JSON-RPC message from a POST body, or InboundError (-32700 / -32600)."""
    return to_message(decode(body))


def decode(body: bytes) -> Any:
    """The JSON value of a body, or InboundError -32700."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InboundError(PARSE_ERROR, f"Parse error: {exc}") from None
    except RecursionError:
        # json.loads recurses once per nesting level, so a few kilobytes of `[[[[...` exhaust the
        # stack; RecursionError is no ValueError, and must still be a parse error, never a 500.
        raise InboundError(PARSE_ERROR, "Parse error: JSON nested too deeply") from None


def to_message(data: Any) -> JSONRPCMessage:
    """One JSON-RPC message from a decoded body, or InboundError -32600."""
    if isinstance(data, list):
        # Batches left MCP in 2025-06-18; no current client sends them.
        raise InboundError(INVALID_REQUEST, "Invalid Request: JSON-RPC batches are not supported")
    if not isinstance(data, dict):
        raise InboundError(INVALID_REQUEST, "Invalid Request: expected a JSON-RPC message object")
    try:
        return jsonrpc_message_adapter.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or 'message'}: {e['msg']}" for e in exc.errors()[:3])
        raise InboundError(INVALID_REQUEST, f"Invalid Request: {problems}", request_id_of(data)) from None


def request_id_of(data: Any) -> str | int | None:
    """The id of a decoded message, if it has a usable one (to answer an error with)."""
    request_id = data.get("id") if isinstance(data, dict) else None
    return request_id if isinstance(request_id, (str, int)) and not isinstance(request_id, bool) else None


def is_request(message: JSONRPCMessage) -> bool:
    return isinstance(message, JSONRPCRequest)


def is_reply(message: JSONRPCMessage) -> bool:
    return isinstance(message, (JSONRPCResponse, JSONRPCError))


def is_notification(message: JSONRPCMessage) -> bool:
    return isinstance(message, JSONRPCNotification)


def error_body(code: int, message: str, request_id: str | int | None = None, data=None) -> bytes:
    error = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}).encode()


def notification(method: str, params: Any = None) -> dict[str, Any]:
    """A JSON-RPC notification as a wire dict (``params`` left out when there are none)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = dict(params)
    return message


def serialize(message: JSONRPCMessage) -> bytes:
    return message.model_dump_json(by_alias=True, exclude_unset=True).encode()
