"""The audit trail: every ``tools/call`` becomes a ``ToolCall`` row.

``record_tool_calls`` is a low-level server middleware; ``install_audit(server)``
adds it to an ``MCPServer``. Wrapping the whole handling of a call, it sees
all three ways one can end: a result, a result with ``isError`` (the tool ran
and failed), and a JSON-RPC error (unknown tool, bad arguments, a call before
initialization, a cancelled call), and times it. A request that starts a task
(``engine/tasks/``) is not a row: the task's own call is, when it ends.

A call is answered only once its row is committed, so an answered call is a
recorded call even if the process dies right after. The rows are written by
group commit (``_GroupCommit``): the calls that end while a write is under way
wait for the next one, which takes them all in one multi-row INSERT and one
commit, in one trip to the audit's own database thread (``_WriterThread``, so
the event loop never waits on the database). One call alone costs what it did;
32 at once cost one write instead of 32. A failed write is logged and does not
fail the call: what the caller gets back never depends on the audit log.

``MCP_AUDIT_WAIT_FOR_COMMIT=0`` answers a call before its row is committed: the
row goes to the same group commit, nobody waits for it, and a failed write is
logged all the same. Each write first gathers rows for 5 ms
(``UNWAITED_GATHERING_SECONDS``), so at one user it takes several calls' rows
instead of one. A crash of the process loses the rows not yet committed (those
of the last few milliseconds); a stop (SIGTERM) loses none (``flush``). So that
loss and the memory the rows hold stay bounded when the database is slow, a
call waits for its row after all while more than ``MCP_AUDIT_MAX_UNCOMMITTED``
rows are uncommitted.
"""

import asyncio
import functools
import json
import logging
import queue
import time
from collections.abc import Mapping
from contextlib import nullcontext
from datetime import datetime
from typing import Any

import anyio
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections, models
from django.db.models import Field
from django.utils import timezone
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, ValidationError

from mcp_app.engine import audit_rollup, db_threads, dbapi, sqlite_checkpoints
from mcp_app.models import ToolCall
from mcp_app.principal import RequestInfo
from mcp_app.protocol.errors import INVALID_PARAMS
from mcp_app.protocol.names import TOOLS_CALL

logger = logging.getLogger(__name__)

TRUNCATION_MARKER = "…"
# Rows in one INSERT at most; a bigger backlog is written in several.
MAX_BATCH_ROWS = 500
# With MCP_AUDIT_WAIT_FOR_COMMIT=0, how long a write waits for more rows before it starts. At one
# user a write then takes 5-7 calls instead of one (each alone cost about 0.3 ms of CPU at one user);
# it is also most of what a crash can lose.
UNWAITED_GATHERING_SECONDS = 0.005
_UNRECORDED = "could not record a tools/call request (%s)"


def install_audit(server: MCPServer) -> None:
    """Record every ``tools/call`` that ``server`` answers."""
    server.middleware.append(record_tool_calls)


