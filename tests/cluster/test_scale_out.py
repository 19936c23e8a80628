"""Scale-out: two daphne workers on PostgreSQL and Redis behind nginx, with no session affinity.

Everything is real (tests/support/services.py): Debian's redis-server, PostgreSQL and nginx on free
loopback ports, nginx running the project's proxy snippet (deploy/nginx/mcp-proxy.conf), and
the workers started with the systemd unit's command and the production settings' keys.

Where a test needs a session created on one worker and used on another, it talks to each
worker's own port (bypassing nginx) and proves who served what from the workers' access logs;
elsewhere it goes through nginx, whose access log (tests/support/services.py) names the worker each
request went to and the Mcp-Session-Id it carried.

- A legacy SSE stream held by worker 1 receives the replies to POST /messages sent to worker 2.
- A Streamable HTTP session created on worker 1 is used through worker 2: a tool call that
  reports progress, and tool calls that ask the client (elicitation, sampling) whose answers
  are POSTed to worker 2 while the tool runs on worker 1.
- mcp-remote (both transports) and the `mcp` SDK's client (both transports) through nginx;
  each of their sessions is served by both workers.
- A worker is SIGKILLed mid-session: its sessions answer 404 (within the heartbeat's bound),
  mcp-remote re-initializes by itself, the SDK's application opens a new session with the
  token it has, the other worker's session is untouched, and PostgreSQL still has every
  audit record and token.
- Redis stopped: /healthz answers 503 quickly, naming the failing checks, and MCP requests
  that need Redis get 503, not 500 or a hang; Redis back on the same port: 200 again.
- /healthz: 200 with every check "ok" on each worker and through nginx, every time it is
  asked; and a forwarded request is answered promptly, whatever the worker's own door does.
- Refreshes racing with one refresh token on both workers all get working tokens.
- A token revoked through /revoke or in the admin is refused by every worker, on /mcp and /sse,
  within a second, although each had it cached (MCP_TOKEN_CACHE_SECONDS, 30 s).
- A task started on worker 1 is followed, answered and cancelled through worker 2: its state is
  in PostgreSQL, and the answer and the cancel reach the call running on worker 1 over Redis.
- X-Forwarded-For is believed from nginx (which overwrites what a client sends), from nobody else.
"""

from __future__ import annotations

import json
import time
from contextlib import AsyncExitStack

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.support.admin_http import AdminSession
from tests.support.browser import HeadlessBrowser
from tests.support.conformance_fixtures import CONFORMANCE_FIXTURES
from tests.support.inbox import ELICITED, SAMPLED_ANSWER, Inbox
from tests.support.interop_clients import McpRemote, missing_clients, obtain_token
from tests.support.scale_out_evidence import (
    busiest_session,
    checksum,
    eventually,
    logged,
    owner_of,
    query,
    sessions_opened,
    tool_calls,
    workers_that_served,
)
from tests.support.sdk_oauth import MemoryTokenStorage, mcp_http_client, oauth_provider
from tests.support.services import Cluster, Worker, cluster_directory, start_cluster
from tests.support.wire_client import ACCEPT, LEGACY_PROTOCOL_VERSION, TASKS_CAPABILITIES, McpWire

pytestmark = [pytest.mark.live]

HEALTHY = "ok"
# A worker stops beating when it dies; its sessions answer 404 once its heartbeat expired
# (mcp_app/cluster/directory.py: 6 s) and a request forwarded to it meanwhile gave up
# (mcp_app/cluster/forwarding.py: 10 s).
DEAD_WORKER_BOUND = 6 + 10 + 10  # seconds, with a margin for a loaded machine
HEALTH_ANSWER_BOUND = 5.0  # seconds for /healthz to answer while Redis is down (its checks are bounded at 3 s)
RECOVERY_BOUND = 30.0  # seconds for /healthz to be 200 again once Redis is back
REVOCATION_BOUND = 1.0  # seconds for a revoked token to be refused everywhere (the cache is told, over Redis)
# Longer than one blocking read of the Redis channel layer (channels_redis BZPOPMIN: 5 s), so
# a sampling loop meets every phase of a worker's own traffic on the layer.
SAMPLING_SECONDS = 6.0
FORWARD_BOUND = 1.5  # seconds for a request forwarded to the owner over Redis (loopback: milliseconds)


# ---------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(service_base, scale_out_database) -> Cluster:
    """The cluster the non-destructive tests share, with the conformance fixture tools."""
    database = scale_out_database
    started = start_cluster(
        cluster_directory(service_base), database.url, database.users, MCP_EXTENSIONS=CONFORMANCE_FIXTURES
    )
    yield started
    started.stop()


@pytest.fixture(scope="module")
def token(cluster):
    """An access token obtained through nginx: discovery, registration, browser consent, /token."""
    return anyio.run(obtain_token, cluster)


@pytest.fixture(scope="module")
def _clients_installed():
    missing = missing_clients()
    if missing:
        pytest.fail(f"the npm clients are not installed (make test-deps, or npm ci): missing {missing}")


