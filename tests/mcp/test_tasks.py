"""Tool calls that run as tasks (the ``io.modelcontextprotocol/tasks`` extension, SEP-2663),
through the real ASGI application, in the stateless era where the extension lives.

A task is created only for a request that declares the extension; it is found,
answered and cancelled only by its owner (person and client), runs on after its
request under its own time limit, asks the client through ``input_required``, and
ends ``completed`` (a tool error too), ``failed`` (a JSON-RPC error) or
``cancelled``. The handshake era never sees one. Waiting is on the runner's change
events (``runner.change_of``), never on a clock.
"""

from datetime import timedelta

import anyio
import pytest
from django.core.management import call_command
from django.utils import timezone
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from mcp_app.engine.server import get_mcp_server, tasks_of
from mcp_app.engine.tasks import runner, store
from mcp_app.models import Task, ToolCall
from tests.mcp.test_stateless import CLIENT_META, post, stateless_request
from tests.support.asgi_client import TIMEOUT, StreamableHTTPClient
from tests.support.mcp_fixtures import _token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio, pytest.mark.usefixtures("worker")]

TASKS = "io.modelcontextprotocol/tasks"
WITH_TASKS = {
    **CLIENT_META,
    "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}, "extensions": {TASKS: {}}},
}
ENVELOPE_FIELDS = {"taskId", "status", "result", "error", "inputRequests"}


class Go(BaseModel):
    go: bool


@pytest.fixture
async def task_tools():
    """Tools that run as tasks, added to the process's engine for one test: a wait that can be
    released, a tool error, a JSON-RPC error, a question, and a tool that needs tasks."""
    server = get_mcp_server()
    tasks = tasks_of(server)
    release = anyio.Event()
    stopped = []

    async def waits(label: str = "") -> str:
        """Waits until the test releases it."""
        try:
            await release.wait()
        finally:
            stopped.append(label)
        return f"released {label}"

    async def fails_as_tool() -> str:
        """Reports a tool error."""
        raise ToolError("no luck")

    async def fails_as_protocol() -> str:
        """Ends in a JSON-RPC error."""
        raise MCPError(-32603, "broken inside")

    async def asks(ctx: Context) -> str:
        """Asks whether to go on."""
        answer = await ctx.elicit("Go on?", Go)
        return "went on" if answer.action == "accept" and answer.data.go else "stopped"

    async def sleeps(seconds: float) -> str:
        """Sleeps, as a slow tool does."""
        await anyio.sleep(seconds)
        return f"slept {seconds:g} s"

    modes = {waits: "optional", fails_as_tool: "optional", fails_as_protocol: "optional", asks: "optional"}
    modes[sleeps] = "required"
    for tool, mode in modes.items():
        server.add_tool(tool, structured_output=False)
        tasks.support(tool.__name__, mode)
    yield type("TaskTools", (), {"release": release, "stopped": stopped})
    release.set()
    await runner.stop_everything_here()  # none outlives its test's event loop
    for tool in modes:
        server.remove_tool(tool.__name__)
        tasks.support(tool.__name__, None)


def task_request(method: str, params: dict, meta: dict = WITH_TASKS) -> dict:
    return stateless_request(method, params, meta=meta)


async def send(app, token: str, method: str, params: dict, meta: dict = WITH_TASKS, **headers) -> dict:
    """The JSON-RPC answer (result or error) to one stateless request."""
    message = task_request(method, params, meta)
    if method.startswith("tasks/") and "mcp_name" not in headers:
        headers["mcp_name"] = params.get("taskId")
    reply = await post(app, token, message, **headers)
    return reply.json()


async def start(app, token: str, tool: str, arguments: dict | None = None) -> dict:
    reply = await send(app, token, "tools/call", {"name": tool, "arguments": arguments or {}})
    result = reply["result"]
    assert result["resultType"] == "task", reply
    return result


async def get(app, token: str, task_id: str) -> dict:
    return (await send(app, token, "tasks/get", {"taskId": task_id}))["result"]


async def until(app, token: str, task_id: str, *statuses: str) -> dict:
    """The task once its status is one of ``statuses``, waiting on the runner's changes."""
    with anyio.fail_after(TIMEOUT):
        while True:
            change = runner.change_of(task_id)
            task = await get(app, token, task_id)
            if task["status"] in statuses:
                return task
            await change.wait()


