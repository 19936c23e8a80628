"""This process's membership of a Channels group: the one way a worker hears what other
workers broadcast (through Redis with ``REDIS_URL``, in-process otherwise).

``GroupMember(group, on_message).join()`` makes this process a member, with a task that
hands each message of the group to ``on_message``, before it returns; it is idempotent
and once per event loop (the tests run many loops in one process). Joining never fails
the request that asked: with the channel layer down (Redis) it says so in a log line,
returns False, and is not tried again for ``JOIN_RETRY_SECONDS`` (each user of a group
has its own fallback: a cache bound, a row read again). A broken channel
layer is retried after a pause rather than given up; the membership is left when the
task ends (or expires by itself in Redis if the process dies).

Channels forgets a group member after the layer's ``group_expiry`` (a day by default,
in Redis and in memory alike), however busy the worker: a worker that joined once
would stop hearing the group the next day. So the membership is renewed every
``RENEW_SECONDS``.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from channels.layers import get_channel_layer
from django.conf import settings

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # pause before receiving again from a channel layer that failed
JOIN_RETRY_SECONDS = 10.0  # after a failed join: no request pays the connect time-out again before this
RENEW_SECONDS = 3600.0  # well inside the layers' default group_expiry of 86400 s


class GroupMember:
    def __init__(self, group: str, on_message: Callable[[dict], Awaitable[None]], *, name: str) -> None:
        self.group = group
        self._on_message = on_message
        self._name = name
        self._receiver: asyncio.Task | None = None
        self.renewed = asyncio.Event()  # set at each renewal (for the tests)
        self._joining: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None  # one lock per loop
        self._failed_until = 0.0

    def _joined(self, loop: asyncio.AbstractEventLoop) -> bool:
        return self._receiver is not None and not self._receiver.done() and self._receiver.get_loop() is loop

    async def join(self) -> bool:
        """Be in the group, receiving, before this returns True; False if the channel layer failed."""
        loop = asyncio.get_running_loop()
        if self._joined(loop):
            return True
        if loop.time() < self._failed_until:
            return False
        if self._joining is None or self._joining[0] is not loop:
            self._joining = (loop, asyncio.Lock())
        async with self._joining[1]:
            if self._joined(loop):
                return True
            layer = get_channel_layer()
            try:
                channel = await layer.new_channel(settings.CHANNEL_PREFIX)
                await layer.group_add(self.group, channel)
            except Exception as exc:
                self._failed_until = loop.time() + JOIN_RETRY_SECONDS
                log.warning("%s: could not join %s: %s: %s", self._name, self.group, type(exc).__name__, exc)
                return False
            self._receiver = loop.create_task(self._receive(layer, channel), name=self._name)
            return True

    async def _receive(self, layer, channel: str) -> None:
        renewer = asyncio.get_running_loop().create_task(self._renew(layer, channel), name=f"{self._name}-renew")
        try:
            while True:
                try:
                    message = await layer.receive(channel)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("%s: receive failed: %s: %s", self._name, type(exc).__name__, exc)
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                try:
                    await self._on_message(message)
                except Exception:
                    log.exception("%s: a message could not be handled", self._name)
        finally:
            renewer.cancel()
            try:
                await layer.group_discard(self.group, channel)
            except Exception:  # shutting down, or Redis gone; the membership expires by itself
                pass

    async def _renew(self, layer, channel: str) -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)  # a timer: the renewal is due, nothing is awaited
            try:
                await layer.group_add(self.group, channel)
            except Exception as exc:  # Redis away: the next renewal tries again, long before expiry
                log.warning("%s: membership not renewed: %s: %s", self._name, type(exc).__name__, exc)
                continue
            self.renewed.set()
            self.renewed = asyncio.Event()

    async def leave(self) -> None:
        if self._receiver is not None:
            self._receiver.cancel()
            await asyncio.gather(self._receiver, return_exceptions=True)
            self._receiver = None
