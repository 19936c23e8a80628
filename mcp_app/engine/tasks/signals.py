"""Signals for the worker that runs a task: "cancel it" and "its answers arrived".

``tasks/cancel`` and ``tasks/update`` may reach any worker, while a task's call
runs in the worker that created it. The row (``store.py``) is the truth; a
signal only wakes the runner at once instead of at its next heartbeat
(``store.HEARTBEAT_SECONDS``), when it reads the row anyway. So a signal lost
(Redis down, a full group) delays, never loses, a cancel or an answer.

A signal for a task this process runs is handled here directly; any other goes
to the Channels group that every worker running tasks has joined (through
Redis with ``REDIS_URL``, in-process otherwise).
"""

import logging
from collections.abc import Callable

from channels.layers import get_channel_layer

from mcp_app.protocol.groups import GroupMember

log = logging.getLogger(__name__)

GROUP = "mcp-tasks"
MESSAGE_TYPE = "mcp.task.signal"
CANCEL = "cancel"
ANSWERED = "answered"
KINDS = (CANCEL, ANSWERED)

Handler = Callable[[str, str], bool]  # (task id, signal) -> whether this process runs that task


class TaskSignals:
    def __init__(self) -> None:
        self._handler: Handler | None = None
        self._member = GroupMember(GROUP, self._received, name="mcp-task-signals")

    def handle_with(self, handler: Handler) -> None:
        self._handler = handler

    async def send(self, task_id: str, kind: str) -> None:
        """Deliver ``kind`` to the worker running ``task_id``, wherever it is."""
        if self._handler is not None and self._handler(task_id, kind):
            return
        try:
            await get_channel_layer().group_send(GROUP, {"type": MESSAGE_TYPE, "task": task_id, "signal": kind})
        except Exception as exc:  # the runner reads the row at its next heartbeat anyway
            log.warning("task signal %s not sent: %s: %s", kind, type(exc).__name__, exc)

    async def join(self) -> None:
        """Receive the group's signals in this process (idempotent, once per event loop); called by a
        worker before it starts running its first task."""
        await self._member.join()

    async def _received(self, message: dict) -> None:
        task_id, kind = message.get("task"), message.get("signal")
        if isinstance(task_id, str) and kind in KINDS and self._handler is not None:
            self._handler(task_id, kind)


signals = TaskSignals()
