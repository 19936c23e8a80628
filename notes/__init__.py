"""Notes: an example app that offers MCP tools on its own data (mcp_tools.py).

Each person's notes are theirs alone: every tool and the ``note://{id}`` resource look
a note up by its id *and* the caller's user, so someone else's note is, to them, one
that does not exist. Staff may edit notes in the admin; clients subscribed to a note
are told when it changes, whoever changed it.
"""
