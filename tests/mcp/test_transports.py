"""MCP over both transports, through the real ASGI application (guards included).

Protocol behaviour runs over Streamable HTTP (2025-11-25) and legacy HTTP+SSE
(2024-11-05) through the `transport` fixture; transport-specific answers to bad
input are tested per transport below.
"""

import json

import pytest

from mcp_app.cluster import directory
from tests.support.asgi_client import (
    LegacySSEClient,
    StreamableHTTPClient,
    close_stream,
    http,
    initialize_message,
    open_get_stream,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio, pytest.mark.usefixtures("worker")]


@pytest.fixture(params=["streamable-http", "sse"])
async def transport(request, app, token):
    client = StreamableHTTPClient(app, token) if request.param == "streamable-http" else LegacySSEClient(app, token)
    yield client
    await client.close()


# -- the protocol, over each transport ---------------------------------------------------
async def test_session_ids_name_the_worker_route_when_one_is_set(app, token, settings):
    """`<route>.<secret>`: what lets nginx send a session's requests to its worker (deploy/nginx)."""
    settings.MCP_WORKER_ROUTE = "8001"
    for client in (StreamableHTTPClient(app, token), LegacySSEClient(app, token)):
        await client.initialize()
        route, _, secret = client.session_id.partition(".")
        assert (route, len(secret)) == ("8001", 43)
        assert (await client.request("tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}}))["result"][
            "isError"
        ] is False
        await client.close()


async def test_initialize_negotiates_and_names_the_server(transport):
    reply = await transport.initialize()
    result = reply["result"]
    assert result["serverInfo"]["name"] == "django-mcp"
    assert "tools" in result["capabilities"]
    assert result["protocolVersion"] in {"2025-11-25", "2024-11-05"}


async def test_tools_are_listed_with_schemas(transport):
    await transport.initialize()
    tools = {tool["name"]: tool for tool in (await transport.request("tools/list"))["result"]["tools"]}
    assert {"add", "subtract", "multiply", "divide", "power", "sqrt", "calculate", "whoami"} <= set(tools)
    assert tools["add"]["inputSchema"]["type"] == "object"
    assert "outputSchema" in tools["add"]


async def test_call_a_tool(transport):
    await transport.initialize()
    reply = await transport.request("tools/call", {"name": "add", "arguments": {"a": 2, "b": 3}})
    assert reply["result"]["isError"] is False
    assert reply["result"]["structuredContent"] == {"result": 5}


async def test_division_by_zero_is_a_tool_error(transport):
    await transport.initialize()
    reply = await transport.request("tools/call", {"name": "divide", "arguments": {"a": 1, "b": 0}})
    assert reply["result"]["isError"] is True


async def test_whoami_knows_the_user(transport):
    await transport.initialize()
    reply = await transport.request("tools/call", {"name": "whoami", "arguments": {}})
    assert "alice" in json.dumps(reply["result"])


async def test_unknown_method_is_a_jsonrpc_error(transport):
    await transport.initialize()
    reply = await transport.request("no/such/method")
    assert reply["error"]["code"] == -32601


async def test_ping(transport):
    await transport.initialize()
    assert (await transport.request("ping"))["result"] == {}


async def test_another_users_token_cannot_use_the_session(transport, app, other_token):
    """The template this replaces let any token drive any session; here it does not exist for them."""
    await transport.initialize()
    message = json.dumps({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}).encode()
    if isinstance(transport, StreamableHTTPClient):
        headers = transport.headers(authorization=f"Bearer {other_token}")
        result = await http(app, "POST", "/mcp", message, headers)
    else:
        headers = {"authorization": f"Bearer {other_token}", "content-type": "application/json"}
        result = await http(app, "POST", transport.endpoint, message, headers)
    assert result.status == 404
    # The owner still can.
    assert "result" in await transport.request("tools/list")


# -- Streamable HTTP: answers to bad input ----------------------------------------------
async def test_missing_accept_json_is_406(shttp):
    assert (await shttp.post(initialize_message(), accept="text/event-stream")).status == 406


async def test_wrong_content_type_is_415(shttp):
    assert (await shttp.post(initialize_message(), **{"content-type": "text/plain"})).status == 415


async def test_malformed_json_is_parse_error(app, shttp):
    result = await http(app, "POST", "/mcp", b"{not json", shttp.headers())
    assert result.status == 400
    assert result.json()["error"]["code"] == -32700


async def test_deeply_nested_json_is_a_parse_error(app, shttp):
    # json.loads raises RecursionError, no ValueError, past the stack's depth: was a 500 (tests/live/test_fuzz_live.py).
    result = await http(app, "POST", "/mcp", b"[" * 100_000 + b"]" * 100_000, shttp.headers())
    assert result.status == 400
    assert result.json()["error"]["code"] == -32700


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]',
        b"42",
        b'{"jsonrpc":"1.0","id":1,"method":"ping"}',
        b'{"id":1}',
    ],
)
async def test_invalid_jsonrpc_is_invalid_request(app, shttp, body):
    result = await http(app, "POST", "/mcp", body, shttp.headers())
    assert result.status == 400
    assert result.json()["error"]["code"] == -32600


