"""The tool-call dashboard in the admin (mcp_app/admin.py, DashboardAdmin): its figures against
known audit rows (exact counts, error rates, percentiles within the histogram's stated error),
its date form, who may see it, the CSV export of the audit trail, and the rollups it reads
(mcp_app/engine/audit_rollup.py) kept right by the real audit middleware, by the rebuild
command, by housekeeping and by the admin's delete."""

import csv
import io
import json
import math
import random
import warnings
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_application_model

from mcp_app.engine import audit_export, audit_rollup
from mcp_app.engine.audit_rollup import RELATIVE_ERROR, bucket_bounds, bucket_of, percentile
from mcp_app.models import CallerRollup, ToolCall, ToolCallRollup
from oauth_app.models import AuthEvent
from tests.site.test_security_headers import INLINE
from tests.support.asgi_client import StreamableHTTPClient, http
from tests.support.live_server import PROJECT_DIR

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/mcp_app/dashboard/"
EXPORT = "/admin/mcp_app/dashboard/export/"
FIRST, LAST = date(2026, 3, 1), date(2026, 3, 3)
RANGE = {"start": "2026-03-01", "end": "2026-03-03"}


def at(day: date, hour: int = 12, minute: int = 0, second: int = 0, microsecond: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, microsecond, tzinfo=UTC)


def call(moment: datetime, tool: str = "add", outcome: str = "ok", duration_ms: float = 1.0, **fields) -> ToolCall:
    return ToolCall(
        created_at=moment,
        tool=tool,
        outcome=outcome,
        duration_ms=duration_ms,
        username=fields.pop("username", "alice"),
        client_id=fields.pop("client_id", "client-1"),
        **fields,
    )


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def rollup_snapshot() -> tuple[list, list]:
    tools = list(
        ToolCallRollup.objects.order_by("day", "tool", "bucket").values_list(
            "day", "tool", "bucket", "calls", "tool_errors", "protocol_errors", "duration_ms_sum"
        )
    )
    callers = list(CallerRollup.objects.order_by("day", "username", "client_id").values_list())
    # Sums of floats depend on their order; the ids differ between a rebuild and the audit's writes.
    tools = [(*row[:6], round(row[6], 6)) for row in tools]
    callers = [row[1:] for row in callers]
    return tools, callers


def rebuild() -> str:
    out = StringIO()
    call_command("rebuild_audit_rollups", stdout=out)
    return out.getvalue()


@pytest.fixture
def viewer(django_user_model):
    """Staff who may view tool calls and auth events, and nothing else."""
    person = django_user_model.objects.create_user("auditor", password="x", is_staff=True)
    person.user_permissions.add(*Permission.objects.filter(codename__in=["view_toolcall", "view_authevent"]))
    return person


@pytest.fixture
def viewer_client(viewer) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


# -- the buckets ------------------------------------------------------------------------------------
def test_each_duration_falls_in_the_bucket_whose_bounds_hold_it():
    rng = random.Random(7)
    durations = [0.0, 0.0004, 0.001, 0.0011, 1.0, 2.0, 1000.0, 3_600_000.0]
    durations += [math.exp(rng.uniform(math.log(0.001), math.log(1e7))) for _ in range(2000)]
    for duration in durations:
        low, high = bucket_bounds(bucket_of(duration))
        assert low <= duration * (1 + 1e-12) and duration < high * (1 + 1e-12), (duration, low, high)


def test_percentiles_from_the_histogram_are_within_the_stated_error():
    assert 0.044 < RELATIVE_ERROR < 0.0444  # 2^(1/16) - 1: half a bucket of an eighth of an octave
    rng = random.Random(11)
    durations = [round(rng.lognormvariate(math.log(3), 1.2), 3) + 0.001 for _ in range(20_000)]
    histogram = {}
    for duration in durations:
        histogram[bucket_of(duration)] = histogram.get(bucket_of(duration), 0) + 1
    for fraction in (0.01, 0.5, 0.9, 0.99, 0.999, 1.0):
        exact = nearest_rank(durations, fraction)
        estimate = percentile(histogram, fraction)
        assert abs(estimate - exact) <= RELATIVE_ERROR * exact, (fraction, exact, estimate)
    assert percentile({}, 0.5) is None