def add(a: int, b: int) -> dict:
    return {"name": "add", "arguments": {"a": a, "b": b}}


def value_of(result: dict) -> dict:
    """The structured content of a successful tools/call result."""
    assert result.get("isError") is False, result
    return result["structuredContent"]


def structured(reply: dict) -> dict:
    """The structured content of a JSON-RPC reply to a successful tools/call."""
    assert "result" in reply, reply
    return value_of(reply["result"])


def text_of(reply: dict) -> str:
    assert "result" in reply and not reply["result"].get("isError"), reply
    return reply["result"]["content"][0]["text"]


async def accept_elicitation(request: dict) -> dict:
    assert request["method"] == "elicitation/create", request
    return {"action": "accept", "content": ELICITED}


async def answer_sampling(request: dict) -> dict:
    assert request["method"] == "sampling/createMessage", request
    return {"role": "assistant", "content": {"type": "text", "text": SAMPLED_ANSWER}, "model": "test-model"}


# ---------------------------------------------------------------------------
# Health, and promptness across workers
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sessions_on_both(cluster, token) -> dict[str, str]:
    """One open session created on each worker, as in production where every worker owns
    some: each worker then also listens on its channel-layer door for the other's requests."""

    async def open_them():
        async with McpWire(token.access_token) as wire:
            return {worker.name: await wire.initialize(worker.url) for worker in cluster.workers}

    return anyio.run(open_them)


def _health(url: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = httpx2.get(url + "/healthz", timeout=10, trust_env=False)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    return response.status_code, response.json(), time.monotonic() - started


def test_healthz_is_ok_on_every_worker_and_through_nginx(cluster):
    for url in [cluster.url, *(worker.url for worker in cluster.workers)]:
        status, report, _took = _health(url)
        assert status == 200, (url, report)
        assert report["status"] == HEALTHY
        assert report["database"] == report["channel_layer"] == HEALTHY, report
        assert all(value == HEALTHY for value in report.values()), report


@pytest.mark.anyio
@pytest.mark.usefixtures("sessions_on_both")
async def test_healthz_stays_ok_whatever_the_workers_channel_traffic(cluster):
    """Probed back to back for longer than one blocking read of the Redis channel layer
    (channels_redis: 5 s), every answer of a healthy worker is 200: the probe's own channel
    round trip must not wait behind the worker's door (a false 503 takes a worker out of
    the load balancer). Both workers are sampled at once, each by its own loop."""
    answers = {worker.name: [] for worker in cluster.workers}

    async def sample(worker: Worker) -> None:
        async with httpx2.AsyncClient(timeout=10, trust_env=False) as http:
            started = time.monotonic()
            while time.monotonic() - started < SAMPLING_SECONDS:
                asked = time.monotonic()
                response = await http.get(worker.url + "/healthz")
                answers[worker.name].append(
                    (response.status_code, round(time.monotonic() - asked, 2), response.json().get("channel_layer"))
                )

    async with anyio.create_task_group() as group:
        for worker in cluster.workers:
            group.start_soon(sample, worker)
    for name, seen in answers.items():
        assert {status for status, _took, _layer in seen} == {200}, f"{name}: {seen}"


@pytest.mark.anyio
async def test_forwarded_requests_are_answered_promptly(cluster, token, sessions_on_both):
    """A request for a session on worker 1 sent to worker 2, repeatedly for longer than one
    blocking read of the channel layer: each is answered within FORWARD_BOUND, whatever
    worker 2's own door is doing."""
    first, second = cluster.workers
    session = sessions_on_both[first.name]
    slow, count, started = [], 0, time.monotonic()
    async with McpWire(token.access_token) as wire:
        while time.monotonic() - started < SAMPLING_SECONDS:
            asked = time.monotonic()
            reply, _ = await wire.call(second.url, session, "ping")
            took = time.monotonic() - asked
            assert reply.get("result") == {}, reply
            count += 1
            if took > FORWARD_BOUND:
                slow.append(round(took, 2))
    assert slow == [], f"{len(slow)} of {count} forwarded pings took longer than {FORWARD_BOUND}s: {slow}"


# ---------------------------------------------------------------------------
# One session, two workers
# ---------------------------------------------------------------------------
@pytest.mark.anyio
async def test_legacy_sse_stream_on_worker1_receives_replies_to_posts_on_worker2(cluster, token):
    first, second = cluster.workers
    first_mark, second_mark = len(first.access_log()), len(second.access_log())
    async with McpWire(token.access_token) as wire:
        initialize = wire.initialize_message(LEGACY_PROTOCOL_VERSION)
        async with wire.legacy_stream(first.url) as stream:
            assert (await wire.post_message(second.url, stream, initialize)).status_code == 202
            hello = await stream.next_message()
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await wire.post_message(second.url, stream, initialized)).status_code == 202
            call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": add(2, 40)}
            assert (await wire.post_message(second.url, stream, call)).status_code == 202
            added = await stream.next_message()
            who = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
            assert (await wire.post_message(second.url, stream, who)).status_code == 202
            identity = await stream.next_message()
            session_id = stream.session_id

    assert hello["id"] == initialize["id"] and hello["result"]["protocolVersion"] == LEGACY_PROTOCOL_VERSION
    assert added["id"] == 2 and structured(added) == {"result": 42}
    assert identity["id"] == 3 and structured(identity)["user"]["username"] == cluster.username
    # Who served what (daphne's access logs): every POST for the session reached worker 2 only...
    posted = f"/messages?sessionId={session_id}"
    await logged(
        lambda: [(a.method, a.status) for a in second.access_log()[second_mark:] if a.target == posted],
        [("POST", 202)] * 4,
        "worker 2 logged the four POSTs",
    )
    assert [a for a in first.access_log()[first_mark:] if a.target == posted] == []
    assert not [a for a in second.access_log()[second_mark:] if a.target.startswith("/sse")]
    # (The stream itself was a connection to worker 1's own port; daphne logs a response when it
    # ends, and a stream the client closed never ends from its side, so no log line shows it.)
    # The tool calls ran in the owner's session and are in the audit trail.
    assert tool_calls(cluster, session_id) == [("add", "ok"), ("whoami", "ok")]