# -- creating a task -----------------------------------------------------------------------------
async def test_a_task_tool_answers_with_a_task_that_is_found_at_once(app, token, task_tools):
    created = await start(app, token, "waits", {"label": "a"})
    assert created["status"] == "working"
    assert {"taskId", "createdAt", "lastUpdatedAt", "ttlMs", "pollIntervalMs"} <= set(created)
    assert created["ttlMs"] == 3_600_000 and created["pollIntervalMs"] == 1000
    assert not {"result", "error", "inputRequests", "task", "ttl", "pollInterval", "requestState"} & set(created)
    assert len(created["taskId"]) >= 32  # unguessable
    working = await get(app, token, created["taskId"])
    assert (working["taskId"], working["status"], working["resultType"]) == (created["taskId"], "working", "complete")
    task_tools.release.set()
    done = await until(app, token, created["taskId"], "completed")
    assert done["result"]["content"] == [{"type": "text", "text": "released a"}]
    assert "io.modelcontextprotocol/related-task" not in done["result"].get("_meta", {})


async def test_the_call_is_audited_once_when_the_task_ends(app, token, task_tools):
    created = await start(app, token, "waits", {"label": "audited"})
    assert not await ToolCall.objects.filter(tool="waits").aexists()  # creating it is not the call
    task_tools.release.set()
    await until(app, token, created["taskId"], "completed")
    rows = [row async for row in ToolCall.objects.filter(tool="waits")]
    assert [(row.username, row.outcome) for row in rows] == [("alice", ToolCall.Outcome.OK)]


async def test_without_the_extension_an_optional_task_tool_answers_within_the_call(app, token, task_tools):
    task_tools.release.set()
    reply = await send(app, token, "tools/call", {"name": "waits", "arguments": {"label": "b"}}, meta=CLIENT_META)
    assert reply["result"]["resultType"] == "complete"
    assert reply["result"]["content"][0]["text"] == "released b"
    assert not await Task.objects.aexists()


async def test_without_the_extension_a_required_task_tool_is_refused_naming_it(app, token, task_tools):
    reply = await send(app, token, "tools/call", {"name": "sleeps", "arguments": {"seconds": 0}}, meta=CLIENT_META)
    assert reply["error"]["code"] == -32021
    assert reply["error"]["data"]["requiredCapabilities"]["extensions"] == {TASKS: {}}


async def test_the_server_advertises_the_extension(app, token):
    reply = await send(app, token, "server/discover", {})
    assert reply["result"]["capabilities"]["extensions"] == {TASKS: {}}
    assert "tasks" not in reply["result"]["capabilities"]


async def test_the_demo_tool_counts_down_as_a_task_reporting_progress(app, token):
    created = await start(app, token, "countdown", {"seconds": 2})
    done = await until(app, token, created["taskId"], "completed")
    assert done["result"]["content"][0]["text"] == "Countdown from 2 s finished."


# -- how a task ends ---------------------------------------------------------------------------
async def test_a_tool_error_completes_the_task_with_is_error(app, token, task_tools):
    created = await start(app, token, "fails_as_tool")
    done = await until(app, token, created["taskId"], "completed", "failed")
    assert done["status"] == "completed"
    assert done["result"]["isError"] is True
    assert "no luck" in done["result"]["content"][0]["text"]


async def test_a_protocol_error_fails_the_task_with_the_error_and_no_result(app, token, task_tools):
    created = await start(app, token, "fails_as_protocol")
    done = await until(app, token, created["taskId"], "completed", "failed")
    assert done["status"] == "failed"
    assert done["error"] == {"code": -32603, "message": "broken inside"}
    assert "result" not in done
    assert done["statusMessage"] == "broken inside"


async def test_a_task_outlives_the_call_time_limit_and_has_its_own(app, token, task_tools, settings):
    settings.MCP_TOOL_CALL_TIMEOUT_SECONDS = 0.2
    created = await start(app, token, "sleeps", {"seconds": 0.5})
    done = await until(app, token, created["taskId"], "completed")
    assert done["result"]["content"][0]["text"] == "slept 0.5 s"
    settings.MCP_TASK_TIMEOUT_SECONDS = 0.2
    created = await start(app, token, "sleeps", {"seconds": 30})
    done = await until(app, token, created["taskId"], "completed")
    assert done["result"]["isError"] is True
    assert done["result"]["content"][0]["text"] == "Tool call timed out after 0.2 s"


# -- cancelling ------------------------------------------------------------------------------------
async def test_cancel_is_an_empty_ack_and_stops_the_call(app, token, task_tools):
    created = await start(app, token, "waits", {"label": "cancelled"})
    ack = (await send(app, token, "tasks/cancel", {"taskId": created["taskId"]}))["result"]
    assert ack["resultType"] == "complete"
    assert not ENVELOPE_FIELDS & set(ack)
    cancelled = await until(app, token, created["taskId"], "cancelled", "completed")
    assert cancelled["status"] == "cancelled"
    assert "result" not in cancelled
    assert task_tools.stopped == ["cancelled"]  # the tool's own code was interrupted
    again = (await send(app, token, "tasks/cancel", {"taskId": created["taskId"]}))["result"]
    assert again == ack  # idempotent on an ended task


