"""The notes example app (notes/): tools and a resource on each person's own data.

Alice never reads, finds or changes Bob's notes, through any tool or the resource: to her,
his notes do not exist. The tools need the notes scopes; subscribers to a note are told
when it changes, including when staff edit it in the admin.
"""

import anyio
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client as DjangoClient
from mcp import Client
from mcp_types import ResourceUpdatedNotification

from mcp_app.engine.server import build_server
from notes.models import Note
from tests.mcp.test_stateless import post, stateless_request
from tests.mcp.test_tool_scopes import sync_token
from tests.support.engine_client import request_info, tagged_streams
from tests.support.inbox import Inbox

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]
NOTES_SCOPES = "mcp notes:read notes:write"


async def tool(app, token, name: str, **arguments) -> dict:
    answer = await post(app, token, stateless_request("tools/call", {"name": name, "arguments": arguments}))
    assert answer.status == 200, answer.body
    return answer.json()["result"]


async def read(app, token, uri: str):
    return await post(app, token, stateless_request("resources/read", {"uri": uri}))


@pytest.fixture
async def alice(user):
    return await sync_token(user, NOTES_SCOPES)


@pytest.fixture
async def bobs_note(other_user):
    return await Note.objects.acreate(owner=other_user, title="Bob's secret plan", body="the treasure is under the oak")


async def test_a_person_creates_lists_searches_changes_and_deletes_their_notes(app, alice):
    created = (await tool(app, alice, "create_note", title="Groceries", body="eggs, milk"))["structuredContent"]
    await tool(app, alice, "create_note", title="Ideas", body="a tool that writes notes")
    listed = (await tool(app, alice, "list_notes"))["structuredContent"]["notes"]
    assert [note["title"] for note in listed] == ["Ideas", "Groceries"]
    found = (await tool(app, alice, "search_notes", query="MILK"))["structuredContent"]["notes"]
    assert [note["id"] for note in found] == [created["id"]]
    changed = await tool(app, alice, "update_note", id=created["id"], body="eggs, milk, bread")
    assert changed["isError"] is False
    text = (await read(app, alice, created["uri"])).json()["result"]["contents"][0]["text"]
    assert text == "# Groceries\n\neggs, milk, bread"
    assert (await tool(app, alice, "delete_note", id=created["id"]))["isError"] is False
    assert (await read(app, alice, created["uri"])).status == 400


async def test_alice_never_reads_finds_or_changes_bobs_notes(app, alice, bobs_note):
    assert (await tool(app, alice, "list_notes"))["structuredContent"]["notes"] == []
    assert (await tool(app, alice, "search_notes", query="treasure"))["structuredContent"]["notes"] == []
    attempts = [("update_note", {"title": "mine now"}), ("delete_note", {})]
    for name, arguments in attempts:
        refused = await tool(app, alice, name, id=bobs_note.id, **arguments)
        missing = await tool(app, alice, name, id=999_999, **arguments)
        assert refused["isError"] is missing["isError"] is True
        # The very answer a note that does not exist gets, but for the number.
        refusal, absence = refused["content"][0]["text"], missing["content"][0]["text"]
        assert refusal.endswith(f"You have no note with id {bobs_note.id}.")
        assert refusal.replace(str(bobs_note.id), "N") == absence.replace("999999", "N")
    unreadable = await read(app, alice, bobs_note.uri)
    missing = await read(app, alice, "note://999999")
    assert unreadable.status == missing.status == 400
    assert unreadable.json()["error"]["message"] == f"Unknown resource: {bobs_note.uri}"
    await bobs_note.arefresh_from_db()
    assert (bobs_note.title, bobs_note.body) == ("Bob's secret plan", "the treasure is under the oak")


async def test_the_notes_tools_need_the_notes_scopes(app, user):
    token = await sync_token(user, "mcp")
    for name, arguments, scope in (("create_note", {"title": "x"}, "notes:write"), ("list_notes", {}, "notes:read")):
        refused = await post(app, token, stateless_request("tools/call", {"name": name, "arguments": arguments}))
        assert refused.status == 403
        assert f'scope="mcp {scope}"' in refused.headers["www-authenticate"]
    assert not await Note.objects.aexists()
    note = await Note.objects.acreate(owner=user, title="Private", body="not without notes:read")
    refused = await read(app, token, note.uri)
    assert refused.status == 403
    assert 'scope="mcp notes:read"' in refused.headers["www-authenticate"]


async def test_subscribers_are_told_when_staff_edit_a_note_in_the_admin(user, django_user_model):
    note = await Note.objects.acreate(owner=user, title="Draft", body="first words")
    inbox = Inbox()
    info = request_info(user_id=user.id, username=user.username, scopes=NOTES_SCOPES.split())
    async with Client(tagged_streams(build_server(), info), mode="legacy", message_handler=inbox.on_message) as client:
        await client.subscribe_resource(note.uri)
        await sync_to_async(_staff_edits)(django_user_model, note)
        with anyio.fail_after(10):
            updated = await inbox.next_of_type(ResourceUpdatedNotification)
        assert str(updated.params.uri) == note.uri
        contents = (await client.read_resource(note.uri)).contents
    assert contents[0].text == "# Draft (edited by staff)\n\nfirst words"


def _staff_edits(django_user_model, note: Note) -> None:
    staff = get_user_model().objects.create_superuser(username="editor", password="a long staff passphrase")
    browser = DjangoClient()
    browser.force_login(staff)
    form = {"owner": note.owner_id, "title": "Draft (edited by staff)", "body": note.body}
    answer = browser.post(f"/admin/notes/note/{note.pk}/change/", form)
    assert answer.status_code == 302, answer.content[:500]
