"""Responses under daphne are sent in the turn they are written (`mcpsite/daphne_writes.py`); one
too big for the socket's buffer is finished the usual way, whole, and its connection stays usable."""

import socket
from pathlib import Path
from urllib.parse import urlsplit

import django
import pytest

pytestmark = pytest.mark.live

# Served by WhiteNoise from Django's admin; 280 KiB, far more than a loopback socket with a
# small receive buffer takes in one send, so the first attempt leaves most of it to the watch.
BIG_FILE = Path(django.__file__).parent / "contrib/admin/static/admin/js/vendor/jquery/jquery.js"
BIG_PATH = "/static/admin/js/vendor/jquery/jquery.js"
TIMEOUT = 20.0


def _read_until(connection: socket.socket, pending: bytes, marker: bytes) -> tuple[bytes, bytes]:
    while marker not in pending:
        chunk = connection.recv(4096)
        assert chunk, "the connection closed in the middle of a response"
        pending += chunk
    before, _, after = pending.partition(marker)
    return before, after


def _read_exactly(connection: socket.socket, pending: bytes, length: int) -> tuple[bytes, bytes]:
    while len(pending) < length:
        # Small reads keep the window small, so the server's writes keep finding the socket full.
        chunk = connection.recv(2048)
        assert chunk, f"the connection closed after {len(pending)} of {length} bytes"
        pending += chunk
    return pending[:length], pending[length:]


def _read_response(connection: socket.socket, pending: bytes) -> tuple[int, bytes, bytes]:
    """One HTTP/1.1 response, with a Content-Length or chunked: (status, body, bytes after it)."""
    head, pending = _read_until(connection, pending, b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    if "content-length" in headers:
        body, pending = _read_exactly(connection, pending, int(headers["content-length"]))
        return int(status_line.split()[1]), body, pending
    assert headers.get("transfer-encoding") == "chunked", headers
    body = b""
    while True:
        size_line, pending = _read_until(connection, pending, b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        chunk, pending = _read_exactly(connection, pending, size + 2)
        if size == 0:
            return int(status_line.split()[1]), body, pending
        body += chunk[:-2]


def test_a_response_larger_than_the_socket_buffer_arrives_whole_and_the_connection_is_reused(live_server):
    url = urlsplit(live_server.url)
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    connection.settimeout(TIMEOUT)
    try:
        connection.connect((url.hostname, url.port))
        host = f"{url.hostname}:{url.port}".encode()
        connection.sendall(b"GET " + BIG_PATH.encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        status, body, rest = _read_response(connection, b"")
        assert status == 200
        assert body == BIG_FILE.read_bytes()
        assert rest == b""

        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        status, body, rest = _read_response(connection, rest)
        assert status == 200 and body
    finally:
        connection.close()
    assert "Traceback" not in live_server.stderr()
