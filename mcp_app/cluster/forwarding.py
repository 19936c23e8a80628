"""Reaching a session owned by another worker process, over the Channels layer.

A session lives in the process that created it. When a request for it lands
on another worker, that worker's endpoint talks to a `RemoteSession`: it has
the same interface as `MCPSession`, but sends each message to the owner's
worker channel and receives what the owner's engine says back on a reply
channel of its own. The owner side (`serve_forwarded`) delivers the message
to the real session and relays the engine's output until the reply.

Events are plain dicts of strings and numbers, so they survive Redis.
"""

import asyncio
import logging
from datetime import datetime

from channels.exceptions import ChannelFull
from django.conf import settings

from mcp_app.principal import Principal, RequestInfo
from mcp_app.protocol import jsonrpc
from mcp_app.sessions.event_log import Event, StreamClosed, UnknownEventId
from mcp_app.sessions.event_queue import EventQueue
from mcp_app.sessions.session import MCPSession, SessionClosed

log = logging.getLogger(__name__)

# Event types between workers (Channels maps "mcp.deliver" to a handler name, hence the dots).
DELIVER = "mcp.deliver"  # a message for the session; relay the answer if it is a request
STREAM = "mcp.stream"  # open a GET stream (standalone, or resumed from Last-Event-ID) and relay it
CLOSE = "mcp.close"  # end the session
STOP = "mcp.stop"  # the remote client left: stop relaying to its reply channel
OUTBOUND = "mcp.outbound"  # owner -> remote: one event (id and message) from the engine
ACCEPTED = "mcp.accepted"
GONE = "mcp.gone"  # no such session (or not yours)
CONFLICT = "mcp.conflict"  # the standalone stream is already open
DUPLICATE = "mcp.duplicate"  # that request id is already in flight
UNKNOWN_EVENT = "mcp.unknown_event"  # a Last-Event-ID this session never issued
STREAM_CLOSED = "mcp.stream_closed"  # owner -> remote: the engine ended the stream early (polling)

# How long a worker waits for the owner to acknowledge; the owner answers at once when alive.
ACK_TIMEOUT_SECONDS = 10


class WorkerUnavailable(Exception):
    """The owner's channel is full or it did not answer: answered 503."""


class DuplicateRequest(Exception):
    pass


def principal_to_wire(principal: Principal) -> dict:
    return {
        "user_id": principal.user_id,
        "username": principal.username,
        "client_id": principal.client_id,
        "client_name": principal.client_name,
        "scopes": sorted(principal.scopes),
        "token_checksum": principal.token_checksum,
        "expires": principal.expires.isoformat(),
    }


def principal_from_wire(data: dict) -> Principal:
    return Principal(
        user_id=data["user_id"],
        username=data["username"],
        client_id=data["client_id"],
        client_name=data["client_name"],
        scopes=frozenset(data["scopes"]),
        token_checksum=data["token_checksum"],
        expires=datetime.fromisoformat(data["expires"]),
    )


