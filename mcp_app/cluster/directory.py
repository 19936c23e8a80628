"""Where sessions are found: the session directory.

`SessionDirectory` holds the sessions this worker process owns and opens a door
(a worker channel on the Channels layer) through which other workers reach
them. Each session's owner is also published in Django's cache (shared
through Redis when `REDIS_URL` is set), so a request that lands on another
worker is forwarded to the owner (`forwarding.py`).

A worker that is alive says so every few seconds (a heartbeat key with a
short expiry). A session whose owner stopped beating died with it: its record
is dropped and the request gets 404, so the client starts a new session.

A session is found only by the principal that created it (same user, same
OAuth client): to anyone else it does not exist (404).

The sessions of one worker are bounded (`MCP_MAX_SESSIONS`, 503 past it), and so
is each person's share of them (`MCP_MAX_SESSIONS_PER_USER`) and each token's
(`MCP_MAX_SESSIONS_PER_TOKEN`): `PersonalLimit`, answered 429, so that one person
cannot take the whole pool.
"""

import asyncio
import logging
import time
from collections import Counter

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache

from mcp_app.cluster.forwarding import RemoteSession, WorkerUnavailable, serve_forwarded
from mcp_app.principal import Principal
from mcp_app.sessions.session import MCPSession, Transport

log = logging.getLogger(__name__)

_RECORD_PREFIX = "mcp:session:"
_HEARTBEAT_PREFIX = "mcp:worker:"
RECORD_REFRESH_SECONDS = 60
HEARTBEAT_SECONDS = 2
# A worker silent for this long is dead: its sessions answer 404 from then on.
HEARTBEAT_TTL_SECONDS = 6


class TooManySessions(Exception):
    pass


class PersonalLimit(Exception):
    """A person or a token holds as many sessions of this worker as they may."""

    def __init__(self, what: str, limit: int):
        super().__init__(f"{what}: {limit}")
        self.what = what  # "person" or "token"
        self.limit = limit


def _release(counts: Counter, key) -> None:
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]  # no entry for someone with none: the counters hold only who is here


def _record_key(session_id: str) -> str:
    return _RECORD_PREFIX + session_id


def _heartbeat_key(channel: str) -> str:
    return _HEARTBEAT_PREFIX + channel


async def _shared(operation):
    """Await one operation on the shared store; if it is unreachable (Redis down), the
    request cannot be served right now: WorkerUnavailable, answered 503."""
    try:
        return await operation
    except Exception as exc:  # redis-py, socket and timeout errors alike
        log.warning("session directory unavailable: %s: %s", type(exc).__name__, exc)
        raise WorkerUnavailable("session directory") from exc


