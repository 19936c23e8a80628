"""The tool-call audit trail as CSV, for a range of days, oldest first.

Rows are read in chunks by keyset (``created_at``, ``id``), each chunk its own
short query on the ``created_at`` index, so an export of a million rows holds
one chunk in memory and no transaction or cursor open while the client reads.
``lines`` serves a sync caller (WSGI, the test client) and ``alines`` an ASGI
one: Django would read a sync iterator to its end before sending a byte under
ASGI, and an async one to its end under WSGI.

A cell that a spreadsheet would take for a formula (starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return) gets a leading ``'``: the text cells
hold what clients sent (tool names, arguments, error messages). The number
cells are the server's own and stay numbers.
"""

import csv
import io
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime

from asgiref.sync import sync_to_async
from django.db.models import Q
from django.utils import timezone

from mcp_app.engine.audit_rollup import day_bounds
from mcp_app.models import ToolCall

CHUNK_ROWS = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = [
    "id",
    "created_at",
    "tool",
    "outcome",
    "error_code",
    "error_message",
    "duration_ms",
    "username",
    "user_id",
    "client_id",
    "session_id",
    "arguments",
]
TEXT_COLUMNS = {"tool", "outcome", "error_message", "username", "client_id", "session_id", "arguments"}


def neutralised(text: str) -> str:
    """``text`` as a cell no spreadsheet evaluates (OWASP's CSV injection advice)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def filename(first: date, last: date) -> str:
    return f"tool-calls-{first.isoformat()}-to-{last.isoformat()}.csv"


def lines(first: date, last: date) -> Iterator[str]:
    """The CSV text, a chunk of rows at a time, header first."""
    start, end = day_bounds(first, last)
    yield _csv([COLUMNS])
    after = None
    while True:
        rows = _chunk(start, end, after)
        if not rows:
            return
        yield _csv(_cells(row) for row in rows)
        after = rows[-1][1], rows[-1][0]


async def alines(first: date, last: date) -> AsyncIterator[str]:
    """``lines`` for an async server: each chunk is read on Django's sync thread."""
    start, end = day_bounds(first, last)
    yield _csv([COLUMNS])
    after = None
    read = sync_to_async(_chunk)
    while True:
        rows = await read(start, end, after)
        if not rows:
            return
        yield _csv(_cells(row) for row in rows)
        after = rows[-1][1], rows[-1][0]


def _chunk(start: datetime, end: datetime, after: tuple[datetime, int] | None) -> list[tuple]:
    """The next rows after ``after`` (the last row's created_at and id) in ``[start, end)``."""
    rows = ToolCall.objects.filter(created_at__lt=end)
    if after is None:
        rows = rows.filter(created_at__gte=start)
    else:
        moment, last_id = after
        # One lower bound on the index (the last row's moment), so each chunk starts where the last ended.
        rows = rows.filter(Q(created_at__gt=moment) | Q(created_at=moment, id__gt=last_id), created_at__gte=moment)
    return list(rows.order_by("created_at", "id").values_list(*COLUMNS)[:CHUNK_ROWS])


def _cells(row: tuple) -> list:
    cells = []
    for column, value in zip(COLUMNS, row, strict=True):
        if value is None:
            cells.append("")
        elif column == "created_at":
            cells.append(timezone.localtime(value).isoformat())
        elif column in TEXT_COLUMNS:
            cells.append(neutralised(value))
        else:
            cells.append(value)
    return cells


def _csv(rows) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)  # RFC 4180 line ends
    return buffer.getvalue()
