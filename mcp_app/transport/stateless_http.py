"""`/mcp` for the stateless era (MCP 2026-07-28): one self-contained POST, one answer.

Which era a POST belongs to (``is_stateless``): the 2026-07-28 spec has a
server that speaks both tell them apart by the ``MCP-Protocol-Version`` header
and, where the header does not settle it, by the request's ``_meta``:

- a version header that is not a handshake-era version: stateless (an unknown
  version is then answered -32022, as the spec says);
- no version header, and ``params._meta`` names a protocol version on any
  method but ``initialize``: stateless (and the ladder then answers the
  missing header with -32020);
- a handshake-era header with ``_meta`` naming a stateless version: stateless,
  served as ``_meta`` says. A documented tolerance: Claude Code has been seen
  sending ``MCP-Protocol-Version: 2025-11-25`` on 2026-07-28 requests. Every
  other disagreement between header and body is -32020.

A stateless request has no session: the bearer token is checked on each (the
guards), the engine serves it (``engine/stateless.py``), and the answer is one
JSON body, or an SSE stream when the engine sent something about the request
before its result (progress, a log line the request opted into) and the client
accepts one. ``subscriptions/listen`` is always a stream: its acknowledgement,
then change notifications, with comment pings while idle, until the client
leaves. A client that leaves cancels its request.
"""

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from mcp_app.engine import stateless
from mcp_app.engine.fanout import bus
from mcp_app.engine.listen import ListenStream, current_listen_stream
from mcp_app.protocol import jsonrpc
from mcp_app.protocol.errors import INVALID_REQUEST, UNSUPPORTED_PROTOCOL_VERSION
from mcp_app.protocol.names import (
    EVENT_STREAM,
    INITIALIZE,
    LISTEN,
    MCP_PROTOCOL_VERSION_HEADER,
    PROTOCOL_VERSION_META_KEY,
    STATELESS_PROTOCOL_VERSIONS,
    SUPPORTED_PROTOCOL_VERSIONS,
)
from mcp_app.protocol.scope import HEADER_ENCODING, accepts
from mcp_app.sessions.event_queue import EventQueue
from mcp_app.transport.sse import SSE_PING, sse_event

log = logging.getLogger(__name__)

_DONE = object()  # queued after a listen stream's handler ended
# subscriptions/listen streams open in this worker, per person (MCP_MAX_LISTEN_STREAMS_PER_USER).
_listening: Counter[int] = Counter()


def meta_version(data: Any) -> Any:
    """The protocol version a decoded request names in ``params._meta``, if any."""
    params = data.get("params") if isinstance(data, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, dict) else None


def header_is_stateless(version_header: str | None) -> bool:
    return version_header is not None and version_header not in SUPPORTED_PROTOCOL_VERSIONS


def is_stateless(version_header: str | None, data: Any) -> bool:
    """Whether a decoded POST body is a stateless-era request (the rules in the module docstring)."""
    if header_is_stateless(version_header):
        return True
    if not isinstance(data, dict) or data.get("method") == INITIALIZE:
        return False
    named = meta_version(data)
    if version_header is None:
        return named is not None
    return named in STATELESS_PROTOCOL_VERSIONS


