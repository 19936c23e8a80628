"""Services that do not answer: the server refuses to start (naming the variable), and a
database lost while serving is a 503 with Retry-After, never a 500 (issue "Bounded under
abuse and honest about failure", finding 10)."""

import subprocess
import sys
import time

import pytest

from tests.support.live_server import PROJECT_DIR, environment_without_configuration, random_secret_key
from tests.support.services import free_port

START_BOUND = 60.0  # seconds for a refusal, PostgreSQL's connect timeout (5 s) included, on a loaded machine


def _start(command: list[str], **env: str) -> tuple[subprocess.CompletedProcess, float]:
    environment = environment_without_configuration()
    environment.update(
        DJANGO_SETTINGS_MODULE="mcpsite.settings", DJANGO_SECRET_KEY=random_secret_key(), DJANGO_DEBUG="0", **env
    )
    environment.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1")
    environment.setdefault("MCP_PUBLIC_URL", "http://127.0.0.1:8000")
    started = time.monotonic()
    finished = subprocess.run(
        command, cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, timeout=START_BOUND
    )
    return finished, time.monotonic() - started


ENDPOINT = "tcp:port=0:interface=127.0.0.1"
SERVE = [sys.executable, "-m", "mcpsite.serve", "--endpoint", ENDPOINT, "mcpsite.asgi:application"]
DAPHNE = [sys.executable, "-m", "daphne", "--endpoint", ENDPOINT, "mcpsite.asgi:application"]
UVICORN = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "0", "mcpsite.asgi:application"]


@pytest.mark.live
@pytest.mark.parametrize("command", [SERVE, DAPHNE, UVICORN], ids=["mcpsite.serve", "daphne", "uvicorn"])
@pytest.mark.parametrize("variable", ["DATABASE_URL", "REDIS_URL"])
def test_an_unreachable_service_stops_the_start_naming_the_variable(command, variable, tmp_path):
    nowhere = {
        "DATABASE_URL": f"postgres://nobody:secret-password@127.0.0.1:{free_port()}/mcp",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }[variable]
    env = {variable: nowhere}
    if variable == "REDIS_URL":
        env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    finished, took = _start(command, **env)
    output = finished.stdout + finished.stderr
    assert finished.returncode != 0, output
    assert f"{variable}:" in output and "does not answer" in output, output
    assert "secret-password" not in output  # the URL's password is never printed
    assert "Traceback" not in output or command is UVICORN, output  # uvicorn prints its own lines
    assert took < START_BOUND