# -- asking the client ----------------------------------------------------------------------------
async def test_a_question_makes_the_task_input_required_and_the_answer_resumes_it(app, token, task_tools):
    created = await start(app, token, "asks")
    waiting = await until(app, token, created["taskId"], "input_required")
    [(key, request)] = waiting["inputRequests"].items()
    assert request["method"] == "elicitation/create"
    assert request["params"]["message"] == "Go on?"
    ignored = await send(
        app, token, "tasks/update", {"taskId": created["taskId"], "inputResponses": {"not-asked": {"x": 1}}}
    )
    assert ignored["result"]["resultType"] == "complete"
    assert (await get(app, token, created["taskId"]))["status"] == "input_required"
    answer = {"action": "accept", "content": {"go": True}}
    ack = await send(app, token, "tasks/update", {"taskId": created["taskId"], "inputResponses": {key: answer}})
    assert ack["result"] == {"resultType": "complete", "_meta": ack["result"]["_meta"]}
    done = await until(app, token, created["taskId"], "completed")
    assert done["result"]["content"][0]["text"] == "went on"
    assert "inputRequests" not in done


# -- whose task it is --------------------------------------------------------------------------------
@pytest.fixture
def same_person_other_client(user):
    """A token of the same person through another OAuth client (a second app they signed in with)."""
    return _token_for(user)


async def test_nobody_else_finds_answers_or_cancels_a_task(
    app, token, other_token, same_person_other_client, task_tools
):
    created = await start(app, token, "asks")
    task_id = created["taskId"]
    await until(app, token, task_id, "input_required")
    answer = {"action": "accept", "content": {"go": False}}
    for stranger in (other_token, same_person_other_client):
        for method, params in (
            ("tasks/get", {"taskId": task_id}),
            ("tasks/update", {"taskId": task_id, "inputResponses": {"elicitation-create-1": answer}}),
            ("tasks/cancel", {"taskId": task_id}),
        ):
            reply = await send(app, stranger, method, params)
            made_up = await send(app, stranger, method, {**params, "taskId": "no-such-task"})
            assert reply["error"]["code"] == -32602, (method, reply)
            assert reply["error"]["message"] == made_up["error"]["message"] == "Unknown task"
    task = await get(app, token, task_id)
    assert task["status"] == "input_required"  # untouched by all of that
    answer = {"action": "accept", "content": {"go": True}}
    [key] = task["inputRequests"]
    await send(app, token, "tasks/update", {"taskId": task_id, "inputResponses": {key: answer}})
    assert (await until(app, token, task_id, "completed"))["result"]["content"][0]["text"] == "went on"


async def test_one_person_has_a_bounded_number_of_unfinished_tasks(app, token, task_tools, settings):
    settings.MCP_MAX_ACTIVE_TASKS_PER_USER = 2
    first = await start(app, token, "waits", {"label": "1"})
    await start(app, token, "waits", {"label": "2"})
    refused = await send(app, token, "tools/call", {"name": "waits", "arguments": {}})
    assert refused["error"]["code"] == -32030
    assert refused["error"]["data"] == {"maxActiveTasks": 2}
    await send(app, token, "tasks/cancel", {"taskId": first["taskId"]})
    await until(app, token, first["taskId"], "cancelled")
    await start(app, token, "waits", {"label": "3"})


# -- requests the extension refuses ----------------------------------------------------------------
async def test_tasks_methods_need_the_extension_declared(app, token, task_tools):
    created = await start(app, token, "waits")
    for method in ("tasks/get", "tasks/cancel"):
        reply = await send(app, token, method, {"taskId": created["taskId"]}, meta=CLIENT_META)
        assert reply["error"]["code"] == -32021, reply
    assert (await get(app, token, created["taskId"]))["status"] == "working"


@pytest.mark.parametrize(
    ("params", "headers", "code", "status"),
    [
        ({}, {"mcp_name": None}, -32602, 400),  # no taskId
        ({"taskId": 12}, {"mcp_name": "12"}, -32602, 400),  # not a string
        ({"taskId": "abc"}, {"mcp_name": "abd"}, -32020, 400),  # Mcp-Name disagrees
        ({"taskId": "abc"}, {"mcp_name": None}, -32020, 400),  # Mcp-Name missing
    ],
    ids=["no-task-id", "number-task-id", "name-header-mismatch", "name-header-missing"],
)
async def test_malformed_tasks_requests_get_clear_errors(app, token, params, headers, code, status):
    message = task_request("tasks/get", params)
    reply = await post(app, token, message, **headers)
    assert (reply.status, reply.json()["error"]["code"]) == (status, code), reply.body


