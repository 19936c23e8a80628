"""Any installed app offers tools through its mcp_tools.py (mcp_app/tools/registry.py).

A sample app (tests/support/sample_app) is installed for these tests only; its tools are found
at start-up like the admin's admin.py, and offered next to this server's own.
"""

import sys

import pytest
from django.apps import apps
from mcp.server.mcpserver import MCPServer

from mcp_app.engine.server import build_server
from mcp_app.tools import mcp_tool, registry
from tests.support.engine_client import connect, request_info

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def sample_app(settings):
    """The sample app installed; the registry as it was before, afterwards."""
    before = dict(registry._registry)
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "tests.support.sample_app"]
    yield apps.get_app_config("sample_app")
    registry._registry.clear()
    registry._registry.update(before)
    sys.modules.pop("tests.support.sample_app.mcp_tools", None)  # found (and registered) anew next time


async def test_an_installed_apps_tools_are_found_and_offered_beside_the_servers_own(sample_app, user):
    server = build_server()
    async with connect(server, request_info(user_id=user.id)) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
    assert names[:8] == ["add", "subtract", "multiply", "divide", "power", "sqrt", "calculate", "whoami"]
    assert {"count_users", "where_do_i_run", "echo_on_the_loop"} <= set(names)


async def test_a_plain_tool_runs_in_a_thread_and_may_use_the_orm(sample_app, user):
    server = build_server()
    async with connect(server, request_info(user_id=user.id, username="alice")) as client:
        counted = await client.call_tool("count_users", {})
        where = await client.call_tool("where_do_i_run", {})
        echoed = await client.call_tool("echo_on_the_loop", {"text": "hi"})
    assert counted.structured_content == {"result": 1}
    assert where.structured_content["user"] == "alice"
    assert where.structured_content["thread"] != "MainThread"
    assert echoed.content[0].text == "hi (MainThread)"


async def test_titles_annotations_and_descriptions_come_from_the_declaration(sample_app):
    server = build_server()
    async with connect(server, request_info()) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert tools["count_users"].title == "Count users"
    assert tools["count_users"].annotations.read_only_hint is True
    assert tools["where_do_i_run"].title == "Where do i run"
    assert tools["echo_on_the_loop"].description == "Says the text back, on the event loop."


def test_two_tools_may_not_share_a_name():
    def add(a: int, b: int) -> int:
        """Not the real add."""
        return a + b

    with pytest.raises(ValueError, match="two tools are named 'add'"):
        mcp_tool(add)
    assert registry.spec_of("add").function is not add


def test_an_unknown_access_rule_is_refused_when_declared():
    with pytest.raises(ValueError, match="access must be one of"):
        mcp_tool(access="anyone")(lambda: None)


def test_register_tools_adds_exactly_the_registry():
    from mcp_app.tools import register_tools

    server = MCPServer("probe")
    register_tools(server)
    assert [spec.name for spec in registry.registered()] == [tool.name for tool in server._tool_manager.list_tools()]
