"""What a session sent on its SSE streams, kept (bounded) so a client that
reconnects with `Last-Event-ID` gets what it missed (MCP "Resumability").

Event ids are `<stream>.<n>`: the stream they belong to (`s` for the session's
standalone stream, `r<k>` for the answer stream of one POST) and a number that
grows across the whole session, so ids are unique within the session and a
replay never crosses into another stream, as the spec requires.
"""

from collections import deque
from dataclasses import dataclass

from mcp_types import JSONRPCMessage

STANDALONE = "s"


@dataclass(frozen=True)
class Event:
    id: str
    message: JSONRPCMessage

    @property
    def stream(self) -> str:
        return self.id.rpartition(".")[0]


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


class EventLog:
    def __init__(self, capacity: int):
        self._events: deque[Event] = deque(maxlen=capacity)
        self.last_number = 0

    def append(self, stream: str, message: JSONRPCMessage) -> Event:
        self.last_number += 1
        event = Event(f"{stream}.{self.last_number}", message)
        self._events.append(event)
        return event

    def priming_id(self, stream: str) -> str:
        """An id for an empty priming event: resuming from it replays everything after now."""
        return f"{stream}.{self.last_number}"

    def after(self, event_id: str) -> tuple[str, list[Event]]:
        """The stream `event_id` belongs to and its logged events after it (older ones may be gone)."""
        stream, number = parse_event_id(event_id)
        if number > self.last_number:
            raise UnknownEventId(event_id)
        return stream, [e for e in self._events if e.stream == stream and int(e.id.rpartition(".")[2]) > number]