class StatelessPost:
    """One stateless-era POST to an endpoint (`Endpoint`: the answers, streams and the caller)."""

    def __init__(self, endpoint, data: Any):
        self.endpoint = endpoint
        self.data = data
        self.request_id = jsonrpc.request_id_of(data)
        self.streaming = False  # whether the answer became an SSE stream
        self.may_stream = accepts(endpoint.scope, EVENT_STREAM)

    async def run(self) -> None:
        data = self.data
        if not isinstance(data, dict) or "method" not in data or "result" in data or "error" in data:
            await self.refuse(400, INVALID_REQUEST, "Body must be a single JSON-RPC request or notification object")
            return
        info = self.endpoint.request_info(session_id="")
        headers = self._routing_headers(info.headers)
        if "id" not in data:
            await self._notification(headers)
            return
        if self.request_id is None or not isinstance(data.get("method"), str):
            await self.refuse(400, INVALID_REQUEST, "Invalid Request: a request needs a string or integer id")
            return
        route = stateless.check(data, headers, self._raw_headers())
        if isinstance(route, stateless.Rejection):
            await self._reject(route)
            return
        if await self.endpoint.refused_for_scope(data["method"], data.get("params")):
            return
        if data["method"] == LISTEN:
            listen = self._listen(route, info, headers)
            del data, info, headers, route  # not held by this frame while the stream lasts (see _listen)
            await listen
            return
        try:
            result = await stateless.serve(route, data, info, headers, self._on_notification)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # MCPError, bad params, or a crash the SDK logs: a JSON-RPC error
            error = stateless.error_of(exc)
            await self._answer({"jsonrpc": "2.0", "id": self.request_id, "error": _dump(error)}, error.code)
            return
        await self._answer({"jsonrpc": "2.0", "id": self.request_id, "result": result}, None)

    # -- what the request carries -------------------------------------------------------
    def _raw_headers(self) -> list[tuple[str, str]]:
        """Every header as received (where a routing header sent twice shows); built for the
        check only, so a listen stream does not hold it for its lifetime."""
        return [
            (name.decode(HEADER_ENCODING), value.decode(HEADER_ENCODING))
            for name, value in self.endpoint.scope["headers"]
        ]

    def _routing_headers(self, request_headers: Mapping[str, str]) -> dict[str, str]:
        """The request's headers as the validation ladder reads them (lower-case names, the token left
        out), with the version header taken from `_meta` under the documented tolerance."""
        headers = dict(request_headers)
        named = meta_version(self.data)
        if (
            headers.get(MCP_PROTOCOL_VERSION_HEADER) in SUPPORTED_PROTOCOL_VERSIONS
            and named in STATELESS_PROTOCOL_VERSIONS
        ):
            headers[MCP_PROTOCOL_VERSION_HEADER] = named  # the tolerance in the module docstring
        return headers

    async def _notification(self, headers: Mapping[str, str]) -> None:
        """The stateless era defines no client notifications on this transport: acknowledged, dropped."""
        version = headers.get(MCP_PROTOCOL_VERSION_HEADER)
        if version is not None and version not in STATELESS_PROTOCOL_VERSIONS:
            supported = sorted(STATELESS_PROTOCOL_VERSIONS)
            await self.refuse(
                400,
                UNSUPPORTED_PROTOCOL_VERSION,
                f"Unsupported protocol version {version!r}",
                {"supported": supported, "requested": version},
            )
            return
        await self.endpoint.respond(202, content_type=None)

    # -- answers -------------------------------------------------------------------------
    async def refuse(self, status: int, code: int, message: str, data: Any = None) -> None:
        await self.endpoint.respond(status, jsonrpc.error_body(code, message, self.request_id, data))

    async def _reject(self, rejection: "stateless.Rejection") -> None:
        error = rejection.error
        await self.refuse(rejection.status, error.code, error.message, error.data)

    async def _answer(self, message: dict[str, Any], error_code: int | None) -> None:
        body = _encode(message)
        if self.streaming:
            await self.endpoint.send_chunk(sse_event(body, event="message"))
            await self.endpoint.end_stream()
            return
        status = 200 if error_code is None else stateless.http_status_of(error_code)
        await self.endpoint.respond(status, body)

    async def _on_notification(self, message: dict[str, Any]) -> None:
        """Something the engine says about the request before its result: the answer becomes a stream."""
        if not self.may_stream:
            return  # a JSON-only client cannot receive it; the result still comes
        await self._stream(message)

    async def _stream(self, message: dict[str, Any]) -> None:
        """One message on the answer's SSE stream, which the first one starts."""
        if not self.streaming:
            self.streaming = True
            await self.endpoint.start_stream()
        await self.endpoint.send_chunk(sse_event(_encode(message), event="message"))

    # -- subscriptions/listen --------------------------------------------------------------
    async def _listen(self, route, info, headers: Mapping[str, str]) -> None:
        """The acknowledgement, then change notifications, as SSE with pings, until the client leaves.

        The engine serves the request (``_serve_listen``) in a task of its own, which ends once the
        stream is acknowledged: from then on the stream is a ``ListenStream`` (engine/listen.py)
        writing onto the queue this task pumps, and nothing of the request (its body, headers,
        caller, the engine's objects) is held while the client listens. Hence the ``del``s."""
        if not self.may_stream:
            await self.refuse(406, INVALID_REQUEST, "Not Acceptable: subscriptions/listen needs text/event-stream")
            return
        person = info.principal.user_id
        limit = settings.MCP_MAX_LISTEN_STREAMS_PER_USER
        if _listening[person] >= limit:
            await self.endpoint.refuse_personal_limit("listen", limit, self.request_id)
            return
        _listening[person] += 1  # before any await: streams arriving together see each other
        try:
            await bus.join()  # in the fan-out group before the acknowledgement goes out
            queue = EventQueue()
            stream = ListenStream(lambda message: queue.put_nowait(_DONE if message is None else message))
            handler = asyncio.get_running_loop().create_task(
                self._serve_listen(route, info, headers, stream, queue), name="mcp-listen"
            )
            del route, info, headers
            try:
                await self._pump(queue)
            finally:
                stream.unsubscribe()
                handler.cancel()
                await asyncio.gather(handler, return_exceptions=True)
        finally:
            _listening[person] -= 1
            if not _listening[person]:
                del _listening[person]

    async def _serve_listen(self, route, info, headers, stream: ListenStream, queue: EventQueue) -> None:
        """The engine's part of a listen stream: the acknowledgement, or the error that refuses it."""
        current_listen_stream.set(stream)  # in this task's own context: seen by the engine's handler only
        data, self.data = self.data, None
        final = True
        try:
            result = await stateless.serve(route, data, info, headers, _enqueue_on(queue))
            message = {"jsonrpc": "2.0", "id": self.request_id, "result": result}
            if stream.live:
                stream.keep_result(message)  # the last frame if the server closes the stream
                final = False
            else:
                queue.put_nowait(message)
        except Exception as exc:
            queue.put_nowait({"jsonrpc": "2.0", "id": self.request_id, "error": _dump(stateless.error_of(exc))})
        finally:
            if final:
                queue.put_nowait(_DONE)

    async def _pump(self, queue: EventQueue) -> None:
        while True:
            try:
                message = await queue.get(timeout=settings.MCP_SSE_PING_SECONDS)
            except TimeoutError:
                if self.streaming:
                    await self.endpoint.send_chunk(SSE_PING)
                continue
            if message is _DONE:
                if self.streaming:
                    await self.endpoint.end_stream()
                return
            if "id" in message and not self.streaming:  # refused before the acknowledgement: plain JSON
                error = message.get("error")
                await self._answer(message, error["code"] if error else None)
                return
            await self._stream(message)


def _enqueue_on(queue: EventQueue):
    async def enqueue(message: dict[str, Any]) -> None:
        queue.put_nowait(message)

    return enqueue


def _dump(error) -> dict[str, Any]:
    return error.model_dump(mode="json", by_alias=True, exclude_none=True)


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
