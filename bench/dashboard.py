"""`make bench-dashboard`: the admin's tool-call dashboard, the audit changelist and the CSV
export over a million audit rows, on SQLite and on PostgreSQL.

For each database it starts a child process on a database of its own (an SQLite file, or
a throw-away PostgreSQL server from tests/support/services.py), which migrates, fills
`--rows` ToolCall rows over `--days` days ending today (ten tools with their own
durations, errors, 300 people, 400 clients) and the auth events of such a server (token
issues, refreshes, revocations, logins, lockouts), builds the rollups with the rebuild
command's code, and then times each page through Django's test client as a signed-in
superuser: `--runs` times after one warm-up, median (min–max). The changelist is timed
twice: first as it was before the rollups (date hierarchy, SELECT DISTINCT filters, full
counts, no composite indexes), then as it is. It also times the audit's write of 1 and of
32 rows with and without the rollups' upserts.

Prints the tables and writes them to bench/results/dashboard-<time>.md and .json, and to
docs/performance.md between its `bench-dashboard` markers (`--no-docs` leaves the page alone).

    python bench/dashboard.py [--rows 1000000] [--days 90] [--runs 5] [--databases sqlite,postgresql] [--no-docs]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))  # run as a script from anywhere: `bench` and `tests` import

RESULTS = BENCH_DIR / "results"
DOCS_PAGE = REPO / "docs" / "performance.md"
DOCS_BEGIN = "<!-- bench-dashboard:begin -->"
DOCS_END = "<!-- bench-dashboard:end -->"
DATABASES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
TARGET_SECONDS = 1.0
WRITE_ROUNDS = 500

# (name, share of calls, median ms, spread (sigma of the log), tool-error rate)
TOOLS = [
    ("add", 0.30, 0.25, 0.5, 0.0),
    ("calculate", 0.18, 0.6, 0.7, 0.02),
    ("multiply", 0.12, 0.25, 0.5, 0.0),
    ("divide", 0.10, 0.25, 0.5, 0.08),
    ("whoami", 0.08, 0.4, 0.4, 0.0),
    ("notes_search", 0.07, 4.0, 0.9, 0.01),
    ("notes_create", 0.05, 6.0, 0.8, 0.02),
    ("sqrt", 0.05, 0.25, 0.5, 0.05),
    ("power", 0.04, 0.3, 0.6, 0.03),
    ("countdown", 0.01, 60_000.0, 0.3, 0.01),
]
PROTOCOL_ERROR_RATE = 0.01  # unknown tools and bad arguments
PEOPLE = 300
CLIENTS = 400
NAMED_CLIENTS = 60  # clients with an Application row (the others' rows were deleted)
AUTH_EVENTS_PER_DAY = {
    "token_refreshed": 1200,
    "token_issued": 150,
    "login": 90,
    "consent_granted": 80,
    "login_failed": 40,
    "token_revoked": 25,
    "client_registered": 20,
    "logout": 10,
    "consent_denied": 4,
    "locked_out": 2,
}


# ------------------------------------------------------------------------------------------------
# The child: one database, filled and measured (run as `python bench/dashboard.py --child ...`)
# ------------------------------------------------------------------------------------------------
def child(args) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpsite.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    result = {"database": connection.vendor, "rows": args.rows, "days": args.days, "runs": args.runs}
    fill = _fill(args.rows, args.days)
    result["fill"] = fill
    result["before"] = _measure_before(args.runs)
    result["index_seconds"] = _recreate_indexes()
    result["analyze"] = _analyze()
    result["rebuild_seconds"] = _timed_rebuild()
    result["pages"] = _measure_pages(args.runs, fill)
    result["exports"] = _measure_exports(args.runs, fill)
    result["writes"] = _measure_writes()
    result["rollup_rows"] = _rollup_rows()
    result["seconds"] = round(time.perf_counter() - started, 1)
    Path(args.output).write_text(json.dumps(result, indent=1))


def _random_token(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=length))


def _fill(rows: int, days: int) -> dict:
    """`rows` ToolCall rows over the last `days` days, in time order as the audit writes them,
    people, clients and auth events; returns what the measurements need to know of them."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from oauth2_provider.models import get_application_model

    from mcp_app.engine.audit import _columns
    from mcp_app.models import ToolCall
    from oauth_app.models import AuthEvent

    rng = random.Random(20261202)
    began = time.perf_counter()
    User = get_user_model()
    User.objects.bulk_create(User(username=f"person{i:03d}", password="!") for i in range(PEOPLE))
    people = list(User.objects.filter(username__startswith="person").values_list("pk", "username"))
    clients = [_random_token(rng, 40) for _ in range(CLIENTS)]
    Application = get_application_model()
    Application.objects.bulk_create(
        Application(
            name=f"Client {i}",
            client_id=client_id,
            client_type=Application.CLIENT_PUBLIC,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris="http://127.0.0.1/callback",
        )
        for i, client_id in enumerate(clients[:NAMED_CLIENTS])
    )
    # A few people make most calls, as on a real server: weights falling off like 1/rank.
    person_weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(PEOPLE)))
    client_weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(CLIENTS)))
    names = [tool[0] for tool in TOOLS]
    tool_weights = list(itertools.accumulate(tool[1] for tool in TOOLS))
    by_name = {tool[0]: tool for tool in TOOLS}

    columns, insert_sql = _columns()
    order = [name for name, _field in columns]
    prepare_time = next(field for name, field in columns if name == "created_at")
    now = datetime.now(UTC).replace(microsecond=0)
    first_moment = now - timedelta(days=days)
    step = (now - first_moment) / rows

    def generated():
        session, session_left = "", 0
        for index in range(rows):
            if session_left <= 0:
                session, session_left = _random_token(rng, 43), rng.randint(5, 200)
                user_id, username = rng.choices(people, cum_weights=person_weights)[0]
                client_id = rng.choices(clients, cum_weights=client_weights)[0]
            session_left -= 1
            name = rng.choices(names, cum_weights=tool_weights)[0]
            _, _, median_ms, sigma, error_rate = by_name[name]
            roll = rng.random()
            error_code, error_message, outcome = None, "", "ok"
            if roll < PROTOCOL_ERROR_RATE:
                outcome, error_code = "protocol_error", -32602
                if rng.random() < 0.5:
                    name, error_message = "read_file", "Unknown tool: read_file"
                else:
                    error_message = f"Invalid arguments for tool {name}: 'a' is a required property"
            elif roll < PROTOCOL_ERROR_RATE + error_rate:
                outcome, error_message = "tool_error", f"Error executing tool {name}: division by zero"
            row = {
                "created_at": first_moment + step * index,
                "user_id": user_id,
                "username": username,
                "client_id": client_id,
                "session_id": session,
                "tool": name,
                "arguments": f'{{"a": {rng.randint(0, 999)}, "b": {rng.randint(0, 999)}}}',
                "outcome": outcome,
                "error_code": error_code,
                "error_message": error_message,
                "duration_ms": round(median_ms * rng.lognormvariate(0, sigma), 3),
            }
            yield row

    batch = 20_000
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        quote = connection.ops.quote_name
        copy_sql = "COPY {} ({}) FROM STDIN".format(
            quote(ToolCall._meta.db_table),
            ", ".join(quote(ToolCall._meta.get_field(name).column) for name in order),
        )
        with connection.connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for row in generated():
                copy.write_row([row[name] for name in order])
    else:
        values = []
        for row in generated():
            row["created_at"] = prepare_time.get_db_prep_save(row["created_at"], connection)
            values.append(tuple(row[name] for name in order))
            if len(values) >= batch:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.executemany(insert_sql, values)
                values = []
        if values:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(insert_sql, values)
    tool_calls_seconds = time.perf_counter() - began

    events = []
    for day in range(days):
        for kind, per_day in AUTH_EVENTS_PER_DAY.items():
            for _ in range(per_day):
                moment = first_moment + timedelta(days=day, seconds=rng.randint(0, 86_399))
                user_id, username = rng.choices(people, cum_weights=person_weights)[0]
                events.append(
                    AuthEvent(
                        created_at=moment,
                        kind=kind,
                        user_id=user_id,
                        username=username,
                        client_id=rng.choices(clients, cum_weights=client_weights)[0],
                        address="127.0.0.1",
                        detail="bench",
                    )
                )
    events.sort(key=lambda event: event.created_at)
    AuthEvent.objects.bulk_create(events, batch_size=5000)
    return {
        "tool_calls": ToolCall.objects.count(),
        "auth_events": AuthEvent.objects.count(),
        "seconds": round(time.perf_counter() - began, 1),
        "tool_call_seconds": round(tool_calls_seconds, 1),
        "busiest_client": clients[0],  # the heaviest weight
        "a_person": people[5][1],
        "first_day": first_moment.date().isoformat(),
        "last_day": now.date().isoformat(),
    }