async def test_answers_declare_their_length(app, shttp):
    """A JSON answer, an error and an empty 202 each say how long they are, so that an HTTP/1.1
    server sends them as they are instead of framing them in chunks."""
    answer = await shttp.post(initialize_message())
    shttp.session_id = answer.headers["mcp-session-id"]
    accepted = await shttp.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
    refused = await http(app, "POST", "/mcp", b"{not json", shttp.headers())
    assert [answer.status, accepted.status, refused.status] == [200, 202, 400]
    for result in (answer, accepted, refused):
        assert result.headers["content-length"] == str(len(result.body))
    assert answer.body and refused.body and not accepted.body


async def test_huge_body_is_413(app, shttp, settings):
    settings.MCP_MAX_BODY_BYTES = 2048
    result = await http(app, "POST", "/mcp", b"x" * 4096, shttp.headers())
    assert result.status == 413


async def test_initialize_creates_a_session_and_sets_its_id(shttp):
    reply = await shttp.initialize()
    assert reply["result"]["protocolVersion"] == "2025-11-25"
    assert len(shttp.session_id) >= 32


async def test_missing_session_id_is_400(shttp):
    result = await shttp.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert result.status == 400


async def test_unknown_session_is_404(shttp):
    shttp.session_id = "no-such-session"
    result = await shttp.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert result.status == 404
    shttp.session_id = None


async def test_unsupported_protocol_version_is_400(shttp):
    await shttp.initialize()
    result = await shttp.post(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, **{"mcp-protocol-version": "1999-01-01"}
    )
    assert result.status == 400


async def test_notifications_get_202(shttp):
    await shttp.initialize()
    assert (await shttp.post({"jsonrpc": "2.0", "method": "notifications/initialized"})).status == 202


async def test_delete_ends_the_session(app, shttp):
    await shttp.initialize()
    assert (await http(app, "DELETE", "/mcp", headers=shttp.headers())).status == 200
    assert (await shttp.post({"jsonrpc": "2.0", "id": 5, "method": "tools/list"})).status == 404
    shttp.session_id = None


async def test_server_discover_gets_an_error_so_clients_fall_back(shttp):
    result = await shttp.post({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}})
    assert result.json()["error"]["code"] == -32601


async def test_other_methods_are_405(app, shttp):
    result = await http(app, "PUT", "/mcp", b"", shttp.headers())
    assert result.status == 405
    assert result.headers["allow"] == "GET, POST, DELETE"


async def test_a_second_get_stream_is_409(app, shttp):
    await shttp.initialize()
    first = await open_get_stream(app, "/mcp", shttp.headers(accept="text/event-stream"))
    second = await http(app, "GET", "/mcp", headers=shttp.headers(accept="text/event-stream"))
    assert second.status == 409
    await close_stream(first)


# -- legacy SSE ----------------------------------------------------------------------
async def test_sse_first_event_names_the_messages_endpoint(app, token):
    client = LegacySSEClient(app, token)
    await client.open()
    assert client.endpoint.startswith("/messages?sessionId=")
    await client.close()