@pytest.mark.anyio
async def test_stateless_requests_are_answered_by_any_worker_without_forwarding(cluster, token):
    """2026-07-28: no session, no affinity: each worker answers each request itself, and the
    token's user reaches the tools on both."""
    first, second = cluster.workers
    marks = {worker.name: len(worker.access_log()) for worker in cluster.workers}
    async with McpWire(token.access_token) as wire:
        answers = {}
        for worker in (first, second, first):
            added = await wire.stateless_call(worker.url, "tools/call", add(20, 22))
            who = await wire.stateless_call(worker.url, "tools/call", {"name": "whoami", "arguments": {}})
            answers.setdefault(worker.name, []).append((structured(added), structured(who)["user"]["username"]))
    assert answers == {
        first.name: [({"result": 42}, cluster.username)] * 2,
        second.name: [({"result": 42}, cluster.username)],
    }
    for worker in cluster.workers:  # each served its own two or four requests, and nothing was forwarded
        await logged(
            lambda worker=worker: [
                (a.method, a.status) for a in worker.access_log()[marks[worker.name] :] if a.target == "/mcp"
            ],
            [("POST", 200)] * (4 if worker is first else 2),
            f"{worker.name}'s log",
        )


@pytest.mark.anyio
async def test_sdk_client_in_the_stateless_era_through_nginx(cluster):
    """The SDK's client in its default mode lands on 2026-07-28 through nginx; nginx may send
    each request to either worker, and every one is answered."""
    async with HeadlessBrowser(cluster.username, cluster.password) as browser:
        provider = oauth_provider(cluster, browser, path="/mcp")
        async with mcp_http_client(cluster, provider) as http:
            async with Client(streamable_http_client(cluster.url + "/mcp", http_client=http)) as client:
                assert client.protocol_version == "2026-07-28"
                added = [await client.call_tool("add", {"a": n, "b": 1}) for n in range(4)]
    assert [a.structured_content for a in added] == [{"result": n + 1} for n in range(4)]


@pytest.mark.anyio
async def test_a_list_change_on_worker2_reaches_a_listen_stream_on_worker1(cluster, token):
    """subscriptions/listen held on worker 1; the change is announced by a tool running on worker 2,
    and travels over the Redis channel layer."""
    first, second = cluster.workers
    async with McpWire(token.access_token) as wire:
        async with wire.listen(first.url, {"toolsListChanged": True}) as messages:
            triggered = await wire.stateless_call(second.url, "tools/call", {"name": "test_trigger_tool_change"})
            assert "result" in triggered, triggered
            with anyio.fail_after(FORWARD_BOUND * 4):
                changed = await anext(messages)
    assert changed["method"] == "notifications/tools/list_changed"
    assert "io.modelcontextprotocol/subscriptionId" in changed["params"]["_meta"]


async def _task_on(wire: McpWire, worker: Worker, task_id: str, *statuses: str, bound: float) -> dict:
    """The task as ``worker`` shows it once its status is one of ``statuses`` (polling, as clients do)."""

    async def probe():
        reply = await wire.stateless_call(worker.url, "tasks/get", {"taskId": task_id}, TASKS_CAPABILITIES)
        assert "result" in reply, reply
        return reply["result"]

    task, _ = await eventually(probe, lambda task: task["status"] in statuses, f"task {statuses}", bound)
    return task


