"""What the audit trails say over a range of days: the figures of the admin's dashboard.

Tool calls, errors, durations and who called come from the rollups
(``audit_rollup.py``), never from the audit rows themselves, so a range costs the
same whether it holds a thousand calls or a million. Auth events (tokens issued,
refreshed and revoked, lockouts) are counted from ``AuthEvent`` over its
``(kind, created_at)`` index.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Count, Sum
from oauth2_provider.models import get_application_model

from mcp_app.engine.audit_rollup import RELATIVE_ERROR, day_bounds, percentile
from mcp_app.models import CallerRollup, ToolCallRollup
from oauth_app.models import AuthEvent

TOP = 10  # people and clients listed by their number of calls
# The auth events the dashboard puts first; the other kinds follow in their own order.
HEADLINE_AUTH_KINDS = [
    AuthEvent.Kind.TOKEN_ISSUED,
    AuthEvent.Kind.TOKEN_REFRESHED,
    AuthEvent.Kind.TOKEN_REVOKED,
    AuthEvent.Kind.LOCKED_OUT,
]
PERCENTILE_ERROR_PERCENT = round(RELATIVE_ERROR * 100, 1)


@dataclass
class CallFigures:
    """Calls of one tool (or of all), with their outcomes and durations."""

    name: str
    calls: int = 0
    tool_errors: int = 0
    protocol_errors: int = 0
    duration_ms_sum: float = 0.0
    histogram: dict[int, int] = field(default_factory=lambda: defaultdict(int), repr=False)

    @property
    def errors(self) -> int:
        return self.tool_errors + self.protocol_errors

    @property
    def error_rate(self) -> float | None:
        """Errors of either kind over calls, as a fraction; None without calls."""
        return self.errors / self.calls if self.calls else None

    @property
    def mean_ms(self) -> float | None:
        return self.duration_ms_sum / self.calls if self.calls else None

    @property
    def p50_ms(self) -> float | None:
        return percentile(self.histogram, 0.50)

    @property
    def p99_ms(self) -> float | None:
        return percentile(self.histogram, 0.99)


@dataclass(frozen=True)
class DayFigures:
    day: date
    calls: int
    tool_errors: int
    protocol_errors: int

    @property
    def errors(self) -> int:
        return self.tool_errors + self.protocol_errors

    @property
    def ok(self) -> int:
        return self.calls - self.errors


@dataclass(frozen=True)
class Caller:
    """A person or an OAuth client, with their calls in the range."""

    key: str  # the username or the client id
    calls: int
    name: str = ""  # the client's registered name


@dataclass
class Report:
    first: date
    last: date
    days: list[DayFigures]  # every day of the range, those without calls included
    tools: list[CallFigures]  # most called first
    total: CallFigures
    people: int  # distinct usernames that called (anonymous calls are not a person)
    clients: int  # distinct OAuth clients that called
    top_people: list[Caller]
    top_clients: list[Caller]


def tool_call_report(first: date, last: date) -> Report:
    """The tool-call figures of the days ``first`` to ``last``, both included."""
    in_range = {"day__gte": first, "day__lte": last}
    rollups = ToolCallRollup.objects.filter(**in_range).order_by()
    per_day = {
        row["day"]: row
        for row in rollups.values("day").annotate(
            calls=Sum("calls"), tool_errors=Sum("tool_errors"), protocol_errors=Sum("protocol_errors")
        )
    }
    days = []
    day = first
    while day <= last:
        row = per_day.get(day)
        days.append(
            DayFigures(day, row["calls"], row["tool_errors"], row["protocol_errors"])
            if row
            else DayFigures(day, 0, 0, 0)
        )
        day += timedelta(days=1)

    tools: dict[str, CallFigures] = {}
    total = CallFigures("all tools")
    per_bucket = rollups.values("tool", "bucket").annotate(
        calls=Sum("calls"),
        tool_errors=Sum("tool_errors"),
        protocol_errors=Sum("protocol_errors"),
        duration_ms_sum=Sum("duration_ms_sum"),
    )
    for row in per_bucket:
        figures = tools.setdefault(row["tool"], CallFigures(row["tool"]))
        for target in (figures, total):
            target.calls += row["calls"]
            target.tool_errors += row["tool_errors"]
            target.protocol_errors += row["protocol_errors"]
            target.duration_ms_sum += row["duration_ms_sum"]
            target.histogram[row["bucket"]] += row["calls"]

    callers = CallerRollup.objects.filter(**in_range).order_by()
    people = callers.exclude(username="")
    clients = callers.exclude(client_id="")
    top_people = [
        Caller(row["username"], row["total"])
        for row in people.values("username").annotate(total=Sum("calls")).order_by("-total", "username")[:TOP]
    ]
    top_clients = [
        Caller(row["client_id"], row["total"])
        for row in clients.values("client_id").annotate(total=Sum("calls")).order_by("-total", "client_id")[:TOP]
    ]
    return Report(
        first=first,
        last=last,
        days=days,
        tools=sorted(tools.values(), key=lambda figures: (-figures.calls, figures.name)),
        total=total,
        people=people.aggregate(n=Count("username", distinct=True))["n"],
        clients=clients.aggregate(n=Count("client_id", distinct=True))["n"],
        top_people=top_people,
        top_clients=_with_client_names(top_clients),
    )


def _with_client_names(callers: list[Caller]) -> list[Caller]:
    names = dict(
        get_application_model()
        .objects.filter(client_id__in=[caller.key for caller in callers])
        .values_list("client_id", "name")
    )
    return [Caller(caller.key, caller.calls, names.get(caller.key, "")) for caller in callers]


def auth_event_counts(first: date, last: date) -> dict[str, int]:
    """How many auth events of each kind the days ``first`` to ``last`` saw, by kind (0 when none)."""
    start, end = day_bounds(first, last)
    counted = dict(
        AuthEvent.objects.filter(created_at__gte=start, created_at__lt=end)
        .order_by()
        .values("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    kinds = HEADLINE_AUTH_KINDS + [kind for kind in AuthEvent.Kind if kind not in HEADLINE_AUTH_KINDS]
    return {kind.value: counted.get(kind.value, 0) for kind in kinds}
