"""This worker's token cache, told at once when a token is revoked.

The authorization server announces the checksum of every access token it deletes
(``oauth_app/revocations.py``) to a Channels group; a worker joins that group
before it caches its first token, and from then on drops an announced token from
its cache as the message arrives (through Redis: milliseconds). The cache's own
bound (``MCP_TOKEN_CACHE_SECONDS``) remains the backstop when an announcement is
lost.
"""

from mcp_app.guards.token_cache import token_cache
from mcp_app.protocol.groups import GroupMember
from oauth_app.resource_server import REVOCATIONS_GROUP, revoked_checksums


async def _forget(message: dict) -> None:
    for checksum in revoked_checksums(message):
        token_cache.forget(checksum)


revocations = GroupMember(REVOCATIONS_GROUP, _forget, name="mcp-token-revocations")
