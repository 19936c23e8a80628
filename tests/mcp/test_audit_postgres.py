"""The audit's write on PostgreSQL (``mcp_app/engine/dbapi.py``, ``audit._insert``), in a
process of the server's own settings against the session's PostgreSQL server.

On PostgreSQL a write is two round trips (``BEGIN`` and the statements in psycopg's pipeline,
then ``COMMIT``) and its connection is not health-checked first. What that must not cost: a
connection that broke while idle (the server restarted) has its write run again on a new
connection, exactly once; a statement that fails in the pipeline, or a constraint that fails
at ``COMMIT``, rolls the batch back whole and leaves the connection usable for the rows one by
one.
"""

import json

import pytest

from tests.support.live_server import django_shell, random_secret_key, settings_environment

pytestmark = pytest.mark.services

# Each script prints one JSON line last: what the test asserts.
_PRELUDE = """
import json
from django.db import close_old_connections, connection
from mcp_app.engine import audit
from mcp_app.models import CallerRollup, ToolCall, ToolCallRollup
from tests.support.audit_rows import audit_row

def written():
    return {
        "arguments": list(ToolCall.objects.order_by("id").values_list("arguments", flat=True)),
        "tool_calls": sum(ToolCallRollup.objects.values_list("calls", flat=True)),
        "caller_calls": sum(CallerRollup.objects.values_list("calls", flat=True)),
    }

def backend():
    return connection.connection.info.backend_pid if connection.connection else None
"""

_BROKEN_WHILE_IDLE = """
import psycopg
assert audit._insert([audit_row(arguments="before")]) == [None]
first = backend()
with psycopg.connect(DATABASE_URL, autocommit=True) as other:
    # Waits (5 s at most) until that backend is gone, as a server restart leaves it.
    assert other.execute("SELECT pg_terminate_backend(%s, 5000)", [first]).fetchone()[0]
close_old_connections()  # as the writer does before each write: it asks nothing of the server
problems = audit._insert([audit_row(arguments="after")])
print(json.dumps({"problems": [repr(p) for p in problems], "first": first, "second": backend(), **written()}))
"""

_NO_HEALTH_CHECK = """
assert audit._insert([audit_row(arguments="one")]) == [None]
close_old_connections()
checks = []
usable = connection.is_usable
connection.is_usable = lambda: checks.append("SELECT 1") or usable()
problems = audit._insert([audit_row(arguments="two")])
del connection.is_usable  # before the ORM's reads below, which do check
print(json.dumps({"problems": [repr(p) for p in problems], "checks": checks, **written()}))
"""

_BAD_ROWS = """
assert audit._insert([audit_row(arguments="warm")]) == [None]
first = backend()
rows = [
    audit_row(arguments="one"),
    audit_row(arguments="no such user", user_id=987654),  # a deferred foreign key: fails at COMMIT
    audit_row(arguments="two"),
    audit_row(arguments="too long", username="x" * 1000),  # fails in the pipeline, before COMMIT
    audit_row(arguments="three"),
]
problems = audit._insert(rows)
print(json.dumps({"problems": [type(p).__name__ if p else None for p in problems], "first": first,
                  "second": backend(), **written()}))
"""


@pytest.fixture
def database_env(scale_out_database, request):
    """The environment of a process with the server's settings on a database of its own, migrated."""
    name = "audit_" + request.node.name.removeprefix("test_")[:40]
    url = scale_out_database.postgres.create_database(name)
    env = settings_environment(url, random_secret_key())
    migrated = django_shell(
        "from django.core.management import call_command; call_command('migrate', verbosity=0)", env
    )
    assert migrated.returncode == 0, migrated.stderr[-4000:]
    return env


def run(script: str, env: dict[str, str]) -> dict:
    finished = django_shell(f"DATABASE_URL = {env['DATABASE_URL']!r}\n{_PRELUDE}{script}", env)
    assert finished.returncode == 0, finished.stderr[-4000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_a_write_on_a_connection_that_broke_while_idle_runs_again_on_a_new_one(database_env):
    outcome = run(_BROKEN_WHILE_IDLE, database_env)
    assert outcome["problems"] == ["None"]
    assert outcome["second"] != outcome["first"]
    assert outcome["arguments"] == ["before", "after"]  # once each
    assert outcome["tool_calls"] == outcome["caller_calls"] == 2


def test_a_write_asks_the_server_nothing_before_its_transaction(database_env):
    """No health check (``SELECT 1``, a round trip and a transaction of its own) before each write."""
    outcome = run(_NO_HEALTH_CHECK, database_env)
    assert outcome["problems"] == ["None"]
    assert outcome["checks"] == []
    assert outcome["arguments"] == ["one", "two"]


def test_a_batch_that_fails_in_the_pipeline_or_at_commit_is_written_row_by_row(database_env):
    outcome = run(_BAD_ROWS, database_env)
    assert outcome["problems"] == [None, "IntegrityError", None, "DataError", None]
    assert outcome["arguments"] == ["warm", "one", "two", "three"]
    assert outcome["tool_calls"] == outcome["caller_calls"] == 4
    assert outcome["second"] == outcome["first"]  # rolled back, and the same connection went on
