"""What daphne's requests do differently here (`WebRequest`, daphne's Twisted request class).

- **A deadline for reading a request.** daphne hands a request to the application only once
  Twisted has read all of it, and neither bounds how long that takes: a client that
  trickles its header lines or its body a byte a second holds a connection, a request
  object and its buffer for as long as it likes (found by hostile testing: 100 bodies and
  50 header blocks, all held open). From its request line on, a request must arrive whole
  within `MCP_REQUEST_READ_SECONDS`; a slower one is answered 408 and its connection
  closed, with one log line. (The request line itself is bounded by Twisted's 16 KiB line
  limit; behind nginx, `client_header_timeout` and `client_body_timeout` cut slow senders
  before they reach daphne: deploy/nginx.)
- **No form parsing.** Twisted reads the Content-Type of every POST with
  `email.message.EmailMessage`, whose header registry creates new classes for each header
  it parses (CPython's `HeaderRegistry.__getitem__`): cyclic garbage, kept until a full
  collection, which the soak's tracemalloc snapshots showed as the top growth between
  collections. daphne never reads what Twisted parses (`request.args`); Django and the MCP
  endpoints read the body themselves.
- **One `getsockname` per connection**, not per request (`_same_host_each_request`).
- **One access log.** Besides daphne's own access log, Twisted's HTTP factory formats a
  combined-log line for every request and writes it to Twisted's log, which daphne sends
  nowhere (at its default verbosity) or to Python's logging as a second copy: 3% of a busy
  worker's time (py-spy, `bench/`). daphne's access log is the one kept.

The read deadline is an asyncio timer (the loop Twisted runs on under daphne): Twisted's
own `callLater` costs several times as much per request, and every request sets one.

`install()` puts the subclass in daphne's place; the ASGI module calls it under daphne.
"""

import asyncio
import json
import logging
import sys

from django.conf import settings

log = logging.getLogger(__name__)

TIMED_OUT_BODY = json.dumps(
    {"error": "request_timeout", "error_description": "The request did not arrive in time."}
).encode()
TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(TIMED_OUT_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n\r\n" + TIMED_OUT_BODY
)


def install() -> None:
    """Make daphne build its requests from ``BoundedWebRequest`` (no-op outside daphne; idempotent)."""
    http_protocol = sys.modules.get("daphne.http_protocol")
    if http_protocol is None or getattr(http_protocol.WebRequest, "bounded", False):
        return
    http_protocol.WebRequest = _bounded(http_protocol.WebRequest)  # read by daphne for each connection
    http_protocol.HTTPFactory.log = _no_second_access_log


def _no_second_access_log(factory, request) -> None:
    """Twisted's per-request log line (`HTTPFactory.log`), replaced: daphne logs each request itself."""


def _same_host_each_request(channel) -> None:
    """Ask the socket for the connection's local address once, not for each request on it.

    Twisted's request records it (``Request.__init__``: ``channel.getHost()``), and the
    transport answers with a ``getsockname`` system call every time: 1.3% of a busy worker
    (py-spy, `bench/`). A connection's local address does not change while it is open.
    """
    if channel is None or "getHost" in vars(channel):
        return
    host = channel.getHost()
    channel.getHost = lambda: host


def _bounded(base):
    class BoundedWebRequest(base):
        bounded = True

        def __init__(self, channel, *args, **kwargs):
            _same_host_each_request(channel)
            super().__init__(channel, *args, **kwargs)
            self._parsePOSTFormSubmission = False
            loop = asyncio.get_running_loop()
            self._read_deadline = loop.call_later(settings.MCP_REQUEST_READ_SECONDS, self._read_too_slowly)

        def requestReceived(self, command, path, version):  # noqa: N802 (Twisted's name)
            self._stop_deadline()
            super().requestReceived(command, path, version)

        def connectionLost(self, reason):  # noqa: N802 (Twisted's name)
            self._stop_deadline()
            super().connectionLost(reason)

        def _stop_deadline(self):
            if self._read_deadline is not None:
                self._read_deadline.cancel()
            self._read_deadline = None

        def _read_too_slowly(self):
            self._read_deadline = None
            transport = self.channel.transport if self.channel is not None else None
            if transport is None:
                return
            peer = transport.getPeer()
            log.info(
                "408: a request from %s did not arrive within MCP_REQUEST_READ_SECONDS (%gs)",
                getattr(peer, "host", peer),
                settings.MCP_REQUEST_READ_SECONDS,
            )
            transport.write(TIMED_OUT)
            transport.loseConnection()

    return BoundedWebRequest
