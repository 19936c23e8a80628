"""The audit trail summed up: ``ToolCallRollup`` (calls, errors and a duration histogram per
day and tool) and ``CallerRollup`` (calls per day, person and OAuth client).

The dashboard must answer over a million audit rows in well under a second, and
percentiles cannot be had from a million rows without reading them. So every batch
of audit rows is also added, in the same transaction (``add``, called by
``audit._insert``), to these small tables, and the dashboard reads only them.

Durations go into log-scale buckets, ``BUCKETS_PER_OCTAVE`` to each doubling from
``SMALLEST_MS``: bucket 0 holds what is under 1 µs, bucket ``b`` ≥ 1 holds
``[SMALLEST_MS·2^((b-1)/8), SMALLEST_MS·2^(b/8))``. A percentile is the bucket that holds
the call of its rank, reported as the bucket's geometric middle, so it is within
``RELATIVE_ERROR`` (4.4%) of the true value, or under 1 µs of it for bucket 0.

The upsert (``INSERT … ON CONFLICT … DO UPDATE SET n = n + excluded.n``) is the same
statement on SQLite and PostgreSQL and adds atomically, so any number of worker
processes may write at once. Keys are written in one order everywhere, so two
transactions never wait on each other's rows in a cycle (PostgreSQL would abort one).

Rows written other than by the audit (fixtures, imports) and rows deleted (retention,
the admin) are brought back in line by ``rebuild``: ``manage.py rebuild_audit_rollups``,
``manage.py housekeeping`` after its deletions, and the admin's delete.
"""

import functools
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Max, Min
from django.utils import timezone

from mcp_app.engine import dbapi
from mcp_app.models import CallerRollup, ToolCall, ToolCallRollup

BUCKETS_PER_OCTAVE = 8
SMALLEST_MS = 0.001  # 1 µs: durations are kept to the microsecond (audit._record)
LAST_BUCKET = 40 * BUCKETS_PER_OCTAVE  # 2^40 µs, about 12.7 days: longer is counted there
# Half a bucket's width, as a ratio: how far the middle of a bucket may be from anything in it.
RELATIVE_ERROR = 2 ** (1 / (2 * BUCKETS_PER_OCTAVE)) - 1

OUTCOME_TOOL_ERROR = ToolCall.Outcome.TOOL_ERROR.value
OUTCOME_PROTOCOL_ERROR = ToolCall.Outcome.PROTOCOL_ERROR.value
REBUILD_CHUNK_ROWS = 5000
UPSERT_ROWS = 500  # rows in one upsert statement at most (3,500 parameters; SQLite takes 32,766)


# -- buckets and percentiles ---------------------------------------------------------------------
def bucket_of(duration_ms: float) -> int:
    if not duration_ms >= SMALLEST_MS:  # also NaN
        return 0
    if math.isinf(duration_ms):
        return LAST_BUCKET
    return min(LAST_BUCKET, math.floor(math.log2(duration_ms / SMALLEST_MS) * BUCKETS_PER_OCTAVE) + 1)


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """``[low, high)`` in milliseconds."""
    if bucket <= 0:
        return 0.0, SMALLEST_MS
    return SMALLEST_MS * 2 ** ((bucket - 1) / BUCKETS_PER_OCTAVE), SMALLEST_MS * 2 ** (bucket / BUCKETS_PER_OCTAVE)


def bucket_estimate(bucket: int) -> float:
    """The value a bucket stands for: its geometric middle (0 for the sub-microsecond bucket)."""
    if bucket <= 0:
        return 0.0
    return SMALLEST_MS * 2 ** ((bucket - 0.5) / BUCKETS_PER_OCTAVE)


