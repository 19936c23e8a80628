"""The database driver's own cursor, for the few fixed statements of the audit writer.

Every call waits for its audit row's commit (``audit.py``), so at one user the write is on
the path of each answer. Through Django's cursor and ``transaction.atomic`` one write (the
row, two rollup upserts, the commit) cost about 290 µs of CPU on SQLite, and costs about
180 µs as this module runs it (in-process, production settings, a thousand writes): per
statement Django's wrapper turns ``%s`` into SQLite's ``?`` with a regular expression and
checks the thread; ``atomic`` adds its own bookkeeping and a ``BEGIN`` through that
wrapper. So the audit's statements are built once in the driver's placeholder style
(``placeholder``) and run by ``write``: ``BEGIN`` (in the mode settings give SQLite,
``IMMEDIATE``), the statements, ``COMMIT``, on the connection Django opened for this thread
(its settings, ``init_command``) and with Django's exceptions.

On PostgreSQL every statement was a round trip of its own, and Django's health check
(``CONN_HEALTH_CHECKS``) added a ``SELECT 1`` before each write: six round trips and two
transactions a write, 1.1-1.3 ms and 0.5-0.8 ms of the writer's CPU against a server on the
same machine. ``write`` sends ``BEGIN`` and the statements in one round trip (psycopg's
pipeline) and ``COMMIT`` in a second, and checks nothing first: a connection that broke while
idle fails in the first round trip, before anything could be committed, and the write runs
again on a new one. 0.6-0.8 ms and 0.4-0.6 ms a write, one transaction.

Only for code that owns its connection outside any ``atomic`` block (the audit's writer
thread): Django does not see this transaction. ``cursor`` gives the driver's cursor inside a
transaction Django runs (``atomic``), for statements built here that run there too.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper


def placeholder(connection: BaseDatabaseWrapper) -> str:
    """The parameter marker the connection's driver takes (SQLite's ``?``, psycopg's ``%s``)."""
    return "?" if connection.Database.paramstyle == "qmark" else "%s"


@contextmanager
def cursor(connection: BaseDatabaseWrapper) -> Iterator[Any]:
    """The driver's cursor on ``connection``, its errors Django's (``django.db.IntegrityError``…)."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        driver_cursor = connection.connection.cursor()
        try:
            yield driver_cursor
        finally:
            driver_cursor.close()


def write(connection: BaseDatabaseWrapper, statements: Callable[[Any], None]) -> None:
    """Run ``statements(cursor)`` in a transaction of their own on ``connection`` and commit it:
    ``BEGIN``, the statements, ``COMMIT``; ``ROLLBACK`` and the error if any of it fails.

    On PostgreSQL ``BEGIN`` and the statements go in one round trip (psycopg's pipeline), then
    ``COMMIT`` in a second, and the connection is not health-checked first: a connection that
    broke while idle (the server restarted) is found broken by that first round trip, before the
    ``COMMIT`` was sent, so nothing of it was written, and it runs once more on a new connection.
    """
    if connection.in_atomic_block:
        raise RuntimeError("dbapi.write inside an atomic block: Django would not know of its transaction")
    reused = connection.connection is not None
    try:
        _write(connection, statements)
    except _BrokenBeforeCommit as broken:
        if not reused:
            raise broken.__cause__ from None
        try:
            _write(connection, statements)  # on a new connection: the broken one was closed
        except _BrokenBeforeCommit as again:
            raise again.__cause__ from None


class _BrokenBeforeCommit(Exception):
    """The connection broke before ``COMMIT`` was sent; its cause is the error, as Django raised it."""


def _write(connection: BaseDatabaseWrapper, statements: Callable[[Any], None]) -> None:
    connection.ensure_connection()
    driver = connection.connection
    committing = False
    rolled_back = True
    try:
        with connection.wrap_database_errors:
            driver_cursor = driver.cursor()
            try:
                # SQLite's OPTIONS["transaction_mode"] (IMMEDIATE here), known once the connection is open.
                mode = getattr(connection, "transaction_mode", None)
                with _one_round_trip(driver):
                    driver_cursor.execute(f"BEGIN {mode}" if mode else "BEGIN")
                    statements(driver_cursor)
                committing = True
                driver_cursor.execute("COMMIT")
            except BaseException:
                rolled_back = _roll_back(driver_cursor)
                raise
            finally:
                driver_cursor.close()
    except Exception as exc:
        if not committing and getattr(driver, "broken", False):  # psycopg's: the connection is lost
            connection.close()
            raise _BrokenBeforeCommit from exc
        raise
    finally:
        if not rolled_back:
            # The transaction may still be open on a connection that is otherwise usable (SQLite
            # says so after any error), and every later BEGIN would fail on it: drop the
            # connection, the next use opens another. The block's own error is the one raised.
            connection.close()


def _one_round_trip(driver: Any):
    """psycopg's pipeline (what is executed in it is sent together, its errors raised at its
    end); SQLite runs in-process and has none."""
    pipeline = getattr(driver, "pipeline", None)
    return pipeline() if pipeline is not None else nullcontext()


def _roll_back(driver_cursor: Any) -> bool:
    try:
        driver_cursor.execute("ROLLBACK")
        return True
    except Exception:
        return False
