"""The audit trail: every tools/call is recorded with who, what, how it ended and how
long it took, whatever the outcome; arguments are cut to a bound or not kept at all;
the admin shows the trail read-only."""

import asyncio
import json
import sqlite3
from contextlib import closing, contextmanager

import anyio
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission
from django.db import IntegrityError, connections, transaction
from django.urls import reverse
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp_types import INVALID_PARAMS, jsonrpc_message_adapter

from mcp_app.engine import audit, db_threads, dbapi
from mcp_app.engine.arguments import require_valid_arguments
from mcp_app.engine.audit import install_audit
from mcp_app.models import CallerRollup, ToolCall, ToolCallRollup
from mcp_app.tools import register_tools
from tests.support.audit_rows import audit_row
from tests.support.engine_client import SESSION_ID, connect, request_info, tagged_streams
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio]

TIMEOUT = 5


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def server():
    server = MCPServer("audited")
    register_tools(server)
    require_valid_arguments(server)  # as the engine does: unknown tools and bad arguments are -32602
    install_audit(server)
    return server


@pytest.fixture
def info(user):
    return request_info(user_id=user.pk, username=user.username, client_id="client-1")


async def records() -> list[ToolCall]:
    return [record async for record in ToolCall.objects.order_by("id")]


async def only_record() -> ToolCall:
    [record] = await records()
    return record


# -- the three outcomes -------------------------------------------------------------------------
async def test_a_successful_call_is_recorded(server, info, user):
    with anyio.fail_after(TIMEOUT):
        async with connect(server, info) as client:
            result = await client.call_tool("add", {"a": 2, "b": 3})
    assert result.structured_content == {"result": 5.0}

    record = await only_record()
    assert record.outcome == ToolCall.Outcome.OK
    assert record.tool == "add"
    assert json.loads(record.arguments) == {"a": 2, "b": 3}
    assert record.user_id == user.pk
    assert record.username == "alice"
    assert record.client_id == "client-1"
    assert record.session_id == SESSION_ID
    assert record.error_code is None and record.error_message == ""
    assert record.duration_ms >= 0
    assert record.created_at is not None


async def test_other_requests_are_not_recorded(server, info):
    with anyio.fail_after(TIMEOUT):
        async with connect(server, info) as client:
            await client.list_tools()
    assert await records() == []


async def test_a_tool_error_is_recorded_with_its_message(server, info):
    with anyio.fail_after(TIMEOUT):
        async with connect(server, info) as client:
            result = await client.call_tool("divide", {"a": 1, "b": 0})
    assert result.is_error is True

    record = await only_record()
    assert record.outcome == ToolCall.Outcome.TOOL_ERROR
    assert record.tool == "divide"
    assert record.error_code is None
    assert record.error_message == "Error executing tool divide: division by zero"


async def test_an_unknown_tool_is_recorded_as_a_protocol_error(server, info):
    with anyio.fail_after(TIMEOUT):
        async with connect(server, info) as client:
            with pytest.raises(MCPError):
                await client.session.call_tool("nope", {"x": 1})

    record = await only_record()
    assert record.outcome == ToolCall.Outcome.PROTOCOL_ERROR
    assert record.tool == "nope"
    assert record.error_code == INVALID_PARAMS
    assert record.error_message == "Unknown tool: nope"
    assert json.loads(record.arguments) == {"x": 1}


async def test_bad_arguments_are_recorded_as_a_protocol_error(server, info):
    with anyio.fail_after(TIMEOUT):
        async with connect(server, info) as client:
            with pytest.raises(MCPError):
                await client.session.call_tool("add", {"a": "two"})

    record = await only_record()
    assert record.outcome == ToolCall.Outcome.PROTOCOL_ERROR
    assert record.error_code == INVALID_PARAMS
    assert record.error_message.startswith("Invalid arguments for tool add: ")


