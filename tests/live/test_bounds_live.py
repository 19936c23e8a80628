"""Bounds under abuse, measured on a real daphne process (issue "Bounded under abuse").

The hostile case that found the problem: one session sends 30 ``resources/read`` requests
whose URI is 3.9 MB. Each error used to echo the URI twice (7.6 MB an answer), and the
session's event log kept every answer: the worker grew by 258 MiB, held until the session
ended. Now an error echoes a short prefix and the log is bounded in bytes: the growth of
the server's resident memory stays under 64 MiB.
"""

import anyio
import pytest

from bench.load import rss_kib
from tests.support.interop_clients import obtain_token
from tests.support.wire_client import McpWire

pytestmark = [pytest.mark.live, pytest.mark.anyio]

REQUESTS = 30
URI_BYTES = 3_900_000
GROWTH_BOUND_KIB = 64 * 1024


@pytest.fixture(scope="module")
def server(live_server_template, tmp_path_factory):
    from tests.support.live_server import start_live_server

    started = start_live_server(live_server_template, tmp_path_factory.mktemp("live-bounds"))
    yield started
    started.stop()


async def test_huge_echoed_input_does_not_grow_the_worker(server):
    token = await obtain_token(server)
    async with McpWire(token.access_token) as wire:
        session = await wire.initialize(server.url)
        ok = {"jsonrpc": "2.0", "id": 0, "method": "resources/read", "params": {"uri": "test://small"}}
        await wire.post(server.url, session, ok)  # warm up the path once before measuring
        before = rss_kib([server.process.pid])
        sizes = []
        for n in range(REQUESTS):
            uri = "test://" + "x" * URI_BYTES
            message = {"jsonrpc": "2.0", "id": n + 1, "method": "resources/read", "params": {"uri": uri}}
            response = await wire.post(server.url, session, message)
            sizes.append(len(response.content))
            assert "error" in response.json(), response.text[:300]
        await anyio.sleep(0)
        after = rss_kib([server.process.pid])
    growth = after - before
    print(f"\nRSS {before} KiB -> {after} KiB (+{growth} KiB) after {REQUESTS} requests; answers {max(sizes)} bytes")
    assert max(sizes) < 2000
    assert growth < GROWTH_BOUND_KIB


async def test_a_refused_host_or_oversize_body_is_one_log_line(server):
    """Found by hostile testing: each wrote about 30 lines of traceback to the log."""
    import httpx2

    async with httpx2.AsyncClient(trust_env=False, timeout=30) as http:
        for path, method, headers, body in (
            ("/", "GET", {"host": "evil.example"}, None),
            ("/mcp", "POST", {"host": "evil.example"}, b"{}"),
            ("/token", "POST", {"content-type": "application/x-www-form-urlencoded"}, b"a=" + b"x" * 3_000_000),
            ("/register", "POST", {"content-type": "application/json"}, b'{"a": "' + b"x" * 3_000_000 + b'"}'),
            ("/mcp", "POST", {"content-type": "application/json"}, b'{"a": "' + b"x" * 5_000_000 + b'"}'),
        ):
            before = server.stderr().count("\n")
            response = await http.request(method, server.url + path, headers=headers, content=body)
            assert response.status_code in (400, 401, 413), (path, response.status_code, response.text[:200])
            await anyio.sleep(0)
            written = server.stderr().splitlines()[before:]
            assert len(written) <= 1, (path, written)
            assert "Traceback" not in "\n".join(written)


@pytest.fixture(scope="module")
def impatient_server(live_server_template, tmp_path_factory):
    from tests.support.live_server import start_live_server

    started = start_live_server(
        live_server_template, tmp_path_factory.mktemp("live-impatient"), MCP_REQUEST_READ_SECONDS="1"
    )
    yield started
    started.stop()


TRICKLE_SECONDS = 0.3  # between bytes: the pace of a slow sender (the server allows 1 s for the whole request)


async def _trickle(url: str, head: bytes, body: bytes) -> bytes:
    """Send ``head``, then ``body`` a byte every TRICKLE_SECONDS until the server answers; the answer."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    async with await anyio.connect_tcp(parts.hostname, parts.port) as stream:
        await stream.send(head)
        received = b""
        with anyio.move_on_after(10):  # the bound of the test: the server must cut well before
            for byte in body:
                await stream.send(bytes([byte]))
                with anyio.move_on_after(TRICKLE_SECONDS):  # the pace of the trickle; the answer ends it
                    received += await stream.receive()
                    break
            while True:
                try:
                    received += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
        return received


@pytest.mark.parametrize("path", ["/mcp", "/token"])
async def test_a_request_trickled_a_byte_at_a_time_is_cut_with_408(impatient_server, path):
    """Found by hostile testing: bodies and header blocks trickled at 1 byte/s were all held open."""
    host = impatient_server.url.split("//", 1)[1]
    slow_body = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}' * 20
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n".encode()
    head += f"Content-Length: {len(slow_body)}\r\n\r\n".encode()
    answer = await _trickle(impatient_server.url, head, slow_body)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    headers_only = f"GET / HTTP/1.1\r\nHost: {host}\r\n".encode()
    answer = await _trickle(impatient_server.url, headers_only, b"X-Slow: " + b"y" * 200)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert "Traceback" not in impatient_server.stderr()
