"""The private parts of the ``mcp`` SDK this server relies on are still there.

``mcp_app/engine/sdk.py`` is the only module that reaches them, and lists each
in ``PRIVATE_API``. An SDK upgrade that renames or removes one fails here,
naming it, before anything subtler breaks.
"""

import importlib

import pytest
from mcp.server.mcpserver import MCPServer

PRIVATE_API = (
    ("mcp.server.mcpserver", "MCPServer._lowlevel_server"),
    ("mcp.server._otel", "OpenTelemetryMiddleware"),
    ("mcp.server.subscriptions", "_honored_subset"),
)


def _probe_instances():
    """Attributes set in ``__init__`` exist only on instances: one of each class named above."""
    return {"MCPServer": MCPServer(name="probe")}


@pytest.mark.parametrize(("module", "attribute"), PRIVATE_API, ids=[f"{m}:{a}" for m, a in PRIVATE_API])
def test_each_private_name_the_adapter_uses_exists(module, attribute):
    try:
        found = importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"the mcp SDK no longer has the module {module} ({exc}); update mcp_app/engine/sdk.py")
    owner, _, name = attribute.rpartition(".")
    if owner:
        found = _probe_instances().get(owner, getattr(found, owner, None))
    assert hasattr(found, name), f"the mcp SDK no longer has {module}.{attribute}; update mcp_app/engine/sdk.py"


def test_the_adapter_lists_exactly_these():
    """The adapter's own list and this test's agree, so neither can drift from the other."""
    from mcp_app.engine import sdk

    assert tuple(sdk.PRIVATE_API) == PRIVATE_API


def test_the_adapter_reaches_the_low_level_server_the_sessions_drive():
    from mcp.server.lowlevel import Server

    from mcp_app.engine import sdk

    assert isinstance(sdk.lowlevel_server(MCPServer(name="probe")), Server)
