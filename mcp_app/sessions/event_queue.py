"""The queue a transport reads a session's events from: one reader at a time.

A session hands every event to the queue of whoever waits for it: the POST
waiting for its answer, or the GET (or `/sse`) stream. `asyncio.Queue` would
do, but it costs 3 KiB and four deques per queue, one queue per request and
one per open stream, and an idle stream's `asyncio.wait_for(queue.get(), ping)`
costs a task per wait. `EventQueue` holds nothing until an event arrives and
takes a timeout itself.
"""

import asyncio
from collections import deque


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


class EventQueue:
    __slots__ = ("_items", "_waiter")

    def __init__(self):
        self._items: deque | None = None
        self._waiter: asyncio.Future | None = None

    def put_nowait(self, item) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        if self._waiter is not None:
            _wake(self._waiter)

    async def get(self, timeout: float | None = None):
        """The next item; TimeoutError if none comes within `timeout` seconds."""
        if not self._items:
            if self._waiter is not None:
                raise RuntimeError("an EventQueue has one reader at a time")
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = None if timeout is None else loop.call_later(timeout, _wake, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if not self._items:
                raise TimeoutError
        item = self._items.popleft()
        if not self._items:
            self._items = None  # an idle stream holds no buffer
        return item
