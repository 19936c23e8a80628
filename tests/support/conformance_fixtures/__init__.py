"""The fixtures the official MCP conformance suite expects of a server under test.

``@modelcontextprotocol/conformance`` (server scenarios) calls tools, reads
resources and gets prompts by fixed names (``test_simple_text``,
``test://static-text``, ``test_simple_prompt``...) and checks what comes back.
This package provides them, with the texts and behaviour the suite's scenarios
describe, for both requirement sets it scores: 2025-11-25 (the handshake era)
and 2026-07-28 (the stateless era). A fixture that exists in both eras behaves
sensibly in both; the input-required ones are written once and asked over the
era's own channel (``input_required.py``).

It is an engine extension: a server loads it only when ``MCP_EXTENSIONS`` names
``tests.support.conformance_fixtures`` (``CONFORMANCE_FIXTURES``), as the tests do.

    tools.py           tools, the 2020-12 schema tool, the list-change triggers
    input_required.py  the input-required tools and prompt (SEP-2322)
    tasks.py           the tools of the tasks extension's scenarios (SEP-2663)
    prompts.py         prompts and completion
    resources.py       resources and the resource template
    media.py           the image, audio and embedded text they return
"""

from mcp.server.mcpserver import MCPServer

from mcp_app.engine.extensions import Features
from tests.support.conformance_fixtures import input_required, prompts, resources, tasks, tools

# This package's import path: what MCP_EXTENSIONS names to load it.
CONFORMANCE_FIXTURES = __name__


def install(server: MCPServer, features: Features) -> None:
    tools.install(server)
    input_required.install(server)
    prompts.install(server, features)
    resources.install(server)
    tasks.install(server, features.tasks)
