"""Telling the resource servers, at once, that access tokens stopped being valid.

The MCP workers cache a validated token for up to ``MCP_TOKEN_CACHE_SECONDS``
(``mcp_app/guards/token_cache.py``), so that the common request costs no query.
Without a word from here a revoked token would keep working that long. Every way
a token dies deletes its ``AccessToken`` row (DOT's ``revoke()``, ``/revoke``, a
refresh rotating it out, a refresh token's family revoked on reuse, the admin's
actions, a person's "Connected apps" page, a user or client deleted), so one
``post_delete`` receiver sees them all. Once the deletion is committed (before,
a worker that forgot the token could read it back from the database and cache it
again), the token's checksum goes to the Channels group ``REVOCATIONS_GROUP``,
through Redis to every worker with ``REDIS_URL``. A token past its expiry is not
announced: no cache holds one.

A worker hears the group once it has cached a token (it has nothing to forget
before). If the channel layer is down the announcement is lost and logged, and
the cache's own bound applies.
"""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models.signals import post_delete
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

log = logging.getLogger(__name__)

REVOCATIONS_GROUP = "oauth-revoked-tokens"
MESSAGE_TYPE = "oauth.tokens.revoked"


def revoked_checksums(message: dict) -> list[str]:
    """The token checksums a message of ``REVOCATIONS_GROUP`` announces (none for anything else)."""
    checksums = message.get("checksums") if message.get("type") == MESSAGE_TYPE else None
    return [checksum for checksum in checksums or () if isinstance(checksum, str)]


def announce(checksums: list[str]) -> None:
    """Send ``checksums`` to every resource server now (from sync code, or from the event loop)."""
    message = {"type": MESSAGE_TYPE, "checksums": checksums}
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    try:
        if loop is None:
            async_to_sync(get_channel_layer().group_send)(REVOCATIONS_GROUP, message)
        else:  # on the event loop's own thread (async code deleting through the ORM's async API)
            loop.create_task(get_channel_layer().group_send(REVOCATIONS_GROUP, message))
    except Exception as exc:
        log.warning("revoked tokens not announced (caches expire them): %s: %s", type(exc).__name__, exc)


def _access_token_deleted(sender, instance, using, **kwargs) -> None:
    if instance.expires is not None and instance.expires <= timezone.now():
        return
    checksum = instance.token_checksum
    if checksum:
        transaction.on_commit(lambda: announce([checksum]), using=using)


def connect_signals() -> None:
    post_delete.connect(
        _access_token_deleted, sender=get_access_token_model(), dispatch_uid="oauth_app.revocations.announce"
    )
