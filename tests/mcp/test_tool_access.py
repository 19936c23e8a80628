"""Who may call which tool, managed in the admin (mcp_app/engine/access.py).

Each tool has a Django permission, created by migrate; with ``MCP_TOOL_ACCESS=permission``
only people granted it (directly, through a group, or as superusers) see and call the tool.
A tool someone may not call is, to them, a tool that does not exist.
"""

import anyio
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from mcp import Client
from mcp_types import ToolListChangedNotification

from mcp_app.engine.access import permission_codename, rule_of
from mcp_app.engine.server import build_server
from mcp_app.tools import mcp_tool, registry
from tests.mcp.test_stateless import call, post, stateless_request
from tests.support.engine_client import request_info, tagged_streams
from tests.support.inbox import Inbox

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]
OWN_TOOLS = {"add", "subtract", "multiply", "divide", "power", "sqrt", "calculate", "whoami"}


@pytest.fixture
def by_permission(settings):
    settings.MCP_TOOL_ACCESS = "permission"
    return settings


async def tool_names(app, token) -> set[str]:
    return {tool["name"] for tool in (await call(app, token, "tools/list"))["result"]["tools"]}


async def grant(user, *tools: str) -> None:
    permissions = [await Permission.objects.aget(codename=permission_codename(tool)) for tool in tools]
    await sync_to_async(user.user_permissions.add)(*permissions)


def test_migrate_created_a_permission_per_tool():
    permissions = Permission.objects.filter(content_type__app_label="mcp_app", content_type__model="tool")
    assert {p.codename for p in permissions} >= {permission_codename(tool) for tool in OWN_TOOLS}
    assert permissions.get(codename="call_add").name == "Can call the MCP tool add"


async def test_by_default_everyone_signed_in_calls_every_tool(app, token):
    assert await tool_names(app, token) >= OWN_TOOLS


async def test_without_the_permission_a_tool_is_neither_listed_nor_callable(app, token, by_permission):
    assert await tool_names(app, token) == set()
    refused = await post(app, token, stateless_request("tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}}))
    missing = await post(app, token, stateless_request("tools/call", {"name": "nope", "arguments": {}}))
    # The same answer as for a tool that does not exist: nothing beyond what the list shows.
    assert refused.status == missing.status == 400
    assert refused.json()["error"] == {"code": -32602, "message": "Unknown tool: add"}
    assert missing.json()["error"] == {"code": -32602, "message": "Unknown tool: nope"}


async def test_a_granted_permission_takes_effect_at_once(app, token, user, by_permission):
    assert await tool_names(app, token) == set()  # read and cached by this worker
    await grant(user, "add")
    assert await tool_names(app, token) == {"add"}
    added = await call(app, token, "tools/call", {"name": "add", "arguments": {"a": 2, "b": 3}})
    assert added["result"]["structuredContent"] == {"result": 5}
    await sync_to_async(user.user_permissions.clear)()
    assert await tool_names(app, token) == set()


async def test_a_groups_permission_counts_and_superusers_have_them_all(app, token, user, by_permission):
    group = await Group.objects.acreate(name="calculators")
    await sync_to_async(group.permissions.add)(await Permission.objects.aget(codename="call_calculate"))
    await sync_to_async(user.groups.add)(group)
    assert await tool_names(app, token) == {"calculate"}
    user.is_superuser = True
    await user.asave()
    assert await tool_names(app, token) >= OWN_TOOLS


async def test_an_inactive_user_calls_nothing_even_with_the_permission(app, token, user, by_permission):
    await grant(user, "add")
    user.is_active = False
    await user.asave()
    # The token guard refuses an inactive user first (the access rule would too).
    assert (await post(app, token, stateless_request("tools/list"))).status == 401


@pytest.fixture
def ruled_tools():
    """Two tools with their own rules, beside the registry's, for an engine built for the test."""
    before = dict(registry._registry)

    @mcp_tool(access="everyone")
    async def open_to_all() -> str:
        """Anyone signed in may call this."""
        return "open"

    @mcp_tool(access=lambda user: user.username.startswith("a"))
    async def for_a_names() -> str:
        """Only for people whose username starts with a."""
        return "a"

    yield build_server()
    registry._registry.clear()
    registry._registry.update(before)


async def test_a_tool_may_declare_its_own_rule(ruled_tools, user, other_user, by_permission):
    assert rule_of("open_to_all") == "everyone" and rule_of("add") == "permission"
    seen = {}
    for person in (user, other_user):  # alice, mallory
        info = request_info(user_id=person.id, username=person.username)
        async with Client(tagged_streams(ruled_tools, info), mode="legacy") as client:
            seen[person.username] = {tool.name for tool in (await client.list_tools()).tools}
    assert seen == {"alice": {"open_to_all", "for_a_names"}, "mallory": {"open_to_all"}}


async def test_sessions_are_told_when_the_admin_changes_who_may_call_what(user, by_permission):
    inbox = Inbox()
    info = request_info(user_id=user.id, username=user.username)
    async with Client(tagged_streams(build_server(), info), mode="legacy", message_handler=inbox.on_message) as client:
        await client.send_ping()  # the server has taken notifications/initialized: it may notify
        await grant(user, "whoami")
        with anyio.fail_after(10):
            await inbox.next_of_type(ToolListChangedNotification)
        assert {tool.name for tool in (await client.list_tools()).tools} == {"whoami"}


def test_staff_see_every_tool_its_rule_scopes_and_who_holds_its_permission(client, user, by_permission):
    group = Group.objects.create(name="calculators")
    group.permissions.add(Permission.objects.get(codename="call_calculate"))
    user.user_permissions.add(Permission.objects.get(codename="call_add"))
    staff = get_user_model().objects.create_superuser(username="boss", password="a long staff passphrase")
    client.force_login(staff)
    page = client.get("/admin/mcp_app/tool/")
    assert page.status_code == 200
    rows = {tool["name"]: tool for tool in page.context["tools"]}
    assert rows["calculate"]["groups"] == ["calculators"] and rows["add"]["users"] == ["alice"]
    assert rows["add"]["rule"] == "permission"
    assert rows["create_note"]["scopes"] == ["notes:write"]
    assert "Tools without a rule of their own follow" in page.content.decode()


def test_the_tools_page_is_for_staff_who_may_see_permissions(client, django_user_model):
    clerk = django_user_model.objects.create_user(username="clerk", password="a long clerk passphrase", is_staff=True)
    client.force_login(clerk)
    assert client.get("/admin/mcp_app/tool/").status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="view_permission"))
    assert client.get("/admin/mcp_app/tool/").status_code == 200
