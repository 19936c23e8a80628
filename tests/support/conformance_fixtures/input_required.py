"""Input-required results (SEP-2322, multi round-trip requests): the fixtures of the
``input-required-result-*`` scenarios and of ``test_streaming_elicitation``.

In the stateless era (2026-07-28) a request has no back channel. A tool or prompt
that needs the client's input answers with an ``InputRequiredResult``: its
questions by key (``inputRequests``) and, if it likes, opaque ``requestState``.
The client answers and sends the same request again with ``inputResponses`` and
the state echoed. The SDK seals the state on the way out (integrity, expiry,
bound to the tool, its arguments and the caller) and checks it on the way back,
so a tampered state is JSON-RPC -32602 before a fixture runs; the fixtures see
their own plain state.

Each fixture is written once, as one *round*: given the responses and the state it
got, it returns its answer or the next ``InputRequiredResult``. ``serve_rounds``
runs it in either era. Stateless era: one round per request, asking only what the
client declared (-32021 otherwise). Handshake era, where an ``InputRequiredResult``
is not a valid answer (the SDK turns one into -32603): it sends each question over
the session's back channel (``client_requests.ask``) and runs the next round
itself, within the one call. The keys and texts are the ones the scenarios name.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts import Prompt
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp_types import (
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
    InputResponse,
    ListRootsRequest,
    ListRootsResult,
    RequestParams,
    SamplingMessage,
    TextContent,
)
from mcp_types.version import is_version_at_least

from tests.support import client_requests

STATELESS_SINCE = "2026-07-28"
MAX_ROUNDS = 10  # handshake era: rounds one call may take before it gives up
Responses = dict[str, InputResponse]
Round = Callable[[Context, Responses, str | None], Awaitable[Any]]  # -> answer | InputRequiredResult


def is_stateless(ctx: Context) -> bool:
    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, STATELESS_SINCE)


async def serve_rounds(ctx: Context, round_: Round) -> Any:
    """Run ``round_`` for this request: see the module docstring."""
    if is_stateless(ctx):
        outcome = await round_(ctx, dict(ctx.input_responses or {}), ctx.request_state)
        if isinstance(outcome, InputRequiredResult):
            client_requests.require_declared(ctx, outcome.input_requests or {})
        return outcome
    responses: Responses = {}
    state: str | None = None
    for _ in range(MAX_ROUNDS):
        outcome = await round_(ctx, responses, state)
        if not isinstance(outcome, InputRequiredResult):
            return outcome
        requests = outcome.input_requests or {}
        responses = {key: await client_requests.ask(ctx, request) for key, request in requests.items()}
        state = outcome.request_state
    raise ToolError(f"No answer after {MAX_ROUNDS} rounds of questions.")


# -- the questions -------------------------------------------------------------------
def _form(message: str, field: str, kind: str = "string") -> ElicitRequest:
    schema = {"type": "object", "properties": {field: {"type": kind}}, "required": [field]}
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def _sampling(text: str, max_tokens: int) -> CreateMessageRequest:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=text))
    return CreateMessageRequest(params=CreateMessageRequestParams(messages=[message], max_tokens=max_tokens))


ROOTS = ListRootsRequest(params=RequestParams())


def _field(answer: InputResponse | None, field: str) -> Any:
    """``field`` of an accepted elicitation's content; None for anything else."""
    if isinstance(answer, ElicitResult) and answer.action == "accept" and answer.content:
        return answer.content.get(field)
    return None


def _sampled_text(answer: InputResponse | None) -> str | None:
    if isinstance(answer, CreateMessageResult) and isinstance(answer.content, TextContent):
        return answer.content.text
    return None


def _load(state: str | None) -> dict:
    try:
        loaded = json.loads(state) if state else {}
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


# -- the rounds ----------------------------------------------------------------------
async def elicitation(_ctx: Context, responses: Responses, _state: str | None) -> str | InputRequiredResult:
    """Asks the user's name (elicitation), then greets them."""
    name = _field(responses.get("user_name"), "name")
    if not isinstance(name, str):
        return InputRequiredResult(input_requests={"user_name": _form("What is your name?", "name")})
    return f"Hello, {name}!"


async def sampling(_ctx: Context, responses: Responses, _state: str | None) -> str | InputRequiredResult:
    """Asks the client's model a question (sampling), then reports its answer."""
    text = _sampled_text(responses.get("capital_question"))
    if text is None:
        question = _sampling("What is the capital of France?", 100)
        return InputRequiredResult(input_requests={"capital_question": question})
    return f"Model said: {text}"


async def list_roots(_ctx: Context, responses: Responses, _state: str | None) -> str | InputRequiredResult:
    """Asks the client's roots (roots/list), then names them."""
    answer = responses.get("client_roots")
    if not isinstance(answer, ListRootsResult):
        return InputRequiredResult(input_requests={"client_roots": ROOTS})
    return f"Client exposed {len(answer.roots)} root(s): " + ", ".join(str(root.uri) for root in answer.roots)


REQUEST_STATE = json.dumps({"fixture": "request-state"})


async def request_state(_ctx: Context, responses: Responses, state: str | None) -> str | InputRequiredResult:
    """Asks for a confirmation with requestState, and answers only when both come back."""
    ok = _field(responses.get("confirm"), "ok")
    if state != REQUEST_STATE or not isinstance(ok, bool):
        confirm = _form("Please confirm", "ok", "boolean")
        return InputRequiredResult(input_requests={"confirm": confirm}, request_state=REQUEST_STATE)
    return f"state-ok: requestState validated, ok={ok}"


