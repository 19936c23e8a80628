"""docs/configuration.md documents exactly the environment variables mcpsite/settings.py reads.

The variables are collected from the settings module's source with `ast`: the first
argument of every call to the typed readers of mcpsite/env.py, and any direct
`os.environ.get("X")`, `os.environ["X"]` or `os.getenv("X")`. The documentation's
variables are the backticked names in the first cell of its table rows. A variable read
but not documented fails the first test; a documented variable no longer read (a dead
row) fails the second. Plain pytest: no database, no Django set-up.
"""

import ast
import re
from pathlib import Path

ENV_READERS = {"env_str", "env_bool", "env_int", "env_list", "env_seconds", "env_choice"}
OS_GETTERS = {"get", "getenv", "setdefault", "pop"}
# A table row whose first cell is a backticked variable name: | `NAME` | ...
DOCUMENTED_ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|")


def project_root() -> Path:
    """The directory holding manage.py, found from this file wherever it sits under tests/."""
    for directory in Path(__file__).resolve().parents:
        if (directory / "manage.py").is_file():
            return directory
    raise AssertionError(f"no manage.py in any parent of {__file__}")


def _is_os(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "os"


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and _is_os(node.value)


def _first_string(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def variables_read_by_settings() -> set[str]:
    source = (project_root() / "mcpsite" / "settings.py").read_text()
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            reader = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            direct = isinstance(func, ast.Attribute) and (
                (func.attr in OS_GETTERS and _is_os_environ(func.value))  # os.environ.get("X")
                or (func.attr == "getenv" and _is_os(func.value))  # os.getenv("X")
            )
            if reader in ENV_READERS or direct:
                name = _first_string(node)
                if name is not None:
                    names.add(name)
        elif (
            isinstance(node, ast.Subscript)  # os.environ["X"]
            and _is_os_environ(node.value)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            names.add(node.slice.value)
    return names


def variables_documented() -> set[str]:
    text = (project_root() / "docs" / "configuration.md").read_text()
    return {match.group(1) for line in text.splitlines() if (match := DOCUMENTED_ROW.match(line.strip()))}


def test_every_variable_settings_reads_is_documented():
    read = variables_read_by_settings()
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "DJANGO_DEBUG"} <= read, (
        f"the parser found only {sorted(read)} in mcpsite/settings.py; has the way it reads the environment changed?"
    )
    assert len(read) >= 10, sorted(read)
    missing = sorted(read - variables_documented())
    assert not missing, (
        f"read by mcpsite/settings.py but not in a table row of docs/configuration.md: {', '.join(missing)}"
    )


def test_every_documented_variable_is_read_by_settings():
    documented = variables_documented()
    assert documented, "docs/configuration.md has no table row starting with a backticked variable name"
    dead = sorted(documented - variables_read_by_settings())
    assert not dead, f"documented in docs/configuration.md but not read by mcpsite/settings.py: {', '.join(dead)}"