@pytest.mark.anyio
async def test_a_task_on_worker1_is_followed_answered_and_cancelled_through_worker2(cluster, token):
    """The task's row is shared (PostgreSQL); the client's answer and its cancel, received by
    worker 2, reach the call running on worker 1 over Redis, at once (not at the runner's next
    look at the row, HEARTBEAT_SECONDS later)."""
    from mcp_app.engine.tasks.store import HEARTBEAT_SECONDS

    first, second = cluster.workers
    async with McpWire(token.access_token) as wire:
        call = {"name": "confirm_delete", "arguments": {"filename": "report.txt"}}
        created = (await wire.stateless_call(first.url, "tools/call", call, TASKS_CAPABILITIES))["result"]
        assert created["resultType"] == "task", created
        asking = await _task_on(wire, second, created["taskId"], "input_required", bound=FORWARD_BOUND * 4)
        [(key, question)] = asking["inputRequests"].items()
        assert question["method"] == "elicitation/create"
        answer = {key: {"action": "accept", "content": {"confirm": True}}}
        update = {"taskId": created["taskId"], "inputResponses": answer}
        acked = await wire.stateless_call(second.url, "tasks/update", update, TASKS_CAPABILITIES)
        assert acked["result"]["resultType"] == "complete", acked
        done = await _task_on(wire, second, created["taskId"], "completed", bound=HEARTBEAT_SECONDS - 1)
        assert done["result"]["content"][0]["text"] == "Deleted report.txt"

        slow = {"name": "slow_compute", "arguments": {"seconds": 60, "label": "cross-worker"}}
        long_task = (await wire.stateless_call(first.url, "tools/call", slow, TASKS_CAPABILITIES))["result"]
        cancel = {"taskId": long_task["taskId"]}
        acked = await wire.stateless_call(second.url, "tasks/cancel", cancel, TASKS_CAPABILITIES)
        assert acked["result"]["resultType"] == "complete", acked
        cancelled = await _task_on(wire, first, long_task["taskId"], "cancelled", "completed", bound=FORWARD_BOUND)
        assert cancelled["status"] == "cancelled"

    # The call itself stopped on worker 1 (its audit row says so) well before its 60 s, and before the
    # runner would have seen the cancel in the row.
    async def stopped():
        return query(cluster, "SELECT error_message FROM mcp_app_toolcall WHERE tool = %s", "slow_compute")

    rows, _ = await eventually(stopped, lambda rows: rows, "the cancelled call's audit row", HEARTBEAT_SECONDS - 1)
    assert rows == [("Request cancelled",)]


@pytest.mark.anyio
async def test_streamable_http_session_from_worker1_is_used_on_worker2(cluster, token):
    first, second = cluster.workers
    first_mark, second_mark = len(first.access_log()), len(second.access_log())
    async with McpWire(token.access_token) as wire:
        session = await wire.initialize(first.url, capabilities={"elicitation": {}, "sampling": {}})
        listed, _ = await wire.call(second.url, session, "tools/list")
        progress_params = {"name": "test_tool_with_progress", "arguments": {}, "_meta": {"progressToken": "p-1"}}
        progressed, progress_before = await wire.call(second.url, session, "tools/call", progress_params)
        elicitation_params = {"name": "test_elicitation", "arguments": {"message": "Who are you?"}}
        elicited, elicit_before = await wire.call(
            second.url, session, "tools/call", elicitation_params, answer=accept_elicitation
        )
        sampling_params = {"name": "test_sampling", "arguments": {"prompt": "What is six times seven?"}}
        sampled, sample_before = await wire.call(
            second.url, session, "tools/call", sampling_params, answer=answer_sampling
        )
        ended = await wire.http.delete(second.url + "/mcp", headers=wire.session_headers(session))

    assert {"test_tool_with_progress", "test_elicitation", "test_sampling"} <= {
        t["name"] for t in listed["result"]["tools"]
    }
    # Progress, relayed from worker 1 through Redis, arrives on worker 2's stream before the answer.
    progress = [n["params"] for n in progress_before if n.get("method") == "notifications/progress"]
    assert [p["progress"] for p in progress] == [0, 50, 100] and {p["progressToken"] for p in progress} == {"p-1"}
    assert text_of(progressed) == "Tool with progress executed successfully"
    # The tool on worker 1 asked the client; the answer, POSTed to worker 2, reached it.
    assert [m["method"] for m in elicit_before] == ["elicitation/create"]
    assert text_of(elicited) == f"User response: action=accept, content={json.dumps(ELICITED)}"
    assert [m["method"] for m in sample_before] == ["sampling/createMessage"]
    assert text_of(sampled) == f"LLM response: {SAMPLED_ANSWER}"
    assert ended.status_code == 200
    # Who served what: worker 1 saw only the handshake (initialize, initialized); worker 2 the
    # rest: tools/list, three calls, two answers to the server's requests, and the DELETE.
    await logged(
        lambda: sorted((a.method, a.status) for a in second.access_log()[second_mark:] if a.target == "/mcp"),
        sorted([("POST", 200)] * 4 + [("POST", 202)] * 2 + [("DELETE", 200)]),
        "worker 2's log",
    )
    assert [(a.method, a.target, a.status) for a in first.access_log()[first_mark:]] == [
        ("POST", "/mcp", 200),
        ("POST", "/mcp", 202),
    ]
    assert tool_calls(cluster, session) == [
        ("test_tool_with_progress", "ok"),
        ("test_elicitation", "ok"),
        ("test_sampling", "ok"),
    ]


