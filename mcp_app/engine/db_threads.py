"""Threads of the engine that keep a database connection of their own: the audit's writer
(``audit.py``) and SQLite's checkpoints (``sqlite_checkpoints.py``).

Each starts on first use, as a daemon (shutdown waits for the work under way where it must,
``audit.flush``, not for the thread), and again if it has died. Django opens a connection per
thread; around each piece of work such a thread closes the stale ones, as Channels does around
a request (``close_old_connections``). A failure of that after the work is logged, never the
thread's end: a dead writer would leave every later call waiting for its row.
"""

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections

logger = logging.getLogger(__name__)


class LazyThread:
    """A daemon thread running ``target``, started by the first ``start`` (and the first after
    it died), once however many threads ask at the same time."""

    def __init__(self, target: Callable[[], None], name: str):
        self._target = target
        self._name = name
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._starting:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._target, name=self._name, daemon=True)
                self._thread.start()


def close_old_connections_or_warn(who: str) -> None:
    """``close_old_connections`` after a piece of work; if it fails, a warning (the connection is
    dropped all the same, and the next piece of work opens one)."""
    try:
        close_old_connections()
    except Exception as exc:
        logger.warning("%s: closing its database connection failed: %s: %s", who, type(exc).__name__, exc)
