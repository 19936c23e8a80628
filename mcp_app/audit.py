"""The audit trail: every ``tools/call`` becomes a ``ToolCall`` row.

``record_tool_calls`` is a low-level server middleware; ``install_audit(server)``
adds it to an ``MCPServer``. Wrapping the whole handling of a call, it sees
all three ways one can end: a result, a result with ``isError`` (the tool ran
and failed), and a JSON-RPC error (unknown tool, bad arguments, a call before
initialization, a cancelled call), and times it.

The row is written through ``database_sync_to_async``, so the event loop never
waits on the database and stale connections are closed as in any Channels
consumer. A failed write is logged and does not fail the call: what the caller
gets back never depends on the audit log.
"""

import json
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import anyio
from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from pydantic import BaseModel, ValidationError

from mcp_app.models import ToolCall
from mcp_app.principal import RequestInfo

logger = logging.getLogger(__name__)

TOOLS_CALL = "tools/call"
TRUNCATION_MARKER = "…"


def install_audit(server: MCPServer) -> None:
    """Record every ``tools/call`` that ``server`` answers."""
    server.middleware.append(record_tool_calls)


async def record_tool_calls(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Server middleware: record each ``tools/call`` request with its outcome and duration."""
    if ctx.method != TOOLS_CALL or ctx.request_id is None:
        return await call_next(ctx)

    arrived = timezone.now()
    started = time.perf_counter()
    outcome, error_code, error_message = ToolCall.Outcome.PROTOCOL_ERROR, None, ""
    try:
        result = await call_next(ctx)
        outcome, error_message = _outcome_of(result)
        return result
    except MCPError as exc:
        error_code, error_message = exc.error.code, exc.error.message
        raise
    except ValidationError:  # malformed params: the runner answers -32602 without pydantic's text
        error_code, error_message = INVALID_PARAMS, "Invalid request parameters"
        raise
    except anyio.get_cancelled_exc_class():
        error_message = "Request cancelled"
        raise
    except Exception as exc:  # a crash below the handler; the audit keeps its cause for the admin
        error_message = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        duration_ms = (time.perf_counter() - started) * 1000
        with anyio.CancelScope(shield=True):  # a cancelled call is recorded too
            await _save(ctx, arrived, outcome, error_code, error_message, duration_ms)


def _outcome_of(result: HandlerResult) -> tuple[str, str]:
    """``(outcome, error message)`` of a call that returned a result."""
    if isinstance(result, BaseModel):  # a middleware further in may return a model instead of the wire form
        result = result.model_dump(by_alias=True, mode="json")
    if not isinstance(result, Mapping) or result.get("isError") is not True:
        return ToolCall.Outcome.OK, ""
    texts = [block.get("text", "") for block in result.get("content") or () if isinstance(block, Mapping)]
    return ToolCall.Outcome.TOOL_ERROR, next((text for text in texts if text), "")


def _record(
    ctx: ServerRequestContext[Any, Any],
    arrived: datetime,
    outcome: str,
    error_code: int | None,
    error_message: str,
    duration_ms: float,
) -> ToolCall:
    params = ctx.params if isinstance(ctx.params, Mapping) else {}
    name = params.get("name")
    info = ctx.request if isinstance(ctx.request, RequestInfo) else None
    principal = info.principal if info else None
    return ToolCall(
        created_at=arrived,
        user_id=principal.user_id if principal else None,
        username=_cut(principal.username if principal else "", _max_length("username")),
        client_id=_cut(principal.client_id if principal else "", _max_length("client_id")),
        session_id=_cut(info.session_id if info else "", _max_length("session_id")),
        tool=_cut("" if name is None else str(name), _max_length("tool")),
        arguments=_arguments_text(params.get("arguments")),
        outcome=outcome,
        error_code=error_code,
        error_message=_cut(error_message, _max_length("error_message")),
        duration_ms=round(duration_ms, 3),
    )


def _arguments_text(arguments: object) -> str:
    if not settings.MCP_AUDIT_ARGUMENTS:
        return ""
    text = json.dumps({} if arguments is None else arguments, ensure_ascii=False, sort_keys=True, default=str)
    return _cut(text, settings.MCP_AUDIT_ARGUMENT_CHARS)


def _cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, marked when it was cut."""
    return text if len(text) <= limit else text[: limit - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER


def _max_length(field_name: str) -> int:
    return ToolCall._meta.get_field(field_name).max_length


@database_sync_to_async
def _write(record: ToolCall) -> None:
    record.save()


async def _save(ctx: ServerRequestContext[Any, Any], *details: Any) -> None:
    try:
        await _write(_record(ctx, *details))
    except Exception:
        logger.exception("could not record a tools/call request (%s)", ctx.request_id)