# Indexes this change added (mcp_app/migrations/0004): dropped for the "before" measurements.
NEW_INDEXES = ["mcp_toolcall_tool_created", "mcp_toolcall_client_created", "mcp_toolcall_outcome_created"]


def _drop_new_indexes() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for name in NEW_INDEXES:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")


def _recreate_indexes() -> float:
    from django.db import connection

    from mcp_app.models import ToolCall

    began = time.perf_counter()
    with connection.schema_editor() as editor:
        for index in ToolCall._meta.indexes:
            editor.add_index(ToolCall, index)
    return round(time.perf_counter() - began, 1)


def _analyze() -> str:
    """PostgreSQL: what autovacuum does after a bulk load. SQLite: nothing (Django never runs
    ANALYZE, so a deployment's SQLite plans without statistics; so does this benchmark)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return "none (as Django leaves SQLite)"
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return "VACUUM ANALYZE"


def _timed_rebuild() -> float:
    from io import StringIO

    from django.core.management import call_command

    began = time.perf_counter()
    call_command("rebuild_audit_rollups", stdout=StringIO())
    return round(time.perf_counter() - began, 1)


def _rollup_rows() -> dict:
    from mcp_app.models import CallerRollup, ToolCallRollup

    return {"tool_call_rollup": ToolCallRollup.objects.count(), "caller_rollup": CallerRollup.objects.count()}


def _client():
    from django.contrib.auth import get_user_model
    from django.test import Client

    User = get_user_model()
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "", secrets.token_urlsafe(16)
    )
    client = Client()
    client.force_login(admin)
    return client


def _timed(runs: int, fetch) -> dict:
    """`fetch()` once to warm up, then `runs` times: seconds, median (min–max)."""
    fetch()
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        fetch()
        seconds.append(time.perf_counter() - began)
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds), "runs": runs}


def _get(client, url: str, status: int = 200):
    def fetch():
        response = client.get(url)
        assert response.status_code == status, (url, response.status_code)
        return response

    return fetch


def _measure_before(runs: int) -> list[dict]:
    """The audit changelist as it was: date hierarchy, SELECT DISTINCT filters on tool and
    client, full counts, no composite indexes (its own AdminSite, so the real one is untouched)."""
    from django.conf import settings
    from django.contrib import admin
    from django.urls import clear_url_caches, include, path

    from mcp_app.admin import DashboardAdmin, ToolCallAdmin
    from mcp_app.models import Dashboard, ToolCall

    class BeforeAdmin(ToolCallAdmin):
        list_filter = ("outcome", "tool", "client_id", "created_at")
        date_hierarchy = "created_at"
        show_full_result_count = True

    site = admin.AdminSite(name="before")
    site.register(ToolCall, BeforeAdmin)
    site.register(Dashboard, DashboardAdmin)  # the changelist links to it
    urls = type(sys)("bench_before_urls")
    urls.urlpatterns = [path("before/", site.urls), path("", include(settings.ROOT_URLCONF))]
    sys.modules["bench_before_urls"] = urls
    root = settings.ROOT_URLCONF
    settings.ROOT_URLCONF = "bench_before_urls"
    clear_url_caches()
    _drop_new_indexes()
    try:
        client = _client()
        base = "/before/mcp_app/toolcall/"
        return [
            {"what": "audit list, first page", **_timed(runs, _get(client, base))},
            {"what": "audit list, one tool (`?tool=divide`)", **_timed(runs, _get(client, base + "?tool=divide"))},
        ]
    finally:
        settings.ROOT_URLCONF = root
        clear_url_caches()


def _measure_pages(runs: int, fill: dict) -> list[dict]:
    from urllib.parse import urlencode

    from django.utils import timezone

    from mcp_app.engine.audit_rollup import day_bounds

    client = _client()
    today = timezone.localdate()
    dashboard = "/admin/mcp_app/dashboard/"
    changelist = "/admin/mcp_app/toolcall/"
    start, end = day_bounds(today - timedelta(days=7), today - timedelta(days=7))
    one_day = urlencode({"created_at__gte": start.isoformat(), "created_at__lt": end.isoformat()})
    pages = [
        ("dashboard, last 30 days (the default)", dashboard),
        ("dashboard, last 90 days", f"{dashboard}?start={(today - timedelta(days=89)).isoformat()}"),
        (
            "dashboard, a whole year (the longest range)",
            f"{dashboard}?start={(today - timedelta(days=365)).isoformat()}",
        ),
        ("audit list, first page", changelist),
        ("audit list, page 50", f"{changelist}?p=50"),
        ("audit list, one tool (`?tool=divide`)", f"{changelist}?tool=divide"),
        ("audit list, one client (the busiest)", f"{changelist}?{urlencode({'client_id': fill['busiest_client']})}"),
        ("audit list, tool errors", f"{changelist}?outcome=tool_error"),
        ("audit list, one day (a dashboard day link)", f"{changelist}?{one_day}"),
        ("audit list, search for a username", f"{changelist}?{urlencode({'q': fill['a_person']})}"),
    ]
    return [{"what": what, "url": url, **_timed(runs, _get(client, url))} for what, url in pages]


def _measure_exports(runs: int, fill: dict) -> list[dict]:
    from django.utils import timezone

    client = _client()
    today = timezone.localdate()
    export = "/admin/mcp_app/dashboard/export/"
    out = []
    for what, days, repeats in (("CSV export, one day", 1, runs), ("CSV export, 30 days", 30, max(1, runs // 2))):
        first = today - timedelta(days=days)
        url = f"{export}?start={first.isoformat()}&end={(first + timedelta(days=days - 1)).isoformat()}"
        first_bytes, totals, sizes, lines = [], [], [], []
        for attempt in range(repeats + 1):
            began = time.perf_counter()
            response = client.get(url)
            assert response.status_code == 200
            chunks = iter(response.streaming_content)
            size = len(next(chunks))
            first_byte = time.perf_counter() - began
            newlines = 0
            for chunk in chunks:
                size += len(chunk)
                newlines += chunk.count(b"\r\n")
            total = time.perf_counter() - began
            if attempt:  # the first is the warm-up
                first_bytes.append(first_byte)
                totals.append(total)
                sizes.append(size)
                lines.append(newlines)
        out.append(
            {
                "what": what,
                "first_byte": statistics.median(first_bytes),
                "total": statistics.median(totals),
                "rows": lines[0],
                "mib": sizes[0] / 2**20,
                "runs": repeats,
            }
        )
    return out


def _measure_writes() -> list[dict]:
    """The audit's write (mcp_app/engine/audit.py `_insert`, run synchronously as its database
    thread runs it) of 1 and of 32 rows, against the same INSERT alone: the rollups' cost."""
    from django.db import connection
    from django.utils import timezone

    from mcp_app.engine import audit, dbapi

    write = audit._insert  # what the audit's writer thread runs
    columns, sql = audit._columns()
    rng = random.Random(5)

    def rows(n):
        return [
            {
                "created_at": timezone.now(),
                "user_id": None,
                "username": f"person{rng.randint(0, 9):03d}",
                "client_id": "bench-client",
                "session_id": "s",
                "tool": rng.choice(["add", "calculate", "divide"]),
                "arguments": '{"a": 1, "b": 2}',
                "outcome": "ok",
                "error_code": None,
                "error_message": "",
                "duration_ms": round(rng.lognormvariate(-1, 0.5), 3),
            }
            for _ in range(n)
        ]

    def bare(batch):
        values = [
            tuple(
                row[name] if field is None else field.get_db_prep_save(row[name], connection) for name, field in columns
            )
            for row in batch
        ]
        # The write's own path (dbapi.write), without the rollups' statements.
        dbapi.write(connection, lambda cursor: cursor.executemany(sql, values))

    variants = (("insert alone", bare), ("with the rollups", write))
    out = []
    for size in (1, 32):
        for _label, function in variants:
            for _ in range(20):
                function(rows(size))  # warm-up
        seconds = {label: [] for label, _function in variants}
        for _ in range(WRITE_ROUNDS):  # alternated, so that both see the same disk and the same neighbours
            for label, function in variants:
                batch = rows(size)
                began = time.perf_counter()
                problems = function(batch)
                seconds[label].append(time.perf_counter() - began)
                assert not any(problems or []), problems
        out.append({"rows": size, **{label: statistics.median(values) for label, values in seconds.items()}})
    return out


