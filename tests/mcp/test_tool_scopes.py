"""Scopes per tool (MCP authorization, "Scope Challenge Handling"): a tool may need a scope
beyond the server's own; a token without it gets HTTP 403 with
``WWW-Authenticate: Bearer error="insufficient_scope", scope="..."``, over either protocol era
and transport, and the client authorizes again for the wider scope (tests/live/test_e2e_mcp_sdk.py).
"""

import importlib
import sys

import pytest
from django.test import Client as DjangoClient

from mcp_app.engine.server import get_mcp_server
from mcp_app.tools import registry
from oauth_app import scopes as oauth_scopes
from tests.mcp.test_stateless import post, stateless_request
from tests.support.asgi_client import LegacySSEClient, StreamableHTTPClient
from tests.support.oauth_flow import authorize_params, full_flow, pkce_pair, register

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]
MODULE = "tests.support.scoped_tools"


@pytest.fixture
def scoped_tool():
    """The scoped extension loaded afresh into this process's engine; everything as it was, afterwards."""
    registry._registry.pop("shout", None)
    oauth_scopes._declared.pop("extras:shout", None)
    sys.modules.pop(MODULE, None)
    tools, declared = dict(registry._registry), dict(oauth_scopes._declared)
    module = importlib.import_module(MODULE)
    spec = registry.spec_of("shout")
    server = get_mcp_server()
    server.add_tool(spec.runnable(), name=spec.name, title=spec.title, description=spec.description)
    yield module
    server.remove_tool("shout")
    registry._registry.clear()
    registry._registry.update(tools)
    oauth_scopes._declared.clear()
    oauth_scopes._declared.update(declared)
    sys.modules.pop(MODULE, None)


def token_with(user, scope: str) -> str:
    browser = DjangoClient()
    browser.force_login(user)
    return full_flow(browser, scope=scope)[1]["access_token"]


SHOUT = {"name": "shout", "arguments": {"text": "hello"}}


def challenge_of(headers: dict) -> str:
    return headers["www-authenticate"]


def test_declared_scopes_are_advertised_and_described_on_the_consent_page(client, logged_in, scoped_tool):
    supported = client.get("/.well-known/oauth-authorization-server").json()["scopes_supported"]
    assert {"mcp", "extras:shout"} <= set(supported)
    _status, registration = register(logged_in)
    _verifier, challenge = pkce_pair()
    params = authorize_params(registration["client_id"], challenge, scope="mcp extras:shout")
    page = logged_in.get("/authorize", params)
    assert page.status_code == 200
    assert scoped_tool.SHOUT_SCOPE_DESCRIPTION in page.content.decode()


async def test_a_token_without_the_tools_scope_is_challenged_to_step_up(app, user, scoped_tool):
    token = await sync_token(user, "mcp")
    listed = await post(app, token, stateless_request("tools/list"))
    assert "shout" in {tool["name"] for tool in listed.json()["result"]["tools"]}  # it exists; it needs more
    refused = await post(app, token, stateless_request("tools/call", SHOUT))
    assert refused.status == 403
    assert refused.json()["error"] == "insufficient_scope"
    challenge = challenge_of(refused.headers)
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="extras:shout mcp"' in challenge  # what it has and what the tool needs
    assert "resource_metadata=" in challenge


async def test_the_challenge_is_the_same_in_a_session_and_on_the_legacy_transport(app, user, scoped_tool):
    token = await sync_token(user, "mcp")
    session = StreamableHTTPClient(app, token)
    await session.initialize()
    refused = await session.post({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": SHOUT})
    assert refused.status == 403 and 'scope="extras:shout mcp"' in challenge_of(refused.headers)
    await session.close()
    legacy = LegacySSEClient(app, token)
    await legacy.open()
    refused = await legacy.post({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": SHOUT})
    assert refused.status == 403 and 'error="insufficient_scope"' in challenge_of(refused.headers)
    await legacy.close()


async def test_a_token_with_the_scope_calls_the_tool(app, user, scoped_tool):
    token = await sync_token(user, "mcp extras:shout")
    answered = await post(app, token, stateless_request("tools/call", SHOUT))
    assert answered.status == 200
    assert answered.json()["result"]["content"][0]["text"] == "HELLO"


def test_a_scope_is_a_scope_token_with_a_description():
    with pytest.raises(ValueError, match="not a scope token"):
        oauth_scopes.declare_scope('bad "scope"', "Quoted")
    with pytest.raises(ValueError, match="needs a description"):
        oauth_scopes.declare_scope("fine:scope", " ")


async def sync_token(user, scope: str) -> str:
    from asgiref.sync import sync_to_async

    return await sync_to_async(token_with)(user, scope)