MULTIPLE_STATE = json.dumps({"fixture": "multiple-inputs"})


async def multiple_inputs(_ctx: Context, responses: Responses, state: str | None) -> str | InputRequiredResult:
    """Asks three questions at once (elicitation, sampling, roots) and answers when all come back."""
    name = _field(responses.get("user_name"), "name")
    greeting = _sampled_text(responses.get("greeting"))
    roots = responses.get("client_roots")
    answered = isinstance(name, str) and greeting is not None and isinstance(roots, ListRootsResult)
    if state != MULTIPLE_STATE or not answered:
        requests = {
            "user_name": _form("What is your name?", "name"),
            "greeting": _sampling("Generate a greeting", 50),
            "client_roots": ROOTS,
        }
        return InputRequiredResult(input_requests=requests, request_state=MULTIPLE_STATE)
    return f"Name: {name}; Greeting: {greeting}; Roots: {len(roots.roots)}"


async def multi_round(_ctx: Context, responses: Responses, state: str | None) -> str | InputRequiredResult:
    """Asks a name, then (a second round, with new state) a colour, then answers."""
    progress = _load(state)
    if progress.get("round") == 1 and isinstance(name := _field(responses.get("step1"), "name"), str):
        step2 = _form("Step 2: What is your favorite color?", "color")
        state = json.dumps({"round": 2, "name": name})
        return InputRequiredResult(input_requests={"step2": step2}, request_state=state)
    if progress.get("round") == 2 and isinstance(color := _field(responses.get("step2"), "color"), str):
        return f"Multi-round complete: {progress.get('name')} likes {color}"
    # The first round, or answers that do not fit the state: start over.
    step1 = _form("Step 1: What is your name?", "name")
    return InputRequiredResult(input_requests={"step1": step1}, request_state=json.dumps({"round": 1}))


TAMPER_STATE = json.dumps({"fixture": "tampered-state"})


async def tampered_state(_ctx: Context, responses: Responses, state: str | None) -> str | InputRequiredResult:
    """Asks for a confirmation with requestState; a tampered state never gets here (the SDK refuses it)."""
    if state == TAMPER_STATE and isinstance(_field(responses.get("confirm"), "ok"), bool):
        return "integrity-ok: requestState verified"
    confirm = _form("Please confirm", "ok", "boolean")
    return InputRequiredResult(input_requests={"confirm": confirm}, request_state=TAMPER_STATE)


async def capabilities(ctx: Context, responses: Responses, _state: str | None) -> str | InputRequiredResult:
    """Asks only what the client declared it can answer: elicitation and sampling, each if declared."""
    requests = {}
    if client_requests.declares(ctx, client_requests.ELICITATION):
        requests["elicit_input"] = _form("Elicitation input", "value")
    if client_requests.declares(ctx, client_requests.SAMPLING):
        requests["sample_input"] = _sampling("Sample request", 50)
    if not requests:
        return "No supported capabilities declared"
    if not requests.keys() <= responses.keys():
        return InputRequiredResult(input_requests=requests, request_state=json.dumps({"fixture": "capabilities"}))
    return f"capabilities-ok: received {', '.join(sorted(requests))}"


async def streaming_elicitation(ctx: Context, responses: Responses, _state: str | None) -> str | InputRequiredResult:
    """Reports progress, then needs a confirmation (elicitation): the stateless era asks for it
    in its result, never as a request on the response stream (SEP-2575)."""
    if not responses:
        await ctx.report_progress(50, 100)  # when the call carries a progress token
    if _field(responses.get("confirm"), "ok") is None:
        return InputRequiredResult(input_requests={"confirm": _form("Continue streaming?", "ok", "boolean")})
    return "Streaming complete"


async def prompt_context(_ctx: Context, responses: Responses, _state: str | None) -> list | InputRequiredResult:
    """Asks what context the prompt should use (elicitation), then returns the prompt."""
    context = _field(responses.get("user_context"), "context")
    if not isinstance(context, str):
        ask = _form("What context should the prompt use?", "context")
        return InputRequiredResult(input_requests={"user_context": ask})
    return [UserMessage(f"Prompt with context: {context}")]


TOOLS: dict[str, Round] = {
    "test_input_required_result_elicitation": elicitation,
    "test_input_required_result_sampling": sampling,
    "test_input_required_result_list_roots": list_roots,
    "test_input_required_result_request_state": request_state,
    "test_input_required_result_multiple_inputs": multiple_inputs,
    "test_input_required_result_multi_round": multi_round,
    "test_input_required_result_tampered_state": tampered_state,
    "test_input_required_result_capabilities": capabilities,
    "test_streaming_elicitation": streaming_elicitation,
}
PROMPT = "test_input_required_result_prompt"


def _tool(round_: Round):
    async def tool(ctx: Context) -> str | InputRequiredResult:
        return await serve_rounds(ctx, round_)

    return tool


async def _prompt(ctx: Context) -> list[UserMessage] | InputRequiredResult:
    return await serve_rounds(ctx, prompt_context)


def install(server: MCPServer) -> None:
    for name, round_ in TOOLS.items():
        server.add_tool(_tool(round_), name=name, description=round_.__doc__, structured_output=False)
    server.add_prompt(Prompt.from_function(_prompt, name=PROMPT, description=prompt_context.__doc__))
