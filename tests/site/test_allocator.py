"""The C allocator's free memory goes back to the system (``mcpsite/allocator.py``).

The soak's late rise in resident memory was freed memory that glibc kept in the
arenas of the server's threads. These tests make that happen in a thread of their own
and see the trim give it back, and see the served application start the thread that
trims.
"""

import threading
from pathlib import Path

import pytest

from mcpsite import allocator

pytestmark = pytest.mark.skipif(not allocator.available(), reason="malloc_trim is glibc's; this C library has none")

CHUNK = 2000  # bytes: past Python's small-object allocator, so each one is a malloc
CHUNKS = 50_000  # about 100 MB
KEEP_EVERY = 64  # one chunk in 64 stays: the free memory is in holes, not at the top of a heap


def resident_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def strand_free_memory() -> list[bytes]:
    """Allocate ~100 MB in a new thread (so in its own arena), free all but every 64th chunk."""
    kept: list[bytes] = []

    def churn() -> None:
        chunks = [bytes(CHUNK) for _ in range(CHUNKS)]
        kept.extend(chunks[::KEEP_EVERY])
        chunks.clear()

    thread = threading.Thread(target=churn)
    thread.start()
    thread.join()
    return kept


def test_a_trim_gives_back_what_a_threads_arena_kept_after_freeing_it():
    allocator.release_free_memory()  # start from an allocator with nothing stranded
    kept = strand_free_memory()
    stranded = resident_kib()
    assert allocator.release_free_memory() is True
    released = stranded - resident_kib()
    freed_kib = CHUNK * CHUNKS * (1 - 1 / KEEP_EVERY) / 1024
    assert released > freed_kib / 2, f"{released} KiB of {freed_kib:.0f} KiB freed went back to the system"
    assert len(kept) == CHUNKS // KEEP_EVERY + (CHUNKS % KEEP_EVERY > 0)


def test_the_served_application_trims_on_a_thread_of_its_own():
    import mcpsite.asgi  # noqa: F401  (what daphne and uvicorn import)

    threads = [thread for thread in threading.enumerate() if thread.name == allocator.THREAD_NAME]
    assert len(threads) == 1 and threads[0].daemon and threads[0].is_alive()
    assert allocator.release_periodically(60) is threads[0]  # once per process


def test_no_interval_means_no_thread():
    assert allocator.release_periodically(0) is None