async def test_sse_disconnect_frees_the_session(app, token):
    client = LegacySSEClient(app, token)
    await client.initialize()
    session_id = client.session_id
    await client.close()
    assert not directory.this_worker.owns(session_id)


async def test_messages_for_unknown_session_is_404(app, token):
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    result = await http(app, "POST", "/messages?sessionId=nope", b'{"jsonrpc":"2.0","method":"x"}', headers)
    assert result.status == 404
    result = await http(app, "POST", "/messages", b'{"jsonrpc":"2.0","method":"x"}', headers)
    assert result.status == 400


async def test_sse_idle_stream_gets_comment_pings(app, token, settings):
    settings.MCP_SSE_PING_SECONDS = 1
    client = LegacySSEClient(app, token)
    await client.open()
    while b": ping" not in client._buffer:
        client._buffer += (await client._stream.receive_output(5)).get("body", b"")
    await client.close()


# -- a session owned by another worker -------------------------------------------------
async def test_requests_reaching_another_worker_are_forwarded_to_the_owner(app, token, other_token, monkeypatch):
    """Worker 1 creates the session; worker 2 (same channel layer and cache) gets the later
    requests and forwards them over the channel layer; the replies come back the same way."""
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    owner = directory.this_worker
    assert owner.owns(client.session_id)
    from django.core.cache import cache

    record = await cache.aget("mcp:session:" + client.session_id)
    assert record["owner"] == await owner.channel()
    assert record["protocol_version"] == "2025-11-25"
    assert record["last_activity"] > 0
    monkeypatch.setattr(
        directory, "this_worker", directory.SessionDirectory()
    )  # from here on requests land on worker 2

    reply = await client.request("tools/call", {"name": "multiply", "arguments": {"a": 6, "b": 7}})
    assert reply["result"]["structuredContent"] == {"result": 42}
    assert (await client.post({"jsonrpc": "2.0", "method": "notifications/initialized"})).status == 202
    assert "alice" in json.dumps(await client.request("tools/call", {"name": "whoami", "arguments": {}}))

    # Another user's token finds nothing, here or there.
    foreign = await http(
        app,
        "POST",
        "/mcp",
        b'{"jsonrpc":"2.0","id":99,"method":"ping"}',
        client.headers(authorization=f"Bearer {other_token}"),
    )
    assert foreign.status == 404

    # DELETE travels to the owner too; afterwards the session is gone everywhere.
    assert (await http(app, "DELETE", "/mcp", headers=client.headers())).status == 200
    assert not owner.owns(client.session_id)
    assert (await client.post({"jsonrpc": "2.0", "id": 100, "method": "ping"})).status == 404
    client.session_id = None


async def test_standalone_stream_through_another_worker(app, token, monkeypatch):
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    monkeypatch.setattr(directory, "this_worker", directory.SessionDirectory())
    stream = await open_get_stream(app, "/mcp", client.headers(accept="text/event-stream"))
    second = await http(app, "GET", "/mcp", headers=client.headers(accept="text/event-stream"))
    assert second.status == 409  # the owner knows its stream is taken
    await close_stream(stream)
    await client.close()


