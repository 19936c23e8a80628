"""The ``io.modelcontextprotocol/tasks`` extension, as the SDK's ``Extension``: advertised in the
server's capabilities, a ``tools/call`` interceptor, and the methods ``tasks/get``,
``tasks/update`` and ``tasks/cancel``.

Which tools run as tasks is the server's decision, per tool (``support``):

- ``"optional"``: a task when the request declares the extension, else the call
  runs within the request like any other;
- ``"required"``: a request that does not declare it is refused with -32021
  (missing required client capability), naming the extension.

A tool may ``gather`` input first (SEP-2663 composition with input-required
results): before the task is created, ``gather(params)`` may answer with an
``InputRequiredResult``, which goes back to the client as the request's answer
(no task yet); when it answers None the task starts, and its call sees the
client's ``inputResponses`` as the request carried them.

A request of the handshake era (2025-11-25) never gets a task: the extension is
not defined there. The ``tasks/*`` methods are served in the stateless era only,
to a request that declares the extension (-32021 otherwise), for tasks of the
caller (person and client; -32602 "Unknown task" for any other id). The
interceptor runs inside the access check and the argument check, so a task is
only created for a call that would have run.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver.server import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolRequestParams, InputRequiredResult, RequestParams
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp_app.engine.tasks import runner, store
from mcp_app.engine.tasks.current import current_task
from mcp_app.engine.tasks.signals import ANSWERED, CANCEL, signals
from mcp_app.principal import RequestInfo
from mcp_app.protocol.errors import INVALID_PARAMS, MISSING_REQUIRED_CLIENT_CAPABILITY, TOO_MANY_RUNNING_CALLS
from mcp_app.protocol.names import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    TASKS_CANCEL,
    TASKS_EXTENSION,
    TASKS_GET,
    TASKS_UPDATE,
)

Mode = Literal["optional", "required"]
MODES = ("optional", "required")
Gather = Callable[[CallToolRequestParams], Awaitable[InputRequiredResult | None]]


class TaskParams(RequestParams):
    task_id: str


class UpdateTaskParams(TaskParams):
    input_responses: dict[str, Any] = {}


@dataclass(frozen=True)
class TaskSupport:
    mode: Mode
    gather: Gather | None = None


class TasksExtension(Extension):
    identifier = TASKS_EXTENSION

    def __init__(self) -> None:
        self._tools: dict[str, TaskSupport] = {}

    # -- which tools -------------------------------------------------------------------------
    def support(self, tool: str, mode: Mode | None = "optional", *, gather: Gather | None = None) -> None:
        """Let ``tool`` run as a task (see the module docstring for ``mode`` and ``gather``); None: no more."""
        if mode is None:
            self._tools.pop(tool, None)
            return
        if mode not in MODES:
            raise ValueError(f"task support must be one of {MODES}; got {mode!r}")
        self._tools[tool] = TaskSupport(mode, gather)

    def support_of(self, tool: str) -> TaskSupport | None:
        return self._tools.get(tool)

    # -- the SDK's extension surface --------------------------------------------------------------
    def methods(self):
        versions = frozenset(MODERN_PROTOCOL_VERSIONS)
        return (
            MethodBinding(TASKS_GET, TaskParams, self._get, protocol_versions=versions),
            MethodBinding(TASKS_UPDATE, UpdateTaskParams, self._update, protocol_versions=versions),
            MethodBinding(TASKS_CANCEL, TaskParams, self._cancel, protocol_versions=versions),
        )

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        support = self._tools.get(params.name)
        if support is None or current_task() is not None:  # not a task tool, or already the task's own call
            return await call_next(ctx)
        if not declares_tasks(ctx):
            if support.mode == "required":
                raise _tasks_required(params.name)
            return await call_next(ctx)
        info = ctx.request if isinstance(ctx.request, RequestInfo) else None
        if info is None:  # no caller to own a task (the engine driven in-process): run it here
            return await call_next(ctx)
        if support.gather is not None:
            asked = await support.gather(params)
            if asked is not None:
                return asked
        limit = settings.MCP_MAX_ACTIVE_TASKS_PER_USER
        if await store.active_count(info.principal.user_id) >= limit:
            raise MCPError(
                TOO_MANY_RUNNING_CALLS,
                f"Too many unfinished tasks: at most {limit} at once; retry when one has ended",
                {"maxActiveTasks": limit},
            )
        task = await store.create(info.principal, params.name)  # committed: tasks/get finds it from now on
        meta = (ctx.params or {}).get("_meta") or {}
        envelope = (ctx.protocol_version, meta.get(CLIENT_INFO_META_KEY), meta.get(CLIENT_CAPABILITIES_META_KEY))
        await runner.start(task.id, runner.Call(params=dict(ctx.params or {}), info=info, envelope=envelope))
        return {"resultType": "task", **store.wire(task)}

    # -- tasks/get, tasks/update, tasks/cancel ------------------------------------------------------
    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        task = await store.find(_owner(ctx), params.task_id)
        if task is None:
            raise _unknown(params.task_id)
        return {"resultType": "complete", **store.wire(task, detailed=True)}

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> dict[str, Any]:
        if not await store.exists_for(_owner(ctx), params.task_id):
            raise _unknown(params.task_id)
        if await store.answer(params.task_id, params.input_responses):
            await signals.send(params.task_id, ANSWERED)
        return {"resultType": "complete"}

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        if not await store.exists_for(_owner(ctx), params.task_id):
            raise _unknown(params.task_id)
        if await store.cancel(params.task_id):
            await signals.send(params.task_id, CANCEL)
        return {"resultType": "complete"}


def declares_tasks(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this request may get a task: stateless era, extension declared in its capabilities."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    capabilities = ctx.session.client_capabilities
    return bool(capabilities and capabilities.extensions and TASKS_EXTENSION in capabilities.extensions)


def _owner(ctx: ServerRequestContext[Any, Any]):
    """The caller, once the request is known to declare the extension (-32021 otherwise)."""
    require_client_extension(ctx, TASKS_EXTENSION)
    if not isinstance(ctx.request, RequestInfo):
        raise _unknown("")
    return ctx.request.principal


def _tasks_required(tool: str) -> MCPError:
    # The SDK's require_client_extension would let a handshake-era client that declared the
    # extension through; there the extension does not exist (SEP-2663), so the tool cannot run.
    versions = ", ".join(sorted(MODERN_PROTOCOL_VERSIONS))
    return MCPError(
        MISSING_REQUIRED_CLIENT_CAPABILITY,
        f"Tool {tool} runs only as a task: it needs the {TASKS_EXTENSION} extension, declared in the "
        f"request's capabilities, at protocol version {versions}",
        {"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}},
    )


def _unknown(task_id: str) -> MCPError:
    # The same answer for an id that never existed, one that expired, and another caller's task.
    return MCPError(INVALID_PARAMS, "Unknown task", {"taskId": task_id[:100]})
