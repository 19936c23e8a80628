"""Twisted's writes under daphne: sent at the end of the loop turn, not after another poll.

Twisted buffers what a connection writes and asks the reactor to watch the socket for
writability (``startWriting``); the reactor sends the buffer when the poll says it can. Under
daphne the reactor runs on asyncio, so every response costs an ``epoll_ctl`` to watch the
socket, a trip around the loop for the poll to report what is almost always true (a socket
with room in its send buffer is writable), the write, and another ``epoll_ctl`` to stop
watching: about 6% of a busy worker's event loop (py-spy, `bench/`, 32 users). uvicorn's
asyncio transports try the send first and watch the socket only when it is full.

Here the reactor does the same, once per loop turn: the first ``addWriter`` of a connection
in a turn schedules one attempt (``call_soon``), so everything written during the turn (a
response's head, its body) still goes out in one ``send``; the attempt is the reactor's own
``doWrite`` path (errors, lost connections, ``loseConnection`` after the last byte, all as the
reactor handles them). Only a connection whose data did not all fit is watched the usual
way, until its buffer drains.
"""

import asyncio
import sys

from twisted.python.log import callWithLogger


def install() -> None:
    """Make daphne's reactor try a write before watching the socket (no-op outside daphne; idempotent)."""
    if "daphne.server" not in sys.modules:
        return
    from twisted.internet import reactor

    if getattr(reactor, "writes_soon", False) or not hasattr(reactor, "_asyncioEventloop"):
        return
    _WritesSoon(reactor).install()


class _WritesSoon:
    """``addWriter`` and ``removeWriter`` of an ``AsyncioSelectorReactor``, writing in the same turn."""

    def __init__(self, reactor):
        self.reactor = reactor
        self.loop: asyncio.AbstractEventLoop = reactor._asyncioEventloop
        self.watch = reactor.addWriter  # the reactor's own: watch the socket for writability
        self.unwatch = reactor.removeWriter
        self.pending: set = set()  # writers with an attempt scheduled in this turn
        self.current = None  # the writer whose attempt is running, and whether it still wants to write
        self.current_wants = False

    def install(self) -> None:
        self.reactor.addWriter = self.add_writer
        self.reactor.removeWriter = self.remove_writer
        self.reactor.writes_soon = True

    def add_writer(self, writer) -> None:
        if writer is self.current:
            self.current_wants = True
        elif writer not in self.pending and writer not in self.reactor._writers:
            self.pending.add(writer)
            self.loop.call_soon(self._attempt, writer)

    def remove_writer(self, writer) -> None:
        if writer is self.current:
            self.current_wants = False
        elif writer in self.pending:
            self.pending.discard(writer)  # its scheduled attempt finds it gone
        else:
            self.unwatch(writer)

    def _attempt(self, writer) -> None:
        if writer not in self.pending:
            return  # it stopped writing (or lost its connection) before the turn ended
        self.pending.discard(writer)
        self.current, self.current_wants = writer, True
        try:
            # The reactor's own write path: doWrite, and on an error or a finished close, the disconnect.
            callWithLogger(writer, self.reactor._readOrWrite, writer, False)
        finally:
            wants, self.current = self.current_wants, None
        if wants and writer.connected and writer.fileno() != -1:
            self.watch(writer)  # the rest waits for room in the socket's buffer