# -- the figures, against known rows ------------------------------------------------------------------
@pytest.fixture
def known_calls(db):
    """Three days of calls, a call on each side of the range, and auth events in and out of it."""
    Application = get_application_model()
    Application.objects.create(
        name="Claude Desktop",
        client_id="client-1",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="http://127.0.0.1/callback",
    )
    rows = []
    # Day 1: `add` 1 to 100 ms, by alice with client-1; two tool errors of `divide`.
    rows += [call(at(FIRST, 10, i // 60, i % 60), duration_ms=float(i)) for i in range(1, 101)]
    rows += [call(at(FIRST, 11), tool="divide", outcome="tool_error", duration_ms=0.5) for _ in range(2)]
    # Day 2: nothing. Day 3: `add` by bob with client-2, one protocol error by nobody.
    rows += [call(at(LAST, 9), duration_ms=2.0, username="bob", client_id="client-2") for _ in range(10)]
    rows.append(
        call(at(LAST, 23, 59, 59, 999_999), tool="nope", outcome="protocol_error", error_code=-32602, username="")
    )
    # Just outside the range on each side.
    rows.append(call(at(FIRST - timedelta(days=1), 23, 59, 59, 999_999), username="carol", client_id="client-3"))
    rows.append(call(at(LAST + timedelta(days=1), 0, 0, 0), username="carol", client_id="client-3"))
    ToolCall.objects.bulk_create(rows)
    assert "4 day(s) with tool calls" in rebuild()  # the first and last, and one on each side; not day 2

    events = [
        *[(AuthEvent.Kind.TOKEN_ISSUED, at(FIRST))] * 3,
        *[(AuthEvent.Kind.TOKEN_REFRESHED, at(LAST))] * 5,
        (AuthEvent.Kind.TOKEN_REVOKED, at(FIRST)),
        *[(AuthEvent.Kind.LOCKED_OUT, at(LAST, 23, 59, 59))] * 2,
        (AuthEvent.Kind.TOKEN_ISSUED, at(LAST + timedelta(days=1), 0)),  # outside
        (AuthEvent.Kind.LOCKED_OUT, at(FIRST - timedelta(days=1), 23, 59)),  # outside
    ]
    AuthEvent.objects.bulk_create(AuthEvent(kind=kind, created_at=moment) for kind, moment in events)
    return rows


def test_the_dashboard_counts_known_calls_exactly(viewer_client, known_calls):
    response = viewer_client.get(DASHBOARD, RANGE)
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.first, report.last) == (FIRST, LAST)

    assert [(d.day, d.calls, d.tool_errors, d.protocol_errors) for d in report.days] == [
        (FIRST, 102, 2, 0),
        (FIRST + timedelta(days=1), 0, 0, 0),
        (LAST, 11, 0, 1),
    ]
    tools = {t.name: t for t in report.tools}
    assert [t.name for t in report.tools] == ["add", "divide", "nope"]  # most called first
    assert (tools["add"].calls, tools["add"].errors) == (110, 0)
    assert (tools["divide"].calls, tools["divide"].tool_errors, tools["divide"].error_rate) == (2, 2, 1.0)
    assert (tools["nope"].calls, tools["nope"].protocol_errors) == (1, 1)
    assert report.total.calls == 113
    assert report.total.error_rate == pytest.approx(3 / 113)
    assert tools["add"].mean_ms == pytest.approx((sum(range(1, 101)) + 10 * 2.0) / 110)

    add_durations = [float(i) for i in range(1, 101)] + [2.0] * 10
    for fraction, estimate in ((0.5, tools["add"].p50_ms), (0.99, tools["add"].p99_ms)):
        exact = nearest_rank(add_durations, fraction)
        assert abs(estimate - exact) <= RELATIVE_ERROR * exact, (fraction, exact, estimate)
    assert tools["divide"].p50_ms == pytest.approx(0.5, rel=RELATIVE_ERROR)

    # People are usernames (the anonymous protocol error is nobody); clients are client ids.
    assert (report.people, report.clients) == (2, 2)
    assert [(c.key, c.calls) for c in report.top_people] == [("alice", 102), ("bob", 10)]
    assert [(c.key, c.name, c.calls) for c in report.top_clients] == [
        ("client-1", "Claude Desktop", 103),
        ("client-2", "", 10),
    ]
    assert response.context["auth"][:4] == [
        ("token_issued", "token issued", 3),
        ("token_refreshed", "token refreshed", 5),
        ("token_revoked", "token revoked", 1),
        ("locked_out", "locked out", 2),
    ]

    html = response.content.decode()
    assert '<dd id="card-calls">113</dd>' in html
    assert '<dd id="card-error-rate">2.65%</dd>' in html
    assert '<dd id="card-people">2</dd>' in html and '<dd id="card-clients">2</dd>' in html
    assert '<dd id="card-token_refreshed">5</dd>' in html and '<dd id="card-locked_out">2</dd>' in html


def test_the_charts_data_block_holds_every_day_and_tool(viewer_client, known_calls):
    response = viewer_client.get(DASHBOARD, RANGE)
    html = response.content.decode()
    start = html.index('<script id="dashboard-data" type="application/json">') + len(
        '<script id="dashboard-data" type="application/json">'
    )
    data = json.loads(html[start : html.index("</script>", start)])
    assert [(d["day"], d["ok"], d["errors"]) for d in data["days"]] == [
        ("2026-03-01", 100, 2),
        ("2026-03-02", 0, 0),
        ("2026-03-03", 10, 1),
    ]
    assert [(t["name"], t["calls"], t["errors"]) for t in data["tools"]] == [
        ("add", 110, 0),
        ("divide", 2, 2),
        ("nope", 1, 1),
    ]
    # Each day links to its own calls in the audit trail.
    day_list = viewer_client.get(data["days"][0]["link"])
    assert day_list.status_code == 200
    assert day_list.context["cl"].result_count == 102


def test_the_days_table_and_the_tool_links_lead_to_the_audit_trail(viewer_client, known_calls):
    response = viewer_client.get(DASHBOARD, RANGE)
    tool_rows = {row["name"]: row for row in response.context["tools"]}
    listed = viewer_client.get(tool_rows["divide"]["link"])
    assert listed.status_code == 200 and listed.context["cl"].result_count == 2
    assert tool_rows["divide"]["error_rate"] == "100.00%"
    assert response.context["total"]["calls"] == 113


def test_the_default_range_is_the_last_30_days(viewer_client):
    response = viewer_client.get(DASHBOARD)
    assert response.status_code == 200
    today = timezone.localdate()
    assert (response.context["first"], response.context["last"]) == (today - timedelta(days=29), today)
    assert len(response.context["report"].days) == 30
    html = response.content.decode()
    assert "No tool calls in this range." in html
    # The form shows the range it defaulted to.
    assert f'name="start" value="{today - timedelta(days=29)}"' in html and f'name="end" value="{today}"' in html


def test_only_a_start_runs_to_today_and_only_an_end_shows_its_30_days(viewer_client):
    today = timezone.localdate()
    start = today - timedelta(days=3)
    response = viewer_client.get(DASHBOARD, {"start": start.isoformat()})
    assert (response.context["first"], response.context["last"]) == (start, today)
    response = viewer_client.get(DASHBOARD, {"end": "2026-03-31"})
    assert (response.context["first"], response.context["last"]) == (date(2026, 3, 2), date(2026, 3, 31))


# -- the date form: bad input is a form error, never a 500 -------------------------------------------
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "2026-02-30"}, "Enter a valid date."),
        ({"end": "yesterday"}, "Enter a valid date."),
        ({"start": "2026-03-05", "end": "2026-03-01"}, "The start date is after the end date."),
        ({"start": "2024-01-01", "end": "2026-01-01"}, "A range covers at most 366 days; this one covers 732."),
        ({"start": "0001-01-01", "end": "0001-01-02"}, "Ensure this value is greater than or equal to 1970-01-01."),
        ({"end": "9999-12-31"}, "Ensure this value is less than or equal to 9999-12-30."),
        ({"start": "2026-01-01\x00"}, "Enter a valid date."),
    ],
)
def test_bad_dates_are_a_clear_form_error(viewer_client, query, message):
    response = viewer_client.get(DASHBOARD, query)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "report" not in response.context
    assert b"dashboard-data" not in response.content
    export = viewer_client.get(EXPORT, query)
    assert export.status_code == 400
    assert message in export.content.decode()