def percentile(histogram: Mapping[int, int], fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` of 1) of the calls counted in ``histogram``
    (bucket → calls), as its bucket's estimate; None when there are no calls."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket_estimate(bucket)
    return bucket_estimate(max(histogram))  # not reached: the ranks add up to the total


# -- days ----------------------------------------------------------------------------------------
def day_of(moment: datetime) -> date:
    """The day a call counts on: its date in the server's time zone (TIME_ZONE)."""
    return timezone.localtime(moment, timezone.get_default_timezone()).date()


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """``[start, end)``: the moments of the days ``first`` to ``last``, both included."""
    zone = timezone.get_default_timezone()
    start = timezone.make_aware(datetime.combine(first, time.min), zone)
    end = timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min), zone)
    return start, end


# -- adding audit rows ---------------------------------------------------------------------------
class _Sums:
    """What a batch of rows adds: per (day, tool, bucket) and per (day, username, client_id)."""

    def __init__(self):
        self.tools: dict[tuple[date, str, int], list] = defaultdict(lambda: [0, 0, 0, 0.0])
        self.callers: dict[tuple[date, str, str], int] = defaultdict(int)

    def add(self, day: date, tool: str, outcome: str, duration_ms: float, username: str, client_id: str) -> None:
        sums = self.tools[(day, tool, bucket_of(duration_ms))]
        sums[0] += 1
        sums[1] += outcome == OUTCOME_TOOL_ERROR
        sums[2] += outcome == OUTCOME_PROTOCOL_ERROR
        sums[3] += duration_ms
        self.callers[(day, username, client_id)] += 1

    def write(self, connection, cursor) -> None:
        """Upsert the sums through ``cursor``, the driver's own on ``connection`` (``dbapi``)."""
        if not self.tools:
            return
        tool_upsert, caller_upsert = _upserts(connection.alias)
        prepare_day = functools.partial(ToolCallRollup._meta.get_field("day").get_db_prep_save, connection=connection)
        # Sorted: every writer takes the rows' locks in the same order (no deadlock between workers).
        tools = [(prepare_day(day), tool, bucket, *sums) for (day, tool, bucket), sums in sorted(self.tools.items())]
        callers = [(prepare_day(day), who, client, n) for (day, who, client), n in sorted(self.callers.items())]
        for upsert, rows in ((tool_upsert, tools), (caller_upsert, callers)):
            for first in range(0, len(rows), UPSERT_ROWS):
                cursor.execute(*upsert.statement(rows[first : first + UPSERT_ROWS]))


def add(rows: Iterable[Mapping[str, Any]], cursor, using: str = DEFAULT_DB_ALIAS) -> None:
    """Add audit rows (``ToolCall`` values by attribute name, as ``audit._record`` makes them)
    to the rollups, through ``cursor``: the driver's own, in the transaction that inserts the
    rows (``dbapi.write``), so both or neither count."""
    sums = _Sums()
    for row in rows:
        sums.add(
            day_of(row["created_at"]),
            row["tool"],
            row["outcome"],
            row["duration_ms"],
            row["username"],
            row["client_id"],
        )
    sums.write(connections[using], cursor)


class _Upsert:
    """``INSERT … VALUES (…), (…) ON CONFLICT (key) DO UPDATE SET n = r.n + excluded.n``: one
    statement for all the rows of a write (the keys are distinct, summed beforehand), where
    ``executemany`` would run one statement per row (on PostgreSQL, 0.7 ms more for 32 rows)."""

    def __init__(self, alias: str, model, key: list[str], sums: list[str]):
        connection = connections[alias]
        quote = connection.ops.quote_name

        def column(name: str) -> str:
            return quote(model._meta.get_field(name).column)

        self.head = f"INSERT INTO {quote(model._meta.db_table)} AS r ({', '.join(map(column, key + sums))}) VALUES "
        self.row = "(" + ", ".join([dbapi.placeholder(connection)] * len(key + sums)) + ")"
        sets = ", ".join(f"{column(name)} = r.{column(name)} + excluded.{column(name)}" for name in sums)
        self.tail = f" ON CONFLICT ({', '.join(map(column, key))}) DO UPDATE SET {sets}"

    def statement(self, rows: list[tuple]) -> tuple[str, list]:
        return self.head + ", ".join([self.row] * len(rows)) + self.tail, [value for row in rows for value in row]


@functools.cache
def _upserts(alias: str) -> tuple[_Upsert, _Upsert]:
    """The two upserts, in the database's own quoting and its driver's placeholders (``dbapi``)."""
    return (
        _Upsert(
            alias,
            ToolCallRollup,
            ["day", "tool", "bucket"],
            ["calls", "tool_errors", "protocol_errors", "duration_ms_sum"],
        ),
        _Upsert(alias, CallerRollup, ["day", "username", "client_id"], ["calls"]),
    )


# -- rebuilding from the audit rows ----------------------------------------------------------------
def audit_days(using: str = DEFAULT_DB_ALIAS) -> tuple[date, date] | None:
    """The first and last day that have audit rows, or None."""
    bounds = ToolCall.objects.using(using).aggregate(first=Min("created_at"), last=Max("created_at"))
    if bounds["first"] is None:
        return None
    return day_of(bounds["first"]), day_of(bounds["last"])


def rebuild(first: date | None = None, last: date | None = None, using: str = DEFAULT_DB_ALIAS) -> int:
    """Recount the days ``first`` to ``last`` (default: every day with audit rows or rollups)
    from the audit rows; return how many days had calls.

    Each day is one transaction that holds off audit writes to the rollups while it
    counts (on PostgreSQL a table lock; on SQLite every write transaction already waits
    for the others), so a call written meanwhile is counted once: by this count if it
    was committed before, by its own upsert if after.
    """
    if first is None or last is None:
        spans = [audit_days(using), _rollup_days(using)]
        spans = [span for span in spans if span is not None]
        if not spans:
            return 0
        first = first or min(span[0] for span in spans)
        last = last or max(span[1] for span in spans)
    if first > last:
        return 0
    with_calls = 0
    audit = audit_days(using)
    # Days outside the audit rows' span only lose what the rollups still say of them.
    if audit is None or audit[1] < first or audit[0] > last:
        _forget(using, first, last)
        return 0
    if first < audit[0]:
        _forget(using, first, audit[0] - timedelta(days=1))
    if last > audit[1]:
        _forget(using, audit[1] + timedelta(days=1), last)
    day = max(first, audit[0])
    while day <= min(last, audit[1]):
        with_calls += _rebuild_day(day, using)
        day += timedelta(days=1)
    return with_calls


def forget_before(moment: datetime, using: str = DEFAULT_DB_ALIAS) -> None:
    """After the audit rows older than ``moment`` were deleted (retention): drop the days
    before it and recount its own day, which lost only part of its rows."""
    day = day_of(moment)
    with transaction.atomic(using=using):
        ToolCallRollup.objects.using(using).filter(day__lt=day).delete()
        CallerRollup.objects.using(using).filter(day__lt=day).delete()
    rebuild(day, day, using)


def _rollup_days(using: str) -> tuple[date, date] | None:
    bounds = ToolCallRollup.objects.using(using).aggregate(first=Min("day"), last=Max("day"))
    return None if bounds["first"] is None else (bounds["first"], bounds["last"])


def _forget(using: str, first: date, last: date) -> None:
    with transaction.atomic(using=using):
        ToolCallRollup.objects.using(using).filter(day__range=(first, last)).delete()
        CallerRollup.objects.using(using).filter(day__range=(first, last)).delete()


def _rebuild_day(day: date, using: str) -> int:
    start, end = day_bounds(day, day)
    connection = connections[using]
    with transaction.atomic(using=using):
        if connection.vendor == "postgresql":
            # SHARE ROW EXCLUSIVE waits for the audit writers holding the rollups (ROW EXCLUSIVE)
            # and holds off new ones until this day is counted; readers go on.
            tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in (ToolCallRollup, CallerRollup))
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")
        ToolCallRollup.objects.using(using).filter(day=day).delete()
        CallerRollup.objects.using(using).filter(day=day).delete()
        sums = _Sums()
        for tool, outcome, duration_ms, username, client_id in _audit_rows(using, start, end):
            sums.add(day, tool, outcome, duration_ms, username, client_id)
        with dbapi.cursor(connection) as cursor:
            sums.write(connection, cursor)
    return 1 if sums.tools else 0


def _audit_rows(using: str, start: datetime, end: datetime) -> Iterator[tuple]:
    return (
        ToolCall.objects.using(using)
        .filter(created_at__gte=start, created_at__lt=end)
        .order_by()
        .values_list("tool", "outcome", "duration_ms", "username", "client_id")
        .iterator(chunk_size=REBUILD_CHUNK_ROWS)
    )
