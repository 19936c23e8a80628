"""Which task the running code belongs to: set by the runner around a task's call.

The limits (a task's own time limit, no per-call rate or concurrency count: the
call was counted when the task was created) and the extension's interceptor (a
task's call is the call itself, not a request to start one) read it.
"""

from contextvars import ContextVar

running_task: ContextVar[str | None] = ContextVar("mcp_running_task", default=None)


def current_task() -> str | None:
    """The id of the task whose call is running here, or None outside of any task."""
    return running_task.get()
