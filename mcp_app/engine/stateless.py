"""One request of the stateless era (MCP 2026-07-28), served by the SDK's single-exchange engine.

A 2026 request carries everything about its caller in itself: the protocol
version and client capabilities in ``params._meta``, the method (and the tool,
prompt or resource it names) in ``Mcp-Method`` / ``Mcp-Name`` headers that must
agree with the body. ``check`` runs the SDK's own validation ladder over both;
``serve`` runs the request through the same engine, middleware included (the
argument check, the audit trail, the limits), with this project's
``RequestInfo`` as the caller, and returns the result or raises. There is no
session: any worker answers any request, and nothing outlives the answer but
what the request itself asks for (a ``subscriptions/listen`` stream).

Messages the engine sends about the request (progress, a log line the request
opted into, the listen stream's notifications) go to ``on_notification`` as
JSON-RPC notification dicts; the transport decides how they travel.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mcp.server.runner import modern_error_data
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    InboundModernRoute,
    classify_inbound_request,
    decode_header_value,
    find_duplicated_routing_header,
    validate_mcp_param_headers,
)
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import ErrorData
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp_app.engine.arguments import declares_param_headers
from mcp_app.engine.exchange import Exchange, Notify, serve_exchange
from mcp_app.engine.server import get_server
from mcp_app.principal import RequestInfo
from mcp_app.protocol.errors import HEADER_MISMATCH
from mcp_app.protocol.names import MCP_NAME_HEADER, TASK_METHODS, TOOLS_CALL

log = logging.getLogger(__name__)

__all__ = ["MODERN_PROTOCOL_VERSIONS", "Rejection", "check", "error_of", "http_status_of", "serve"]

TRANSPORT_KIND = "streamable-http"


@dataclass(frozen=True)
class Rejection:
    """Why a request cannot be served, as the spec answers it: a JSON-RPC error and an HTTP status."""

    error: ErrorData
    status: int


def http_status_of(code: int) -> int:
    """The HTTP status the 2026 transport gives a JSON-RPC error code (400 for bad input, 404 unknown method)."""
    return ERROR_CODE_HTTP_STATUS.get(code, 200)


def check(request: Mapping[str, Any], headers: Mapping[str, str], raw_headers) -> InboundModernRoute | Rejection:
    """The SDK's validation ladder over one request and its headers (lower-case names).

    ``raw_headers`` are the (name, value) pairs as received, where a routing header
    sent twice is caught."""
    duplicated = find_duplicated_routing_header(raw_headers)
    if duplicated is not None:
        return _rejection(HEADER_MISMATCH, f"{duplicated} header appears more than once")
    verdict = classify_inbound_request(request, headers=headers)
    if isinstance(verdict, InboundLadderRejection):
        return _rejection(verdict.code, verdict.message, verdict.data)
    params = request.get("params") or {}
    task_id = params.get("taskId") if isinstance(params, Mapping) else None
    # SEP-2663: tasks/* carry the task id in Mcp-Name (for routing); the SDK's ladder knows only
    # the core methods' names, so this one is checked here, the same way.
    if (
        request.get("method") in TASK_METHODS
        and isinstance(task_id, str)
        and (decode_header_value(headers.get(MCP_NAME_HEADER)) != task_id)
    ):
        return _rejection(HEADER_MISMATCH, f"{MCP_NAME_HEADER} header does not match the request body's 'taskId'")
    if request.get("method") == TOOLS_CALL and isinstance(params.get("name"), str):
        schema = get_server().get_tool_input_schema(params["name"])
        arguments = params.get("arguments")
        if schema is not None and isinstance(arguments, Mapping) and declares_param_headers(schema):
            problem = validate_mcp_param_headers(schema, arguments, headers)
            if problem is not None:
                return _rejection(problem.code, problem.message, problem.data)
    return verdict


def _rejection(code: int, message: str, data: Any = None) -> Rejection:
    return Rejection(ErrorData(code=code, message=message, data=data), http_status_of(code))


async def serve(
    route: InboundModernRoute,
    request: Mapping[str, Any],
    info: RequestInfo,
    headers: Mapping[str, str],
    on_notification: Notify,
) -> dict[str, Any]:
    """The result of one checked request; raises what the handler chain raises (``error_of`` maps it)."""
    params = request.get("params")
    exchange = Exchange(
        transport=TransportContext(kind=TRANSPORT_KIND, can_send_request=False, headers=headers),
        request_id=request["id"],
        message_metadata=ServerMessageMetadata(request_context=info),
        on_notification=on_notification,
        progress_token=progress_token_from_params(params),
    )
    envelope = (route.protocol_version, route.client_info, route.client_capabilities)
    return await serve_exchange(exchange, request["method"], params, envelope)


def error_of(exc: Exception) -> ErrorData:
    """The JSON-RPC error for what ``serve`` raised: the handler's own MCP error, -32602 for bad
    parameters, or -32603 for anything unforeseen (which the SDK logs)."""
    return modern_error_data(exc)