# -- many sessions, one process ----------------------------------------------------------
async def test_a_slow_tool_blocks_neither_other_sessions_nor_its_own(app, token, blocking_tool):
    import asyncio

    started, release = blocking_tool
    slow_client, other_client = StreamableHTTPClient(app, token), StreamableHTTPClient(app, token)
    await slow_client.initialize()
    await other_client.initialize()
    slow = asyncio.ensure_future(slow_client.request("tools/call", {"name": "test_wait_for_release", "arguments": {}}))
    await asyncio.wait_for(started.wait(), 10)
    # While the slow call is running: another session, and the same session, are served.
    assert (await other_client.request("tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}}))["result"][
        "structuredContent"
    ] == {"result": 2}
    assert (await slow_client.request("ping"))["result"] == {}
    assert not slow.done()
    release.set()
    reply = await asyncio.wait_for(slow, 10)
    assert reply["result"]["structuredContent"] == {"result": "released"}
    await slow_client.close()
    await other_client.close()


async def test_idle_sessions_expire(app, token, settings, worker):
    import asyncio

    settings.MCP_SESSION_IDLE_SECONDS = 1
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    session = worker._sessions[client.session_id]
    await asyncio.wait_for(session.closed.wait(), 10)
    assert not worker.owns(client.session_id)
    assert (await client.post({"jsonrpc": "2.0", "id": 7, "method": "ping"})).status == 404
    client.session_id = None


@pytest.fixture
def progress_tool():
    from mcp.server.mcpserver import Context

    from mcp_app.engine.server import get_mcp_server

    async def count_to_three(ctx: Context) -> int:
        for step in (1, 2):
            await ctx.report_progress(step, 3, f"step {step}")
        return 3

    server = get_mcp_server()
    server.add_tool(count_to_three, name="test_count_to_three")
    yield
    server.remove_tool("test_count_to_three")


async def test_progress_turns_the_answer_into_an_event_stream(shttp, progress_tool):
    """Something sent about a request before its answer: the POST is answered as text/event-stream."""
    await shttp.initialize()
    call = {
        "jsonrpc": "2.0",
        "id": 42,
        "method": "tools/call",
        "params": {"name": "test_count_to_three", "arguments": {}, "_meta": {"progressToken": "p1"}},
    }
    result = await shttp.post(call)
    assert result.status == 200
    assert result.headers["content-type"].startswith("text/event-stream")
    events = result.events()
    assert [e["params"]["progress"] for e in events[:-1]] == [1, 2]
    assert all(e["params"]["progressToken"] == "p1" for e in events[:-1])
    assert events[-1]["id"] == 42 and events[-1]["result"]["structuredContent"] == {"result": 3}
    # Without a progress token the same call is a plain JSON answer.
    plain = await shttp.post({**call, "id": 43, "params": {"name": "test_count_to_three", "arguments": {}}})
    assert plain.headers["content-type"] == "application/json"


async def test_progress_over_legacy_sse_precedes_the_reply(app, token, progress_tool):
    client = LegacySSEClient(app, token)
    await client.initialize()
    reply = await client.request(
        "tools/call", {"name": "test_count_to_three", "arguments": {}, "_meta": {"progressToken": 7}}
    )
    assert [n["params"]["progress"] for n in client.pending] == [1, 2]
    assert reply["result"]["structuredContent"] == {"result": 3}
    await client.close()


async def test_legacy_sse_posts_landing_on_another_worker_answer_on_the_owners_stream(app, token, monkeypatch):
    client = LegacySSEClient(app, token)
    await client.initialize()  # the stream (and the session) live on worker 1
    monkeypatch.setattr(directory, "this_worker", directory.SessionDirectory())  # POST /messages now land on worker 2
    reply = await client.request("tools/call", {"name": "add", "arguments": {"a": 20, "b": 22}})
    assert reply["result"]["structuredContent"] == {"result": 42}
    await client.close()


async def test_a_session_whose_worker_died_is_gone(app, token, monkeypatch):
    """Worker 1 stops beating (it was killed): its sessions answer 404 on worker 2, and the
    client's next initialize starts a fresh session there."""
    from django.core.cache import cache

    client = StreamableHTTPClient(app, token)
    await client.initialize()
    owner = directory.this_worker
    owner._heartbeat.cancel()
    owner._door.cancel()
    await cache.adelete("mcp:worker:" + await owner.channel())  # what the heartbeat's expiry does
    monkeypatch.setattr(directory, "this_worker", directory.SessionDirectory())
    gone = await client.post({"jsonrpc": "2.0", "id": 3, "method": "ping"})
    assert gone.status == 404
    assert await cache.aget("mcp:session:" + client.session_id) is None  # the dead record is dropped
    client.session_id = None
    reply = await client.initialize()
    assert reply["result"]["serverInfo"]["name"] == "django-mcp"
    assert directory.this_worker.owns(client.session_id)
    await client.close()
