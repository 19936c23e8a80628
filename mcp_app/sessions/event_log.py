"""What a session sent on its SSE streams, kept (bounded) so a client that
reconnects with `Last-Event-ID` gets what it missed (MCP "Resumability").

Event ids are `<stream>.<n>`: the stream they belong to (`s` for the session's
standalone stream, `r<k>` for the answer stream of one POST) and a number that
grows across the whole session, so ids are unique within the session and a
replay never crosses into another stream, as the spec requires.

The log is bounded three ways, oldest events going first: a number of events
(`MCP_EVENT_LOG_SIZE`), bytes per session (`MCP_EVENT_LOG_BYTES`), and bytes for
every session of the process together (`MCP_EVENT_LOG_PROCESS_BYTES`): a session
that adds while the process is at its bound keeps only its newest event. A
client cannot make the server hold more by sending requests whose answers are
large. An event is kept as the bytes sent (serialized once, when it is logged),
so what is counted is what is held; an event alone larger than the session's
bound is delivered but not kept.
"""

from collections import deque
from dataclasses import dataclass

from mcp_types import JSONRPCMessage

from mcp_app.protocol import jsonrpc

STANDALONE = "s"


@dataclass(frozen=True)
class Event:
    id: str
    data: bytes  # the JSON-RPC message, serialized
    is_reply: bool  # a response or an error (what ends a request's stream)

    @classmethod
    def of(cls, event_id: str, message: JSONRPCMessage) -> "Event":
        return cls(event_id, jsonrpc.serialize(message), jsonrpc.is_reply(message))

    @property
    def stream(self) -> str:
        return self.id.rpartition(".")[0]

    @property
    def message(self) -> JSONRPCMessage:
        """The message again (parsed on demand: only the answer to initialize is read back)."""
        return jsonrpc.parse_message(self.data)


@dataclass(frozen=True)
class StreamClosed:
    """Queued instead of an event when the server ends a stream early (SSE polling): the client
    reconnects with Last-Event-ID after the priming event's `retry`."""

    stream: str


class UnknownEventId(ValueError):
    pass


def parse_event_id(event_id: str) -> tuple[str, int]:
    stream, dot, number = event_id.rpartition(".")
    if not dot or not stream or not number.isdigit() or len(event_id) > 100:
        raise UnknownEventId(event_id)
    return stream, int(number)


class ProcessBudget:
    """The bytes every session's log of this process holds together."""

    def __init__(self) -> None:
        self.used = 0


PROCESS_BUDGET = ProcessBudget()


class EventLog:
    def __init__(self, capacity: int, max_bytes: int, process_bytes: int, budget: ProcessBudget = PROCESS_BUDGET):
        self._events: deque[Event] = deque()
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.process_bytes = process_bytes
        self._budget = budget
        self.bytes = 0  # what this log holds
        self.last_number = 0

    def append(self, stream: str, message: JSONRPCMessage) -> Event:
        self.last_number += 1
        event = Event.of(f"{stream}.{self.last_number}", message)
        self._events.append(event)
        self._held(len(event.data))
        while self._events and (
            len(self._events) > self.capacity
            or self.bytes > self.max_bytes
            or (self._budget.used > self.process_bytes and len(self._events) > 1)
        ):
            self._held(-len(self._events.popleft().data))
        return event

    def _held(self, size: int) -> None:
        self.bytes += size
        self._budget.used += size

    def clear(self) -> None:
        """Forget every event (the session ended): its bytes go back to the process's budget."""
        self._events.clear()
        self._held(-self.bytes)

    def priming_id(self, stream: str) -> str:
        """An id for an empty priming event: resuming from it replays everything after now."""
        return f"{stream}.{self.last_number}"

    def after(self, event_id: str) -> tuple[str, list[Event]]:
        """The stream `event_id` belongs to and its logged events after it (older ones may be gone)."""
        stream, number = parse_event_id(event_id)
        if number > self.last_number:
            raise UnknownEventId(event_id)
        return stream, [e for e in self._events if e.stream == stream and int(e.id.rpartition(".")[2]) > number]
