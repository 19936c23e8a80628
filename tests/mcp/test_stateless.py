"""The stateless era (MCP 2026-07-28) on /mcp, through the real ASGI application.

Each request is self-contained: its protocol version and client capabilities in
``params._meta``, its method and target in ``Mcp-Method`` / ``Mcp-Name``
(basic/transports, "Protocol Version Header" and "Standard Headers"), no
``initialize`` and no session. The handshake era keeps working beside it on the
same URL (tests/mcp/test_transports.py).
"""

import asyncio
import json
import sqlite3

import anyio
import pytest
from channels.testing import ApplicationCommunicator
from mcp.server.mcpserver import Context
from mcp_types import ElicitRequest, ElicitRequestFormParams, InputRequiredResult

from mcp_app.engine import audit
from mcp_app.engine.list_changed import announce_list_changed
from mcp_app.engine.server import get_mcp_server
from mcp_app.models import ToolCall
from tests.support.asgi_client import (
    TIMEOUT,
    close_stream,
    http,
    parse_events,
    read_until,
    request_scope,
    send_request,
)
from tests.support.conformance_fixtures.tools import x_mcp_header

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio, pytest.mark.usefixtures("worker")]

VERSION = "2026-07-28"
CLIENT_META = {
    "io.modelcontextprotocol/protocolVersion": VERSION,
    "io.modelcontextprotocol/clientInfo": {"name": "test-client", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
}
NAME_PARAMETER = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


def stateless_request(method: str, params: dict | None = None, request_id=1, meta: dict | None = CLIENT_META) -> dict:
    params = dict(params or {})
    if meta is not None:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def stateless_headers(token: str, message: dict, **overrides) -> dict:
    headers = {
        "authorization": f"Bearer {token}",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": VERSION,
        "mcp-method": message.get("method", ""),
    }
    name_key = NAME_PARAMETER.get(message.get("method"))
    if name_key is not None:
        headers["mcp-name"] = message["params"][name_key]
    for name, value in overrides.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return headers


async def post(app, token: str, message, **header_overrides):
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    headers = stateless_headers(token, message if isinstance(message, dict) else {}, **header_overrides)
    return await http(app, "POST", "/mcp", body, headers)


async def call(app, token: str, method: str, params: dict | None = None, **header_overrides) -> dict:
    result = await post(app, token, stateless_request(method, params), **header_overrides)
    assert result.status == 200, result.body
    assert result.headers.get("content-type", "").startswith("application/json"), result.headers
    return result.json()


# -- discovery, results, caching -----------------------------------------------------------------
async def test_discover_tells_the_versions_capabilities_and_who_the_server_is(app, token):
    reply = await call(app, token, "server/discover")
    result = reply["result"]
    assert VERSION in result["supportedVersions"]
    assert {"tools", "prompts", "resources"} <= set(result["capabilities"])
    assert result["resultType"] == "complete"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "django-mcp"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["version"]


async def test_no_session_is_created_or_needed(app, token):
    result = await post(app, token, stateless_request("tools/list"))
    assert result.status == 200
    assert "mcp-session-id" not in result.headers


async def test_lists_carry_cache_hints_and_a_result_type(app, token):
    for method in ("tools/list", "prompts/list", "resources/list", "resources/templates/list"):
        result = (await call(app, token, method))["result"]
        assert result["resultType"] == "complete", method
        # The tools a person may call are theirs (engine/access.py); the other lists are everyone's.
        assert result["cacheScope"] == ("private" if method == "tools/list" else "public"), method
        assert result["ttlMs"] > 0, method


async def test_a_tool_call_reaches_the_tool_as_the_tokens_user(app, token, user):
    added = (await call(app, token, "tools/call", {"name": "add", "arguments": {"a": 2, "b": 40}}))["result"]
    assert added["structuredContent"] == {"result": 42}
    assert added["resultType"] == "complete"
    identity = (await call(app, token, "tools/call", {"name": "whoami", "arguments": {}}))["result"]
    assert identity["structuredContent"]["user"] == {"id": user.id, "username": "alice"}
    assert identity["structuredContent"]["scopes"] == ["mcp"]


async def test_each_call_is_audited_without_a_session(app, token):
    await call(app, token, "tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}})
    row = await ToolCall.objects.aget(tool="add")
    assert (row.username, row.session_id, row.outcome) == ("alice", "", ToolCall.Outcome.OK)


async def test_bad_arguments_are_invalid_params_with_http_400(app, token):
    result = await post(app, token, stateless_request("tools/call", {"name": "add", "arguments": {"a": "x"}}))
    assert result.status == 400
    assert result.json()["error"]["code"] == -32602
    assert result.json()["id"] == 1


# -- the header and _meta rules ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"mcp_method": None}, -32020),  # missing Mcp-Method
        ({"mcp_method": "tools/call"}, -32020),  # contradicts the body
        ({"mcp_protocol_version": "2099-01-01"}, -32020),  # header and _meta disagree
    ],
    ids=["missing-method-header", "wrong-method-header", "version-header-disagrees"],
)
async def test_headers_that_contradict_the_body_are_refused(app, token, overrides, code):
    result = await post(app, token, stateless_request("tools/list"), **overrides)
    assert result.status == 400
    assert result.json()["error"]["code"] == code
    assert result.json()["id"] == 1


