"""JSON-RPC framing for the transports: parse one inbound body, build error bodies.

Everything here is plain Python (no Channels), so it is testable on its own.
JSON-RPC error bodies are built only here.
"""

import json
from dataclasses import dataclass

from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)
from pydantic import ValidationError

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "SESSION_NOT_FOUND",
    "InboundError",
    "error_body",
    "is_request",
    "parse_message",
    "serialize",
]

# JSON-RPC 2.0 §5.1 leaves -32000..-32099 to servers; the SDK uses -32001 for an unknown session.
SESSION_NOT_FOUND = -32001


@dataclass(frozen=True)
class InboundError(Exception):
    """An inbound body that cannot be taken: answered with this JSON-RPC error."""

    code: int
    message: str
    request_id: str | int | None = None


def parse_message(body: bytes) -> JSONRPCMessage:
    """One JSON-RPC message from a POST body, or InboundError (-32700 / -32600)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InboundError(PARSE_ERROR, f"Parse error: {exc}") from None
    except RecursionError:
        # json.loads recurses once per nesting level, so a few kilobytes of `[[[[...` exhaust the
        # stack; RecursionError is no ValueError and was answered 500 (found by tests/test_fuzz_live.py).
        raise InboundError(PARSE_ERROR, "Parse error: JSON nested too deeply") from None
    if isinstance(data, list):
        # Batches left MCP in 2025-06-18; no current client sends them.
        raise InboundError(INVALID_REQUEST, "Invalid Request: JSON-RPC batches are not supported")
    if not isinstance(data, dict):
        raise InboundError(INVALID_REQUEST, "Invalid Request: expected a JSON-RPC message object")
    request_id = data.get("id") if isinstance(data.get("id"), (str, int)) and not isinstance(data.get("id"), bool) else None
    try:
        return jsonrpc_message_adapter.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or 'message'}: {e['msg']}" for e in exc.errors()[:3])
        raise InboundError(INVALID_REQUEST, f"Invalid Request: {problems}", request_id) from None


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


def serialize(message: JSONRPCMessage) -> bytes:
    return message.model_dump_json(by_alias=True, exclude_unset=True).encode()