# ---------------------------------------------------------------------------
# Real clients through nginx
# ---------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.usefixtures("_clients_installed")
@pytest.mark.parametrize(
    "path, args",
    [("/mcp", ["--transport", "http-only"]), ("/sse", ["--transport", "sse-only"])],
    ids=["http-only", "sse-only"],
)
async def test_mcp_remote_through_nginx(cluster, tmp_path, path, args):
    mark = len(cluster.nginx.access_log())
    async with McpRemote(cluster.url + path, tmp_path, cluster.username, cluster.password, args=args) as remote:
        await remote.initialize()
        results = [await remote.call_tool("add", {"a": n, "b": 1}) for n in range(4)]
        who = await remote.call_tool("whoami", {})
        assert await remote.close() == 0

    assert [value_of(r) for r in results] == [{"result": n + 1} for n in range(4)]
    assert value_of(who)["client"]["client_id"] == remote.client_info()["client_id"]
    # Session affinity: nginx sent every request of the session to the worker that issued it.
    session_id = busiest_session(cluster, mark)
    assert workers_that_served(cluster, session_id) == {owner_of(cluster, session_id).name}
    assert [row[0] for row in tool_calls(cluster, session_id)] == ["add"] * 4 + ["whoami"]


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/mcp", "/sse"])
async def test_sdk_client_through_nginx(cluster, path):
    inbox, progress = Inbox(), []

    async def on_progress(value, total, message):
        progress.append(value)

    callbacks = dict(
        message_handler=inbox.on_message, sampling_callback=inbox.on_sampling, elicitation_callback=inbox.on_elicitation
    )
    mark = len(cluster.nginx.access_log())
    async with HeadlessBrowser(cluster.username, cluster.password) as browser:
        provider = oauth_provider(cluster, browser, path=path)
        async with AsyncExitStack() as stack:
            if path == "/mcp":
                http = await stack.enter_async_context(mcp_http_client(cluster, provider))
                transport = streamable_http_client(cluster.url + path, http_client=http)
            else:
                transport = sse_client(cluster.url + path, auth=provider)
            # Sessions, sampling and elicitation mid-call: the handshake era.
            client = await stack.enter_async_context(Client(transport, mode="legacy", **callbacks))
            added = [await client.call_tool("add", {"a": n, "b": 2}) for n in range(3)]
            await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
            sampled = await client.call_tool("test_sampling", {"prompt": "What is six times seven?"})
            elicited = await client.call_tool("test_elicitation", {"message": "Who are you?"})

    assert [a.structured_content for a in added] == [{"result": n + 2} for n in range(3)]
    assert progress == [0, 50, 100]
    assert sampled.content[0].text == f"LLM response: {SAMPLED_ANSWER}"
    assert elicited.content[0].text == f"User response: action=accept, content={json.dumps(ELICITED)}"
    session_id = busiest_session(cluster, mark)
    assert workers_that_served(cluster, session_id) == {owner_of(cluster, session_id).name}
    assert [row[0] for row in tool_calls(cluster, session_id)] == ["add"] * 3 + [
        "test_tool_with_progress",
        "test_sampling",
        "test_elicitation",
    ]


# ---------------------------------------------------------------------------
# A worker dies
# ---------------------------------------------------------------------------
SDK_AGENT = "python-httpx2"  # the User-Agent of the SDK's client (httpx2's default)
MCP_REMOTE_AGENT = "undici"  # mcp-remote's MCP requests (Node's fetch)


async def _sdk_session_on(cluster: Cluster, worker: Worker, stack: AsyncExitStack, provider) -> tuple[Client, str]:
    """An SDK client session (through nginx) that `worker` created. nginx picks the worker, so
    open sessions until it picks this one (round robin: the first or second)."""
    for _attempt in range(6):
        mark = len(cluster.nginx.access_log())
        attempt = AsyncExitStack()
        http = await attempt.enter_async_context(mcp_http_client(cluster, provider))
        client = await attempt.enter_async_context(
            Client(streamable_http_client(cluster.url + "/mcp", http_client=http), mode="legacy")
        )
        (opened,) = sessions_opened(cluster, mark, agent_prefix=SDK_AGENT)
        if opened[1] is worker:
            stack.push_async_callback(attempt.aclose)
            return client, opened[0]
        await attempt.aclose()
    raise AssertionError(f"nginx never sent an SDK initialize to {worker.name} in 6 tries")