async def test_a_name_header_must_name_what_the_body_names(app, token):
    message = stateless_request("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}})
    assert (await post(app, token, message, mcp_name="subtract")).json()["error"]["code"] == -32020
    assert (await post(app, token, message, mcp_name=None)).json()["error"]["code"] == -32020


@pytest.fixture
def region_tool():
    """The conformance suite's tool whose ``region`` argument clients mirror into ``Mcp-Param-Region``."""
    server = get_mcp_server()
    server.add_tool(x_mcp_header, name="test_echo_region")
    yield "test_echo_region"
    server.remove_tool("test_echo_region")


@pytest.mark.parametrize(
    ("header", "status", "code"),
    [("eu-west", 200, None), ("us-east", 400, -32020), (None, 400, -32020)],
    ids=["agrees", "disagrees", "missing"],
)
async def test_a_param_header_must_agree_with_its_argument(app, token, region_tool, header, status, code):
    message = stateless_request("tools/call", {"name": region_tool, "arguments": {"region": "eu-west"}})
    result = await post(app, token, message, mcp_param_region=header)
    assert result.status == status
    if code is None:
        assert result.json()["result"]["content"][0]["text"] == "region=eu-west"
    else:
        assert result.json()["error"]["code"] == code
        assert "Mcp-Param-Region" in result.json()["error"]["message"]


async def test_param_headers_mean_nothing_to_a_tool_that_declares_none(app, token):
    """Only a property annotated with ``x-mcp-header`` has a header to agree with."""
    message = stateless_request("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}})
    result = await post(app, token, message, mcp_param_a="999")
    assert result.status == 200
    assert result.json()["result"]["structuredContent"] == {"result": 3}


async def test_a_routing_header_sent_twice_is_refused(app, token):
    """First-copy and last-copy readers would disagree on where the request goes."""
    message = stateless_request("tools/list")
    scope = request_scope("POST", "/mcp", stateless_headers(token, message))
    scope["headers"].append((b"mcp-method", b"tools/list"))
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": json.dumps(message).encode()})
    start = await communicator.receive_output(TIMEOUT)
    body = json.loads((await communicator.receive_output(TIMEOUT))["body"])
    assert start["status"] == 400
    assert body["error"]["code"] == -32020


@pytest.mark.parametrize(
    ("meta", "what"),
    [
        (None, "no _meta"),
        ({"io.modelcontextprotocol/clientCapabilities": {}}, "no protocol version"),
        ({"io.modelcontextprotocol/protocolVersion": VERSION}, "no client capabilities"),
    ],
)
async def test_a_request_without_its_envelope_is_invalid_params(app, token, meta, what):
    result = await post(app, token, stateless_request("server/discover", meta=meta))
    assert result.status == 400, what
    assert result.json()["error"]["code"] == -32602, what


async def test_an_unknown_version_is_refused_naming_the_supported_ones(app, token):
    meta = {**CLIENT_META, "io.modelcontextprotocol/protocolVersion": "v999.0.0"}
    result = await post(app, token, stateless_request("server/discover", meta=meta), mcp_protocol_version="v999.0.0")
    assert result.status == 400
    error = result.json()["error"]
    assert error["code"] == -32022
    assert error["data"] == {"supported": [VERSION], "requested": "v999.0.0"}


async def test_a_stateless_request_without_the_version_header_is_refused(app, token):
    """`_meta` alone makes it a stateless request, whose header is then missing (-32020)."""
    result = await post(app, token, stateless_request("tools/list"), mcp_protocol_version=None)
    assert result.status == 400
    assert result.json()["error"]["code"] == -32020


async def test_the_claude_code_quirk_is_tolerated(app, token):
    """A handshake-era version header on a request whose _meta says 2026-07-28 (seen from Claude
    Code) is served as the _meta says: documented in mcp_app/transport/stateless_http.py."""
    reply = await call(app, token, "tools/list", mcp_protocol_version="2025-11-25")
    assert reply["result"]["resultType"] == "complete"
    assert {tool["name"] for tool in reply["result"]["tools"]} >= {"add", "whoami"}


# -- what the stateless era removed -------------------------------------------------------------
@pytest.mark.parametrize("method", ["initialize", "ping", "logging/setLevel", "resources/subscribe", "no/such"])
async def test_removed_and_unknown_methods_are_not_found(app, token, method):
    params = {"uri": "test://x"} if method == "resources/subscribe" else {"level": "info"} if "Level" in method else {}
    result = await post(app, token, stateless_request(method, params))
    assert result.status == 404, result.body
    assert result.json()["error"]["code"] == -32601
    assert result.json()["id"] == 1


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_get_and_delete_are_not_part_of_the_stateless_era(app, token, method):
    headers = {"authorization": f"Bearer {token}", "accept": "text/event-stream", "mcp-protocol-version": VERSION}
    result = await http(app, method, "/mcp", headers=headers)
    assert result.status == 405
    assert result.headers["allow"] == "POST"


async def test_a_notification_is_acknowledged_and_dropped(app, token):
    message = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}
    assert (await post(app, token, message)).status == 202


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"{not json", -32700), (b"[]", -32600), (b'{"jsonrpc": "2.0", "id": 1, "result": {}}', -32600)],
    ids=["not-json", "batch", "a-response"],
)
async def test_malformed_bodies_get_a_jsonrpc_error(app, token, body, code):
    result = await http(app, "POST", "/mcp", body, stateless_headers(token, {"method": "tools/list"}))
    assert result.status == 400
    assert result.json()["error"]["code"] == code


