"""Validated bearer tokens, remembered in-process for a few seconds.

A cache hit authenticates a request with no database query and no thread hop
(the MCP hot path, see the design's measurements). A revoked token is dropped
as soon as the authorization server announces it (``revocations.py``); if that
word is lost, it keeps working here for at most ``MCP_TOKEN_CACHE_SECONDS``
(0 turns the cache off). An entry never outlives the token's own expiry.

Only successes are cached. A negative cache would let a stream of garbage
tokens evict the good entries of this bounded cache, and could remember a
token as invalid in the moment before the token endpoint commits it; an
unknown token costs one indexed query instead.

Entries are keyed by the token's SHA-256 checksum (never the token) and the
audience URL it was validated for, since a token's ``resource`` may cover
one endpoint and not another.

Entries of tokens no longer presented (a client refreshed, or left) are dropped once their
time is up, as new entries come in: the cache holds about what its clients used in the last
``MCP_TOKEN_CACHE_SECONDS``, not the last ``MAX_CACHED_TOKENS`` tokens ever seen.

Used from the event loop only, so the OrderedDict needs no lock.
"""

import time
from collections import OrderedDict

from django.conf import settings
from django.utils import timezone

from mcp_app.principal import Principal

MAX_CACHED_TOKENS = 10_000  # about 9 MB when full; more live clients than one process serves

CacheKey = tuple[str, str]  # (token checksum, audience URL)


class TokenCache:
    def __init__(self, max_entries: int = MAX_CACHED_TOKENS, clock=time.monotonic):
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[CacheKey, tuple[float, Principal]] = OrderedDict()

    def get(self, key: CacheKey) -> Principal | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        fresh_until, principal = entry
        if self._clock() >= fresh_until:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return principal

    def put(self, key: CacheKey, principal: Principal) -> None:
        """Remember ``principal`` for the configured bound, and never past its token's expiry."""
        lifetime = min(settings.MCP_TOKEN_CACHE_SECONDS, (principal.expires - timezone.now()).total_seconds())
        if lifetime <= 0:
            return
        now = self._clock()
        self._entries[key] = (now + lifetime, principal)
        self._entries.move_to_end(key)
        # The least recently used end holds the tokens nobody presents any more; drop those whose
        # time is up (each put removes what it finds there: amortised O(1)), then enforce the bound.
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if oldest[0] > now:
                break
            self._entries.popitem(last=False)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)  # least recently used

    def forget(self, checksum: str) -> None:
        """Drop every entry of the token with this checksum (it was revoked). A scan: revocations are rare
        next to requests, and an index by checksum would cost every put."""
        for key in [key for key in self._entries if key[0] == checksum]:
            del self._entries[key]

    def holds(self, checksum: str) -> bool:
        """Whether some entry of the token with this checksum is here (fresh or not)."""
        return any(key[0] == checksum for key in self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


token_cache = TokenCache()
