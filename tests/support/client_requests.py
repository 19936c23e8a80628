"""Requests from the server to the client while a tool runs: sampling and elicitation.

Each request is sent *about* the tool call (``related_request_id``), so the
transport puts it on that call's stream, and the client's answer, POSTed back
as a JSON-RPC response, reaches the call that waits for it. A client that did
not declare the capability gets a tool error, as the spec asks; one whose
call cannot carry a request (a JSON-only POST) gets the SDK's JSON-RPC error.
The wait for the answer is bounded. Used by the conformance fixtures
(``conformance_fixtures.py``), whose tools the suite drives through sampling
and elicitation.

Sampling goes through ``send_request``: the SDK's ``create_message`` helper is
deprecated with the 2026 era, whose stateless requests cannot ask the client
anything. This server speaks the handshake era, where both are current.
"""

from typing import Any, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.message import ServerMessageMetadata
from mcp_types import (
    ClientCapabilities,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitationCapability,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    SamplingCapability,
    SamplingMessage,
    TextContent,
)
from pydantic import BaseModel

# A person may be answering (elicitation) or a model generating (sampling).
ANSWER_TIMEOUT_SECONDS = 300.0

SAMPLING = ClientCapabilities(sampling=SamplingCapability())
ELICITATION = ClientCapabilities(elicitation=ElicitationCapability())

ResultT = TypeVar("ResultT", bound=BaseModel)


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


async def sample_text(ctx: Context, prompt: str, *, max_tokens: int) -> CreateMessageResult:
    """Ask the client's model to answer ``prompt`` (``sampling/createMessage``)."""
    message = SamplingMessage(role="user", content=TextContent(type="text", text=prompt))
    request = CreateMessageRequest(params=CreateMessageRequestParams(messages=[message], max_tokens=max_tokens))
    return await _ask(ctx, request, CreateMessageResult, SAMPLING, "sampling")


async def elicit_form(ctx: Context, message: str, requested_schema: dict[str, Any]) -> ElicitResult:
    """Ask the user to fill in a form described by ``requested_schema`` (``elicitation/create``)."""
    request = ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=requested_schema))
    return await _ask(ctx, request, ElicitResult, ELICITATION, "elicitation")