class SessionDirectory:
    def __init__(self):
        self._sessions: dict[str, MCPSession] = {}
        self._per_user: Counter[int] = Counter()  # sessions of each person, here
        self._per_token: Counter[str] = Counter()  # sessions each token created, here
        self._channel: str | None = None
        self._door: asyncio.Task | None = None
        self._heartbeat: asyncio.Task | None = None
        self._relays: dict[str, asyncio.Task] = {}

    # -- this worker's sessions ---------------------------------------------------
    async def create(self, principal: Principal, transport: Transport) -> MCPSession:
        if len(self._sessions) >= settings.MCP_MAX_SESSIONS:
            raise TooManySessions(len(self._sessions))
        if self._per_user[principal.user_id] >= settings.MCP_MAX_SESSIONS_PER_USER:
            raise PersonalLimit("person", settings.MCP_MAX_SESSIONS_PER_USER)
        if self._per_token[principal.token_checksum] >= settings.MCP_MAX_SESSIONS_PER_TOKEN:
            raise PersonalLimit("token", settings.MCP_MAX_SESSIONS_PER_TOKEN)
        session = MCPSession(
            principal,
            transport,
            idle_seconds=settings.MCP_SESSION_IDLE_SECONDS,
            on_end=self.forget,
            event_capacity=settings.MCP_EVENT_LOG_SIZE,
            event_bytes=settings.MCP_EVENT_LOG_BYTES,
            process_event_bytes=settings.MCP_EVENT_LOG_PROCESS_BYTES,
            route=settings.MCP_WORKER_ROUTE,
        )
        self._sessions[session.id] = session
        self._per_user[principal.user_id] += 1
        self._per_token[principal.token_checksum] += 1
        session.start()
        try:
            await self.publish(session)
        except WorkerUnavailable:
            # Other workers could never find it: better no session than a half-known one.
            await session.close()
            raise
        return session

    def forget(self, session: MCPSession) -> None:
        if self._sessions.get(session.id) is session:
            del self._sessions[session.id]
            _release(self._per_user, session.principal.user_id)
            _release(self._per_token, session.principal.token_checksum)
            asyncio.get_running_loop().create_task(self._unpublish(session.id))

    async def _unpublish(self, session_id: str) -> None:
        try:
            await cache.adelete(_record_key(session_id))
        except Exception as exc:  # the record expires by itself; nothing else to do
            log.warning("could not delete session record: %s", exc)

    async def shutdown(self) -> None:
        """End every session this worker owns (the server is stopping)."""
        sessions = list(self._sessions.values())
        if sessions:
            log.info("closing %d MCP session(s) before shutdown", len(sessions))
            await asyncio.gather(*(session.close() for session in sessions), return_exceptions=True)
            await asyncio.gather(*(self._unpublish(session.id) for session in sessions))
        for task in (self._door, self._heartbeat):
            if task is not None:
                task.cancel()
        if self._channel is not None:
            try:
                await cache.adelete(_heartbeat_key(self._channel))
            except Exception as exc:
                log.warning("could not delete the worker heartbeat: %s", exc)

    def count(self) -> int:
        return len(self._sessions)

    def owns(self, session_id: str) -> bool:
        return session_id in self._sessions

    # -- finding a session, here or on another worker ------------------------------
    async def locate(self, session_id: str, principal: Principal) -> MCPSession | RemoteSession | None:
        session = self._sessions.get(session_id)
        if session is not None:
            if session.closed.is_set() or not session.principal.same_owner(principal):
                return None
            if time.monotonic() - session.published_at > RECORD_REFRESH_SECONDS:
                try:
                    await self.publish(session)
                except WorkerUnavailable:
                    pass  # served here anyway; the record is refreshed on a later request
            return session
        record = await _shared(cache.aget(_record_key(session_id)))
        if not record or record["owner"] == self._channel:
            return None
        if (record["user_id"], record["client_id"]) != (principal.user_id, principal.client_id):
            return None
        if not await _shared(cache.aget(_heartbeat_key(record["owner"]))):
            log.info("session %s belonged to a worker that stopped; dropping it", session_id[:8])
            await self._unpublish(session_id)
            return None
        return RemoteSession(
            session_id, principal, record["owner"], get_channel_layer(), record.get("protocol_version")
        )

    async def publish(self, session: MCPSession) -> None:
        """Write the session's shared record: its owner, its principal, its protocol version
        and when it was last used (refreshed as it is used, at most every RECORD_REFRESH_SECONDS)."""
        session.published_at = time.monotonic()
        record = {
            "owner": await self.channel(),
            "user_id": session.principal.user_id,
            "client_id": session.principal.client_id,
            "transport": session.transport,
            "protocol_version": session.protocol_version,
            "last_activity": time.time(),
        }
        # Outlives idleness by a margin; the owner deletes it when the session ends.
        await _shared(cache.aset(_record_key(session.id), record, timeout=settings.MCP_SESSION_IDLE_SECONDS * 2))
        # Beat with it: after Redis lost its data (a restart), a fresh record must not
        # point at an owner that looks dead until its next beat.
        await self._beat_once()

    # -- the door other workers knock on -------------------------------------------
    async def channel(self) -> str:
        if self._channel is None:
            layer = get_channel_layer()
            self._channel = await layer.new_channel(settings.CHANNEL_PREFIX)
            loop = asyncio.get_running_loop()
            self._door = loop.create_task(self._listen(layer), name="mcp-worker-door")
            self._heartbeat = loop.create_task(self._beat(), name="mcp-worker-heartbeat")
            await self._beat_once()
        return self._channel

    async def _beat_once(self) -> None:
        try:
            await cache.aset(_heartbeat_key(self._channel), time.time(), timeout=HEARTBEAT_TTL_SECONDS)
        except Exception as exc:  # Redis down: other workers will take this one for dead meanwhile
            log.warning("worker heartbeat failed: %s", exc)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)  # the beat's period, not a wait for an event
            await self._beat_once()

    async def _listen(self, layer) -> None:
        while True:
            try:
                event = await layer.receive(self._channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("MCP worker channel: receive failed")
                await asyncio.sleep(1)  # back off before retrying a broken channel layer
                continue
            session = self._sessions.get(event.get("session_id", ""))
            # Each event in its own task: a long relay must not block the door.
            asyncio.get_running_loop().create_task(self._serve(event, session, layer))

    async def _serve(self, event, session, layer) -> None:
        try:
            await serve_forwarded(event, session, layer, self._relays)
        except Exception:
            log.exception("MCP worker channel: %s failed", event.get("type"))


# This worker's directory; tests give each test a fresh one (tests/support/mcp_fixtures.py).
this_worker = SessionDirectory()
