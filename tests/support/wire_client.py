"""MCP client for live multi-worker tests: raw HTTP, each request aimed at an address the test chooses.

The SDK's clients send every request of a session to one URL. The scale-out
tests must create a session on one worker and use it on another (each worker's
own port, bypassing nginx), so they speak the wire protocol themselves:
JSON-RPC bodies, `Mcp-Session-Id`, and SSE parsing. Every read is bounded.

    wire = McpWire(access_token)
    session = await wire.initialize(worker1.url, capabilities={"elicitation": {}})
    reply, before = await wire.call(worker2.url, session, "tools/call", {...}, answer=on_server_request)
    async with wire.legacy_stream(worker1.url) as stream:    # GET /sse held by worker 1
        await wire.post_message(worker2.url, stream.session_id, {...})   # POST /messages on worker 2
        reply = await stream.next_message()
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import count
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2

PROTOCOL_VERSION = "2025-11-25"
STATELESS_PROTOCOL_VERSION = "2026-07-28"
STATELESS_META = {
    "io.modelcontextprotocol/protocolVersion": STATELESS_PROTOCOL_VERSION,
    "io.modelcontextprotocol/clientInfo": {"name": "scale-out-test", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
# A client that takes tasks (the io.modelcontextprotocol/tasks extension) and answers elicitations.
TASKS_CAPABILITIES = {"elicitation": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}}
LEGACY_PROTOCOL_VERSION = "2024-11-05"
ACCEPT = "application/json, text/event-stream"
USER_AGENT = "scale-out-test"  # tells this client's lines apart in nginx's access log
TIMEOUT = 30.0  # seconds for any one answer or event


class WireError(AssertionError):
    pass


@dataclass(frozen=True)
class SSEEvent:
    event: str
    data: str
    id: str | None


async def sse_events(response: httpx2.Response) -> AsyncIterator[SSEEvent]:
    """The events of an SSE body; comments (pings) and data-less events (priming) are skipped."""
    event, data, event_id = "message", [], None
    async for line in response.aiter_lines():
        if line == "":
            if any(data):
                yield SSEEvent(event, "\n".join(data), event_id)
            event, data, event_id = "message", [], None
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
            elif name == "id":
                event_id = value


def _describe(response: httpx2.Response, body: str | None = None) -> str:
    text = body if body is not None else response.text
    return f"{response.request.method} {response.request.url} -> {response.status_code}: {text[:1000]}"


# A server-to-client request (elicitation, sampling) -> the result to answer it with.
ServerRequestHandler = Callable[[dict], Awaitable[dict]]


class McpWire:
    def __init__(self, access_token: str):
        self._ids = count(1)
        self.http = httpx2.AsyncClient(
            headers={"authorization": f"Bearer {access_token}", "user-agent": USER_AGENT},
            timeout=httpx2.Timeout(TIMEOUT),
            trust_env=False,  # loopback only: never through a proxy from the environment
        )

    async def __aenter__(self) -> McpWire:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.aclose()

    def next_id(self) -> int:
        return next(self._ids)

    @staticmethod
    def session_headers(session_id: str) -> dict[str, str]:
        return {"accept": ACCEPT, "mcp-session-id": session_id, "mcp-protocol-version": PROTOCOL_VERSION}

    def initialize_message(self, protocol_version: str = PROTOCOL_VERSION, capabilities: dict | None = None) -> dict:
        return {
            "jsonrpc": "2.0",
            "id": self.next_id(),
            "method": "initialize",
            "params": {
                "protocolVersion": protocol_version,
                "capabilities": capabilities or {},
                "clientInfo": {"name": USER_AGENT, "version": "1"},
            },
        }

    # -- the stateless era (2026-07-28): no session, each request self-contained --------------
    def stateless_message(
        self, method: str, params: dict | None = None, capabilities: dict | None = None
    ) -> tuple[dict, dict[str, str]]:
        """A 2026-07-28 request and the headers that must come with it; ``capabilities``: the
        client's, if any (e.g. ``TASKS_CAPABILITIES``)."""
        meta = STATELESS_META if capabilities is None else {**STATELESS_META, CAPABILITIES_KEY: capabilities}
        params = {**(params or {}), "_meta": meta}
        message = {"jsonrpc": "2.0", "id": self.next_id(), "method": method, "params": params}
        headers = {"accept": ACCEPT, "mcp-protocol-version": STATELESS_PROTOCOL_VERSION, "mcp-method": method}
        if method in ("tools/call", "prompts/get"):
            headers["mcp-name"] = params["name"]
        elif method == "resources/read":
            headers["mcp-name"] = params["uri"]
        elif method.startswith("tasks/"):
            headers["mcp-name"] = params["taskId"]
        return message, headers

    async def stateless_call(
        self, base: str, method: str, params: dict | None = None, capabilities: dict | None = None
    ) -> dict:
        """One 2026-07-28 request to `base`/mcp; its JSON-RPC reply (the last event of a stream)."""
        message, headers = self.stateless_message(method, params, capabilities)
        async with self.http.stream("POST", base + "/mcp", json=message, headers=headers) as response:
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                replies = [json.loads(event.data) async for event in sse_events(response)]
                return next(reply for reply in replies if reply.get("id") == message["id"])
            body = (await response.aread()).decode()
            if "json" not in response.headers.get("content-type", ""):
                raise WireError(f"{method}: {_describe(response, body)}")
            return json.loads(body)

    @asynccontextmanager
    async def listen(self, base: str, notifications: dict) -> AsyncIterator[AsyncIterator[dict]]:
        """A subscriptions/listen stream held on `base`, its acknowledgement read; yields its next messages."""
        message, headers = self.stateless_message("subscriptions/listen", {"notifications": notifications})
        async with self.http.stream("POST", base + "/mcp", json=message, headers=headers) as response:
            if response.status_code != 200:
                raise WireError(f"subscriptions/listen: {_describe(response, (await response.aread()).decode())}")
            messages = (json.loads(event.data) async for event in sse_events(response))
            with anyio.fail_after(TIMEOUT):
                ack = await anext(messages)
            if ack.get("method") != "notifications/subscriptions/acknowledged":
                raise WireError(f"subscriptions/listen: first message {ack}")
            yield messages

    # -- Streamable HTTP, handshake era -------------------------------------------------------
    async def initialize(self, base: str, capabilities: dict | None = None) -> str:
        """Open a session at `base` (initialize, then notifications/initialized); its id."""
        message = self.initialize_message(capabilities=capabilities)
        response = await self.http.post(base + "/mcp", json=message, headers={"accept": ACCEPT})
        if response.status_code != 200 or "mcp-session-id" not in response.headers:
            raise WireError(f"initialize: {_describe(response)}")
        session_id = response.headers["mcp-session-id"]
        sent = await self.post(base, session_id, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        if sent.status_code != 202:
            raise WireError(f"notifications/initialized: {_describe(sent)}")
        return session_id

    async def post(self, base: str, session_id: str, message: dict) -> httpx2.Response:
        """POST one message to `base`/mcp in `session_id`; the response as it came."""
        return await self.http.post(base + "/mcp", json=message, headers=self.session_headers(session_id))

    async def call(
        self,
        base: str,
        session_id: str,
        method: str,
        params: dict | None = None,
        *,
        answer: ServerRequestHandler | None = None,
        answer_base: str | None = None,
    ) -> tuple[dict, list[dict]]:
        """Send a request to `base`; return its reply and what the server sent before it on the
        request's stream (progress, log lines, its own requests). A server request is answered
        with `answer`'s result, POSTed to `answer_base` (default `base`)."""
        request_id = self.next_id()
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, **({"params": params} if params else {})}
        before: list[dict] = []
        with anyio.fail_after(TIMEOUT):
            headers = self.session_headers(session_id)
            async with self.http.stream("POST", base + "/mcp", json=message, headers=headers) as response:
                if response.status_code != 200:
                    raise WireError(
                        f"{method}: {_describe(response, (await response.aread()).decode(errors='replace'))}"
                    )
                if response.headers.get("content-type", "").startswith("application/json"):
                    return json.loads(await response.aread()), before
                async for event in sse_events(response):
                    received = json.loads(event.data)
                    if received.get("id") == request_id and "method" not in received:
                        return received, before
                    before.append(received)
                    if "method" in received and "id" in received:  # the server asks the client
                        if answer is None:
                            raise WireError(f"{method}: unexpected server request {received}")
                        reply = {"jsonrpc": "2.0", "id": received["id"], "result": await answer(received)}
                        sent = await self.post(answer_base or base, session_id, reply)
                        if sent.status_code != 202:
                            raise WireError(f"answer to {received['method']}: {_describe(sent)}")
        raise WireError(f"{method}: the stream ended without a reply; before it: {before}")

    async def status_of_call(
        self, base: str, session_id: str, name: str, arguments: dict, *, timeout: float = TIMEOUT
    ) -> int:
        """The HTTP status of a tools/call in `session_id` at `base` (200, or 404, 503...)."""
        message = {
            "jsonrpc": "2.0",
            "id": self.next_id(),
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        }
        response = await self.http.post(
            base + "/mcp", json=message, headers=self.session_headers(session_id), timeout=timeout
        )
        return response.status_code

    # -- legacy HTTP+SSE --------------------------------------------------------------
    @asynccontextmanager
    async def legacy_stream(self, base: str) -> AsyncIterator[LegacyStream]:
        """GET `base`/sse; yields the stream once its `endpoint` event named the session."""
        async with self.http.stream(
            "GET", base + "/sse", headers={"accept": "text/event-stream"}, timeout=httpx2.Timeout(TIMEOUT, read=None)
        ) as response:
            if response.status_code != 200:
                raise WireError(f"GET /sse: {_describe(response, (await response.aread()).decode(errors='replace'))}")
            events = sse_events(response)
            with anyio.fail_after(TIMEOUT):
                endpoint = await anext(events)
            if endpoint.event != "endpoint":
                raise WireError(f"GET /sse: the first event is not the endpoint: {endpoint}")
            session_id = parse_qs(urlsplit(endpoint.data).query)["sessionId"][0]
            yield LegacyStream(session_id, urlsplit(endpoint.data).path, events)

    async def post_message(self, base: str, stream: LegacyStream, message: dict) -> httpx2.Response:
        """POST one message for `stream`'s session to `base` (any worker); 202 when accepted."""
        url = f"{base}{stream.endpoint_path}?sessionId={stream.session_id}"
        return await self.http.post(url, json=message)


@dataclass
class LegacyStream:
    session_id: str
    endpoint_path: str  # /messages
    _events: AsyncIterator[SSEEvent]

    async def next_message(self, timeout: float = TIMEOUT) -> dict:
        with anyio.fail_after(timeout):
            event = await anext(self._events)
        if event.event != "message":
            raise WireError(f"expected a message event, got {event}")
        return json.loads(event.data)