class RemoteSession:
    """A session owned by another worker, seen from this one (for one HTTP request)."""

    def __init__(self, session_id: str, principal: Principal, owner_channel: str, layer, protocol_version=None):
        self.id = session_id
        self.principal = principal
        self.protocol_version = protocol_version
        self.closed = asyncio.Event()
        self._owner = owner_channel
        self._layer = layer
        self._reply_channel: str | None = None
        self._queue: EventQueue | None = None
        self._reader: asyncio.Task | None = None

    async def _send(self, event: dict) -> None:
        if self._reply_channel is None:
            self._reply_channel = await self._layer.new_channel(settings.CHANNEL_PREFIX)
        event.update(session_id=self.id, principal=principal_to_wire(self.principal), reply_to=self._reply_channel)
        try:
            await self._layer.send(self._owner, event)
        except ChannelFull:
            raise WorkerUnavailable(self._owner) from None
        except Exception as exc:  # the channel layer itself is down (Redis)
            raise WorkerUnavailable(self._owner) from exc

    async def _acknowledgement(self) -> dict:
        try:
            return await asyncio.wait_for(self._layer.receive(self._reply_channel), ACK_TIMEOUT_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # no answer in time, or the channel layer is down
            raise WorkerUnavailable(self._owner) from exc

    def _read_into(self, queue: EventQueue) -> None:
        async def read() -> None:
            while True:
                event = await self._layer.receive(self._reply_channel)
                if event["type"] == OUTBOUND:
                    queue.put_nowait(Event(event["event_id"], event["message"].encode(), bool(event.get("reply"))))
                elif event["type"] == STREAM_CLOSED:
                    queue.put_nowait(StreamClosed(event["stream"]))
                    return
                else:  # GONE: the session (or the replayed stream) ended on its owner
                    self.closed.set()
                    queue.put_nowait(None)
                    return

        self._reader = asyncio.get_running_loop().create_task(read())

    # -- the MCPSession interface the transport endpoints use ---------------------------
    def expect_reply(self, request_id) -> EventQueue:
        self._queue = EventQueue()
        return self._queue

    async def deliver(self, message, info: RequestInfo, *, can_send_request: bool = True) -> None:
        # Relay the answer back only to an endpoint that waits for it (Streamable HTTP); on the
        # legacy transport it goes to the session's own SSE stream, held by the owner.
        await self._send(
            {
                "type": DELIVER,
                "message": jsonrpc.serialize(message).decode(),
                "headers": info.headers,
                "can_send_request": can_send_request,
                "relay_reply": self._queue is not None,
            }
        )
        answer = (await self._acknowledgement())["type"]
        if answer == GONE:
            raise SessionClosed(self.id)
        if answer == DUPLICATE:
            raise DuplicateRequest(self.id)
        if jsonrpc.is_request(message) and self._queue is not None:
            self._read_into(self._queue)

    def forget_request(self, request_id) -> None:
        self._stop_relay()

    async def open_stream(self, last_event_id: str | None = None) -> tuple[EventQueue, str | None] | None:
        await self._send({"type": STREAM, "last_event_id": last_event_id})
        answer = await self._acknowledgement()
        if answer["type"] == GONE:
            raise SessionClosed(self.id)
        if answer["type"] == UNKNOWN_EVENT:
            raise UnknownEventId(last_event_id)
        if answer["type"] == CONFLICT:
            return None
        queue = EventQueue()
        self._read_into(queue)
        return queue, answer.get("priming_id")

    async def close_stream(self, queue: EventQueue) -> None:
        self._stop_relay()

    async def close(self) -> None:
        await self._send({"type": CLOSE})
        await self._acknowledgement()

    def _stop_relay(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            # Tell the owner, so it stops relaying to a channel nobody reads.
            asyncio.get_running_loop().create_task(self._send_stop())

    async def _send_stop(self) -> None:
        try:
            await self._layer.send(self._owner, {"type": STOP, "session_id": self.id, "reply_to": self._reply_channel})
        except ChannelFull:
            pass


# -- the owner's side ----------------------------------------------------------------
async def serve_forwarded(event: dict, session: MCPSession | None, layer, relays: dict) -> None:
    """Carry out one event from another worker on a session this process owns."""
    reply_to = event["reply_to"]

    async def reply(payload: dict) -> bool:
        try:
            await layer.send(reply_to, payload)
            return True
        except ChannelFull:  # the remote side is gone or stuck; stop talking to it
            return False

    if event["type"] == STOP:
        relay = relays.pop(reply_to, None)
        if relay is not None:
            relay.cancel()
        return
    if (
        session is None
        or session.closed.is_set()
        or not session.principal.same_owner(principal_from_wire(event["principal"]))
    ):
        await reply({"type": GONE})
        return
    if event["type"] == CLOSE:
        await session.close()
        await reply({"type": ACCEPTED})
    elif event["type"] == DELIVER:
        await _deliver(event, session, reply, relays, reply_to)
    elif event["type"] == STREAM:
        try:
            opened = await session.open_stream(event.get("last_event_id"))
        except UnknownEventId:
            await reply({"type": UNKNOWN_EVENT})
            return
        if opened is None:
            await reply({"type": CONFLICT})
            return
        queue, priming_id = opened
        await reply({"type": ACCEPTED, "priming_id": priming_id})
        await _relay(queue, reply, relays, reply_to, stop_at_reply=False, on_end=lambda: session.close_stream(queue))


async def _deliver(event, session: MCPSession, reply, relays, reply_to) -> None:
    message = jsonrpc.parse_message(event["message"].encode())
    info = RequestInfo(principal=session.principal, session_id=session.id, headers=event["headers"])
    request_id = message.id if jsonrpc.is_request(message) and event["relay_reply"] else None
    queue = session.expect_reply(request_id) if request_id is not None else None
    if request_id is not None and queue is None:
        await reply({"type": DUPLICATE})
        return
    try:
        await session.deliver(message, info, can_send_request=event["can_send_request"])
    except SessionClosed:
        await reply({"type": GONE})
        return
    await reply({"type": ACCEPTED})
    if queue is not None:

        async def forget():
            session.forget_request(request_id)

        await _relay(queue, reply, relays, reply_to, stop_at_reply=True, on_end=forget)


async def _relay(queue: EventQueue, reply, relays: dict, reply_to: str, *, stop_at_reply: bool, on_end) -> None:
    async def pump() -> None:
        while True:
            event = await queue.get()
            if event is None:
                await reply({"type": GONE})
                return
            if isinstance(event, StreamClosed):
                await reply({"type": STREAM_CLOSED, "stream": event.stream})
                return
            payload = {"type": OUTBOUND, "event_id": event.id, "message": event.data.decode(), "reply": event.is_reply}
            if not await reply(payload):
                return
            if stop_at_reply and event.is_reply:
                return

    task = asyncio.get_running_loop().create_task(pump())
    relays[reply_to] = task
    try:
        await asyncio.gather(task, return_exceptions=True)
    finally:
        relays.pop(reply_to, None)
        await on_end()
