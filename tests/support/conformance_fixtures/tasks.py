"""The tools of the ``tasks-*`` scenarios (the tasks extension, SEP-2663), with the names,
texts and task support the scenarios describe.

    greet                sync only: "Hello, {name}!"
    slow_compute         task (optional): sleeps ``seconds``, then answers; cancellable meanwhile
    failing_job          task (required): a tool error after about a second (completed, isError)
    protocol_error_job   task (optional): a JSON-RPC error (the task fails)
    confirm_delete       task (optional): asks the client to confirm (one input request), then answers
    multi_input          task (optional): asks two questions at once, answers when both came back
    test_tool_with_task  task (required): asks the user's name as an input-required result first,
                         then runs as a task whose result names them
"""

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CallToolRequestParams,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
)
from pydantic import BaseModel

from mcp_app.engine.tasks.extension import TasksExtension
from mcp_app.protocol.errors import INTERNAL_ERROR

NAME_QUESTION = "user_name"


class Confirmation(BaseModel):
    confirm: bool


class Name(BaseModel):
    name: str


def greet(name: str) -> str:
    """Greets by name, at once (never a task)."""
    return f"Hello, {name}!"


async def slow_compute(ctx: Context, seconds: float = 1, label: str = "") -> str:
    """Works for ``seconds`` (reporting progress each second), then answers; runs as a task."""
    for second in range(int(seconds)):
        await ctx.report_progress(second, seconds, label or None)
        await anyio.sleep(1)
    await anyio.sleep(seconds - int(seconds))
    return f"Computed {label or 'result'} in {seconds:g} s"


async def failing_job() -> str:
    """Fails as a tool (isError) after about a second; runs as a task."""
    await anyio.sleep(1)
    raise ToolError("The job failed, as it always does")


async def protocol_error_job() -> str:
    """Ends in a JSON-RPC error (not a tool error); runs as a task."""
    raise MCPError(INTERNAL_ERROR, "The job crashed")


async def confirm_delete(ctx: Context, filename: str) -> str:
    """Asks the client to confirm deleting ``filename``, then says what it did; runs as a task."""
    answer = await ctx.elicit(f"Delete {filename}?", Confirmation)
    if answer.action == "accept" and answer.data.confirm:
        return f"Deleted {filename}"
    return f"Kept {filename}"


async def multi_input(ctx: Context) -> str:
    """Asks two questions at once (a name and a confirmation) and answers when both came back."""
    answers: dict[str, object] = {}

    async def ask(key: str, message: str, schema: type[BaseModel]) -> None:
        answers[key] = await ctx.elicit(message, schema)

    async with anyio.create_task_group() as group:
        group.start_soon(ask, "name", "Your name?", Name)
        group.start_soon(ask, "confirm", "Go ahead?", Confirmation)
    name, confirm = answers["name"], answers["confirm"]
    who = name.data.name if name.action == "accept" else "nobody"
    go = confirm.action == "accept" and confirm.data.confirm
    return f"{who} said {'yes' if go else 'no'}"


def _name_question() -> ElicitRequest:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    return ElicitRequest(params=ElicitRequestFormParams(message="What is your name?", requested_schema=schema))


def _gathered_name(params_or_ctx) -> str | None:
    responses = getattr(params_or_ctx, "input_responses", None) or {}
    answer = responses.get(NAME_QUESTION)
    if isinstance(answer, ElicitResult) and answer.action == "accept" and answer.content:
        name = answer.content.get("name")
        return name if isinstance(name, str) else None
    return None


async def gather_name(params: CallToolRequestParams) -> InputRequiredResult | None:
    """Before the task: the user's name, as an input-required result, until the client sends it."""
    if _gathered_name(params) is None:
        return InputRequiredResult(input_requests={NAME_QUESTION: _name_question()})
    return None


async def test_tool_with_task(ctx: Context) -> str:
    """Asks the user's name first, then works on as a task and greets them."""
    name = _gathered_name(ctx)
    await anyio.sleep(0.5)  # some work, so that the task is seen working
    return f"Hello, {name or 'stranger'}! Your task is done."


def install(server: MCPServer, tasks: TasksExtension) -> None:
    server.add_tool(greet, structured_output=False)
    for tool, mode in (
        (slow_compute, "optional"),
        (failing_job, "required"),
        (protocol_error_job, "optional"),
        (confirm_delete, "optional"),
        (multi_input, "optional"),
    ):
        server.add_tool(tool, structured_output=False)
        tasks.support(tool.__name__, mode)
    server.add_tool(test_tool_with_task, structured_output=False)
    tasks.support("test_tool_with_task", "required", gather=gather_name)