@pytest.mark.parametrize("method", ["tasks/result", "tasks/list"])
async def test_the_removed_methods_of_the_first_tasks_design_are_unknown(app, token, method):
    reply = await send(app, token, method, {"taskId": "x"} if method == "tasks/result" else {})
    assert reply["error"]["code"] == -32601


async def test_the_handshake_era_never_gets_a_task(app, token, task_tools):
    client = StreamableHTTPClient(app, token)
    try:
        await client.initialize(capabilities={"extensions": {TASKS: {}}})
        task_tools.release.set()
        called = await client.request("tools/call", {"name": "waits", "arguments": {"label": "2025"}})
        assert called["result"]["content"][0]["text"] == "released 2025"
        refused = await client.request("tools/call", {"name": "sleeps", "arguments": {"seconds": 0}})
        assert refused["error"]["code"] == -32021
        unknown = await client.request("tasks/get", {"taskId": "x"})
        assert unknown["error"]["code"] == -32601
    finally:
        await client.close()
    assert not await Task.objects.aexists()


# -- tasks whose worker died, and old tasks ------------------------------------------------------
async def test_a_task_whose_worker_stopped_is_reported_failed(app, token, user):
    silent = await _task_row(
        user, token, heartbeat_at=timezone.now() - timedelta(seconds=store.ORPHANED_AFTER_SECONDS + 1)
    )
    task = await get(app, token, silent.id)
    assert task["status"] == "failed"
    assert task["error"] == store.STOPPED_ERROR


async def test_expired_tasks_are_unknown_and_housekeeping_deletes_them(app, token, user):
    old = await _task_row(user, token, status=Task.Status.COMPLETED, expires_at=timezone.now() - timedelta(seconds=1))
    reply = await send(app, token, "tasks/get", {"taskId": old.id})
    assert reply["error"]["message"] == "Unknown task"
    await anyio.to_thread.run_sync(call_command, "housekeeping")
    assert not await Task.objects.filter(id=old.id).aexists()


async def _task_row(user, token: str, **fields) -> Task:
    """A task of ``user`` through the client of ``token``, as a worker that is gone left it."""
    defaults = {"tool": "countdown", "expires_at": timezone.now() + timedelta(hours=1), "poll_interval_ms": 1000}
    return await Task.objects.acreate(
        id=store.new_task_id(), user=user, client_id=await _client_of(token), **{**defaults, **fields}
    )


async def _client_of(token: str) -> str:
    from oauth2_provider.models import get_access_token_model

    from oauth_app.resource_server import token_checksum

    access = (
        await get_access_token_model().objects.select_related("application").aget(token_checksum=token_checksum(token))
    )
    return access.application.client_id


async def test_a_task_running_when_the_server_stops_fails_saying_so(app, token, task_tools):
    created = await start(app, token, "waits", {"label": "stopped"})
    await runner.stop_everything_here()
    task = await get(app, token, created["taskId"])
    assert (task["status"], task["error"]) == ("failed", store.STOPPED_ERROR)


async def test_staff_cancel_running_tasks_from_the_admin(app, token, task_tools, django_user_model):
    from django.contrib.auth.models import Permission
    from django.test import AsyncClient

    created = await start(app, token, "waits", {"label": "by staff"})
    staff = await django_user_model.objects.acreate(username="staff", is_staff=True)
    browser = AsyncClient()
    await browser.aforce_login(staff)
    form = {"action": "cancel_tasks", "_selected_action": [created["taskId"]]}
    assert (await browser.post("/admin/mcp_app/task/", form)).status_code == 403  # may not even see tasks
    await staff.user_permissions.aadd(await Permission.objects.aget(codename="view_task"))
    page = await browser.get("/admin/mcp_app/task/")
    assert page.status_code == 200 and b'field-tool">waits<' in page.content, page.content.decode()[-3000:]
    assert b"cancel_tasks" not in page.content  # seeing is not cancelling
    await browser.post("/admin/mcp_app/task/", form)
    assert (await get(app, token, created["taskId"]))["status"] == "working"
    await staff.user_permissions.aadd(await Permission.objects.aget(codename="change_task"))
    await browser.post("/admin/mcp_app/task/", form)
    task = await until(app, token, created["taskId"], "cancelled")
    assert task["statusMessage"] == "Cancelled by staff (staff)"
    assert task_tools.stopped == ["by staff"]
