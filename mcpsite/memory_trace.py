"""Where the server's memory goes, for a soak run: tracemalloc snapshots on request.

With ``MCP_TRACEMALLOC=<frames>`` the process traces its allocations from its start
(``tracemalloc.start(frames)``: slower, and more memory, so never in production), and
each ``SIGUSR2`` writes a snapshot to ``MCP_TRACEMALLOC_DIR`` as
``<pid>-<n>.tracemalloc`` (written to a temporary name, then renamed, so a reader never
sees half a file). ``bench/soak.py --tracemalloc`` asks for one after its warm-up and one
at the end, and reports what grew between them, by line.
"""

import os
import signal
import tracemalloc
from itertools import count
from pathlib import Path

_taken = count(1)


def start_if_asked() -> None:
    from django.conf import settings  # the settings module alone: the apps are not loaded yet

    if not settings.MCP_TRACEMALLOC:
        return
    directory = Path(settings.MCP_TRACEMALLOC_DIR)
    tracemalloc.start(settings.MCP_TRACEMALLOC)
    signal.signal(signal.SIGUSR2, lambda *_: _snapshot(directory))


def _snapshot(directory: Path) -> None:
    snapshot = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>"))
    )
    final = directory / f"{os.getpid()}-{next(_taken)}.tracemalloc"
    partial = final.with_suffix(".partial")
    snapshot.dump(str(partial))
    partial.rename(final)
