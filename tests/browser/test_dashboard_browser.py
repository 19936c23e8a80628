"""The admin's tool-call dashboard in headless Chromium, against a live daphne server with
production settings: its charts are drawn by its own script under the site's
Content-Security-Policy (no violation, no script error, no console error), a day's bar leads
to that day's calls, the CSV export downloads, bad dates are a form error, and every figure
is still there without JavaScript.

The calls are written by the audit's own write (``audit._insert``) into the server's
database, over the last 30 days. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import unquote

import pytest
from playwright.sync_api import ConsoleMessage, expect

from tests.browser import test_browser_pages as pages
from tests.support.live_server import django_shell

pytestmark = pytest.mark.live

# The browser fixtures of the pages' tests: Debian's Chromium, a fresh context per tab, and a tab
# that fails its test on anything the Content-Security-Policy blocked or any script error.
browser = pages.browser
open_tab = pages.open_tab
tab = pages.tab

DAYS = 30
TOOLS = ["add", "calculate", "divide", "whoami", "countdown"]

# Writes, for each of the last 30 days, calls of each tool (more on weekdays, errors on
# `divide`, one long `countdown`), and auth events; prints what it wrote.
_FILL = """
import json, random
from datetime import timedelta
from django.utils import timezone
from mcp_app.engine import audit
from oauth_app.models import AuthEvent
from tests.support.audit_rows import audit_row

rng = random.Random(30)
now = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
rows = []
for back in range(30):
    day = now - timedelta(days=back)
    for index in range(20 + 15 * (back % 7)):
        tool = ["add", "calculate", "divide", "whoami"][index % 4]
        failed = tool == "divide" and index % 3 == 0
        rows.append(audit_row(
            created_at=day + timedelta(seconds=index),
            username=f"person{index % 6}",
            client_id=f"client-{index % 3}",
            session_id="s",
            tool=tool,
            outcome="tool_error" if failed else "ok",
            error_message="Error executing tool divide: division by zero" if failed else "",
            duration_ms=round(rng.lognormvariate(-1, 0.6), 3),
        ))
    rows.append({**rows[-1], "tool": "countdown", "outcome": "ok", "error_message": "", "duration_ms": 61000.0})
for first in range(0, len(rows), 500):
    assert not any(audit._insert(rows[first:first + 500]))
AuthEvent.objects.bulk_create(
    AuthEvent(kind=kind, created_at=now - timedelta(days=back))
    for back in range(30)
    for kind in ["token_issued", "token_refreshed", "token_refreshed", "token_revoked"] + ["locked_out"] * (back % 2)
)
print(json.dumps({"calls": len(rows), "errors": sum(row["outcome"] != "ok" for row in rows)}))
"""


@pytest.fixture(scope="module")
def filled(live_server) -> dict:
    """The live server's database with a month of tool calls and auth events; what was written."""
    result = django_shell(_FILL, live_server.env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def staff(live_server) -> tuple[str, str]:
    return pages._create_staff_user(live_server)


def sign_in(page, server, staff) -> None:
    page.goto(server.url + "/admin/login/")
    pages.fill_login(page, *staff)
    pages.assert_at(page, "/admin/")
    # The admin index's icons are CSS backgrounds, which its load event does not wait for: going on
    # before they arrive aborts them (net::ERR_ABORTED), which the tab would count as broken.
    page.wait_for_load_state("networkidle")


def console_errors(page) -> list[str]:
    """Every error the page's console shows from now on, but the browser's own /favicon.ico
    request (the site has none; no page asks for it)."""
    errors: list[str] = []

    def seen(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", seen)
    return errors


def test_the_dashboard_draws_its_charts_under_the_policy(live_server, filled, staff, tab):
    page = tab.page
    errors = console_errors(page)
    sign_in(page, live_server, staff)
    page.get_by_role("link", name="Dashboard", exact=True).click()
    pages.assert_at(page, "/admin/mcp_app/dashboard/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Tool-call dashboard")

    # The cards say what was written; the charts drew one bar a day and one row a tool.
    expect(page.locator("#card-calls")).to_have_text(f"{filled['calls']:,}")
    expect(page.locator("#card-people")).to_have_text("6")
    expect(page.locator("#card-clients")).to_have_text("3")
    expect(page.locator("#card-token_refreshed")).to_have_text("60")
    expect(page.locator("#card-locked_out")).to_have_text("15")
    expect(page.locator("#chart-days svg a.chart-bar-link")).to_have_count(DAYS)
    expect(page.locator("#chart-days svg a.chart-bar-link rect.chart-error")).to_have_count(DAYS)  # divide fails daily
    expect(page.locator("#chart-tools svg g[data-tool]")).to_have_count(len(TOOLS))
    expect(page.locator("#chart-durations svg circle.chart-p99")).to_have_count(len(TOOLS) + 1)  # and the legend's
    countdown = page.locator("#table-tools tbody tr", has_text="countdown")
    expect(countdown.locator("td").nth(4)).to_have_text("61,000")  # the mean is exact
    tab.screenshot("admin-dashboard")
    assert errors == []

    # A day's bar leads to that day's calls in the audit trail.
    last_day = page.locator("#chart-days svg a.chart-bar-link").last
    day = last_day.get_attribute("data-day")
    last_day.click()
    pages.assert_at(page, "/admin/mcp_app/toolcall/")
    assert f"created_at__gte={day}" in unquote(page.url)
    expect(page.locator("#result_list tbody tr")).to_have_count(20 + 1)  # today's calls, and its countdown
    tab.screenshot("admin-audit-list-one-day")
    assert errors == []


def test_the_export_downloads_the_range_as_csv(live_server, filled, staff, tab):
    page = tab.page
    sign_in(page, live_server, staff)
    page.goto(live_server.url + "/admin/mcp_app/dashboard/")
    with page.expect_download() as download:
        page.locator("#dashboard-export").click()
    assert download.value.suggested_filename.startswith("tool-calls-")
    assert download.value.suggested_filename.endswith(".csv")
    with open(download.value.path(), encoding="utf-8") as exported:
        rows = list(csv.DictReader(io.StringIO(exported.read())))
    assert len(rows) == filled["calls"]
    assert sum(row["outcome"] == "tool_error" for row in rows) == filled["errors"]


def test_bad_dates_are_a_form_error(live_server, filled, staff, tab):
    page = tab.page
    sign_in(page, live_server, staff)
    page.goto(live_server.url + "/admin/mcp_app/dashboard/")
    page.locator("#id_start").fill("2026-03-05")
    page.locator("#id_end").fill("2026-03-01")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    expect(page.locator(".errornote")).to_have_text("The start date is after the end date.")
    expect(page.locator("#chart-days")).to_have_count(0)
    tab.screenshot("admin-dashboard-form-error")


def test_every_figure_is_there_without_javascript(live_server, filled, staff, open_tab):
    tab = open_tab(java_script_enabled=False)
    page = tab.page
    sign_in(page, live_server, staff)
    page.goto(live_server.url + "/admin/mcp_app/dashboard/")
    expect(page.locator("#card-calls")).to_have_text(f"{filled['calls']:,}")
    expect(page.locator("#chart-days svg")).to_have_count(0)  # nothing drew it
    expect(page.locator("#table-tools tbody tr")).to_have_count(len(TOOLS))
    expect(page.locator("#table-days tbody tr")).to_have_count(DAYS)
    expect(page.locator("#table-auth")).to_contain_text("Token refreshed")
    tab.screenshot("admin-dashboard-no-javascript")
    assert tab.broken == []
