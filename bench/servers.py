"""Starting each server of the benchmark on loopback, pinned to a core.

- `ours`: this project (`mcpsite.asgi`), one worker, authentication on, with
  its own copy of a migrated SQLite database holding the bench user, an OAuth
  client and an access token minted for the servers' origins, under daphne or
  uvicorn; `ours-unguarded` is the same without the bearer guard
  (`bench/unguarded_asgi.py`);
- `sdk`: the SDK's MCPServer (`bench/reference_server.py`), as `MCPServer.run` serves it
  (`sdk-http` stateful, `sdk-stateless` in its stateless mode, `sdk-sse`);
- `floor`: the bare Channels consumers of `bench/floor.py`, under daphne or uvicorn.

Each server runs with its server's default logging (daphne's and uvicorn's
access logs on, as `MCPServer.run` and this project's systemd unit run them),
written to a file.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.live_server import (
    GENEROUS_LIMITS,
    PROJECT_DIR,
    Template,
    environment_without_configuration,
    mint_token,
    prepare_template,
    random_secret_key,
    server_environment,
)

HOST = "127.0.0.1"
# The load's users share one token (one person's many clients, for the benchmark's convenience),
# so the per-token count of calls running at once is off too: 32 users are 32 people here.
BENCH_LIMITS = {**GENEROUS_LIMITS, "MCP_MAX_CONCURRENT_CALLS_PER_SESSION": "0"}
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

__all__ = ["HOST", "Server", "free_port", "mint_token", "prepare_template", "start"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen = field(repr=False)
    log: Path = field(repr=False)
    extra_pids: list[int] = field(default_factory=list)  # processes besides the main one (scale-out)

    @property
    def pids(self) -> list[int]:
        return [self.process.pid, *self.extra_pids]

    @property
    def port(self) -> int:
        return int(self.url.rpartition(":")[2])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)


def _pinned(cpus: set[int] | None):
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def _answers_http(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            sock.sendall(
                b"GET /bench-probe HTTP/1.1\r\nhost: %s:%d\r\nconnection: close\r\n\r\n" % (HOST.encode(), port)
            )
            return sock.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


def launch(
    name: str, command: list[str], env: dict[str, str], port: int, directory: Path, cpus: set[int] | None
) -> Server:
    """Start `command` (which must listen on `port`) and return once it answers HTTP."""
    log = directory / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_pinned(cpus),
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        if _answers_http(port):
            return Server(name, f"http://{HOST}:{port}", process, log)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(
        f"{name} did not answer on port {port} within {START_TIMEOUT}s:\n{log.read_text(errors='replace')[-3000:]}"
    )


def _daphne(app: str, port: int, module: str = "daphne") -> list[str]:
    return [sys.executable, "-m", module, "-b", HOST, "-p", str(port), app]


def _uvicorn(app: str, port: int, *options: str) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "--host", HOST, "--port", str(port), *options, app]


def start(
    name: str,
    port: int,
    directory: Path,
    *,
    template: Template | None = None,
    token: str | None = None,
    cpus: set[int] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Server:
    """Start the server called `name` (see the module docstring) on `port`."""
    directory = Path(directory) / name
    directory.mkdir(parents=True, exist_ok=True)
    if name.startswith("ours"):
        database = directory / "db.sqlite3"
        shutil.copyfile(template.database, database)
        env = server_environment(
            database, random_secret_key(), {"BENCH_TOKEN": token, **BENCH_LIMITS, **(extra_env or {})}
        )
        app = "bench.unguarded_asgi:application" if "unguarded" in name else "mcpsite.asgi:application"
        # Under daphne as `make run` and the systemd unit serve it (mcpsite/serve.py).
        command = _uvicorn(app, port) if "uvicorn" in name else _daphne(app, port, "mcpsite.serve")
    elif name.startswith("sdk"):
        env = environment_without_configuration()
        command = [
            sys.executable,
            "bench/reference_server.py",
            {"sse": "sse", "stateless": "stateless"}.get(name.rpartition("-")[2], "streamable-http"),
            str(port),
        ]
    elif name.startswith("floor"):
        env = environment_without_configuration()
        command = (
            _uvicorn("bench.floor:application", port, "--lifespan", "off")
            if "uvicorn" in name
            else _daphne("bench.floor:application", port)
        )
    else:
        raise ValueError(f"unknown server {name!r}")
    env["PYTHONUNBUFFERED"] = "1"
    return launch(name, command, env, port, directory, cpus)
