"""Fixed-window rate limits kept in Django's cache (per process by default,
shared across workers when the cache is Redis)."""

import time

from django.core.cache import cache


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def retry_after(key: str, limit: int, window_seconds: int) -> int | None:
    """Count one event under ``key``. Returns None while within ``limit`` per
    window, else the seconds until the window resets (for ``Retry-After``)."""
    now = time.time()
    window = int(now // window_seconds)
    cache_key = f"ratelimit:{key}:{window}"
    if cache.add(cache_key, 1, timeout=window_seconds):
        count = 1
    else:
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add() and incr()
            cache.set(cache_key, 1, timeout=window_seconds)
            count = 1
    if count <= limit:
        return None
    return max(1, int((window + 1) * window_seconds - now))
