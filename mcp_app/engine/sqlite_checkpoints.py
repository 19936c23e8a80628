"""SQLite's checkpoints, kept off the path of the calls that wait for their audit rows.

In write-ahead-log mode a commit appends its pages to the log (the ``-wal`` file); a
checkpoint copies them back into the database file and, with ``synchronous=NORMAL``, flushes
the log to disk first and the database file after (two fsyncs). SQLite runs one inside the
commit that takes the log past ``wal_autocheckpoint`` pages, 1,000 by default: at one user
about every hundredth audit write, and that write's call waited the 2-10 ms of it (the
one-user p99 was four times the SDK's).

So the audit writer's commits wake a thread of its own here (``after_commit``), which runs a
PASSIVE checkpoint on its own connection at most once every ``CHECKPOINT_INTERVAL_SECONDS``:
its fsyncs run beside the calls (the GIL is released in them), and a power cut loses at most
the commits of about the last second, where before it could lose everything since the last
1,000 pages (minutes of calls when they are few). PASSIVE never waits for the writer or a
reader; it copies what they let it. While the writer goes on appending, the log cannot start
over (SQLite restarts it only once all of it is copied and nobody is appending), so under
sustained load the commits' own checkpoints still do that: ``mcpsite/settings.py`` puts them
at 10,000 pages, about one write in a thousand at one user.
"""

import functools
import logging
import threading
import time

from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections

from mcp_app.engine import db_threads

logger = logging.getLogger(__name__)

# At most one checkpoint in this time, while commits come (it is also about what a power cut
# can lose of them; a crash of the process loses nothing either way).
CHECKPOINT_INTERVAL_SECONDS = 1.0


class _Checkpointer:
    def __init__(self, alias: str):
        self._alias = alias
        self._committed = threading.Event()
        self._thread = db_threads.LazyThread(self._serve, "mcp-sqlite-checkpoints")

    @functools.cached_property
    def _on_sqlite(self) -> bool:
        # A process's database does not change; asked on first commit, when settings are loaded.
        return connections[self._alias].vendor == "sqlite"

    def after_commit(self) -> None:
        """A commit is in the log: have it copied back and flushed soon."""
        if not self._on_sqlite:
            return
        self._committed.set()
        self._thread.start()

    def _serve(self) -> None:
        while True:
            self._committed.wait()
            self._committed.clear()  # commits from here on wait for the next checkpoint
            self._checkpoint()
            time.sleep(CHECKPOINT_INTERVAL_SECONDS)  # the pace, not a wait for something

    def _checkpoint(self) -> None:
        # Whatever fails is logged and the thread goes on: the commits' own checkpoints remain.
        try:
            close_old_connections()
            with connections[self._alias].cursor() as cursor:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:
            logger.warning("SQLite checkpoint failed: %s: %s", type(exc).__name__, exc)
        finally:
            db_threads.close_old_connections_or_warn("SQLite checkpoints")


_checkpointer = _Checkpointer(DEFAULT_DB_ALIAS)
after_commit = _checkpointer.after_commit
