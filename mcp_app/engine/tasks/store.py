"""The ``Task`` rows, and a task as the wire shows it.

Every worker reads and writes the same rows, so any worker answers ``tasks/get``
for any task, and a task's creation is durable (committed) before its
``CreateTaskResult`` goes out, as SEP-2663 requires. A task is found only with
its owner: the person *and* the OAuth client that created it (like sessions);
for anyone else it does not exist, which is also what they are told for an id
that never existed.

Changes that race (the client answering while the call asks more, a cancel
while the call ends) are made inside a transaction with the row locked
(``select_for_update``; SQLite serialises writers anyway), and a task that has
ended never changes again.
"""

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from mcp_app.models import ERROR_MESSAGE_CHARS, Task
from mcp_app.principal import Principal

Status = Task.Status
ACTIVE = (Status.WORKING, Status.INPUT_REQUIRED)
# A worker running a task marks it alive this often; a task whose worker fell silent this long
# (the process died) is failed by the next tasks/get, not left working until it expires.
HEARTBEAT_SECONDS = 5.0
ORPHANED_AFTER_SECONDS = 30.0
# How a task ends whose server process stopped: shut down (runner.stop_everything_here) or died.
STOPPED_ERROR = {"code": -32603, "message": "The server process running this task stopped"}


def new_task_id() -> str:
    return secrets.token_urlsafe(24)  # 192 random bits: unguessable, as SEP-2663 requires


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wire(task: Task, *, detailed: bool = False) -> dict[str, Any]:
    """The task as ``CreateTaskResult`` (flat, without ``resultType``) or, ``detailed``, as ``tasks/get``
    shows it: with the result, the error or the questions its status calls for."""
    shown: dict[str, Any] = {
        "taskId": task.id,
        "status": task.status,
        "createdAt": iso(task.created_at),
        "lastUpdatedAt": iso(task.updated_at),
        "ttlMs": settings.MCP_TASK_TTL_SECONDS * 1000,
        "pollIntervalMs": task.poll_interval_ms,
    }
    if task.status_message:
        shown["statusMessage"] = task.status_message
    if detailed:
        if task.status == Status.COMPLETED and task.result is not None:
            shown["result"] = task.result
        elif task.status == Status.FAILED and task.error is not None:
            shown["error"] = task.error
        elif task.status == Status.INPUT_REQUIRED:
            shown["inputRequests"] = task.input_requests
    return shown


def _cut(text: str) -> str:
    return text if len(text) <= ERROR_MESSAGE_CHARS else text[: ERROR_MESSAGE_CHARS - 1] + "…"


# -- creating and finding -------------------------------------------------------------------
@database_sync_to_async
def active_count(user_id: int) -> int:
    now = timezone.now()
    return Task.objects.filter(user_id=user_id, status__in=ACTIVE, expires_at__gt=now).count()


@database_sync_to_async
def create(principal: Principal, tool: str) -> Task:
    now = timezone.now()
    return Task.objects.create(
        id=new_task_id(),
        user_id=principal.user_id,
        client_id=principal.client_id,
        tool=tool[: Task._meta.get_field("tool").max_length],
        created_at=now,
        updated_at=now,
        heartbeat_at=now,
        expires_at=now + timedelta(seconds=settings.MCP_TASK_TTL_SECONDS),
        poll_interval_ms=settings.MCP_TASK_POLL_INTERVAL_MS,
    )


def _owned(principal: Principal):
    return Task.objects.filter(user_id=principal.user_id, client_id=principal.client_id, expires_at__gt=timezone.now())


@database_sync_to_async
def find(principal: Principal, task_id: str) -> Task | None:
    """The caller's task ``task_id`` (failed first if its worker stopped), or None."""
    task = _owned(principal).filter(id=task_id).first()
    if task is not None and task.status in ACTIVE:
        silent = (timezone.now() - task.heartbeat_at).total_seconds()
        if silent > ORPHANED_AFTER_SECONDS:
            _finish(task.id, Status.FAILED, error=STOPPED_ERROR, message=STOPPED_ERROR["message"])
            task.refresh_from_db()
    return task


@database_sync_to_async
def exists_for(principal: Principal, task_id: str) -> bool:
    return _owned(principal).filter(id=task_id).exists()


# -- the client's side: answers and cancellation ---------------------------------------------
@database_sync_to_async
def answer(task_id: str, responses: dict[str, Any]) -> bool:
    """Take the client's answers to questions still open (others are ignored, as SEP-2663 says);
    whether any was taken. The task is ``working`` again once no question is open."""
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(id=task_id).first()
        if task is None or task.finished:
            return False
        taken = {key: value for key, value in responses.items() if key in task.input_requests}
        if not taken:
            return False
        task.input_requests = {key: value for key, value in task.input_requests.items() if key not in taken}
        task.input_responses = {**task.input_responses, **taken}
        if not task.input_requests and task.status == Status.INPUT_REQUIRED:
            task.status = Status.WORKING
            task.status_message = ""
        task.updated_at = timezone.now()
        task.save(update_fields=["input_requests", "input_responses", "status", "status_message", "updated_at"])
        return True


def cancel_now(task_id: str, message: str = "Cancelled by the client") -> bool:
    """Mark the task cancelled unless it has ended; whether it was still running."""
    return _finish(task_id, Status.CANCELLED, message=message)


cancel = database_sync_to_async(cancel_now)


# -- the runner's side -------------------------------------------------------------------------
@database_sync_to_async
def ask(task_id: str, key: str, request: dict[str, Any]) -> None:
    """Open a question (``inputRequests[key]``): the task is ``input_required`` until it is answered."""
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(id=task_id).first()
        if task is None or task.finished:
            return
        task.input_requests = {**task.input_requests, key: request}
        task.status = Status.INPUT_REQUIRED
        task.status_message = "Waiting for the client's input"
        task.updated_at = timezone.now()
        task.save(update_fields=["input_requests", "status", "status_message", "updated_at"])


@database_sync_to_async
def take_answer(task_id: str, key: str) -> tuple[bool, Any]:
    """``(True, answer)`` once the client answered question ``key`` (the answer is removed), else ``(False, None)``."""
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(id=task_id).first()
        if task is None or key not in task.input_responses:
            return False, None
        responses = dict(task.input_responses)
        answered = responses.pop(key)
        task.input_responses = responses
        task.save(update_fields=["input_responses"])
        return True, answered


@database_sync_to_async
def report(task_id: str, message: str) -> None:
    """A running task's status message (its progress)."""
    Task.objects.filter(id=task_id, status=Status.WORKING).update(
        status_message=_cut(message), updated_at=timezone.now()
    )


@database_sync_to_async
def heartbeat(task_id: str) -> str | None:
    """Mark the task alive; its status (None if it is gone)."""
    Task.objects.filter(id=task_id, status__in=ACTIVE).update(heartbeat_at=timezone.now())
    return Task.objects.filter(id=task_id).values_list("status", flat=True).first()


@database_sync_to_async
def finish(task_id: str, status: str, *, result=None, error=None, message: str = "") -> bool:
    return _finish(task_id, status, result=result, error=error, message=message)


def _finish(task_id: str, status: str, *, result=None, error=None, message: str = "") -> bool:
    """End the task unless it already ended; whether this call ended it."""
    updated = Task.objects.filter(id=task_id, status__in=ACTIVE).update(
        status=status,
        result=result,
        error=error,
        status_message=_cut(message),
        input_requests={},
        input_responses={},
        updated_at=timezone.now(),
    )
    return bool(updated)
