"""Tools from any installed app: declared with ``@mcp_tool`` in the app's ``mcp_tools.py``.

At start-up (``MCPAppConfig.ready``) every installed app's ``mcp_tools`` module is
imported, as Django's admin imports ``admin.py``; each ``@mcp_tool`` there adds a
``ToolSpec`` to the registry, and the engine offers every registered tool.
Adding a tool to an app needs no change here::

    # notes/mcp_tools.py
    from mcp_app.tools import mcp_tool

    @mcp_tool(title="Count notes", read_only=True)
    def count_notes(ctx: Context) -> int:
        '''How many notes you have.'''
        return Note.objects.filter(owner_id=principal_from_context(ctx).user_id).count()

Where a tool runs:

- a coroutine function runs on the event loop, as it is;
- a plain function runs in a thread, through ``database_sync_to_async`` (Django's rule for
  the ORM from async code: the thread's database connection is cleaned up as in a request);
- a plain function marked ``on_event_loop=True`` runs on the event loop: only for pure,
  bounded work (the math tools), where a thread hop would cost more than the work.

Who may call it (``access``): ``"everyone"`` signed in, ``"permission"`` (the tool's own
Django permission, ``mcp_app.call_<name>``, granted in the admin), or a function of the
user returning a bool; ``None`` takes the ``MCP_TOOL_ACCESS`` setting.
"""

import functools
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mcp_types import ToolAnnotations

from oauth_app.resource_server import declare_scope

Access = Literal["everyone", "permission"] | Callable[[Any], bool] | None
ACCESS_CHOICES = ("everyone", "permission")


@dataclass(frozen=True)
class ToolSpec:
    """A tool as an app declared it."""

    function: Callable[..., Any]
    name: str
    title: str
    description: str
    annotations: ToolAnnotations | None
    scopes: frozenset[str]  # OAuth scopes a token needs to call it, beyond the server's own
    access: Access
    on_event_loop: bool
    structured_output: bool | None
    task: Literal["optional", "required"] | None  # runs as a task for clients that take tasks

    def runnable(self) -> Callable[..., Any]:
        """The function as the engine calls it: a coroutine function, wherever it really runs."""
        return _runnable(self.function, self.on_event_loop)


def _runnable(function: Callable[..., Any], on_event_loop: bool) -> Callable[..., Any]:
    """``function`` as a coroutine function with its signature: as it is, on the loop, or in a thread."""
    if inspect.iscoroutinefunction(function):
        return function
    if on_event_loop:

        @functools.wraps(function)
        async def run_here(*args, **kwargs):
            return function(*args, **kwargs)

        return run_here

    from channels.db import database_sync_to_async

    in_thread = database_sync_to_async(function)

    @functools.wraps(function)
    async def run_in_thread(*args, **kwargs):
        return await in_thread(*args, **kwargs)

    return run_in_thread


_registry: dict[str, ToolSpec] = {}