async def test_no_token_is_challenged_as_in_the_handshake_era(app):
    message = stateless_request("tools/list")
    result = await http(app, "POST", "/mcp", json.dumps(message).encode(), stateless_headers("", message))
    assert result.status == 401
    assert "resource_metadata=" in result.headers["www-authenticate"]


# -- streams about one request ------------------------------------------------------------------
@pytest.fixture
def asking_tool():
    """A tool that needs the caller's name first (an input-required result), then greets."""
    server = get_mcp_server()

    async def greet_me(ctx: Context) -> str | InputRequiredResult:
        """Asks for your name, then greets you."""
        answers = ctx.input_responses or {}
        if "name" in answers:
            return f"Hello, {answers['name'].content['name']} ({ctx.request_state})"
        ask = ElicitRequest(
            params=ElicitRequestFormParams(
                message="What is your name?",
                requested_schema={"type": "object", "properties": {"name": {"type": "string"}}},
            )
        )
        return InputRequiredResult(input_requests={"name": ask}, request_state="asked-once")

    server.add_tool(greet_me, name="greet_me", structured_output=False)
    yield "greet_me"
    server.remove_tool("greet_me")


async def _ask(app, token):
    first = await call(app, token, "tools/call", {"name": "greet_me", "arguments": {}})
    result = first["result"]
    assert result["resultType"] == "input_required"
    assert set(result["inputRequests"]) == {"name"}
    return result["requestState"]


def _answer(state: str) -> dict:
    answer = {"name": {"action": "accept", "content": {"name": "Alice"}}}
    return {"name": "greet_me", "arguments": {}, "inputResponses": answer, "requestState": state}


async def test_a_tool_asks_for_input_and_gets_it_on_the_next_request(app, token, asking_tool):
    state = await _ask(app, token)
    assert "asked-once" not in state  # sealed, not the tool's own words
    done = (await call(app, token, "tools/call", _answer(state)))["result"]
    assert done["resultType"] == "complete"
    assert done["content"][0]["text"] == "Hello, Alice (asked-once)"


async def test_request_state_is_useless_to_another_user_or_when_tampered_with(app, token, other_token, asking_tool):
    state = await _ask(app, token)
    for presented, by in ((state, other_token), (state[:-4] + "AAAA", token), ("forged", token)):
        result = await post(app, by, stateless_request("tools/call", _answer(presented)))
        assert result.status == 400
        assert result.json()["error"]["code"] == -32602
        assert "requestState" in result.json()["error"]["message"]


# -- subscriptions/listen ----------------------------------------------------------------------
async def _open_listen(app, token, notifications: dict):
    message = stateless_request("subscriptions/listen", {"notifications": notifications}, request_id=77)
    stream = await send_request(app, "POST", "/mcp", json.dumps(message).encode(), stateless_headers(token, message))
    start = await stream.receive_output(TIMEOUT)
    assert start["status"] == 200, start
    assert dict(start["headers"])[b"content-type"].startswith(b"text/event-stream")
    raw = await read_until(stream, lambda b: b"\n\n" in b)
    (ack,) = [json.loads(event["data"]) for event in parse_events(raw)]
    assert ack["method"] == "notifications/subscriptions/acknowledged"
    return stream