@pytest.mark.anyio
@pytest.mark.usefixtures("_clients_installed")
async def test_a_killed_workers_sessions_get_404_and_clients_start_new_sessions(cluster_factory, tmp_path):
    cluster = cluster_factory()
    token = await obtain_token(cluster)
    async with AsyncExitStack() as stack:
        wire = await stack.enter_async_context(McpWire(token.access_token))
        browser = await stack.enter_async_context(HeadlessBrowser(cluster.username, cluster.password))
        # mcp-remote through nginx; the worker that created its session is the one to die.
        mark = len(cluster.nginx.access_log())
        remote = await stack.enter_async_context(
            McpRemote(
                cluster.url + "/mcp",
                tmp_path / "mcp-remote",
                cluster.username,
                cluster.password,
                args=["--transport", "http-only"],
            )
        )
        await remote.initialize()
        assert value_of(await remote.call_tool("add", {"a": 1, "b": 1})) == {"result": 2}
        # mcp-remote may open more than one session; the one its calls went to is the one it uses.
        remote_session = busiest_session(cluster, mark, agent_prefix=MCP_REMOTE_AGENT)
        victim = dict(sessions_opened(cluster, mark, agent_prefix=MCP_REMOTE_AGENT))[remote_session]
        (survivor,) = [worker for worker in cluster.workers if worker is not victim]
        # The SDK's client, on a session the victim created too.
        storage = MemoryTokenStorage()
        provider = oauth_provider(cluster, browser, storage=storage)
        sdk, sdk_session = await _sdk_session_on(cluster, victim, stack, provider)
        assert (await sdk.call_tool("add", {"a": 2, "b": 2})).structured_content == {"result": 4}
        sign_ins = len(browser.visited)
        # And one session created directly on each worker, each with an answered call.
        pinned = {worker.name: await wire.initialize(worker.url) for worker in cluster.workers}
        for worker in cluster.workers:
            reply, _ = await wire.call(worker.url, pinned[worker.name], "tools/call", add(3, 3))
            assert structured(reply) == {"result": 6}

        victim.kill()  # SIGKILL: no clean-up, as in a crash

        # Its sessions answer 404 (503 meanwhile, while the dead owner is not yet known dead).
        _status_code, took = await eventually(
            lambda: wire.status_of_call(cluster.url, pinned[victim.name], "add", {"a": 1, "b": 1}),
            lambda status: status == 404,
            f"a request for {victim.name}'s session answered 404",
            DEAD_WORKER_BOUND,
        )
        assert await wire.status_of_call(survivor.url, pinned[victim.name], "add", {"a": 1, "b": 1}) == 404
        # A new session through nginx works, with the same token.
        fresh = await wire.initialize(cluster.url)
        reply, _ = await wire.call(cluster.url, fresh, "tools/call", add(5, 5))
        assert structured(reply) == {"result": 10}
        # The survivor's session is untouched, directly and through nginx.
        for base in (survivor.url, cluster.url):
            reply, _ = await wire.call(base, pinned[survivor.name], "tools/call", add(4, 4))
            assert structured(reply) == {"result": 8}
        # mcp-remote meets the 404, re-initializes by itself, and goes on without a new sign-in.
        killed_mark = len(cluster.nginx.access_log())
        assert value_of(await remote.call_tool("add", {"a": 6, "b": 6})) == {"result": 12}
        assert len(remote.sign_ins()) == 1
        # The SDK's client reports the ended session; its application opens a new one with the
        # token it holds (no new sign-in) and goes on.
        with pytest.raises(MCPError, match=r"Session (not found|terminated)"):  # the 404, as the SDK reports it
            await sdk.call_tool("add", {"a": 7, "b": 7})
        async with mcp_http_client(cluster, provider) as http:
            async with Client(streamable_http_client(cluster.url + "/mcp", http_client=http)) as again:
                assert (await again.call_tool("add", {"a": 7, "b": 7})).structured_content == {"result": 14}
        assert len(browser.visited) == sign_ins

    # mcp-remote's new session: created by the survivor, and where its last call went.
    renewed = sessions_opened(cluster, killed_mark, agent_prefix=MCP_REMOTE_AGENT)
    assert renewed and {worker.name for _session, worker in renewed} == {survivor.name}, renewed
    assert busiest_session(cluster, killed_mark, agent_prefix=MCP_REMOTE_AGENT) in {session for session, _ in renewed}
    assert "re-initializing" in remote.stderr_path.read_text()
    # Nothing the dead worker had answered is lost: its calls are in the audit trail, and the
    # tokens it had validated still exist and are still honoured (used above after the kill).
    assert tool_calls(cluster, pinned[victim.name]) == [("add", "ok")]
    assert tool_calls(cluster, remote_session) == [("add", "ok")]
    assert tool_calls(cluster, sdk_session) == [("add", "ok")]
    assert tool_calls(cluster, pinned[survivor.name]) == [("add", "ok")] * 3
    for access_token in (token.access_token, remote.stored_tokens()["access_token"], storage.tokens.access_token):
        assert query(
            cluster,
            "SELECT count(*) FROM oauth2_provider_accesstoken WHERE token_checksum = %s",
            checksum(access_token),
        ) == [(1,)]
    print(f"\n{victim.name} SIGKILLed: its session answered 404 after {took:.1f}s")


# ---------------------------------------------------------------------------
# Redis goes away and comes back
# ---------------------------------------------------------------------------
async def _timed_get(url: str) -> tuple[httpx2.Response, float]:
    started = time.monotonic()
    async with httpx2.AsyncClient(timeout=30, trust_env=False) as http:
        response = await http.get(url)
    return response, time.monotonic() - started


