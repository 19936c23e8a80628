"""A note that changes, whoever changed it (a tool, or staff in the admin), is announced to the
clients subscribed to it (``notifications/resources/updated`` for ``note://{id}``), once the
change is committed."""

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from notes.models import Note


def _announce(uri: str) -> None:
    from mcp_app.engine.subscriptions import publish_resource_updated

    async_to_sync(publish_resource_updated)(uri)


def note_changed(sender, instance: Note, **_kwargs) -> None:
    uri = instance.uri
    transaction.on_commit(lambda: _announce(uri))


def connect() -> None:
    post_save.connect(note_changed, sender=Note, dispatch_uid="notes_changed")
    post_delete.connect(note_changed, sender=Note, dispatch_uid="notes_deleted")
