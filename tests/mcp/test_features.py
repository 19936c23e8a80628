"""The protocol features the engine adds to MCPServer, over an in-process MCP
connection (``tests.support.engine_client``): the capabilities it declares,
``logging/setLevel`` and the filtering it drives, resource subscriptions,
list-changed notifications, completion, requests from a tool to the client
(sampling, elicitation), progress, and cancellation.

The server is the one ``engine.server.build_server`` makes, with the conformance
fixtures installed as an extension, whose tools exercise each feature.
The last tests go through the real ASGI application instead (an invalid level,
cancellation over Streamable HTTP).
The same features over the real transports and a live server are proven by the
official conformance suite (``test_conformance.py``) and ``test_e2e_mcp_features.py``.
"""

import json

import anyio
import pytest
from channels.testing import ApplicationCommunicator
from mcp import Client
from mcp_types import (
    INVALID_PARAMS,
    LoggingMessageNotification,
    PromptReference,
    ResourceTemplateReference,
    ResourceUpdatedNotification,
    ToolListChangedNotification,
)

from mcp_app.engine.list_changed import announce_list_changed
from mcp_app.engine.server import build_server
from tests.support.asgi_client import send_request
from tests.support.conformance_fixtures import CONFORMANCE_FIXTURES
from tests.support.engine_client import request_info, tagged_streams
from tests.support.inbox import ELICITED, SAMPLED_ANSWER, TIMEOUT, WATCHED, Inbox

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]  # tool calls are audited


@pytest.fixture
def server():
    return build_server([CONFORMANCE_FIXTURES])


@pytest.fixture
def inbox():
    return Inbox()


@pytest.fixture
async def client(server, inbox):
    callbacks = dict(
        message_handler=inbox.on_message, sampling_callback=inbox.on_sampling, elicitation_callback=inbox.on_elicitation
    )
    async with Client(tagged_streams(server, request_info()), mode="legacy", **callbacks) as client:
        yield client


async def log_messages(client, inbox) -> list[str]:
    before = len(inbox.of_type(LoggingMessageNotification))
    with anyio.fail_after(TIMEOUT):
        await client.call_tool("test_tool_with_logging", {})
    # Request-related notifications arrive before the answer.
    return [n.params.data for n in inbox.of_type(LoggingMessageNotification)[before:]]


async def test_capabilities_name_every_feature(client):
    capabilities = client.server_capabilities.model_dump(by_alias=True, exclude_none=True)
    assert capabilities["logging"] == {} and capabilities["completions"] == {}
    assert capabilities["resources"] == {"subscribe": True, "listChanged": True}
    assert capabilities["tools"]["listChanged"] is True and capabilities["prompts"]["listChanged"] is True


async def test_the_log_level_filters_log_messages_per_session(server, client, inbox):
    """MCP logging: messages below the level set by logging/setLevel are not sent."""
    assert await log_messages(client, inbox) == [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ]
    await client.set_logging_level("warning")
    assert await log_messages(client, inbox) == []
    # Another session of the same server keeps its own level.
    other_inbox = Inbox()
    async with Client(
        tagged_streams(server, request_info()), mode="legacy", message_handler=other_inbox.on_message
    ) as other:
        assert len(await log_messages(other, other_inbox)) == 3
    await client.set_logging_level("info")
    assert len(await log_messages(client, inbox)) == 3


async def test_an_unknown_log_level_is_invalid_params(shttp, worker):
    await shttp.initialize()
    reply = await shttp.request("logging/setLevel", {"level": "loud"})
    assert reply["error"]["code"] == INVALID_PARAMS


async def test_subscribers_hear_of_updates_until_they_unsubscribe(client, inbox):
    """MCP resources: notifications/resources/updated goes to sessions subscribed to the URI."""
    await client.subscribe_resource(WATCHED)
    result = await client.call_tool("test_update_watched_resource", {})
    assert "1 subscriber(s) notified" in result.content[0].text
    updated = await inbox.next_of_type(ResourceUpdatedNotification)
    assert updated.params.uri == WATCHED
    assert "version" in (await client.read_resource(WATCHED)).contents[0].text
    await client.unsubscribe_resource(WATCHED)
    result = await client.call_tool("test_update_watched_resource", {})
    assert "0 subscriber(s) notified" in result.content[0].text


async def test_list_changes_reach_every_initialized_session(client, inbox):
    # A round trip after the handshake: the server has taken the client's notifications/initialized.
    await client.send_ping()
    assert await announce_list_changed("tools") >= 1
    await inbox.next_of_type(ToolListChangedNotification)


