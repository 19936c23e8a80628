"""A minimal HTTP/1.1 keep-alive client over asyncio streams, and an SSE event parser.

Just enough HTTP for the load generator: requests with a body and a
content-length, responses framed by content-length or chunked encoding, and
streams read chunk by chunk. Much cheaper per request than a general client,
so that the generator is not what a benchmark measures.
"""

import asyncio

CRLF = b"\r\n"
HEAD_END = b"\r\n\r\n"
STREAM_LIMIT = 1 << 20  # longest header block or chunk-size line we accept


class HTTPError(Exception):
    pass


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body


class Connection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader = reader
        self.writer = writer
        self.host = host.encode()

    @classmethod
    async def open(cls, host: str, port: int) -> "Connection":
        reader, writer = await asyncio.open_connection(host, port, limit=STREAM_LIMIT)
        return cls(reader, writer, f"{host}:{port}")

    def send(self, method: bytes, path: bytes, headers: bytes = b"", body: bytes = b"") -> None:
        """Write one request; `headers` is a block of `name: value\\r\\n` lines."""
        self.writer.write(
            b"%s %s HTTP/1.1\r\nhost: %s\r\n%scontent-length: %d\r\n\r\n%s"
            % (method, path, self.host, headers, len(body), body)
        )

    async def read_head(self) -> tuple[int, dict[bytes, bytes]]:
        head = await self.reader.readuntil(HEAD_END)
        lines = head[:-4].split(CRLF)
        status = int(lines[0][9:12])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    async def read_chunk(self) -> bytes | None:
        """The next chunk of a chunked body, or None after the last one."""
        size_line = await self.reader.readuntil(CRLF)
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            await self.reader.readuntil(CRLF)  # no trailers from these servers
            return None
        data = await self.reader.readexactly(size + 2)
        return data[:-2]

    async def read_body(self, status: int, headers: dict[bytes, bytes]) -> bytes:
        length = headers.get(b"content-length")
        if length is not None:
            return await self.reader.readexactly(int(length)) if length != b"0" else b""
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            parts = []
            while (chunk := await self.read_chunk()) is not None:
                parts.append(chunk)
            return b"".join(parts)
        if status in (204, 304) or 100 <= status < 200:
            return b""
        raise HTTPError(f"response {status} without framing")

    async def request(self, method: bytes, path: bytes, headers: bytes = b"", body: bytes = b"") -> Response:
        self.send(method, path, headers, body)
        status, response_headers = await self.read_head()
        return Response(status, response_headers, await self.read_body(status, response_headers))

    def close(self) -> None:
        self.writer.close()


class SSEParser:
    """Splits a byte stream into events: (event name, data) pairs."""

    def __init__(self):
        self.buffer = b""

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self.buffer += data
        if b"\r" in self.buffer:  # servers frame with \r\n (sse-starlette) or \n (ours)
            self.buffer = self.buffer.replace(b"\r\n", b"\n")
        if b"\n\n" not in self.buffer:
            return []
        *blocks, self.buffer = self.buffer.split(b"\n\n")
        events = []
        for block in blocks:
            name, data_lines = b"message", []
            for line in block.split(b"\n"):
                if line.startswith(b"data:"):
                    data_lines.append(line[6:] if line[5:6] == b" " else line[5:])
                elif line.startswith(b"event:"):
                    name = line[6:].strip()
            if data_lines:
                events.append((name, b"\n".join(data_lines)))
        return events