@pytest.mark.anyio
async def test_redis_down_is_reported_unhealthy_and_recovers(cluster_factory):
    cluster = cluster_factory()
    token = await obtain_token(cluster)
    first, second = cluster.workers
    async with McpWire(token.access_token) as wire:
        session = await wire.initialize(first.url)

        cluster.redis.stop()

        for url in (cluster.url, first.url, second.url):
            response, took = await _timed_get(url + "/healthz")
            assert response.status_code == 503, (url, response.text)
            assert took < HEALTH_ANSWER_BOUND, f"{url}/healthz took {took:.1f}s with Redis down"
            report = response.json()
            assert report["status"] != HEALTHY and report["database"] == HEALTHY, report
            assert report["channel_layer"] != HEALTHY, report  # names what failed, with the cause
        # MCP requests that need Redis get a fast 503, never a 500 or a hang.
        started = time.monotonic()
        opening = await wire.http.post(first.url + "/mcp", json=wire.initialize_message(), headers={"accept": ACCEPT})
        forwarded = await wire.status_of_call(second.url, session, "add", {"a": 1, "b": 1})
        took = time.monotonic() - started
        assert (opening.status_code, forwarded) == (503, 503), opening.text
        assert opening.json()["error"]["message"], opening.text
        assert took < 2 * HEALTH_ANSWER_BOUND
        # The session's owner still serves it itself: Redis only joins the workers.
        assert await wire.status_of_call(first.url, session, "add", {"a": 1, "b": 1}) == 200

        cluster.redis.start()  # the same port: the workers' REDIS_URL is unchanged

        recovered = time.monotonic()
        for url in (cluster.url, first.url, second.url):
            await eventually(
                lambda url=url: _status(url + "/healthz"),
                lambda status: status == 200,
                f"{url}/healthz 200 after Redis came back",
                RECOVERY_BOUND,
            )
        # And MCP works again across workers: a new session on one, used on the other.
        fresh = await wire.initialize(first.url)
        reply, _ = await wire.call(second.url, fresh, "tools/call", add(20, 22))
        assert structured(reply) == {"result": 42}
    print(f"\nRedis back: healthy again after {time.monotonic() - recovered:.1f}s")


async def _status(url: str) -> int:
    try:
        return (await _timed_get(url))[0].status_code
    except httpx2.TransportError as error:
        return type(error).__name__


@pytest.mark.anyio
async def test_a_lost_database_is_503_with_retry_after_never_500(cluster_factory, scale_out_database):
    """PostgreSQL stops while the workers serve: the OAuth endpoints and an MCP request whose
    token must be looked up answer 503 with Retry-After, and the log names DATABASE_URL;
    PostgreSQL back, they answer again."""
    cluster = cluster_factory()
    token = await obtain_token(cluster)
    registration = {"redirect_uris": ["http://127.0.0.1:5000/cb"], "token_endpoint_auth_method": "none"}
    refresh = {"grant_type": "refresh_token", "refresh_token": token.refresh_token, "client_id": token.client_id}
    postgres = scale_out_database.postgres
    postgres.stop()
    try:
        async with httpx2.AsyncClient(trust_env=False, timeout=30) as http:
            for worker in cluster.workers:
                answers = [
                    await http.post(worker.url + "/register", json=registration),
                    await http.post(worker.url + "/token", data=refresh),
                    await http.post(
                        worker.url + "/mcp",
                        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                        headers={"authorization": "Bearer not-a-cached-token", "accept": ACCEPT},
                    ),
                ]
                assert [(a.status_code, a.headers.get("retry-after")) for a in answers] == [(503, "5")] * 3, [
                    a.text[:200] for a in answers
                ]
    finally:
        postgres.run()
    for worker in cluster.workers:
        assert "DATABASE_URL" in worker.log() and "Traceback" not in worker.log()
    async with httpx2.AsyncClient(trust_env=False, timeout=30) as http:
        again = await http.post(cluster.workers[0].url + "/register", json=registration)
    assert again.status_code == 201, again.text


# ---------------------------------------------------------------------------
# Revocation reaches every worker
# ---------------------------------------------------------------------------
async def _refused_everywhere(cluster: Cluster, wire: McpWire, sessions: dict[str, str], access_token: str) -> float:
    """Seconds until every worker refuses the token on /mcp (its session's calls) and on /sse."""
    started = time.monotonic()

    async def statuses():
        found = []
        for worker in cluster.workers:
            found.append(await wire.status_of_call(worker.url, sessions[worker.name], "add", {"a": 1, "b": 1}))
            async with httpx2.AsyncClient(trust_env=False, timeout=10) as http:
                async with http.stream(
                    "GET", worker.url + "/sse", headers={"authorization": f"Bearer {access_token}", "accept": ACCEPT}
                ) as response:
                    found.append(response.status_code)
        return found

    await eventually(statuses, lambda found: set(found) == {401}, "every worker refuses the token", REVOCATION_BOUND)
    return time.monotonic() - started


