"""``subscriptions/listen`` streams held without an engine task (mcp_app/engine/listen.py), through
the real ASGI application and the real engine.

The engine serves the listen request and returns once the stream is acknowledged; the stream
then lives on as a filter and a bus subscription. These tests hold it to what the SDK's own
handler promised: the acknowledgement first, only the kinds asked for, the subscription id on
every frame, the listen result as the last frame when the server closes the streams, and
nothing left subscribed once the client has gone.
"""

import asyncio
import json

import anyio
import pytest
from mcp.shared.subscriptions import PromptsListChanged, ResourceUpdated, ToolsListChanged
from mcp_types import SubscriptionFilter

from mcp_app.engine import sdk
from mcp_app.engine.fanout import bus
from mcp_app.engine.list_changed import announce_list_changed
from mcp_app.engine.listen import DetachedListenHandler, ListenStream
from mcp_app.engine.server import get_server
from mcp_app.protocol.names import LISTEN
from tests.mcp.test_stateless import _open_listen
from tests.support.asgi_client import TIMEOUT, close_stream, parse_events, read_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio, pytest.mark.usefixtures("worker")]

SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"


def handler() -> DetachedListenHandler:
    entry = get_server()._request_handlers[LISTEN]
    assert isinstance(entry.handler, DetachedListenHandler)
    return entry.handler


def listening_tasks() -> list[asyncio.Task]:
    return [task for task in asyncio.all_tasks() if task.get_name() == "mcp-listen" and not task.done()]


async def test_an_acknowledged_stream_holds_no_engine_task_and_still_hears_changes(app, token):
    stream = await _open_listen(app, token, {"toolsListChanged": True})
    try:
        assert listening_tasks() == []  # the engine's handler returned after the acknowledgement
        assert len(handler()._open) == 1
        await announce_list_changed("prompts")  # not asked for: never sent
        await announce_list_changed("tools")
        raw = await read_until(stream, lambda b: b"list_changed" in b)
        (changed,) = [json.loads(event["data"]) for event in parse_events(raw)]
        assert changed == {
            "jsonrpc": "2.0",
            "method": "notifications/tools/list_changed",
            "params": {"_meta": {SUBSCRIPTION_ID: 77}},
        }
    finally:
        await close_stream(stream)
    assert handler()._open == set()  # the client left: off the bus


async def test_closing_the_streams_sends_the_listen_result_last(app, token):
    stream = await _open_listen(app, token, {"resourceSubscriptions": ["note://1"]})
    handler().close()
    raw = await read_until(stream, lambda b: b'"result"' in b)
    (result,) = [json.loads(event["data"]) for event in parse_events(raw)]
    assert result["id"] == 77
    assert result["result"]["_meta"][SUBSCRIPTION_ID] == 77  # the engine's result, as it answered it
    with anyio.fail_after(TIMEOUT):
        while True:  # then the response ends
            message = await stream.receive_output(TIMEOUT)
            if not message.get("more_body"):
                break
    await stream.wait(TIMEOUT)
    assert handler()._open == set()


async def test_a_stream_over_the_process_bound_is_refused_before_any_acknowledgement(app, token, monkeypatch):
    monkeypatch.setattr(handler(), "_max_subscriptions", 0)
    message = {"notifications": {"toolsListChanged": True}}
    from tests.mcp.test_stateless import post, stateless_request

    result = await post(app, token, stateless_request(LISTEN, message))
    assert result.status == 200
    assert result.json()["error"] == {"code": -32603, "message": "Subscription limit reached"}


# -- the stream itself ---------------------------------------------------------------------
async def test_events_before_the_acknowledgement_follow_it_and_only_the_asked_kinds_pass():
    frames = []
    owner: set[ListenStream] = set()
    stream = ListenStream(frames.append)
    honored = sdk.honored_subset(SubscriptionFilter(tools_list_changed=True, resource_subscriptions=["note://1"]))
    stream.subscribe(bus, honored, {SUBSCRIPTION_ID: 5}, owner)
    assert owner == {stream}
    await bus._local.publish(ToolsListChanged())  # before the acknowledgement is out: held
    assert frames == []
    frames.append("ack")  # what the handler sends, in order
    stream.go_live()
    await bus._local.publish(PromptsListChanged())  # not asked for
    await bus._local.publish(ResourceUpdated(uri="note://2"))  # another resource
    await bus._local.publish(ResourceUpdated(uri="note://1"))
    assert [frame if frame == "ack" else frame["method"] for frame in frames] == [
        "ack",
        "notifications/tools/list_changed",
        "notifications/resources/updated",
    ]
    assert frames[2]["params"] == {"uri": "note://1", "_meta": {SUBSCRIPTION_ID: 5}}
    stream.unsubscribe()
    assert owner == set()
    await bus._local.publish(ToolsListChanged())
    assert len(frames) == 3  # nothing after unsubscribing
