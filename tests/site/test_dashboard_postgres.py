"""The dashboard's rollups on PostgreSQL with several worker processes writing at once
(mcp_app/engine/audit_rollup.py): the upserts add up exactly, never deadlock, and a rebuild
running in the middle of the writes neither loses nor counts twice a call.

Four processes write audit batches through the audit's own write (``audit._insert``, as its
database thread runs it) onto the same two days and tools, while a fifth recounts the
rollups again and again. Durations over nine decades and 400 people keep bringing rollup
rows that did not exist yet: the case a recount must hold off (a new row committed between
its delete and its count would be counted twice). Afterwards the rollups must be what a recount from the
audit rows finds, and hold every call written.
"""

import subprocess
import sys

import pytest

from tests.support.live_server import PROJECT_DIR, random_secret_key, settings_environment

pytestmark = pytest.mark.services

WRITERS = 4
BATCHES = 150
TIMEOUT = 180

_WRITER = """
import os, random
from datetime import timedelta
from django.utils import timezone
from mcp_app.engine import audit
from tests.support.audit_rows import audit_row

rng = random.Random(int(os.environ["WRITER_SEED"]))
PEOPLE = [""] + [f"person{i}" for i in range(400)]
now = timezone.now()
written = 0
for _ in range(int(os.environ["BATCHES"])):
    rows = []
    for _ in range(rng.randint(1, 40)):
        outcome = rng.choice(["ok"] * 8 + ["tool_error", "protocol_error"])
        rows.append(audit_row(
            created_at=now - timedelta(days=rng.randint(0, 1)),
            username=rng.choice(PEOPLE),
            client_id=rng.choice(["client-a", "client-b"]),
            tool=rng.choice(["add", "divide", "whoami"]),
            outcome=outcome,
            error_code=-32602 if outcome == "protocol_error" else None,
            duration_ms=round(10 ** rng.uniform(-3, 6), 3),
        ))
    problems = audit._insert(rows)
    assert not any(problems), problems
    written += len(rows)
print(f"written {written}")
"""

_REBUILDER = """
from django.core.management import call_command
for _ in range(8):
    call_command("rebuild_audit_rollups")
"""

_MIGRATE = """
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
"""


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return settings_environment(database_url, random_secret_key(), extra)


def _django(script: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, err[-4000:]
    return out


def _snapshot(connection) -> tuple[list, list]:
    tools = connection.execute(
        "SELECT day, tool, bucket, calls, tool_errors, protocol_errors, round(duration_ms_sum::numeric, 6) "
        "FROM mcp_app_toolcallrollup ORDER BY day, tool, bucket"
    ).fetchall()
    callers = connection.execute(
        "SELECT day, username, client_id, calls FROM mcp_app_callerrollup ORDER BY day, username, client_id"
    ).fetchall()
    return tools, callers


@pytest.fixture
def database(scale_out_database):
    """A database of its own on the session's PostgreSQL server, migrated."""
    postgres = scale_out_database.postgres
    url = postgres.create_database("rollups")
    _finish(_django(_MIGRATE, _env(url)))
    return postgres, url


def test_concurrent_writers_and_a_rebuild_keep_the_rollups_exact(database):
    postgres, url = database
    writers = [_django(_WRITER, _env(url, WRITER_SEED=str(seed), BATCHES=str(BATCHES))) for seed in range(WRITERS)]
    rebuilder = _django(_REBUILDER, _env(url))
    written = sum(int(_finish(writer).split()[-1]) for writer in writers)
    _finish(rebuilder)

    with postgres.connect("rollups") as connection:
        assert connection.execute("SELECT count(*) FROM mcp_app_toolcall").fetchone()[0] == written
        assert connection.execute("SELECT sum(calls) FROM mcp_app_toolcallrollup").fetchone()[0] == written
        assert connection.execute("SELECT sum(calls) FROM mcp_app_callerrollup").fetchone()[0] == written
        by_outcome = dict(
            connection.execute("SELECT outcome, count(*) FROM mcp_app_toolcall GROUP BY outcome").fetchall()
        )
        sums = connection.execute(
            "SELECT sum(tool_errors), sum(protocol_errors) FROM mcp_app_toolcallrollup"
        ).fetchone()
        assert sums == (by_outcome.get("tool_error", 0), by_outcome.get("protocol_error", 0))
        deadlocks = connection.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()[0]
        assert deadlocks == 0
        during = _snapshot(connection)

    _finish(_django(_REBUILDER.replace("range(8)", "range(1)"), _env(url)))
    with postgres.connect("rollups") as connection:
        assert _snapshot(connection) == during
