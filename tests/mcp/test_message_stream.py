"""The stream pair between a session and its engine (mcp_app/sessions/message_stream.py):
order, the sender's context, backpressure, the ends closing, cancellation."""

import asyncio
import contextvars

import anyio
import pytest

from mcp_app.sessions.message_stream import message_streams

pytestmark = pytest.mark.anyio

caller = contextvars.ContextVar("caller", default=None)


async def test_items_arrive_in_order_with_their_senders_context():
    send, receive = message_streams(8)

    async def send_as(name: str, item: int) -> None:
        caller.set(name)
        await send.send(item)

    await send_as("first", 1)
    await asyncio.get_running_loop().create_task(send_as("second", 2))
    assert await receive.receive() == 1
    assert receive.last_context.run(caller.get) == "first"
    assert await receive.receive() == 2
    assert receive.last_context.run(caller.get) == "second"


async def test_a_full_stream_holds_its_senders_until_there_is_room():
    send, receive = message_streams(2)
    await send.send(1)
    await send.send(2)
    third = asyncio.get_running_loop().create_task(send.send(3))
    await asyncio.sleep(0)  # the sender runs and finds no room
    assert not third.done()
    assert await receive.receive() == 1
    await asyncio.wait_for(third, 1)
    assert [await receive.receive(), await receive.receive()] == [2, 3]


async def test_a_cancelled_sender_sends_nothing_and_passes_its_turn_on():
    send, receive = message_streams(1)
    await send.send(1)
    loop = asyncio.get_running_loop()
    cancelled, waiting = loop.create_task(send.send("cancelled")), loop.create_task(send.send(2))
    await asyncio.sleep(0)
    cancelled.cancel()
    assert await receive.receive() == 1
    await asyncio.wait_for(waiting, 1)
    assert await receive.receive() == 2
    assert cancelled.cancelled()


async def test_the_receiver_waits_and_ends_when_the_sender_closes():
    send, receive = message_streams(4)
    received = []

    async def drain():
        async for item in receive:
            received.append(item)

    reader = asyncio.get_running_loop().create_task(drain())
    await send.send("a")
    await send.send("b")
    await send.aclose()
    await asyncio.wait_for(reader, 1)
    assert received == ["a", "b"]  # what was queued is delivered before the end
    with pytest.raises(anyio.ClosedResourceError):
        await send.send("c")


async def test_senders_learn_when_the_receiver_is_gone():
    send, receive = message_streams(1)
    await send.send(1)
    blocked = asyncio.get_running_loop().create_task(send.send(2))
    await asyncio.sleep(0)
    await receive.aclose()
    with pytest.raises(anyio.BrokenResourceError):
        await asyncio.wait_for(blocked, 1)
    with pytest.raises(anyio.BrokenResourceError):
        await send.send(3)
    with pytest.raises(anyio.ClosedResourceError):
        await receive.receive()


async def test_one_receiver_at_a_time():
    _send, receive = message_streams(1)
    first = asyncio.get_running_loop().create_task(receive.receive())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="one receiver"):
        await receive.receive()
    first.cancel()