async def test_completion_suggests_values_for_a_prompt_argument(client):
    prompt = PromptReference(name="test_prompt_with_arguments")
    completion = (await client.complete(prompt, {"name": "arg1", "value": "pa"})).completion
    assert completion.values == ["paris", "park", "party"] and completion.has_more is False
    # No completer for this argument: no suggestions, not an error.
    template = ResourceTemplateReference(uri="test://template/{id}/data")
    assert (await client.complete(template, {"name": "id", "value": "1"})).completion.values == []


async def test_a_tool_asks_the_client_to_sample_and_gets_the_answer(client, inbox):
    result = await client.call_tool("test_sampling", {"prompt": "What is six times seven?"})
    assert result.content[0].text == f"LLM response: {SAMPLED_ANSWER}"
    [request] = inbox.sampling_requests
    assert request.messages[0].content.text == "What is six times seven?" and request.max_tokens == 100


async def test_a_tool_elicits_input_from_the_user(client, inbox):
    result = await client.call_tool("test_elicitation", {"message": "Who are you?"})
    assert result.content[0].text == f"User response: action=accept, content={json.dumps(ELICITED)}"
    [request] = inbox.elicitation_requests
    assert request.message == "Who are you?" and request.requested_schema["required"] == ["username", "email"]


async def test_asking_a_client_without_the_capability_is_a_tool_error(server):
    # Without callbacks the client declares neither sampling nor elicitation.
    async with Client(tagged_streams(server, request_info()), mode="legacy") as client:
        for tool, arguments in (("test_sampling", {"prompt": "hi"}), ("test_elicitation", {"message": "hi"})):
            result = await client.call_tool(tool, arguments)
            assert result.is_error and "does not support" in result.content[0].text


async def test_progress_reaches_the_caller(client):
    progress = []

    async def on_progress(value, total, message):
        progress.append((value, total))

    await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
    assert progress == [(0, 100), (50, 100), (100, 100)]


async def test_a_cancelled_call_stops_the_tool_and_the_session_goes_on(server, client):
    """MCP cancellation: notifications/cancelled interrupts the request's handler."""
    started, stopped = anyio.Event(), anyio.Event()

    async def wait_forever() -> str:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            stopped.set()

    server.add_tool(wait_forever, name="wait_forever")
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(client.call_tool, "wait_forever", {})
            await started.wait()
            tasks.cancel_scope.cancel()  # the client gives up: it sends notifications/cancelled
        await stopped.wait()
        assert (await client.call_tool("test_simple_text", {})).content[0].text.startswith("This is a simple text")


@pytest.fixture
def forever_tool():
    """A tool that runs until it is cancelled, on the engine the ASGI application serves."""
    from mcp_app.engine.server import get_mcp_server

    started, stopped = anyio.Event(), anyio.Event()

    async def wait_forever() -> str:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            stopped.set()

    server = get_mcp_server()
    server.add_tool(wait_forever, name="test_wait_forever")
    yield started, stopped
    server.remove_tool("test_wait_forever")


async def test_cancellation_through_the_streamable_http_transport(app, shttp, worker, forever_tool):
    started, stopped = forever_tool
    await shttp.initialize()
    call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "test_wait_forever", "arguments": {}}}
    pending = await post_and_hold(app, shttp.headers(), call)
    with anyio.fail_after(TIMEOUT):
        await started.wait()
    cancel = {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": 5, "reason": "no longer needed"},
    }
    assert (await shttp.post(cancel)).status == 202
    with anyio.fail_after(TIMEOUT):
        await stopped.wait()
    # A cancelled request gets no answer (spec: cancellation); its client stops waiting.
    await pending.send_input({"type": "http.disconnect"})
    await pending.wait(TIMEOUT)
    assert (await shttp.request("ping"))["result"] == {}


async def post_and_hold(app, headers: dict, message: dict) -> ApplicationCommunicator:
    """A POST /mcp whose response is not awaited: the caller decides when the client leaves."""
    return await send_request(app, "POST", "/mcp", json.dumps(message).encode(), headers)


def test_opentelemetry_spans_only_when_asked_for(settings):
    """The SDK's span middleware costs ~12% of a tools/call even with no exporter: off by default."""
    from mcp.server._otel import OpenTelemetryMiddleware

    def has_spans():
        return any(isinstance(m, OpenTelemetryMiddleware) for m in build_server().middleware)

    settings.MCP_OPENTELEMETRY = False
    assert not has_spans()
    settings.MCP_OPENTELEMETRY = True
    assert has_spans()