def mcp_tool(
    function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
    annotations: ToolAnnotations | None = None,
    read_only: bool | None = None,
    scopes: Iterable[str] | Mapping[str, str] = (),
    access: Access = None,
    on_event_loop: bool = False,
    structured_output: bool | None = None,
    task: Literal["optional", "required"] | None = None,
):
    """Register ``function`` as an MCP tool; returns it unchanged. Usable bare or with options.

    ``read_only=True`` is shorthand for the annotations of a tool without side effects that
    gives the same answer for the same input and reaches nothing outside this server.

    ``scopes``: the OAuth scopes a token needs to call it (beyond the server's own), as names
    declared with ``mcp_scope``, or as ``{name: description}`` to declare them here. A token
    without them is answered HTTP 403 ``insufficient_scope`` naming them, and clients authorize
    again for the wider scope (step-up).

    ``task``: a long call may run as a task (MCP's tasks extension): the client gets a task id
    at once and polls for the result, which outlives the request, the client's connection and
    ``MCP_TOOL_CALL_TIMEOUT_SECONDS``. ``"optional"``: only for clients that take tasks, others
    wait for the call as usual; ``"required"``: clients that do not take tasks are refused."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        if isinstance(scopes, Mapping):
            for scope, scope_description in scopes.items():
                mcp_scope(scope, scope_description)
        spec_annotations = annotations
        if spec_annotations is None and read_only:
            spec_annotations = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
        if task not in (None, "optional", "required"):
            raise ValueError(f"task must be 'optional', 'required' or None; got {task!r}")
        if access is not None and not callable(access) and access not in ACCESS_CHOICES:
            raise ValueError(f"access must be one of {ACCESS_CHOICES}, a function of the user, or None; got {access!r}")
        spec = ToolSpec(
            function=function,
            name=name or function.__name__,
            title=title or (name or function.__name__).replace("_", " ").capitalize(),
            description=description or inspect.getdoc(function) or "",
            annotations=spec_annotations,
            scopes=frozenset(scopes),
            access=access,
            on_event_loop=on_event_loop,
            structured_output=structured_output,
            task=task,
        )
        existing = _registry.get(spec.name)
        if existing is not None and existing.function is not function:
            raise ValueError(f"two tools are named {spec.name!r}: {_where(existing.function)} and {_where(function)}")
        _registry[spec.name] = spec
        return function

    return register(function) if function is not None else register


def mcp_scope(name: str, description: str) -> str:
    """Declare an OAuth scope tools may require, with the words the consent page shows for it."""
    declare_scope(name, description)
    return name


def _where(function: Callable[..., Any]) -> str:
    return f"{function.__module__}.{function.__qualname__}"


@dataclass(frozen=True)
class ResourceSpec:
    """A resource (or resource template, ``note://{id}``) as an app declared it."""

    function: Callable[..., Any]
    uri: str
    name: str
    title: str | None
    description: str
    mime_type: str | None
    scopes: frozenset[str]  # OAuth scopes a token needs to read it, beyond the server's own

    def runnable(self) -> Callable[..., Any]:
        return _runnable(self.function, on_event_loop=False)

    def matches(self, uri: str) -> bool:
        """Whether ``uri`` is this resource, or an instance of this template (each ``{name}`` one segment)."""
        return _template_pattern(self.uri).fullmatch(uri) is not None


@functools.cache
def _template_pattern(template: str) -> re.Pattern:
    parts = re.split(r"(\{[^{}]+\})", template)
    return re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts if part))


_resources: dict[str, ResourceSpec] = {}


def mcp_resource(
    uri: str,
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
    mime_type=None,
    scopes: Iterable[str] | Mapping[str, str] = (),
):
    """Register a function as a resource (``"note://{id}"`` makes a template: its parameters come from
    the URI). Runs like a tool: a coroutine on the loop, a plain function in a thread fit for the ORM.
    Take a ``ctx: Context`` parameter to know who reads it, and show them only what is theirs.
    ``scopes`` as for ``mcp_tool``: a token without them is challenged (HTTP 403) on ``resources/read``."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        if isinstance(scopes, Mapping):
            for scope, scope_description in scopes.items():
                mcp_scope(scope, scope_description)
        existing = _resources.get(uri)
        if existing is not None and existing.function is not function:
            raise ValueError(f"two resources have the URI {uri!r}: {_where(existing.function)} and {_where(function)}")
        _resources[uri] = ResourceSpec(
            function=function,
            uri=uri,
            name=name or function.__name__,
            title=title,
            description=description or inspect.getdoc(function) or "",
            mime_type=mime_type,
            scopes=frozenset(scopes),
        )
        return function

    return register


def resource_spec_of(uri: str) -> ResourceSpec | None:
    """The declared resource or template ``uri`` belongs to, if any."""
    return next((spec for spec in _resources.values() if spec.matches(uri)), None)


def registered_resources() -> list[ResourceSpec]:
    """Every registered resource and template, in the order apps declared them."""
    return list(_resources.values())


def registered() -> list[ToolSpec]:
    """Every registered tool, in the order apps declared them."""
    return list(_registry.values())


def spec_of(name: str) -> ToolSpec | None:
    return _registry.get(name)


def discover() -> None:
    """Import every installed app's ``mcp_tools`` module (once; later calls find them imported)."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("mcp_tools")