async def test_malformed_params_are_recorded_as_a_protocol_error(server, info):
    """A tools/call without a name fails before any handler; the middleware still sees it."""

    def message(obj) -> SessionMessage:
        return SessionMessage(jsonrpc_message_adapter.validate_python(obj), metadata=ServerMessageMetadata())

    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    }
    with anyio.fail_after(TIMEOUT):
        async with tagged_streams(server, info) as (read, write):
            await write.send(message(initialize))
            await read.receive()
            await write.send(message({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            await write.send(message({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"arguments": {}}}))
            reply = (await read.receive()).message
    assert reply.error.code == INVALID_PARAMS

    record = await only_record()
    assert record.outcome == ToolCall.Outcome.PROTOCOL_ERROR
    assert record.tool == ""
    assert record.error_code == INVALID_PARAMS


# -- who called ---------------------------------------------------------------------------------
async def test_a_call_without_a_principal_is_recorded_anonymously(server):
    with anyio.fail_after(TIMEOUT):
        async with connect(server, None) as client:
            await client.call_tool("sqrt", {"x": 4})

    record = await only_record()
    assert record.user_id is None
    assert record.username == record.client_id == record.session_id == ""
    assert record.outcome == ToolCall.Outcome.OK


async def test_deleting_the_user_keeps_the_record(server, info, user):
    with anyio.fail_after(TIMEOUT):
        async with connect(server, info) as client:
            await client.call_tool("add", {"a": 1, "b": 1})
    await user.adelete()

    record = await only_record()
    assert record.user_id is None
    assert record.username == "alice"


async def test_a_failed_write_does_not_fail_the_call(server, caplog):
    # No such user: the foreign key refuses the row.
    with anyio.fail_after(TIMEOUT):
        async with connect(server, request_info(user_id=987654)) as client:
            result = await client.call_tool("add", {"a": 1, "b": 1})
    assert result.structured_content == {"result": 2.0}
    assert await records() == []
    assert "could not record a tools/call request" in caplog.text


async def test_the_writer_thread_survives_a_failing_connection_clean_up(user, monkeypatch, caplog):
    """Django's connection clean-up around a write once raised outside the writer thread's guard
    ("database table is locked" while a test flushed the database): the thread died, and the calls
    waiting for their rows would have waited for good."""

    def failing_clean_up():
        raise RuntimeError("database table is locked")

    monkeypatch.setattr(audit, "close_old_connections", failing_clean_up)  # before the write
    monkeypatch.setattr(db_threads, "close_old_connections", failing_clean_up)  # after it
    with pytest.raises(RuntimeError, match="table is locked"):  # the write's outcome, handed back
        await asyncio.wait_for(audit._writer_thread.insert([user_row(user, "first")]), TIMEOUT)
    monkeypatch.undo()
    assert await asyncio.wait_for(audit._writer_thread.insert([user_row(user, "second")]), TIMEOUT) == [None]
    assert [record.arguments for record in await records()] == ["second"]
    assert "closing its database connection failed: RuntimeError: database table is locked" in caplog.text


def user_row(user, arguments: str, user_id: int | None = None) -> dict:
    """A row of ``user``'s with these arguments (``user_id`` to name someone who is not there)."""
    return audit_row(user_id=user.pk if user_id is None else user_id, username=user.username, arguments=arguments)


# -- the writer's statements on the driver's cursor (engine/dbapi.py) ------------------------------
def test_a_batch_with_a_bad_row_is_rolled_back_and_written_row_by_row(user):
    """The batch's transaction fails on the second row and is rolled back whole; then each row
    alone: the good ones are written once each, with their rollups, and the bad one fails alone
    with Django's exception."""
    rows = [user_row(user, "one"), user_row(user, "two", user_id=987654), user_row(user, "three")]
    problems = audit._insert(rows)
    assert problems[0] is None and problems[2] is None
    assert isinstance(problems[1], IntegrityError), problems
    assert list(ToolCall.objects.order_by("id").values_list("arguments", flat=True)) == ["one", "three"]
    assert ToolCallRollup.objects.get().calls == 2
    assert CallerRollup.objects.get().calls == 2


def test_a_write_whose_rollback_fails_drops_its_connection(user):
    """If even the ROLLBACK fails, the connection may still hold the transaction open, and every
    later BEGIN on it would fail: it is closed, and the next write opens another."""
    connection = connections["default"]

    def failing(cursor):
        cursor.execute("ROLLBACK")  # so that the write's own ROLLBACK fails
        raise RuntimeError("the statements' own error")

    with pytest.raises(RuntimeError, match="the statements' own"):
        dbapi.write(connection, failing)
    assert connection.connection is None
    assert audit._insert([user_row(user, "after")]) == [None]
    assert ToolCall.objects.get().arguments == "after"


def test_a_write_takes_the_write_lock_at_begin_on_a_new_connection():
    """BEGIN in the settings' mode (IMMEDIATE) from the first write on a connection, whose mode is
    known only once it is open: a DEFERRED one could fail at its first write instead of waiting."""
    connection = connections["default"]
    connection.close()
    other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None, timeout=0)
    refused = []

    def try_the_other_writer(cursor):
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        refused.append(True)

    with closing(other):
        dbapi.write(connection, try_the_other_writer)
    assert refused == [True]


def test_a_write_is_refused_inside_an_atomic_block():
    with transaction.atomic(), pytest.raises(RuntimeError, match="inside an atomic block"):
        dbapi.write(connections["default"], lambda cursor: None)


# -- answering before the commit (MCP_AUDIT_WAIT_FOR_COMMIT=0) ------------------------------------
@contextmanager
def writes_held_off():
    """Another connection holds SQLite's write lock, so every audit write waits for it (the
    writer's busy timeout is 20 s) until the block ends."""
    other = sqlite3.connect(connections["default"].settings_dict["NAME"], isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        other.close()  # ends its transaction: the waiting write goes on


async def uncommitted_rows_reach(count: int) -> None:
    """Run this loop (where the server runs too) until ``count`` rows are handed over, and then
    long enough for a call not waiting for its row to have been answered."""
    with anyio.fail_after(TIMEOUT):
        while audit._group_commit.uncommitted < count:
            await asyncio.sleep(0)
    for _ in range(ANSWER_TURNS):
        await asyncio.sleep(0)


# Loop turns from a row's hand-over to its call's answer at the client, in memory, are about 10.
ANSWER_TURNS = 200


async def test_by_default_a_call_waits_for_its_row(server, info):
    async with connect(server, info) as client:
        with writes_held_off():
            call = asyncio.ensure_future(client.call_tool("add", {"a": 1, "b": 2}))
            await uncommitted_rows_reach(1)
            assert not call.done()  # answered only once the row is written
        with anyio.fail_after(TIMEOUT):
            result = await call
    assert result.structured_content == {"result": 3.0}
    assert (await only_record()).tool == "add"


async def test_without_waiting_a_call_is_answered_before_its_commit(server, info, settings):
    settings.MCP_AUDIT_WAIT_FOR_COMMIT = False
    with writes_held_off():
        with anyio.fail_after(TIMEOUT):
            async with connect(server, info) as client:
                first = await client.call_tool("add", {"a": 1, "b": 2})
                second = await client.call_tool("multiply", {"a": 3, "b": 4})
        assert (first.structured_content, second.structured_content) == ({"result": 3.0}, {"result": 12.0})
        assert await records() == []  # answered, not yet written: the write waits for the lock
        assert audit._group_commit.uncommitted == 2
    with anyio.fail_after(TIMEOUT):
        await audit.flush()  # as at shutdown
    assert [(record.tool, record.outcome) for record in await records()] == [("add", "ok"), ("multiply", "ok")]


async def test_without_waiting_a_call_waits_once_too_many_rows_are_uncommitted(server, info, settings):
    settings.MCP_AUDIT_WAIT_FOR_COMMIT = False
    settings.MCP_AUDIT_MAX_UNCOMMITTED = 2
    async with connect(server, info) as client:
        with writes_held_off():
            with anyio.fail_after(TIMEOUT):
                await client.call_tool("add", {"a": 1, "b": 1})
                await client.call_tool("add", {"a": 2, "b": 2})
            third = asyncio.ensure_future(client.call_tool("add", {"a": 3, "b": 3}))
            await uncommitted_rows_reach(3)
            assert not third.done()  # its row is the third one uncommitted: it waits for the write
        with anyio.fail_after(TIMEOUT):
            assert (await third).structured_content == {"result": 6.0}
    assert len(await records()) == 3


async def test_without_waiting_a_failed_write_is_still_logged(server, settings, caplog):
    settings.MCP_AUDIT_WAIT_FOR_COMMIT = False
    with anyio.fail_after(TIMEOUT):
        async with connect(server, request_info(user_id=987654)) as client:  # no such user: the row is refused
            result = await client.call_tool("add", {"a": 1, "b": 1})
        assert result.structured_content == {"result": 2.0}
        await audit.flush()
    assert await records() == []
    assert "could not record a tools/call request" in caplog.text
    assert "FOREIGN KEY constraint failed" in caplog.text


# -- SQLite's checkpoints -----------------------------------------------------------------------
def in_the_database_file(marker: int) -> bool:
    """Whether the database file itself, not its write-ahead log, holds the row of the call that
    added ``marker``: only a checkpoint copies a commit there."""
    database = connections["default"].settings_dict["NAME"]
    try:
        with closing(sqlite3.connect(f"file:{database}?immutable=1", uri=True)) as file_only:
            query = "SELECT count(*) FROM mcp_app_toolcall WHERE arguments LIKE ?"
            return file_only.execute(query, (f"%{marker}%",)).fetchone()[0] == 1
    except sqlite3.DatabaseError:  # a page read while the checkpoint writes it: look again
        return False


def autocheckpoint_pages() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        return cursor.fetchone()[0]


async def test_a_committed_row_is_checkpointed_off_the_calls_path(server, info, settings):
    # A commit itself copies the log back only past 10,000 pages (one call's row is about ten):
    # what puts this row into the database file is the checkpoint thread, soon after its commit.
    assert await sync_to_async(autocheckpoint_pages)() == settings.SQLITE_AUTOCHECKPOINT_PAGES == 10_000
    marker = 7_321_987
    with anyio.fail_after(TIMEOUT):
        async with connect(server, info) as client:
            result = await client.call_tool("add", {"a": marker, "b": 1})
    assert result.structured_content == {"result": marker + 1.0}
    wait_until(lambda: in_the_database_file(marker), "the row is checkpointed into the database file", timeout=TIMEOUT)


# -- arguments ----------------------------------------------------------------------------------
async def test_arguments_are_cut_to_the_bound(server, info, settings):
    settings.MCP_AUDIT_ARGUMENT_CHARS = 40
    expression = "1 + " * 50 + "1"
    with anyio.fail_after(TIMEOUT):
        async with connect(server, info) as client:
            await client.call_tool("calculate", {"expression": expression})

    record = await only_record()
    assert len(record.arguments) == 40
    assert record.arguments.endswith("…")
    assert record.arguments[:-1] == json.dumps({"expression": expression})[:39]
    assert record.outcome == ToolCall.Outcome.OK


async def test_argument_recording_can_be_switched_off(server, info, settings):
    settings.MCP_AUDIT_ARGUMENTS = False
    with anyio.fail_after(TIMEOUT):
        async with connect(server, info) as client:
            await client.call_tool("calculate", {"expression": "6 * 7"})

    record = await only_record()
    assert record.arguments == ""
    assert record.tool == "calculate"
    assert record.outcome == ToolCall.Outcome.OK


# -- the admin ----------------------------------------------------------------------------------
@pytest.fixture
def some_calls(user):
    common = {"user": user, "username": user.username, "session_id": SESSION_ID, "duration_ms": 1.5}
    return [
        ToolCall.objects.create(tool="add", client_id="client-1", outcome="ok", arguments='{"a": 1, "b": 2}', **common),
        ToolCall.objects.create(
            tool="divide",
            client_id="client-2",
            outcome="tool_error",
            error_message="Error executing tool divide: division by zero",
            **common,
        ),
        ToolCall.objects.create(
            tool="nope",
            client_id="client-1",
            outcome="protocol_error",
            error_code=-32602,
            error_message="Unknown tool: nope",
            **common,
        ),
    ]


def test_admin_changelist_lists_filters_and_searches(admin_client, some_calls):
    url = reverse("admin:mcp_app_toolcall_changelist")
    page = admin_client.get(url)
    assert page.status_code == 200
    assert page.context["cl"].result_count == 3

    assert admin_client.get(url, {"outcome": "tool_error"}).context["cl"].result_count == 1
    assert admin_client.get(url, {"tool": "add"}).context["cl"].result_count == 1
    assert admin_client.get(url, {"client_id": "client-1"}).context["cl"].result_count == 2
    assert admin_client.get(url, {"q": "divide"}).context["cl"].result_count == 1
    assert admin_client.get(url, {"q": SESSION_ID}).context["cl"].result_count == 3
    assert admin_client.get(url, {"q": "alice"}).context["cl"].result_count == 3


def test_admin_is_read_only(admin_client, some_calls):
    record = some_calls[0]
    assert admin_client.get(reverse("admin:mcp_app_toolcall_add")).status_code == 403

    change_url = reverse("admin:mcp_app_toolcall_change", args=[record.pk])
    page = admin_client.get(change_url)
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert b'name="_save"' not in page.content

    admin_client.post(change_url, {"tool": "edited", "outcome": "ok", "duration_ms": 0})
    record.refresh_from_db()
    assert record.tool == "add"


def test_only_superusers_may_delete(client, admin_client, django_user_model, some_calls):
    record = some_calls[0]
    delete_url = reverse("admin:mcp_app_toolcall_delete", args=[record.pk])

    staff = django_user_model.objects.create_user("auditor", password="x", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_toolcall", "delete_toolcall"]))
    client.force_login(staff)
    assert client.get(reverse("admin:mcp_app_toolcall_changelist")).status_code == 200
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert ToolCall.objects.filter(pk=record.pk).exists()

    admin_client.post(delete_url, {"post": "yes"})
    assert not ToolCall.objects.filter(pk=record.pk).exists()