@pytest.mark.anyio
async def test_revocation_reaches_every_worker_at_once(cluster_factory):
    """With the default token cache (30 s), a token revoked through /revoke (RFC 7009) or in the
    admin is refused by both workers on /mcp and /sse within a second: the deletion is announced
    over Redis and each worker's cache drops it."""
    cluster = cluster_factory()
    tokens = [await obtain_token(cluster), await obtain_token(cluster)]
    took = {}
    for token, how in zip(tokens, ("/revoke", "admin"), strict=True):
        async with McpWire(token.access_token) as wire:
            # The token is validated (and cached) on both workers.
            sessions = {worker.name: await wire.initialize(worker.url) for worker in cluster.workers}
            for worker in cluster.workers:
                assert await wire.status_of_call(worker.url, sessions[worker.name], "add", {"a": 1, "b": 1}) == 200
            if how == "/revoke":
                form = {"token": token.access_token, "client_id": token.client_id}
                async with httpx2.AsyncClient(trust_env=False, timeout=10) as http:
                    assert (await http.post(cluster.url + "/revoke", data=form)).status_code == 200
            else:
                sql = "SELECT id FROM oauth2_provider_accesstoken WHERE token_checksum = %s"
                ((pk,),) = query(cluster, sql, checksum(token.access_token))
                users = cluster.users
                async with AdminSession(cluster.url, users.staff_username, users.staff_password) as admin:
                    page = await admin.run_action("oauth2_provider", "accesstoken", "revoke_tokens", [pk])
                assert "Revoked 1 access token(s)." in page.text
            took[how] = await _refused_everywhere(cluster, wire, sessions, token.access_token)
    print(f"\nrevoked tokens refused by both workers after: {took}")
    assert all(seconds <= REVOCATION_BOUND for seconds in took.values()), took


@pytest.mark.anyio
async def test_simultaneous_refreshes_on_both_workers_all_get_working_tokens(cluster, token):
    """PostgreSQL orders refreshes racing with one refresh token by the row lock: the first
    rotates it, the others are retries within the grace and get sibling pairs; none fails."""
    from tests.live.test_refresh_retries_live import AT_ONCE

    fresh = await obtain_token(cluster)
    form = {"grant_type": "refresh_token", "refresh_token": fresh.refresh_token, "client_id": fresh.client_id}
    answers: list[httpx2.Response] = []
    async with httpx2.AsyncClient(trust_env=False, timeout=30) as http:

        async def one(worker: Worker):
            answers.append(await http.post(worker.url + "/token", data=form))

        async with anyio.create_task_group() as group:
            for index in range(AT_ONCE):
                group.start_soon(one, cluster.workers[index % 2])
    assert [answer.status_code for answer in answers] == [200] * AT_ONCE, [answer.text for answer in answers]
    for pair in (answer.json() for answer in answers):
        async with McpWire(pair["access_token"]) as wire:
            assert structured(await wire.stateless_call(cluster.workers[0].url, "tools/call", add(2, 3))) == {
                "result": 5
            }
    for worker in cluster.workers:
        assert "Traceback" not in worker.log()


# ---------------------------------------------------------------------------
# X-Forwarded-For: believed from nginx, from nobody else
# ---------------------------------------------------------------------------
REGISTRATIONS_PER_HOUR = 2


def register_from(source: str, base: str, spoofed: str | None = None) -> int:
    """POST /register from loopback address `source` (all of 127/8 is this machine), with a
    forged X-Forwarded-For if `spoofed`; returns the status."""
    body = {
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "token_endpoint_auth_method": "none",
        "client_name": "forwarded-for test",
    }
    headers = {"x-forwarded-for": spoofed} if spoofed else {}
    transport = httpx2.HTTPTransport(local_address=source)
    with httpx2.Client(transport=transport, timeout=10, trust_env=False) as http:
        return http.post(base + "/register", json=body, headers=headers).status_code


def test_forwarded_for_is_believed_from_nginx_only(cluster_factory):
    """The per-address registration limit counts the address nginx saw: a client's own
    X-Forwarded-For is overwritten by nginx, and ignored when sent to a worker directly
    from an address that is not a trusted proxy. The count lives in Redis, so it holds
    although nginx spreads the requests over both workers."""
    cluster = cluster_factory(MCP_REGISTRATIONS_PER_HOUR=str(REGISTRATIONS_PER_HOUR))
    worker = cluster.workers[0]
    # The limit is a moving hour (oauth_app/ratelimit.py): no window edge can fall between these requests.
    net = "127.0.10"
    mark = len(cluster.nginx.access_log())
    proxied = [register_from(f"{net}.2", cluster.url, spoofed=f"{net}.{9 + n}") for n in range(3)]
    other_client = register_from(f"{net}.3", cluster.url)
    direct = [register_from(f"{net}.4", worker.url, spoofed=f"{net}.5") for _ in range(3)]
    spoofed_address = register_from(f"{net}.5", cluster.url)
    assert proxied == [201, 201, 429]  # the forged addresses were replaced by the real one
    assert other_client == 201  # counted as itself, not as nginx (127.0.0.1)
    assert direct == [201, 201, 429]  # an untrusted sender's X-Forwarded-For is not believed
    assert spoofed_address == 201  # ... so the address it named was never charged
    served = {line.upstream for line in cluster.nginx.access_log()[mark:] if line.target == "/register"}
    assert len(served) == 2, "the registrations through nginx went to both workers"
