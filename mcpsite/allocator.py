"""The C allocator's free memory, given back to the system now and then.

glibc's malloc gives each thread that allocates its own arena (up to eight per core),
and keeps what is freed in an arena for that arena's next allocations: it returns
memory to the system only from the top of a heap. A server's threads (Django's
`sync_to_async` executor, the audit writer) allocate and free in bursts, so their
arenas fill with free memory that stays resident. In the 60-minute soak that was
the whole of the late rise in resident memory (``docs/performance.md``): the Python
heap was flat, and ``malloc_info`` counted 26.8 MiB free of the 62.5 MiB the
arenas held; one ``malloc_trim(0)`` gave 17.9 MiB back.

``malloc_trim(0)`` returns every whole free page of every arena (glibc 2.8 and
later). A daemon thread calls it every ``MCP_MALLOC_TRIM_SECONDS`` (60 by
default; it takes a few milliseconds, off the event loop). On a C library without
it (musl, macOS) this does nothing.
"""

import ctypes
import logging
import threading

log = logging.getLogger(__name__)

THREAD_NAME = "mcp-malloc-trim"


def _find_malloc_trim():
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_malloc_trim = _find_malloc_trim()
_started: threading.Thread | None = None


def available() -> bool:
    return _malloc_trim is not None


def release_free_memory() -> bool:
    """Give the allocator's free pages back to the system; whether any were (False without glibc)."""
    return bool(_malloc_trim is not None and _malloc_trim(0))


def _release_every(interval: float) -> None:
    idle = threading.Event()  # never set: waits are the interval
    while not idle.wait(interval):
        try:
            release_free_memory()
        except Exception:  # never expected; a trim that fails must not end the thread quietly
            log.exception("malloc_trim failed")


def release_periodically(interval: float) -> threading.Thread | None:
    """Start the thread that trims every `interval` seconds (once per process); None when off."""
    global _started
    if interval <= 0 or not available():
        return None
    if _started is None:
        _started = threading.Thread(target=_release_every, args=(interval,), name=THREAD_NAME, daemon=True)
        _started.start()
    return _started
