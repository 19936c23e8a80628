"""The engine's protocol features through the real transports of a live daphne
process, driven by the `mcp` SDK's client with the full OAuth flow, over
Streamable HTTP (`/mcp`) and legacy HTTP+SSE (`/sse`).

What travels *about* a tool call (log messages, progress, the server's
sampling and elicitation requests) must reach the client on that call's
stream, and the client's answers, POSTed back, must reach the waiting call.
What the server sends on its own (a resource update) travels on the session's
standalone stream. The official conformance suite checks the same over `/mcp`
only (`test_conformance.py`).
"""

import json

import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import LoggingMessageNotification, ResourceUpdatedNotification

from tests.support.browser import HeadlessBrowser
from tests.support.conformance_fixtures import CONFORMANCE_FIXTURES
from tests.support.inbox import ELICITED, SAMPLED_ANSWER, WATCHED, Inbox
from tests.support.live_server import start_live_server
from tests.support.sdk_oauth import mcp_http_client, oauth_provider

pytestmark = [pytest.mark.live, pytest.mark.anyio]


@pytest.fixture(scope="module")
def fixture_server(live_server_template, tmp_path_factory):
    """A live server with the conformance fixtures, whose tools exercise each feature."""
    server = start_live_server(
        live_server_template, tmp_path_factory.mktemp("live-features"), MCP_EXTENSIONS=CONFORMANCE_FIXTURES
    )
    yield server
    server.stop()


@pytest.fixture(params=["/mcp", "/sse"])
async def connected(request, fixture_server):
    """An initialized SDK client over one transport, with the inbox its callbacks fill. The features
    proven here (requests to the client mid-call, session log levels, resources/subscribe) are the
    handshake era's, so the client speaks it (mode="legacy"); the stateless era's are in
    tests/mcp/test_stateless.py and the conformance suite."""
    path, inbox = request.param, Inbox()
    callbacks = dict(
        message_handler=inbox.on_message, sampling_callback=inbox.on_sampling, elicitation_callback=inbox.on_elicitation
    )
    async with HeadlessBrowser(fixture_server.username, fixture_server.password) as browser:
        provider = oauth_provider(fixture_server, browser, path=path)
        if path == "/mcp":
            async with mcp_http_client(fixture_server, provider) as http:
                transport = streamable_http_client(fixture_server.url + path, http_client=http)
                async with Client(transport, mode="legacy", **callbacks) as client:
                    yield client, inbox
        else:
            async with Client(sse_client(fixture_server.url + path, auth=provider), **callbacks) as client:
                yield client, inbox


async def test_server_requests_during_a_tool_call_are_answered(connected):
    client, inbox = connected
    sampled = await client.call_tool("test_sampling", {"prompt": "What is six times seven?"})
    assert sampled.content[0].text == f"LLM response: {SAMPLED_ANSWER}"
    elicited = await client.call_tool("test_elicitation", {"message": "Who are you?"})
    assert elicited.content[0].text == f"User response: action=accept, content={json.dumps(ELICITED)}"
    assert len(inbox.sampling_requests) == len(inbox.elicitation_requests) == 1


async def test_log_messages_follow_the_sessions_level(connected):
    client, inbox = connected
    await client.set_logging_level("error")
    await client.call_tool("test_tool_with_logging", {})
    assert inbox.of_type(LoggingMessageNotification) == []
    await client.set_logging_level("info")
    await client.call_tool("test_tool_with_logging", {})
    assert [n.params.data for n in inbox.of_type(LoggingMessageNotification)] == [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ]


async def test_progress_arrives_before_the_answer(connected):
    client, _inbox = connected
    progress = []

    async def on_progress(value, total, message):
        progress.append(value)

    await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
    assert progress == [0, 50, 100]


async def test_resource_updates_reach_subscribers_on_the_standalone_stream(connected):
    client, inbox = connected
    await client.subscribe_resource(WATCHED)
    result = await client.call_tool("test_update_watched_resource", {})
    assert "1 subscriber(s) notified" in result.content[0].text
    assert (await inbox.next_of_type(ResourceUpdatedNotification)).params.uri == WATCHED
    await client.unsubscribe_resource(WATCHED)
