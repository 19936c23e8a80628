"""The resources the suite reads: fixed text, a PNG, a resource that changes on demand
(``test_update_watched_resource``) and a template.

An unknown URI needs no fixture: reading one is answered by the engine (the SDK's
``MCPServer``) with JSON-RPC -32602 whose ``data.uri`` names it, in both eras, as
``sep-2164-resource-not-found`` asks.
"""

import json

from mcp.server.mcpserver import MCPServer

from tests.support.conformance_fixtures.media import PNG, RED_PIXEL

WATCHED_URI = "test://watched-resource"
TEMPLATE_URI = "test://template/{id}/data"


class WatchedResource:
    """``test://watched-resource``: text that changes when ``test_update_watched_resource`` runs."""

    def __init__(self) -> None:
        self.version = 0

    def read(self) -> str:
        return f"Watched resource, version {self.version}."


WATCHED = WatchedResource()


async def static_text() -> str:
    return "This is the content of the static text resource."


async def static_binary() -> bytes:
    return RED_PIXEL


async def watched_resource() -> str:
    return WATCHED.read()


async def template_data(id: str) -> str:  # noqa: A002 - the template's variable name
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


def install(server: MCPServer) -> None:
    server.resource("test://static-text", name="static_text", description="A fixed text.", mime_type="text/plain")(
        static_text
    )
    server.resource("test://static-binary", name="static_binary", description="A 1x1 red PNG.", mime_type=PNG)(
        static_binary
    )
    server.resource(
        WATCHED_URI,
        name="watched_resource",
        description="Changes when test_update_watched_resource runs.",
        mime_type="text/plain",
    )(watched_resource)
    server.resource(
        TEMPLATE_URI, name="template_data", description="JSON data for any id.", mime_type="application/json"
    )(template_data)
