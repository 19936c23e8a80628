"""The two streams between a session and its engine: transports -> engine, engine -> router.

The SDK's transports use anyio memory streams wrapped so that each item carries the
sender's ``contextvars`` (the engine runs the request's handler in that context:
``last_context``, read by the SDK's dispatcher). They work, and they cost: every wait of a
receiver makes an anyio Event around an ``asyncio.Event`` with its deque, and goes through a
generic class's constructor; the two streams of a session were 6-7% of a busy worker's time
(py-spy, 32 users) and an idle session's two waiting receivers about 3 KiB.

``message_streams(capacity)`` makes a pair that does the same with one future per wait:

- ``send`` snapshots the sender's context with the item; it waits while ``capacity`` items
  are queued (backpressure, as a bounded memory stream), and raises
  ``anyio.ClosedResourceError`` after its own ``close`` and ``anyio.BrokenResourceError``
  once the receiver is gone;
- ``receive`` returns items in order and sets ``last_context``; once the sender closed and
  the queue is drained it raises ``anyio.EndOfStream`` (``async for`` ends), after its own
  ``close`` ``anyio.ClosedResourceError``.

One task receives at a time (the engine's dispatcher, or the session's router); any number
may send. Cancelling a waiting ``send`` or ``receive`` loses nothing.
"""

import asyncio
import contextvars
from collections import deque
from typing import Any

import anyio

__all__ = ["ReceiveEnd", "SendEnd", "message_streams"]


class _Pipe:
    __slots__ = ("capacity", "items", "receiver", "receiver_closed", "sender_closed", "senders")

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.items: deque[tuple[contextvars.Context, Any]] | None = None  # none while idle
        self.receiver: asyncio.Future | None = None
        self.senders: deque[asyncio.Future] | None = None  # senders waiting for room
        self.sender_closed = False
        self.receiver_closed = False

    def wake_receiver(self) -> None:
        if self.receiver is not None and not self.receiver.done():
            self.receiver.set_result(None)

    def wake_sender(self, every: bool = False) -> None:
        while self.senders:
            waiter = self.senders.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not every:
                    return


class SendEnd:
    __slots__ = ("_pipe",)

    def __init__(self, pipe: _Pipe):
        self._pipe = pipe

    async def send(self, item: Any) -> None:
        pipe = self._pipe
        while True:
            if pipe.sender_closed:
                raise anyio.ClosedResourceError
            if pipe.receiver_closed:
                raise anyio.BrokenResourceError
            if pipe.items is None or len(pipe.items) < pipe.capacity:
                break
            waiter = asyncio.get_running_loop().create_future()
            if pipe.senders is None:
                pipe.senders = deque()
            pipe.senders.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in pipe.senders:
                    pipe.senders.remove(waiter)
                pipe.wake_sender()  # any room it was woken for goes to the next (a spare wake-up is harmless)
                raise
        if pipe.items is None:
            pipe.items = deque()
        pipe.items.append((contextvars.copy_context(), item))
        pipe.wake_receiver()

    def close(self) -> None:
        self._pipe.sender_closed = True
        self._pipe.wake_receiver()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> "SendEnd":
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.close()


class ReceiveEnd:
    __slots__ = ("_pipe", "last_context")

    def __init__(self, pipe: _Pipe):
        self._pipe = pipe
        self.last_context: contextvars.Context | None = None

    async def receive(self) -> Any:
        pipe = self._pipe
        while not pipe.items:
            if pipe.receiver_closed:
                raise anyio.ClosedResourceError
            if pipe.sender_closed:
                raise anyio.EndOfStream
            if pipe.receiver is not None:
                raise RuntimeError("a message stream has one receiver at a time")
            waiter = pipe.receiver = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                pipe.receiver = None
        context, item = pipe.items.popleft()
        if not pipe.items:
            pipe.items = None  # an idle session holds no buffer
        pipe.wake_sender()
        self.last_context = context
        return item

    def close(self) -> None:
        pipe = self._pipe
        pipe.receiver_closed = True
        pipe.items = None
        pipe.wake_sender(every=True)  # each finds the receiver gone
        pipe.wake_receiver()

    async def aclose(self) -> None:
        self.close()

    def __aiter__(self) -> "ReceiveEnd":
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> "ReceiveEnd":
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.close()


def message_streams(capacity: int) -> tuple[SendEnd, ReceiveEnd]:
    pipe = _Pipe(capacity)
    return SendEnd(pipe), ReceiveEnd(pipe)