def test_a_whole_year_is_allowed(viewer_client):
    assert viewer_client.get(DASHBOARD, {"start": "2024-01-01", "end": "2024-12-31"}).status_code == 200


# -- who may see it ------------------------------------------------------------------------------------
def test_anonymous_visitors_are_sent_to_the_admin_login(client):
    response = client.get(DASHBOARD)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/admin/mcp_app/dashboard/")
    assert client.get(EXPORT).status_code == 302


def test_people_who_are_not_staff_are_refused(client, user):
    user.user_permissions.add(Permission.objects.get(codename="view_toolcall"))
    client.force_login(user)
    assert client.get(DASHBOARD).status_code == 403
    assert client.get(EXPORT).status_code == 403


def test_staff_without_the_tool_call_permission_are_refused(client, django_user_model):
    staff = django_user_model.objects.create_user("helpdesk", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_authevent"))
    client.force_login(staff)
    assert client.get(DASHBOARD).status_code == 403
    assert client.get(EXPORT, RANGE).status_code == 403
    assert b"/admin/mcp_app/dashboard/" not in client.get("/admin/").content


def test_staff_who_may_view_tool_calls_find_it_in_the_admin(viewer_client, admin_client):
    index = viewer_client.get("/admin/").content.decode()
    assert 'href="/admin/mcp_app/dashboard/"' in index
    assert 'id="toolcall-dashboard-link"' in viewer_client.get("/admin/mcp_app/toolcall/").content.decode()
    assert admin_client.get(DASHBOARD).status_code == 200


def test_the_auth_figures_need_the_auth_event_permission(client, django_user_model, known_calls):
    staff = django_user_model.objects.create_user("tools-only", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_toolcall"))
    client.force_login(staff)
    response = client.get(DASHBOARD, RANGE)
    assert response.status_code == 200
    assert response.context["auth"] is None
    html = response.content.decode()
    assert 'id="auth-hidden"' in html and "card-token_issued" not in html


def test_the_dashboard_only_reads(viewer_client):
    assert viewer_client.post(DASHBOARD).status_code == 405
    assert viewer_client.post(EXPORT).status_code == 405


def test_the_dashboard_template_has_nothing_inline():
    for name in ("dashboard.html", "toolcall/change_list.html"):
        template = PROJECT_DIR / "mcp_app" / "templates" / "admin" / "mcp_app" / name
        assert not INLINE.findall(template.read_text()), template


def test_the_dashboard_page_is_served_under_the_sites_policy(viewer_client):
    response = viewer_client.get(DASHBOARD)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe" not in policy
    html = response.content.decode()
    assert '<script src="/static/mcp_app/dashboard.js" defer></script>' in html
    # The only other script element is the data block, which no browser runs.
    assert html.count("<script") == html.count("<script src=") + 1


# -- the CSV export ------------------------------------------------------------------------------------
def read_csv(response) -> list[dict]:
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_export_holds_the_range_oldest_first(viewer_client, known_calls):
    response = viewer_client.get(EXPORT, RANGE)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="tool-calls-2026-03-01-to-2026-03-03.csv"'
    rows = read_csv(response)
    assert len(rows) == 113
    assert list(rows[0]) == audit_export.COLUMNS
    assert rows[0]["created_at"] == "2026-03-01T10:00:01+00:00"
    assert rows[-1]["created_at"] == "2026-03-03T23:59:59.999999+00:00"
    assert [row["created_at"] for row in rows] == sorted(row["created_at"] for row in rows)
    assert "carol" not in {row["username"] for row in rows}  # the calls just outside
    last = rows[-1]
    assert (last["tool"], last["outcome"], last["error_code"], last["username"]) == (
        "nope",
        "protocol_error",
        "-32602",
        "",
    )


def test_the_export_neutralises_formulas_in_text_cells(viewer_client, user):
    ToolCall.objects.create(
        created_at=at(FIRST),
        user=user,
        username='=HYPERLINK("http://evil")',
        client_id="+client",
        session_id="\tsession",
        tool="-2+3",
        arguments="@SUM(A1:A2)",
        outcome="tool_error",
        error_message="\r=1+1",
        duration_ms=1.5,
    )
    [row] = read_csv(viewer_client.get(EXPORT, RANGE))
    assert row["username"] == '\'=HYPERLINK("http://evil")'
    assert row["client_id"] == "'+client"
    assert row["session_id"] == "'\tsession"
    assert row["tool"] == "'-2+3"
    assert row["arguments"] == "'@SUM(A1:A2)"
    assert row["error_message"] == "'\r=1+1"
    assert (row["duration_ms"], row["user_id"], row["error_code"]) == ("1.5", str(user.pk), "")


def test_the_export_reads_chunk_after_chunk_with_ties_on_the_moment(viewer_client):
    # More rows than a chunk, many sharing one moment: the keyset (created_at, id) neither skips nor repeats.
    moments = [at(FIRST, 8), at(FIRST, 9), at(LAST, 8)]
    rows = [call(moments[i % 3], username=f"user{i}") for i in range(audit_export.CHUNK_ROWS * 2 + 7)]
    ToolCall.objects.bulk_create(rows)
    exported = read_csv(viewer_client.get(EXPORT, RANGE))
    assert len(exported) == len(rows)
    assert sorted(int(row["id"]) for row in exported) == sorted(ToolCall.objects.values_list("id", flat=True))
    assert [(row["created_at"], int(row["id"])) for row in exported] == sorted(
        (row["created_at"], int(row["id"])) for row in exported
    )


# -- the ToolCall admin over the rollups -------------------------------------------------------------
def test_the_tool_and_client_filters_list_what_the_rollups_hold(viewer_client, known_calls):
    page = viewer_client.get("/admin/mcp_app/toolcall/")
    filters = {spec.title: spec for spec in page.context["cl"].filter_specs}
    assert [value for value, _ in filters["tool"].lookup_choices] == ["add", "divide", "nope"]
    assert page.context["cl"].show_full_result_count is False
    # Only the last 30 days' clients are offered; the known calls are older.
    assert filters.get("OAuth client (most active in the last 30 days)") is None
    listed = viewer_client.get("/admin/mcp_app/toolcall/", {"client_id": "client-2"})
    assert listed.context["cl"].result_count == 10


def test_the_client_filter_names_recent_clients(viewer_client, viewer):
    Application = get_application_model()
    Application.objects.create(
        name="Inspector",
        client_id="recent-client-id-1234",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="http://127.0.0.1/callback",
    )
    ToolCall.objects.bulk_create([call(timezone.now(), client_id="recent-client-id-1234") for _ in range(3)])
    rebuild()
    page = viewer_client.get("/admin/mcp_app/toolcall/")
    filters = {spec.title: spec for spec in page.context["cl"].filter_specs}
    assert filters["OAuth client (most active in the last 30 days)"].lookup_choices == [
        ("recent-client-id-1234", "Inspector (recent-cli…)")
    ]


# -- the rollups: rebuilt, trimmed, and kept by deletes -------------------------------------------------
def test_the_rebuild_command_takes_a_range_and_refuses_a_reversed_one(known_calls):
    before = rollup_snapshot()
    ToolCallRollup.objects.filter(day=FIRST).update(calls=0)
    out = StringIO()
    call_command("rebuild_audit_rollups", "--from", "2026-03-01", "--to", "2026-03-01", stdout=out)
    assert "1 day(s) with tool calls" in out.getvalue()
    assert rollup_snapshot() == before
    with pytest.raises(Exception, match="is after"):
        call_command("rebuild_audit_rollups", "--from", "2026-03-02", "--to", "2026-03-01")
    with pytest.raises(Exception, match="not a day"):
        call_command("rebuild_audit_rollups", "--from", "March")


def test_rows_deleted_outside_the_audit_leave_the_rollups_at_the_next_rebuild(known_calls):
    ToolCall.objects.filter(created_at__date=LAST).delete()
    rebuild()
    assert not ToolCallRollup.objects.filter(day=LAST).exists()
    assert not CallerRollup.objects.filter(day=LAST).exists()
    ToolCall.objects.all().delete()
    assert "0 day(s)" in rebuild()
    assert not ToolCallRollup.objects.exists() and not CallerRollup.objects.exists()


def test_the_admins_delete_recounts_the_days_it_touched(admin_client, known_calls):
    doomed = list(ToolCall.objects.filter(tool="divide").values_list("pk", flat=True))
    response = admin_client.post(
        "/admin/mcp_app/toolcall/", {"action": "delete_selected", "_selected_action": doomed, "post": "yes"}
    )
    assert response.status_code == 302
    expected = rollup_snapshot()
    rebuild()
    assert rollup_snapshot() == expected
    assert not ToolCallRollup.objects.filter(tool="divide").exists()

    one = ToolCall.objects.filter(created_at__date=LAST, tool="nope").get()
    admin_client.post(f"/admin/mcp_app/toolcall/{one.pk}/delete/", {"post": "yes"})
    assert not ToolCallRollup.objects.filter(tool="nope").exists()


def test_housekeeping_trims_the_rollups_with_the_audit_rows(settings):
    settings.MCP_AUDIT_RETENTION_DAYS = 10
    now = timezone.now()
    cutoff = now - timedelta(days=10)
    ToolCall.objects.bulk_create(
        [
            call(now - timedelta(days=40)),
            call(cutoff - timedelta(seconds=1)),  # removed: its day is cut in two
            call(cutoff + timedelta(seconds=1)),  # kept, on the same day
            call(now - timedelta(days=1)),
        ]
    )
    rebuild()
    call_command("housekeeping", stdout=StringIO())
    assert ToolCall.objects.count() == 2
    kept = rollup_snapshot()
    assert sum(row[3] for row in kept[0]) == 2
    assert min(row[0] for row in kept[0]) == audit_rollup.day_of(cutoff + timedelta(seconds=1))
    rebuild()
    assert rollup_snapshot() == kept


# -- the rollups, written by the real audit middleware ------------------------------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.anyio
@pytest.mark.usefixtures("worker")
async def test_the_audit_keeps_the_rollups_as_tool_calls_are_answered(app, token, user):
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    try:
        for a in range(5):
            reply = await client.request("tools/call", {"name": "add", "arguments": {"a": a, "b": 1}})
            assert reply["result"]["isError"] is False
        reply = await client.request("tools/call", {"name": "divide", "arguments": {"a": 1, "b": 0}})
        assert reply["result"]["isError"] is True
        reply = await client.request("tools/call", {"name": "no-such-tool", "arguments": {}})
        assert reply["error"]["code"] == -32602
    finally:
        await client.close()

    calls = [row async for row in ToolCall.objects.values_list("tool", "outcome", "client_id")]
    assert len(calls) == 7
    [client_id] = {client for _, _, client in calls}
    today = audit_rollup.day_of(timezone.now())
    sums = {}
    async for row in ToolCallRollup.objects.filter(day=today):
        calls_, tool_errors, protocol_errors = sums.get(row.tool, (0, 0, 0))
        sums[row.tool] = (calls_ + row.calls, tool_errors + row.tool_errors, protocol_errors + row.protocol_errors)
    assert sums == {"add": (5, 0, 0), "divide": (1, 1, 0), "no-such-tool": (1, 0, 1)}
    callers = [row async for row in CallerRollup.objects.values_list("day", "username", "client_id", "calls")]
    assert callers == [(today, user.username, client_id, 7)]

    # What the audit added up is what a recount from its rows finds.
    from asgiref.sync import sync_to_async

    written = await sync_to_async(rollup_snapshot)()
    await sync_to_async(rebuild)()
    assert await sync_to_async(rollup_snapshot)() == written


@pytest.mark.django_db(transaction=True)
@pytest.mark.anyio
async def test_the_export_streams_under_asgi(app, admin_user):
    """Through the real ASGI application (as daphne serves it), the export is an async stream
    read a chunk at a time, not a list Django builds before sending the first byte."""
    from asgiref.sync import sync_to_async

    def prepare() -> str:
        ToolCall.objects.bulk_create(
            [call(at(FIRST, 8, 0, i % 60), username=f"u{i}") for i in range(audit_export.CHUNK_ROWS + 5)]
        )
        browser = Client()
        browser.force_login(admin_user)
        return browser.cookies["sessionid"].value

    session = await sync_to_async(prepare)()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = await http(
            app, "GET", f"{EXPORT}?start=2026-03-01&end=2026-03-01", headers={"cookie": f"sessionid={session}"}
        )
    # What Django says when it must read a sync iterator to its end before sending anything.
    assert not [w for w in caught if "consume synchronous iterators" in str(w.message)]
    assert result.status == 200, result.body[:500]
    assert result.headers["content-disposition"] == 'attachment; filename="tool-calls-2026-03-01-to-2026-03-01.csv"'
    rows = list(csv.DictReader(io.StringIO(result.body.decode())))
    assert len(rows) == audit_export.CHUNK_ROWS + 5


# -- the migration counts the rows already there -------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_the_migration_counts_the_audit_rows_already_there():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("mcp_app", "0003_tasks")])
    OldToolCall = executor.loader.project_state([("mcp_app", "0003_tasks")]).apps.get_model("mcp_app", "ToolCall")
    OldToolCall.objects.bulk_create(
        OldToolCall(created_at=at(FIRST, 9), tool=tool, outcome=outcome, duration_ms=2.0, username="alice")
        for tool, outcome in [("add", "ok"), ("add", "ok"), ("divide", "tool_error")]
    )
    executor = MigrationExecutor(connection)  # the graph as it is now, to migrate forward
    executor.migrate(executor.loader.graph.leaf_nodes("mcp_app"))

    rows = ToolCallRollup.objects.filter(day=FIRST).values_list("tool", "calls", "tool_errors").order_by("tool")
    assert list(rows) == [("add", 2, 0), ("divide", 1, 1)]
    assert list(CallerRollup.objects.values_list("day", "username", "client_id", "calls")) == [(FIRST, "alice", "", 3)]
