"""Requests from the server to the client while a tool runs: sampling, elicitation, roots.

In the handshake era each request is sent *about* the tool call
(``related_request_id``), so the transport puts it on that call's stream, and the
client's answer, POSTed back as a JSON-RPC response, reaches the call that waits
for it. A client that did not declare the capability gets a tool error, as the
spec asks; one whose call cannot carry a request (a JSON-only POST) gets the
SDK's JSON-RPC error. The wait for the answer is bounded.

The stateless era (2026-07-28) has no such back channel: a call that needs the
client's input answers with an ``InputRequiredResult`` instead
(``conformance_fixtures/input_required.py``), and may only ask for what the
client declared in the request's ``_meta``; ``require_declared`` refuses the
rest with JSON-RPC -32021, naming the missing capability. ``ask`` sends any
such input request over the handshake era's back channel.

Used by the conformance fixtures (``conformance_fixtures/``). Sampling goes
through ``send_request``: the SDK's ``create_message`` helper is deprecated with
the stateless era.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types import (
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    ClientCapabilities,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitationCapability,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequest,
    InputResponse,
    ListRootsResult,
    MissingRequiredClientCapabilityErrorData,
    RootsCapability,
    SamplingCapability,
    SamplingMessage,
    TextContent,
)
from pydantic import BaseModel

# A person may be answering (elicitation) or a model generating (sampling).
ANSWER_TIMEOUT_SECONDS = 300.0

SAMPLING = ClientCapabilities(sampling=SamplingCapability())
ELICITATION = ClientCapabilities(elicitation=ElicitationCapability())
ROOTS = ClientCapabilities(roots=RootsCapability())

ResultT = TypeVar("ResultT", bound=BaseModel)


@dataclass(frozen=True)
class RequestKind:
    result_type: type[BaseModel]  # what the client answers with
    capability: ClientCapabilities  # what the client must have declared
    what: str  # the capability's name, for errors


KINDS = {
    "elicitation/create": RequestKind(ElicitResult, ELICITATION, "elicitation"),
    "sampling/createMessage": RequestKind(CreateMessageResult, SAMPLING, "sampling"),
    "roots/list": RequestKind(ListRootsResult, ROOTS, "roots"),
}


def declares(ctx: Context, capability: ClientCapabilities) -> bool:
    """Whether the caller declared ``capability`` (at initialize, or in this request's ``_meta``)."""
    return ctx.request_context.session.check_client_capability(capability)


def capability_error(capability: ClientCapabilities, what: str) -> MCPError:
    """JSON-RPC -32021, MissingRequiredClientCapability, with ``data.requiredCapabilities``."""
    data = MissingRequiredClientCapabilityErrorData(required_capabilities=capability)
    return MCPError(
        MISSING_REQUIRED_CLIENT_CAPABILITY,
        f"The client did not declare the {what} capability this request needs.",
        data=data.model_dump(by_alias=True, mode="json", exclude_none=True),
    )


def require_declared(ctx: Context, requests: Mapping[str, InputRequest]) -> None:
    """Refuse (-32021) to ask the client anything it did not declare it can answer."""
    for request in requests.values():
        kind = KINDS[request.method]
        if not declares(ctx, kind.capability):
            raise capability_error(kind.capability, kind.what)


async def _ask(
    ctx: Context, request: Any, result_type: type[ResultT], capability: ClientCapabilities, what: str
) -> ResultT:
    request_context = ctx.request_context
    session = request_context.session
    if not session.check_client_capability(capability):
        raise ToolError(f"The client does not support {what}.")
    return await session.send_request(
        request,
        result_type,
        request_read_timeout_seconds=ANSWER_TIMEOUT_SECONDS,
        metadata=ServerMessageMetadata(related_request_id=request_context.request_id),
    )


async def ask(ctx: Context, request: InputRequest) -> InputResponse:
    """Send an input request (elicitation, sampling or roots) to the client and wait for its answer."""
    kind = KINDS[request.method]
    return await _ask(ctx, request, kind.result_type, kind.capability, kind.what)


async def sample_text(ctx: Context, prompt: str, *, max_tokens: int) -> CreateMessageResult:
    """Ask the client's model to answer ``prompt`` (``sampling/createMessage``)."""
    message = SamplingMessage(role="user", content=TextContent(type="text", text=prompt))
    request = CreateMessageRequest(params=CreateMessageRequestParams(messages=[message], max_tokens=max_tokens))
    return await _ask(ctx, request, CreateMessageResult, SAMPLING, "sampling")


async def elicit_form(ctx: Context, message: str, requested_schema: dict[str, Any]) -> ElicitResult:
    """Ask the user to fill in a form described by ``requested_schema`` (``elicitation/create``)."""
    request = ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=requested_schema))
    return await _ask(ctx, request, ElicitResult, ELICITATION, "elicitation")
