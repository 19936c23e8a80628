"""The one shape of every error the guards answer with.

A short JSON object in the RFC 6749 §5.2 / RFC 6750 style the OAuth endpoints
already use (``oauth_app.errors.oauth_error``)::

    {"error": "<code>", "error_description": "<one sentence for a human>"}

with ``Cache-Control: no-store``. The guards are pure ASGI, so they send the
messages themselves instead of going through a Django response.
"""

import json
from collections.abc import Sequence

ERROR_HEADERS = ((b"content-type", b"application/json"), (b"cache-control", b"no-store"))

Headers = Sequence[tuple[bytes, bytes]]


async def send_error(send, status: int, error: str, description: str, headers: Headers = ()) -> None:
    body = json.dumps({"error": error, "error_description": description}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*ERROR_HEADERS, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_no_content(send, headers: Headers) -> None:
    # 204 carries no Content-Length (RFC 9110 §8.6).
    await send({"type": "http.response.start", "status": 204, "headers": list(headers)})
    await send({"type": "http.response.body", "body": b""})