# ------------------------------------------------------------------------------------------------
# The parent: one child per database, then the report
# ------------------------------------------------------------------------------------------------
def run_child(database: str, url: str, args, directory: Path) -> dict:
    from tests.support.live_server import environment_without_configuration, random_secret_key

    output = directory / f"{database}.json"
    env = environment_without_configuration() | {
        "DJANGO_SETTINGS_MODULE": "mcpsite.settings",
        "DJANGO_DEBUG": "0",  # as deployed; DEBUG would also keep every query in memory
        "DJANGO_SECRET_KEY": random_secret_key(),
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": url,
        "MCP_AUDIT_RETENTION_DAYS": "0",
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--rows",
        str(args.rows),
        "--days",
        str(args.days),
        "--runs",
        str(args.runs),
        "--output",
        str(output),
    ]
    print(f"{DATABASES[database]}: filling {args.rows:,} rows and measuring…", flush=True)
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{database} child failed ({result.returncode}):\n{result.stderr[-5000:]}")
    return json.loads(output.read_text())


def measure(args) -> dict:
    from tests.support import services

    directory = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    results = {
        "meta": {
            "stamp": datetime.now(UTC).strftime("%Y%m%d-%H%M%S"),
            "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cpus": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "python": platform.python_version(),
            "rows": args.rows,
            "days": args.days,
            "runs": args.runs,
            "load_before": os.getloadavg()[0],
        },
        "databases": {},
    }
    try:
        for database in args.databases:
            if database == "sqlite":
                url = f"sqlite:///{directory / 'bench.sqlite3'}"
                results["databases"][database] = run_child(database, url, args, directory)
            else:
                base = services.service_base_directory()
                postgres = services.PostgresServer(base / "postgres")
                try:
                    postgres.start()
                    url = postgres.create_database("bench")
                    results["databases"][database] = run_child(database, url, args, directory)
                    results["databases"][database]["server"] = _postgres_version(postgres)
                finally:
                    postgres.stop()
                    shutil.rmtree(base, ignore_errors=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    # Other work on the machine shows here (and in the spreads): the load average over a minute.
    results["meta"]["load_after"] = os.getloadavg()[0]
    return results


def _postgres_version(postgres) -> str:
    with postgres.connect() as connection:
        return connection.execute("SHOW server_version").fetchone()[0]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# ------------------------------------------------------------------------------------------------
# The report
# ------------------------------------------------------------------------------------------------
def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}" if seconds >= 0.01 else f"{seconds * 1000:.1f}"