async def test_listen_acknowledges_then_tells_of_list_changes(app, token):
    stream = await _open_listen(app, token, {"toolsListChanged": True})
    try:
        await announce_list_changed("prompts")  # not asked for: never sent
        await announce_list_changed("tools")
        raw = await read_until(stream, lambda b: b"list_changed" in b)
        (changed,) = [json.loads(event["data"]) for event in parse_events(raw)]
        assert changed["method"] == "notifications/tools/list_changed"
        assert changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 77
    finally:
        await close_stream(stream)


async def test_listen_needs_an_event_stream(app, token):
    message = stateless_request("subscriptions/listen", {"notifications": {"toolsListChanged": True}})
    result = await post(app, token, message, accept="application/json")
    assert result.status == 406


async def test_a_client_that_leaves_ends_its_listen_stream(app, token):
    stream = await _open_listen(app, token, {"toolsListChanged": True})
    with anyio.fail_after(TIMEOUT):
        await close_stream(stream)  # the endpoint returns once the client is gone


@pytest.fixture
def database_write_lock(transactional_db):
    """Take the database's write lock (SQLite: another connection's ``BEGIN IMMEDIATE``); release it."""
    from django.db import connection

    assert connection.vendor == "sqlite", "in-process tests run on SQLite (mcpsite/settings.py, TEST)"
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    yield lambda: holder.execute("ROLLBACK")
    holder.close()


async def test_a_client_that_leaves_while_its_call_is_recorded_frees_its_request_and_loses_no_row(
    app, token, blocking_tool, database_write_lock
):
    """The audit row of a finished call waits for the database (here: another writer holds the lock),
    and the client leaves meanwhile: the request ends at once, cancelled while it waits for the
    commit, and the row, queued before that wait, is still written once the database lets it, with
    the call's own outcome."""
    started, release = blocking_tool
    release.set()  # the tool returns as soon as it runs
    message = stateless_request("tools/call", {"name": "test_wait_for_release", "arguments": {}})
    request = await send_request(app, "POST", "/mcp", json.dumps(message).encode(), stateless_headers(token, message))
    await asyncio.wait_for(started.wait(), TIMEOUT)
    await close_stream(request)  # returns once the application has ended the request (bounded)
    assert await ToolCall.objects.filter(tool="test_wait_for_release").acount() == 0  # not written yet

    release_lock = database_write_lock
    release_lock()
    await asyncio.wait_for(audit.flush(), TIMEOUT)
    [row] = [row async for row in ToolCall.objects.filter(tool="test_wait_for_release")]
    assert (row.outcome, row.username) == (ToolCall.Outcome.OK, "alice")


@pytest.fixture
def counting_tool():
    """A tool that reports progress twice before it answers."""
    server = get_mcp_server()

    async def count_to_two(ctx: Context) -> str:
        """Counts to two, reporting progress."""
        await ctx.report_progress(1, 2)
        await ctx.report_progress(2, 2)
        return "counted"

    server.add_tool(count_to_two, name="count_to_two", structured_output=False)
    yield "count_to_two"
    server.remove_tool("count_to_two")


async def test_progress_about_a_request_turns_its_answer_into_a_stream(app, token, counting_tool):
    params = {"name": "count_to_two", "arguments": {}, "_meta": {**CLIENT_META, "progressToken": "p1"}}
    message = stateless_request("tools/call", params, meta=None)
    result = await post(app, token, message)
    assert result.status == 200
    assert result.headers["content-type"].startswith("text/event-stream")
    progress, progress2, answer = [json.loads(event["data"]) for event in parse_events(result.body)]
    assert (progress["method"], progress["params"]["progress"], progress2["params"]["progress"]) == (
        "notifications/progress",
        1,
        2,
    )
    assert answer["id"] == 1 and answer["result"]["content"][0]["text"] == "counted"


async def test_a_json_only_client_gets_the_answer_without_the_progress(app, token, counting_tool):
    params = {"name": "count_to_two", "arguments": {}, "_meta": {**CLIENT_META, "progressToken": "p1"}}
    result = await post(app, token, stateless_request("tools/call", params, meta=None), accept="application/json")
    assert result.status == 200
    assert result.json()["result"]["content"][0]["text"] == "counted"
