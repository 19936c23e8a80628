"""The notes tools and the ``note://{id}`` resource: each sees only the caller's own notes.

Reading needs the ``notes:read`` scope, changing ``notes:write``: a client asks for them when it
first needs them, and the person grants them on the consent page. Plain functions: they use the
ORM, so they run in a thread (``mcp_app/tools/registry.py``).
"""

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, ToolAnnotations
from pydantic import BaseModel, Field

from mcp_app.principal import principal_from_context
from mcp_app.tools import mcp_resource, mcp_scope, mcp_tool
from notes.models import BODY_CHARS, TITLE_CHARS, Note

READ = mcp_scope("notes:read", "Read and search your notes")
WRITE = mcp_scope("notes:write", "Create, change and delete your notes")
MAX_LISTED = 100
CHANGES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)

Title = Annotated[str, Field(min_length=1, max_length=TITLE_CHARS, description="The note's title.")]
Body = Annotated[str, Field(max_length=BODY_CHARS, description="The note's text (Markdown).")]
NoteId = Annotated[int, Field(ge=1, description="The note's id, as create_note or list_notes gave it.")]


class NoteSummary(BaseModel):
    id: int
    title: str
    uri: str = Field(description="Read the whole note as this resource.")
    updated: str = Field(description="When it last changed (ISO 8601, UTC).")


class NoteList(BaseModel):
    notes: list[NoteSummary]


def _summary(note: Note) -> NoteSummary:
    return NoteSummary(id=note.pk, title=note.title, uri=note.uri, updated=note.updated.isoformat())


def _mine(ctx: Context):
    return Note.objects.filter(owner_id=principal_from_context(ctx).user_id)


def _my_note(ctx: Context, note_id: int) -> Note:
    note = _mine(ctx).filter(pk=note_id).first()
    if note is None:  # someone else's note is one that does not exist
        raise ToolError(f"You have no note with id {note_id}.")
    return note


@mcp_tool(title="Create a note", annotations=CHANGES, scopes=[WRITE])
def create_note(ctx: Context, title: Title, body: Body = "") -> NoteSummary:
    """Create a note of yours."""
    return _summary(Note.objects.create(owner_id=principal_from_context(ctx).user_id, title=title, body=body))


@mcp_tool(title="List your notes", read_only=True, scopes=[READ])
def list_notes(
    ctx: Context, limit: Annotated[int, Field(ge=1, le=MAX_LISTED, description="How many, newest first.")] = 20
) -> NoteList:
    """Your notes, most recently changed first."""
    return NoteList(notes=[_summary(note) for note in _mine(ctx)[:limit]])


@mcp_tool(title="Search your notes", read_only=True, scopes=[READ])
def search_notes(
    ctx: Context, query: Annotated[str, Field(min_length=1, max_length=200, description="Words to look for.")]
) -> NoteList:
    """Your notes whose title or text contains the query (case-insensitive), newest first."""
    found = _mine(ctx).filter(title__icontains=query) | _mine(ctx).filter(body__icontains=query)
    return NoteList(notes=[_summary(note) for note in found.distinct()[:MAX_LISTED]])


@mcp_tool(title="Change a note", annotations=CHANGES, scopes=[WRITE])
def update_note(ctx: Context, id: NoteId, title: Title | None = None, body: Body | None = None) -> NoteSummary:  # noqa: A002
    """Change the title or the text of one of your notes."""
    note = _my_note(ctx, id)
    if title is not None:
        note.title = title
    if body is not None:
        note.body = body
    note.save()
    return _summary(note)


@mcp_tool(
    title="Delete a note",
    annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True),
    scopes=[WRITE],
)
def delete_note(ctx: Context, id: NoteId) -> str:  # noqa: A002
    """Delete one of your notes, for good."""
    note = _my_note(ctx, id)
    note.delete()
    return f"Deleted note {id}."


@mcp_resource("note://{id}", name="note", title="A note of yours", mime_type="text/markdown", scopes=[READ])
def read_note(id: str, ctx: Context) -> str:  # noqa: A002
    """One of your notes, as Markdown: its title as a heading, then its text."""
    note = _mine(ctx).filter(pk=int(id)).first() if id.isdigit() else None
    if note is None:  # as the SDK answers a resource that does not exist
        raise MCPError(INVALID_PARAMS, f"Unknown resource: note://{id}", {"uri": f"note://{id}"})
    return f"# {note.title}\n\n{note.body}"