async def record_tool_calls(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Server middleware: record each ``tools/call`` request with its outcome and duration."""
    if ctx.method != TOOLS_CALL or ctx.request_id is None:
        return await call_next(ctx)

    arrived = timezone.now()
    started = time.perf_counter()
    outcome, error_code, error_message = ToolCall.Outcome.PROTOCOL_ERROR, None, ""
    record = True
    cancelled = False
    try:
        result = await call_next(ctx)
        if _starts_task(result):
            record = False  # the task's own call is the call: it is recorded when it ends
        outcome, error_message = _outcome_of(result)
        return result
    except MCPError as exc:
        error_code, error_message = exc.error.code, exc.error.message
        raise
    except ValidationError:  # malformed params: the runner answers -32602 without pydantic's text
        error_code, error_message = INVALID_PARAMS, "Invalid request parameters"
        raise
    except anyio.get_cancelled_exc_class():
        error_message, cancelled = "Request cancelled", True
        raise
    except Exception as exc:  # a crash below the handler; the audit keeps its cause for the admin
        error_message = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        duration_ms = (time.perf_counter() - started) * 1000
        if record:
            # A cancelled call is recorded too, shielded. The common path needs no scope (3-4 µs a call):
            # the row is queued before the first await, so a cancellation arriving meanwhile only
            # stops the wait for its commit, not the write.
            with anyio.CancelScope(shield=True) if cancelled else nullcontext():
                await _save(ctx, arrived, outcome, error_code, error_message, duration_ms)


def _starts_task(result: HandlerResult) -> bool:
    return isinstance(result, Mapping) and result.get("resultType") == "task"


def _outcome_of(result: HandlerResult) -> tuple[str, str]:
    """``(outcome, error message)`` of a call that returned a result."""
    if isinstance(result, CallToolResult):  # what MCPServer returns: read it without dumping it
        if result.is_error is not True:
            return ToolCall.Outcome.OK, ""
        texts = [block.text for block in result.content if isinstance(block, TextContent)]
        return ToolCall.Outcome.TOOL_ERROR, next((text for text in texts if text), "")
    if isinstance(result, BaseModel):  # a middleware further in may return another model instead of the wire form
        result = result.model_dump(by_alias=True, mode="json")
    if not isinstance(result, Mapping) or result.get("isError") is not True:
        return ToolCall.Outcome.OK, ""
    texts = [block.get("text", "") for block in result.get("content") or () if isinstance(block, Mapping)]
    return ToolCall.Outcome.TOOL_ERROR, next((text for text in texts if text), "")


def _record(
    ctx: ServerRequestContext[Any, Any],
    arrived: datetime,
    outcome: str,
    error_code: int | None,
    error_message: str,
    duration_ms: float,
) -> dict[str, Any]:
    """The row of one call: ``ToolCall`` field values by attribute name."""
    params = ctx.params if isinstance(ctx.params, Mapping) else {}
    name = params.get("name")
    info = ctx.request if isinstance(ctx.request, RequestInfo) else None
    principal = info.principal if info else None
    return {
        "created_at": arrived,
        "user_id": principal.user_id if principal else None,
        "username": _cut(principal.username if principal else "", _max_length("username")),
        "client_id": _cut(principal.client_id if principal else "", _max_length("client_id")),
        "session_id": _cut(info.session_id if info else "", _max_length("session_id")),
        "tool": _cut("" if name is None else str(name), _max_length("tool")),
        "arguments": _arguments_text(params.get("arguments")),
        "outcome": outcome,
        "error_code": error_code,
        "error_message": _cut(error_message, _max_length("error_message")),
        "duration_ms": round(duration_ms, 3),
    }


def _arguments_text(arguments: object) -> str:
    if not settings.MCP_AUDIT_ARGUMENTS:
        return ""
    text = json.dumps({} if arguments is None else arguments, ensure_ascii=False, sort_keys=True, default=str)
    return _cut(text, settings.MCP_AUDIT_ARGUMENT_CHARS)


def _cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, marked when it was cut."""
    return text if len(text) <= limit else text[: limit - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER


@functools.cache
def _max_length(field_name: str) -> int:
    return ToolCall._meta.get_field(field_name).max_length


# Fields whose database value is the Python value itself, for the values `_record` builds
# (str, int, float, None): `get_db_prep_save` would only convert them to what they are.
_PLAIN_FIELDS = (models.CharField, models.TextField, models.IntegerField, models.FloatField, models.ForeignKey)


@functools.cache
def _columns() -> tuple[list[tuple[str, Field | None]], str]:
    """``(attribute name, field to prepare the value with or None)`` for the fields a row
    sets (all but the id), and the INSERT statement for one row of them.

    Rows go in through ``executemany`` rather than the ORM's ``bulk_create``, which
    compiles every row anew (about 0.1 ms of CPU each, on the event loop's core); a
    value that needs it (the timestamp) goes through its field's ``get_db_prep_save``.
    The statement is the driver's own (``dbapi``): its placeholders, its cursor.
    """
    fields = [field for field in ToolCall._meta.concrete_fields if not field.primary_key]
    connection = connections[DEFAULT_DB_ALIAS]
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(ToolCall._meta.db_table),
        ", ".join(quote(field.column) for field in fields),
        ", ".join([dbapi.placeholder(connection)] * len(fields)),
    )
    return [(field.attname, None if isinstance(field, _PLAIN_FIELDS) else field) for field in fields], sql


def _insert(rows: list[dict[str, Any]]) -> list[Exception | None]:
    """Write ``rows`` in one transaction, with what they add to the dashboard's rollups
    (``audit_rollup.add``, in the same transaction: both or neither); if that fails, row by
    row, so that one bad row (a user deleted meanwhile) costs only itself. What went wrong
    with each row, if anything."""
    columns, sql = _columns()
    connection = connections[DEFAULT_DB_ALIAS]  # this thread's
    values = [
        tuple(row[name] if field is None else field.get_db_prep_save(row[name], connection) for name, field in columns)
        for row in rows
    ]
    try:
        dbapi.write(connection, functools.partial(_insert_statements, sql=sql, values=values, rows=rows))
        return [None] * len(rows)
    except Exception as exc:
        if len(rows) == 1:
            return [exc]
    problems: list[Exception | None] = []
    for row, one in zip(rows, values, strict=True):
        try:
            dbapi.write(connection, functools.partial(_insert_statements, sql=sql, values=[one], rows=[row]))
            problems.append(None)
        except Exception as exc:
            problems.append(exc)
    return problems


def _insert_statements(cursor, *, sql: str, values: list[tuple], rows: list[dict[str, Any]]) -> None:
    """The rows and their rollups, through the driver's ``cursor`` (``dbapi.write``)."""
    cursor.executemany(sql, values)
    audit_rollup.add(rows, cursor)


class _WriterThread:
    """The thread that writes audit rows, fed through a queue; it answers on the caller's loop.

    Under load every write is a trip to a thread and back. Through asgiref's thread hop
    (``database_sync_to_async``: its executor's ``submit``, a copied context, a sensitive-thread
    lookup) that trip cost 5-7% of a busy worker's event loop (py-spy, 32 users); a thread
    waiting on a ``SimpleQueue`` and answering with ``call_soon_threadsafe`` costs a fraction of
    it. Its database connection is its own, and Django's rules for it are Channels': stale
    connections are closed before and after each write (``close_old_connections``).
    """

    def __init__(self):
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = db_threads.LazyThread(self._serve, "mcp-audit-writer")

    def insert(self, rows: list[dict[str, Any]]) -> asyncio.Future:
        """``_insert(rows)`` on the writer thread; the future has its outcome."""
        loop = asyncio.get_running_loop()
        outcome = loop.create_future()
        self._thread.start()
        self._requests.put((rows, loop, outcome))
        return outcome

    def _serve(self) -> None:
        while True:
            rows, loop, outcome = self._requests.get()
            # Whatever fails here is the write's outcome, never the thread's end: a thread that
            # died would leave this write's calls, and every later one, waiting for good.
            try:
                close_old_connections()
                result, error = _insert(rows), None
            except BaseException as exc:  # handed to the caller, as a thread hop would
                result, error = None, exc
            db_threads.close_old_connections_or_warn("audit writer")
            try:
                loop.call_soon_threadsafe(_settle, outcome, result, error)
            except RuntimeError:
                pass  # that loop is closed (tests): nobody waits for the answer
            if error is None:  # after the answer: the log is copied back and flushed off the calls' path
                sqlite_checkpoints.after_commit()


def _settle(outcome: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if outcome.done():
        return
    if error is None:
        outcome.set_result(result)
    else:
        outcome.set_exception(error)


_writer_thread = _WriterThread()


class _GroupCommit:
    """Rows waiting for a write, and the task writing them (one at a time, per event loop)."""

    def __init__(self):
        self._waiting: list[tuple[dict[str, Any], asyncio.Future]] = []
        self._writing = 0  # rows in the write under way
        self._writer: asyncio.Task | None = None

    def submit(self, row: dict[str, Any]) -> asyncio.Future:
        """Queue ``row`` for the next write; the future is done once it is committed, or has what
        its write raised."""
        loop = asyncio.get_running_loop()
        written = loop.create_future()
        self._waiting.append((row, written))
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._writer = loop.create_task(self._write_waiting(), name="mcp-audit-writer")
        return written

    @property
    def uncommitted(self) -> int:
        """Rows handed over and not yet written, the write under way's included."""
        return len(self._waiting) + self._writing

    async def _write_waiting(self) -> None:
        while self._waiting:
            if not settings.MCP_AUDIT_WAIT_FOR_COMMIT:
                await asyncio.sleep(UNWAITED_GATHERING_SECONDS)  # nobody waits: let more rows join the write
            batch, self._waiting = self._waiting[:MAX_BATCH_ROWS], self._waiting[MAX_BATCH_ROWS:]
            self._writing = len(batch)
            try:
                problems = await _writer_thread.insert([row for row, _ in batch])
            except Exception as exc:  # the thread hop itself failed
                problems = [exc] * len(batch)
            finally:
                self._writing = 0
            for (_row, written), problem in zip(batch, problems, strict=True):
                if written.done() or written.get_loop().is_closed():
                    continue  # its call was cancelled, or its loop is gone (tests); the row was tried all the same
                if problem is None:
                    written.set_result(None)
                else:
                    written.set_exception(problem)

    async def flush(self) -> None:
        """Wait until every row handed over so far is written (at shutdown)."""
        if self.uncommitted:
            logger.info("waiting for %d audit rows to be written", self.uncommitted)
        while (
            self._writer is not None
            and not self._writer.done()
            and self._writer.get_loop() is asyncio.get_running_loop()
        ):
            await asyncio.shield(self._writer)


_group_commit = _GroupCommit()


async def flush() -> None:
    await _group_commit.flush()


async def _save(ctx: ServerRequestContext[Any, Any], *details: Any) -> None:
    written = _group_commit.submit(_record(ctx, *details))
    if not settings.MCP_AUDIT_WAIT_FOR_COMMIT and _group_commit.uncommitted <= settings.MCP_AUDIT_MAX_UNCOMMITTED:
        written.add_done_callback(functools.partial(_log_if_failed, ctx.request_id))
        return
    try:
        await written
    except Exception:
        logger.exception(_UNRECORDED, ctx.request_id)


def _log_if_failed(request_id: Any, written: asyncio.Future) -> None:
    """The done callback of a row nobody waits for: its failure is logged as a waited-for one's is."""
    if not written.cancelled() and (problem := written.exception()) is not None:
        logger.error(_UNRECORDED, request_id, exc_info=problem)
