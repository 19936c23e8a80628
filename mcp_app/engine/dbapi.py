"""The database driver's own cursor, for the few fixed statements of the audit writer.

Every call waits for its audit row's commit (``audit.py``), so at one user the write is on
the path of each answer. Through Django's cursor and ``transaction.atomic`` one write (the
row, two rollup upserts, the commit) cost about 290 µs of CPU on SQLite, and costs about
180 µs as this module runs it (in-process, production settings, a thousand writes): per
statement Django's wrapper turns ``%s`` into SQLite's ``?`` with a regular expression and
checks the thread; ``atomic`` adds its own bookkeeping and a ``BEGIN`` through that
wrapper. So the audit's statements are built once in the
driver's placeholder style (``placeholder``) and run in ``transaction``: ``BEGIN`` (in the
mode settings give SQLite, ``IMMEDIATE``), the statements, ``COMMIT``, on the connection
Django opened for this thread (its settings, ``init_command`` and health checks) and with
Django's exceptions, so the connection is checked before reuse after a failure, as it is
after one through Django's cursor.

Only for code that owns its connection outside any ``atomic`` block (the audit's writer
thread): Django does not see this transaction. ``cursor`` gives the driver's cursor inside a
transaction Django runs (``atomic``), for statements built here that run there too.
"""

from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def transaction(connection: BaseDatabaseWrapper) -> Iterator[Any]:
    """A transaction of its own on ``connection``, outside Django's: ``BEGIN``, what the block
    runs on the cursor it gets, then ``COMMIT``; ``ROLLBACK`` if the block or the commit fails."""
    if connection.in_atomic_block:
        raise RuntimeError("dbapi.transaction inside an atomic block: Django would not know of it")
    rolled_back = True
    try:
        with cursor(connection) as driver_cursor:
            # SQLite's OPTIONS["transaction_mode"] (IMMEDIATE here), known once the connection is open.
            mode = getattr(connection, "transaction_mode", None)
            driver_cursor.execute(f"BEGIN {mode}" if mode else "BEGIN")
            try:
                yield driver_cursor
                driver_cursor.execute("COMMIT")
            except BaseException:
                rolled_back = _roll_back(driver_cursor)
                raise
    finally:
        if not rolled_back:
            # The transaction may still be open on a connection that is otherwise usable (SQLite
            # says so after any error), and every later BEGIN would fail on it: drop the
            # connection, the next use opens another. The block's own error is the one raised.
            connection.close()


def _roll_back(driver_cursor: Any) -> bool:
    try:
        driver_cursor.execute("ROLLBACK")
        return True
    except Exception:
        return False