def _spread(cell: dict) -> str:
    return f"{_ms(cell['median'])} ({_ms(cell['min'])}–{_ms(cell['max'])})"


def markdown(results: dict) -> str:
    meta = results["meta"]
    dbs = [db for db in DATABASES if db in results["databases"]]
    data = results["databases"]
    names = " | ".join(DATABASES[db] for db in dbs)
    aligned = "|".join("---:" for _ in dbs)
    lines = [
        f"Run of {meta['started']} on {meta['cpus']} × {meta['cpu_model']}, Python {meta['python']}"
        + "".join(f", PostgreSQL {data[db]['server']}" for db in dbs if data[db].get("server"))
        + f"; SQLite {_sqlite_version()}. {meta['rows']:,} tool calls over {meta['days']} days and "
        + f"{data[dbs[0]]['fill']['auth_events']:,} auth events"
        + f"; each page fetched once to warm up, then {meta['runs']} times through Django's test client "
        "as a signed-in superuser (the whole view: queries and template). Milliseconds, median (min–max). "
        + (
            f"Load average {meta['load_before']:.1f} before the run and {meta['load_after']:.1f} after. "
            if "load_after" in meta
            else ""
        )
        + "Written by `make bench-dashboard` (`bench/dashboard.py`); "
        f"results in `bench/results/dashboard-{meta['stamp']}.json`.",
        "",
        f"| page, ms | {names} |",
        f"|---|{aligned}|",
    ]
    for index, page in enumerate(data[dbs[0]]["pages"]):
        cells = " | ".join(_spread(data[db]["pages"][index]) for db in dbs)
        lines.append(f"| {page['what']} | {cells} |")
    lines += [
        "",
        f"| as the audit list was before (date hierarchy, SELECT DISTINCT filters, full counts, "
        f"no new indexes), ms | {names} |",
        f"|---|{aligned}|",
    ]
    for index, page in enumerate(data[dbs[0]]["before"]):
        cells = " | ".join(_spread(data[db]["before"][index]) for db in dbs)
        lines.append(f"| {page['what']} | {cells} |")
    lines += ["", f"| CSV export | {names} |", f"|---|{aligned}|"]
    for index, export in enumerate(data[dbs[0]]["exports"]):
        cells = " | ".join(
            f"first bytes {_ms(cell['first_byte'])} ms, all {cell['total']:.1f} s"
            for cell in (data[db]["exports"][index] for db in dbs)
        )
        lines.append(f"| {export['what']} ({export['rows']:,} rows, {export['mib']:.1f} MiB) | {cells} |")
    lines += [
        "",
        f"| audit write (`_insert`), µs per transaction, median of {WRITE_ROUNDS} | {names} |",
        f"|---|{aligned}|",
    ]
    for index, write in enumerate(data[dbs[0]]["writes"]):
        for label in ("insert alone", "with the rollups"):
            cells = " | ".join(f"{data[db]['writes'][index][label] * 1e6:,.0f}" for db in dbs)
            lines.append(f"| {write['rows']} row(s), {label} | {cells} |")
    lines += ["", f"| one-off costs | {names} |", f"|---|{aligned}|"]
    lines.append(
        "| filling the database (bulk insert; s) | "
        + " | ".join(f"{data[db]['fill']['seconds']:.0f}" for db in dbs)
        + " |"
    )
    lines.append(
        "| adding the three new indexes (the migration; s) | "
        + " | ".join(f"{data[db]['index_seconds']:.1f}" for db in dbs)
        + " |"
    )
    lines.append(
        "| `manage.py rebuild_audit_rollups`, every day (s) | "
        + " | ".join(f"{data[db]['rebuild_seconds']:.1f}" for db in dbs)
        + " |"
    )
    lines.append(
        "| rollup rows (per day, tool and bucket / per day, person and client) | "
        + " | ".join(
            f"{data[db]['rollup_rows']['tool_call_rollup']:,} / {data[db]['rollup_rows']['caller_rollup']:,}"
            for db in dbs
        )
        + " |"
    )
    lines += ["", "| target: under 1 s with 1,000,000 audit rows | " + names + " |", f"|---|{aligned}|"]
    for what in ("dashboard", "audit list"):
        cells = []
        for db in dbs:
            worst = max(page["median"] for page in data[db]["pages"] if page["what"].startswith(what))
            cells.append(f"{_ms(worst)} ms: {'yes' if worst < TARGET_SECONDS else '**no**'}")
        lines.append(f"| {what}, slowest median above | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def write_docs(text: str, page: Path = DOCS_PAGE) -> None:
    """Replace what lies between the page's bench-dashboard markers; the rest stays as it is."""
    content = page.read_text()
    begin, end = content.find(DOCS_BEGIN), content.find(DOCS_END)
    if begin < 0 or end < begin:
        raise SystemExit(f"{page}: no {DOCS_BEGIN} … {DOCS_END} lines to write between")
    block = f"{DOCS_BEGIN}\n{text.rstrip()}\n{DOCS_END}"
    partial = page.with_name(page.name + ".tmp")
    partial.write_text(content[:begin] + block + content[end + len(DOCS_END) :])
    partial.replace(page)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--databases", default="sqlite,postgresql", type=lambda text: text.split(","))
    parser.add_argument(
        "--no-docs", action="store_true", help="a trial run: leave docs/performance.md and bench/results/ alone"
    )
    parser.add_argument("--report", type=Path, metavar="JSON", help="only render an earlier results file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.report:
        results = json.loads(args.report.read_text())
    else:
        unknown = set(args.databases) - set(DATABASES)
        if unknown:
            parser.error(f"unknown databases {sorted(unknown)}; choose from {sorted(DATABASES)}")
        results = measure(args)
    text = markdown(results)
    if not args.report and not args.no_docs:  # a trial run leaves no results file behind
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"dashboard-{results['meta']['stamp']}.json").write_text(json.dumps(results, indent=1))
        (RESULTS / f"dashboard-{results['meta']['stamp']}.md").write_text(text)
    print(text)
    if not args.no_docs:
        write_docs(text)
        print(f"{DOCS_PAGE.relative_to(REPO)}: dashboard section written")


if __name__ == "__main__":
    main()
