"""The layers of the code, as docs/architecture.md draws them, held by reading every import.

A request flows guards → transport → cluster → sessions → engine → tools, and
each layer of ``mcp_app`` imports only the layers below it (its package
docstring says which). ``oauth_app`` stands on its own, ``mcp_app`` reaches it
through one public module, production code never imports the tests, and only
``mcp_app/engine/sdk.py`` touches the ``mcp`` SDK's private API. Imports inside
functions count as much as those at the top of a module.
"""

import ast
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
PRODUCTION_PACKAGES = ("mcp_app", "oauth_app", "mcpsite", "notes")

# What each layer of mcp_app may import of mcp_app (besides itself).
MCP_APP_LAYERS = {
    "routing": {"guards", "transport"},
    "guards": {"principal", "protocol"},
    # The stateless era has no session: its requests go from the transport to the engine directly.
    # The scope challenge of a tools/call is the guards' 403, answered by the endpoint that reads the body.
    "transport": {"cluster", "sessions", "engine", "guards", "principal", "protocol"},
    "cluster": {"sessions", "engine", "principal", "protocol"},
    "sessions": {"engine", "principal", "protocol"},
    "engine": {"tools", "principal", "protocol", "models"},
    "tools": {"principal", "protocol"},
    "protocol": set(),
    "principal": set(),
    "models": set(),
    "admin": {"models", "engine", "tools"},  # the tools page shows each tool's rule
    "apps": {"tools", "engine"},  # finds every app's mcp_tools.py; connects the access signals
    "mcp_tools": {"tools"},  # this app's own tools, declared like any app's
}
# The modules of oauth_app that mcp_app may import: its public module for resource servers, and its models.
OAUTH_APP_PUBLIC = {"oauth_app.resource_server", "oauth_app.models"}
SDK_ADAPTER = PROJECT / "mcp_app" / "engine" / "sdk.py"


def _modules(package: str) -> list[Path]:
    return sorted(path for path in (PROJECT / package).rglob("*.py") if "migrations" not in path.parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (``from a.b import c`` counts as ``a.b`` and ``a.b.c``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; this project imports absolutely"
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _layer_of(path: Path) -> str:
    """The first part of ``path`` inside mcp_app (``engine`` for mcp_app/engine/audit.py, ``models`` for models.py)."""
    part = path.relative_to(PROJECT / "mcp_app").parts[0]
    return part.removesuffix(".py")


def _mcp_app_layers_imported(path: Path) -> set[str]:
    return {name.split(".")[1] for name in _imports(path) if name.startswith("mcp_app.") and name.count(".") >= 1}


@pytest.mark.parametrize("path", _modules("mcp_app"), ids=lambda p: str(p.relative_to(PROJECT)))
def test_each_layer_of_mcp_app_imports_only_the_layers_below_it(path):
    layer = _layer_of(path)
    if layer == "__init__":
        return  # the package's own docstring
    assert layer in MCP_APP_LAYERS, (
        f"{path}: a module outside the known layers; add it to docs/architecture.md and here"
    )
    imported = _mcp_app_layers_imported(path) - {layer}
    forbidden = imported - MCP_APP_LAYERS[layer]
    assert not forbidden, (
        f"{path} ({layer}) imports {sorted(forbidden)}; {layer} may import only {sorted(MCP_APP_LAYERS[layer])}"
    )


def test_the_layer_rules_of_the_issue_hold_by_construction():
    """engine and sessions never import transport; tools never import transport, sessions or cluster."""
    for low in ("engine", "sessions"):
        assert "transport" not in MCP_APP_LAYERS[low]
    assert not MCP_APP_LAYERS["tools"] & {"transport", "sessions", "cluster", "guards", "engine"}


@pytest.mark.parametrize("package", PRODUCTION_PACKAGES)
def test_production_code_never_imports_the_tests(package):
    offenders = {
        str(path.relative_to(PROJECT)): sorted(
            name for name in _imports(path) if name == "tests" or name.startswith("tests.")
        )
        for path in _modules(package)
    }
    assert not {path: names for path, names in offenders.items() if names}


def test_oauth_app_stands_on_its_own():
    """What oauth_app and the project both need lives in oauth_app; it knows nothing of mcp_app either."""
    offenders = {}
    for path in _modules("oauth_app"):
        names = sorted(name for name in _imports(path) if name.split(".")[0] in ("mcpsite", "mcp_app"))
        if names:
            offenders[str(path.relative_to(PROJECT))] = names
    assert not offenders


def test_mcp_app_reaches_oauth_app_only_through_its_public_module():
    offenders = {}
    for path in _modules("mcp_app"):
        names = {name for name in _imports(path) if name.startswith("oauth_app")}
        # `from oauth_app.resource_server import x` also records oauth_app.resource_server.x
        outside = sorted(
            name for name in names if not any(name == m or name.startswith(m + ".") for m in OAUTH_APP_PUBLIC)
        )
        if outside:
            offenders[str(path.relative_to(PROJECT))] = outside
    assert not offenders


def test_only_the_sdk_adapter_touches_the_sdks_private_api():
    offenders = {}
    for package in PRODUCTION_PACKAGES:
        for path in _modules(package):
            if path == SDK_ADAPTER:
                continue
            tree = ast.parse(path.read_text())
            private = {
                name
                for name in _imports(path)
                if name.split(".")[0] in ("mcp", "mcp_types") and any(part.startswith("_") for part in name.split("."))
            }
            private |= {
                f".{node.attr}"
                for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and node.attr in ("_lowlevel_server", "_otel", "_context_streams")
            }
            if private:
                offenders[str(path.relative_to(PROJECT))] = sorted(private)
    assert not offenders, f"private SDK API outside {SDK_ADAPTER.relative_to(PROJECT)}: {offenders}"


def test_at_most_six_loose_modules_at_the_top_of_mcp_app():
    loose = sorted(path.name for path in (PROJECT / "mcp_app").glob("*.py") if path.name != "__init__.py")
    assert len(loose) <= 6, loose
