"""A task's call, run in the background of the worker that created the task.

The call goes through the engine's whole chain again (access, argument check,
audit, limits, the tool), as the stateless era serves any request, with the
caller of the request that created the task, under ``current.running_task``,
so the limits give it the task's time limit and the interceptor lets it
through. It runs detached from that request: the client may leave, and the
task goes on.

While it runs the call has a back channel of its own (``TaskExchange``): a
question the tool asks the client (``ctx.elicit``, sampling, roots) becomes an
open input request of the task (``input_required``), and the tool's ``await``
returns when ``tasks/update`` brings the answer. Progress the tool reports
becomes the task's status message. Other notifications have nowhere to go and
are dropped (SEP-2663: none on a task).

How it ends is written to the row: ``completed`` with the result (a tool error
too: ``isError``), ``failed`` with the JSON-RPC error, ``cancelled``. Every
``store.HEARTBEAT_SECONDS`` the runner marks the task alive and reads its
status, so a cancel made on another worker whose signal was lost still stops it.
"""

import asyncio
import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mcp.server.runner import modern_error_data
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext

from mcp_app.engine.exchange import Exchange, serve_exchange
from mcp_app.engine.tasks import store
from mcp_app.engine.tasks.current import running_task
from mcp_app.engine.tasks.signals import ANSWERED, CANCEL, signals
from mcp_app.principal import RequestInfo
from mcp_app.protocol.names import TOOLS_CALL

log = logging.getLogger(__name__)

TRANSPORT_KIND = "task"
PROGRESS_EVERY_SECONDS = 1.0  # a tool reporting progress in a tight loop writes its row at most this often


@dataclass(frozen=True)
class Call:
    """The ``tools/call`` a task runs: its params as received, who asked, and the client's envelope."""

    params: Mapping[str, Any]
    info: RequestInfo
    envelope: tuple  # (protocol version, client info, client capabilities)


@dataclass(eq=False)
class Run:
    task_id: str
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set (and replaced) when it asks or ends
    job: asyncio.Task | None = None
    stopping: bool = False  # the process is shutting down: the task fails, it was not cancelled
    keys: itertools.count = field(default_factory=lambda: itertools.count(1))

    def announce_change(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


_runs: dict[str, Run] = {}  # task id -> its run in this process


def running_here() -> int:
    return len(_runs)


def change_of(task_id: str) -> asyncio.Event:
    """An event set at the next change of ``task_id``'s run in this process (a question asked, the end);
    already set if this process does not run it (any more). Take it before reading the task's state."""
    run = _runs.get(task_id)
    if run is None:
        done = asyncio.Event()
        done.set()
        return done
    return run.changed


def _on_signal(task_id: str, kind: str) -> bool:
    run = _runs.get(task_id)
    if run is None or run.job is None:
        return False
    # On the run's own loop: a signal may come from another thread (a sync view's async_to_sync).
    loop = run.job.get_loop()
    if kind == CANCEL:
        loop.call_soon_threadsafe(run.job.cancel)
    elif kind == ANSWERED:
        loop.call_soon_threadsafe(run.answered.set)
    return True


signals.handle_with(_on_signal)


async def start(task_id: str, call: Call) -> None:
    """Run ``call`` as task ``task_id`` (already stored) in the background of this process."""
    await signals.join()  # hear cancels and answers sent from other workers before anyone can send one
    run = Run(task_id)
    _runs[task_id] = run
    run.job = asyncio.get_running_loop().create_task(_run(run, call), name=f"mcp-task-{task_id[:8]}")


async def _run(run: Run, call: Call) -> None:
    running_task.set(run.task_id)  # this job's own context: the call below inherits it
    exchange = TaskExchange(
        transport=TransportContext(kind=TRANSPORT_KIND, can_send_request=True, headers=call.info.headers),
        request_id=f"task-{run.task_id}",
        message_metadata=ServerMessageMetadata(request_context=call.info),
        on_notification=_drop,
        run=run,
    )
    work = asyncio.ensure_future(serve_exchange(exchange, TOOLS_CALL, call.params, call.envelope))
    try:
        while True:
            done, _ = await asyncio.wait({work}, timeout=store.HEARTBEAT_SECONDS)
            if done:
                break
            status = await store.heartbeat(run.task_id)
            if status not in store.ACTIVE:  # cancelled elsewhere (its signal lost), or deleted
                work.cancel()
        if work.cancelled():
            await store.cancel(run.task_id)
        elif (exc := work.exception()) is not None:
            error = modern_error_data(exc)
            await store.finish(
                run.task_id,
                store.Status.FAILED,
                error=error.model_dump(mode="json", by_alias=True, exclude_none=True),
                message=error.message,
            )
        else:
            await store.finish(run.task_id, store.Status.COMPLETED, result=work.result())
    except asyncio.CancelledError:  # tasks/cancel (a signal), or the process shutting down
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        if run.stopping:
            stopped = store.finish(
                run.task_id, store.Status.FAILED, error=store.STOPPED_ERROR, message=store.STOPPED_ERROR["message"]
            )
            await asyncio.shield(stopped)
        else:
            await asyncio.shield(store.cancel(run.task_id))
        raise
    except Exception:  # the database failed us; the heartbeat stops, so tasks/get reports the task failed
        log.exception("task %s: could not record how it ended", run.task_id[:8])
    finally:
        _runs.pop(run.task_id, None)
        run.announce_change()


async def _drop(_message: dict[str, Any]) -> None:
    """Notifications of a task's call: none is delivered (its progress is its status message)."""


async def stop_everything_here() -> None:
    """Stop every task this process runs, as it shuts down: each fails, saying the server stopped."""
    jobs = []
    for run in list(_runs.values()):
        if run.job is not None:
            run.stopping = True
            run.job.cancel()
            jobs.append(run.job)
    await asyncio.gather(*jobs, return_exceptions=True)


@dataclass(eq=False)
class TaskExchange(Exchange):
    """A task call's dispatch context: the stateless exchange, with a back channel through the task."""

    run: Run | None = None
    last_progress: float = 0.0

    async def send_raw_request(self, method: str, params: Mapping[str, Any] | None, opts=None) -> dict[str, Any]:
        """Ask the client through the task: an open input request, answered by ``tasks/update``."""
        run = self.run
        key = f"{method.replace('/', '-')}-{next(run.keys)}"  # unique over the task's life
        request: dict[str, Any] = {"method": method}
        if params is not None:
            request["params"] = dict(params)
        await store.ask(run.task_id, key, request)
        run.announce_change()
        while True:
            run.answered.clear()  # before looking: an answer arriving after the look sets it again
            found, answer = await store.take_answer(run.task_id, key)
            if found:
                return answer
            try:
                await asyncio.wait_for(run.answered.wait(), timeout=store.HEARTBEAT_SECONDS)
            except TimeoutError:
                pass  # look at the row again: a signal from another worker may have been lost

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """The tool's progress becomes the task's status message (written at most once a second)."""
        now = time.monotonic()
        if now - self.last_progress < PROGRESS_EVERY_SECONDS:
            return
        self.last_progress = now
        amount = f"{progress:g}" if total is None else f"{progress:g} of {total:g}"
        await store.report(self.run.task_id, f"{message} ({amount})" if message else amount)
