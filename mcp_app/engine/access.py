"""Who may call which tool: each tool's access rule, applied to ``tools/list`` and ``tools/call``.

A tool's rule (``@mcp_tool(access=...)``, else the ``MCP_TOOL_ACCESS`` setting) is
``"everyone"`` signed in, ``"permission"`` (the tool's Django permission
``mcp_app.call_<name>``, granted to users or groups in the admin; superusers have them
all), or a function of the user. ``tools/list`` shows a person only the tools they may
call; calling another is answered exactly as a tool that does not exist (-32602
"Unknown tool"), so the answer reveals nothing the list does not.

A person's permissions are read once per ``MCP_TOOL_ACCESS_CACHE_SECONDS`` per worker, and
only when a rule needs them. When staff change permissions, groups or accounts in the admin,
every worker forgets what it read and clients are told the tool list changed (handshake-era
sessions of the worker that made the change, and ``subscriptions/listen`` streams on every
worker), once the change is committed.

The tools' permissions are created by ``migrate`` (``post_migrate``), one per registered tool,
on the ``Tool`` model, which has no table: the registry is the list.
"""

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ServerEvent, ToolsListChanged

from mcp_app.engine import sdk
from mcp_app.engine.fanout import bus
from mcp_app.principal import RequestInfo
from mcp_app.protocol.errors import INVALID_PARAMS
from mcp_app.protocol.names import RESOURCES_READ, TOOLS_CALL
from mcp_app.tools.registry import registered, resource_spec_of, spec_of

log = logging.getLogger(__name__)

TOOLS_LIST = "tools/list"
APP_LABEL = "mcp_app"


def permission_codename(tool: str) -> str:
    return f"call_{tool}"


@dataclass(frozen=True)
class Person:
    """What the access rules read of a user, loaded once per cache period."""

    user: Any  # the User instance, for rules that are functions of it
    permissions: frozenset[str]  # "app_label.codename", as User.get_all_permissions() gives them

    def has_permission(self, codename: str) -> bool:
        if not self.user.is_active:
            return False
        return self.user.is_superuser or f"{APP_LABEL}.{codename}" in self.permissions


def _load_person(user_id: int) -> Person | None:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return None
    return Person(user=user, permissions=frozenset(user.get_all_permissions()))


class _People:
    """Persons by user id, each kept for MCP_TOOL_ACCESS_CACHE_SECONDS (this process only)."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[float, Person | None]] = {}

    async def get(self, user_id: int) -> Person | None:
        entry = self._entries.get(user_id)
        now = time.monotonic()
        if entry is not None and entry[0] > now:
            return entry[1]
        person = await database_sync_to_async(_load_person)(user_id)
        if len(self._entries) > 10_000:  # bounded: more people than one worker serves at once
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        self._entries[user_id] = (now + settings.MCP_TOOL_ACCESS_CACHE_SECONDS, person)
        return person

    def forget_everyone(self) -> None:
        self._entries.clear()


people = _People()


def rule_of(tool: str):
    spec = spec_of(tool)
    return spec.access if spec is not None and spec.access is not None else settings.MCP_TOOL_ACCESS


async def may_call(info: RequestInfo | None, tool: str) -> bool:
    """Whether the caller of a request may call ``tool`` (a caller without a token: only open tools)."""
    rule = rule_of(tool)
    if rule == "everyone":
        return True
    if info is None:
        return False
    person = await people.get(info.principal.user_id)
    if person is None:
        return False
    if rule == "permission":
        return person.has_permission(permission_codename(tool))
    try:
        return bool(rule(person.user)) and person.user.is_active
    except Exception:  # a broken rule denies; it must never fail the request
        log.exception("the access rule of tool %r failed", tool)
        return False


def missing_scopes(principal, method: str, params) -> frozenset[str]:
    """The scopes a ``tools/call`` (of its tool) or ``resources/read`` (of its resource) needs that
    the caller's token lacks; none for anything else, or for a tool or resource not declared."""
    if not isinstance(params, dict):
        return frozenset()
    if method == TOOLS_CALL and isinstance(params.get("name"), str):
        spec = spec_of(params["name"])
    elif method == RESOURCES_READ and isinstance(params.get("uri"), str):
        spec = resource_spec_of(params["uri"])
    else:
        return frozenset()
    return frozenset() if spec is None else spec.scopes - principal.scopes


def _caller(ctx: ServerRequestContext) -> RequestInfo | None:
    return ctx.request if isinstance(ctx.request, RequestInfo) else None


def install_access(server: MCPServer) -> None:
    """Filter ``tools/list`` and refuse ``tools/call`` by each tool's rule; install after every other
    wrapper of ``tools/call``, so this check comes first."""
    lowlevel = sdk.lowlevel_server(server)
    list_entry = lowlevel.get_request_handler(TOOLS_LIST)
    call_entry = lowlevel.get_request_handler(TOOLS_CALL)

    async def list_tools(ctx: ServerRequestContext, params):
        result = await list_entry.handler(ctx, params)
        info = _caller(ctx)
        tools = [tool for tool in result.tools if await may_call(info, tool.name)]
        return result if len(tools) == len(result.tools) else result.model_copy(update={"tools": tools})

    async def call_tool(ctx: ServerRequestContext, params):
        if not await may_call(_caller(ctx), params.name):
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name}")
        return await call_entry.handler(ctx, params)

    lowlevel.add_request_handler(TOOLS_LIST, list_entry.params_type, list_tools)
    lowlevel.add_request_handler(TOOLS_CALL, call_entry.params_type, call_tool)
    _listen_for_changes()


@functools.cache  # once per process, however many engines are built (the tests build many)
def _listen_for_changes() -> None:
    bus.subscribe(_forget_on_change)


def _forget_on_change(event: ServerEvent) -> None:
    """A tool list changed somewhere (the admin, on any worker): read permissions afresh."""
    if isinstance(event, ToolsListChanged):
        people.forget_everyone()


# -- the admin changes who may call what -----------------------------------------------------------
def access_changed(**_kwargs) -> None:
    """Signal receiver: once the change is committed, every worker forgets and clients re-list."""
    from django.db import transaction

    transaction.on_commit(_announce)


def _announce() -> None:
    from asgiref.sync import async_to_sync

    from mcp_app.engine.list_changed import announce_list_changed

    people.forget_everyone()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(announce_list_changed)("tools")  # a sync request thread (the admin)
    else:  # already on an event loop: announce in the background
        asyncio.get_running_loop().create_task(announce_list_changed("tools"))


def connect_signals() -> None:
    """Called once from ``MCPAppConfig.ready``."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db.models.signals import m2m_changed, post_save

    user_model = get_user_model()
    for through in (user_model.user_permissions.through, user_model.groups.through, Group.permissions.through):
        m2m_changed.connect(access_changed, sender=through, dispatch_uid=f"mcp_access_{through._meta.label}")
    post_save.connect(access_changed, sender=user_model, dispatch_uid="mcp_access_user")


def create_tool_permissions(app_config=None, using="default", **_kwargs) -> None:
    """``post_migrate`` receiver: one permission per registered tool (existing ones are kept)."""
    if app_config is not None and app_config.label != APP_LABEL:
        return
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from mcp_app.models import Tool

    content_type = ContentType.objects.db_manager(using).get_for_model(Tool, for_concrete_model=False)
    for spec in registered():
        Permission.objects.db_manager(using).get_or_create(
            content_type=content_type,
            codename=permission_codename(spec.name),
            defaults={"name": f"Can call the MCP tool {spec.name}"[:255]},
        )
