"""Run the real server (daphne + this project) in a subprocess for end-to-end tests.

Each server gets its own SQLite file, copied from a template that was migrated
once per test session (migrating takes seconds; copying a file does not), a
random secret key and production settings (DJANGO_DEBUG=0), so the tests see
what a deployment sees. Nothing here depends on pytest: the fixtures in
``tests/conftest.py`` only choose the directories and stop the servers.

    template = prepare_template(tmp_dir)                  # once per session
    server = start_live_server(template, other_tmp_dir, MCP_ACCESS_TOKEN_TTL="1")
    ...  # server.url, server.username, server.password
    server.stop()
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

PROJECT_DIR = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
USERNAME = "e2e-user"
START_TIMEOUT = 30.0  # seconds for daphne to import Django and answer HTTP
STOP_TIMEOUT = 10.0  # seconds for a graceful SIGTERM shutdown before SIGKILL
POLL_INTERVAL = 0.05

# daphne logs the address it actually bound; with port=0 that is the only way to learn it.
_LISTENING = re.compile(r"Listening on TCP address 127\.0\.0\.1:(\d+)")
# Settings a developer's shell might export; a live server must not inherit them
# (a stray MCP_PUBLIC_URL or REDIS_URL would change what the tests exercise).
_CONFIG_PREFIXES = ("DJANGO_", "MCP_")
_CONFIG_NAMES = {"DATABASE_URL", "REDIS_URL"}


class LiveServerError(AssertionError):
    """The server failed to start, crashed, or would not stop; the message carries its stderr."""


# Limits raised for a server that many clients reach from 127.0.0.1 as one person (the fuzz
# tests, the benchmarks, the soak): the OAuth endpoints' limits are per address, every soak
# client is the same person, and every benchmark user shares one token. The limits stay on
# (not 0), so their code paths are still run and measured.
GENEROUS_LIMITS = {
    "MCP_REGISTRATIONS_PER_HOUR": "1000000",
    "MCP_TOKEN_REQUESTS_PER_MINUTE": "1000000",
    "MCP_AUTHORIZE_REQUESTS_PER_MINUTE": "1000000",
    "MCP_REVOKE_REQUESTS_PER_MINUTE": "1000000",
    "MCP_REGISTRATION_MANAGEMENT_REQUESTS_PER_MINUTE": "1000000",
    "MCP_TOOL_CALLS_PER_MINUTE": "1000000",
    "MCP_MAX_SESSIONS_PER_USER": "1000000",
    "MCP_MAX_SESSIONS_PER_TOKEN": "1000000",
    "MCP_MAX_LISTEN_STREAMS_PER_USER": "1000000",
}


def environment_without_configuration() -> dict[str, str]:
    """This process's environment without the project's settings a developer's shell may export."""
    return {k: v for k, v in os.environ.items() if not (k.startswith(_CONFIG_PREFIXES) or k in _CONFIG_NAMES)}


def server_environment(database: Path, secret_key: str, extra: dict[str, str]) -> dict[str, str]:
    """The environment of a server process: production settings on its own SQLite file, plus ``extra``."""
    return settings_environment(f"sqlite:///{database}", secret_key, extra)  # absolute path: sqlite:////tmp/...


def settings_environment(database_url: str, secret_key: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a process with production settings on ``database_url``, plus ``extra``."""
    env = environment_without_configuration()
    env.update(
        DJANGO_SETTINGS_MODULE="mcpsite.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secret_key,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url,
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def random_secret_key() -> str:
    # 64 characters from a 64-symbol alphabet: passes the mcpsite.E002 strength check.
    return secrets.token_urlsafe(48)


@dataclass(frozen=True)
class Template:
    """A migrated database with the test user in it, copied for each server."""

    database: Path
    username: str
    password: str


def django_shell(script: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `script` in `manage.py shell` (one Django start-up) with `env`; the finished process,
    its output captured as text."""
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# Run inside `manage.py shell -c` (one Django start-up instead of two); the credentials
# come through the environment, not the command line.
_MIGRATE_AND_CREATE_USER = """
import os
from django.contrib.auth import get_user_model
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
get_user_model().objects.create_user(username=os.environ["E2E_USERNAME"], password=os.environ["E2E_PASSWORD"])
"""


def prepare_template(directory: Path) -> Template:
    """Migrate a fresh SQLite file in `directory` and create the test user in it."""
    database = Path(directory) / "template.sqlite3"
    password = secrets.token_urlsafe(18)
    env = server_environment(database, random_secret_key(), {"E2E_USERNAME": USERNAME, "E2E_PASSWORD": password})
    result = django_shell(_MIGRATE_AND_CREATE_USER, env)
    if result.returncode != 0:
        raise LiveServerError(
            f"migrating the template database failed ({result.returncode}):\n{result.stderr}{result.stdout}"
        )
    return Template(database=database, username=USERNAME, password=password)


@dataclass
class LiveServer:
    url: str
    username: str
    password: str
    env: dict[str, str]
    database: Path
    process: subprocess.Popen = field(repr=False)
    stderr_path: Path = field(repr=False)
    _stopped: bool = field(default=False, repr=False)

    def stderr(self) -> str:
        """Everything the server wrote to stderr so far (Django and daphne logs, tracebacks)."""
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, wait, SIGKILL if needed. Raises if the server had already died on its own."""
        if self._stopped:
            return
        self._stopped = True
        crashed = self.process.poll()
        if crashed is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
                raise LiveServerError(
                    f"{self.url} ignored SIGTERM for {STOP_TIMEOUT}s; killed.\n{self.stderr()}"
                ) from None
        elif crashed != 0:
            raise LiveServerError(f"{self.url} exited by itself with status {crashed}:\n{self.stderr()}")


def _fail(process: subprocess.Popen, stderr_path: Path, why: str) -> LiveServerError:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)
    return LiveServerError(f"live server {why}. stderr:\n{stderr_path.read_text(errors='replace')}")


def _answers_http(url: str) -> bool:
    try:
        # trust_env=False: a proxy from the environment must not see (or break) loopback traffic.
        response = httpx2.get(url + "/.well-known/oauth-authorization-server", timeout=2.0, trust_env=False)
        return response.status_code == 200
    except httpx2.TransportError:
        return False


def start_live_server(template: Template, directory: Path, **extra_env: str) -> LiveServer:
    """Copy the template database into `directory` and serve it with daphne on a free loopback port.

    Returns once the server answers HTTP; raises LiveServerError (with stderr) if it does not
    within START_TIMEOUT seconds or exits first.
    """
    directory = Path(directory)
    database = directory / "db.sqlite3"
    shutil.copyfile(template.database, database)
    env = server_environment(database, random_secret_key(), extra_env)
    stderr_path = directory / "daphne.stderr"
    # Files, not pipes: nobody reads a pipe while the test runs, and a full pipe blocks the server.
    with open(stderr_path, "wb") as err, open(directory / "daphne.stdout", "wb") as out:
        process = subprocess.Popen(
            # port=0: the kernel picks a free port atomically; no bind-then-release race.
            [
                sys.executable,
                "-m",
                "mcpsite.serve",
                "--endpoint",
                f"tcp:port=0:interface={HOST}",
                "mcpsite.asgi:application",
            ],
            cwd=PROJECT_DIR,
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )

    deadline = time.monotonic() + START_TIMEOUT
    url = None
    while time.monotonic() < deadline:
        if url is None:
            match = _LISTENING.search(stderr_path.read_text(errors="replace"))
            if match:
                url = f"http://{HOST}:{match.group(1)}"
        if url is not None and _answers_http(url):
            return LiveServer(url, template.username, template.password, env, database, process, stderr_path)
        try:
            # The poll interval doubles as a check that daphne is still alive.
            status = process.wait(timeout=POLL_INTERVAL)
        except subprocess.TimeoutExpired:
            continue
        raise _fail(process, stderr_path, f"exited with status {status} before answering HTTP")
    raise _fail(process, stderr_path, f"did not answer HTTP within {START_TIMEOUT}s (url={url})")


# Run inside `manage.py shell -c`: an OAuth client of the user and one access token bound
# (RFC 8707 `resource`) to every origin named (several servers may share one database).
_MINT_TOKEN = """
import os, secrets
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model, set_token_value
user = get_user_model().objects.get(username=os.environ["MINT_USERNAME"])
application = get_application_model().objects.create(
    name="minted", client_type="public", authorization_grant_type="authorization-code",
    redirect_uris="http://127.0.0.1:33418/callback", user=user)
raw = secrets.token_urlsafe(30)
token = get_access_token_model()(user=user, application=application, scope="mcp",
    resource=os.environ["MINT_RESOURCES"].split(","), expires=timezone.now() + timedelta(hours=6))
set_token_value(token, raw)
token.save()
print("TOKEN=" + raw)
"""


def mint_token(database_url: str, username: str, resources: list[str]) -> str:
    """An access token for `username`, valid for six hours at each of `resources` (the servers'
    origins), written into the database: a token without the OAuth flow."""
    env = environment_without_configuration() | {
        "DJANGO_SETTINGS_MODULE": "mcpsite.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": random_secret_key(),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "DATABASE_URL": database_url,
        "MINT_USERNAME": username,
        "MINT_RESOURCES": ",".join(resources),
    }
    result = django_shell(_MINT_TOKEN, env)
    line = next((line for line in result.stdout.splitlines() if line.startswith("TOKEN=")), None)
    if result.returncode != 0 or line is None:
        raise LiveServerError(f"minting an access token failed:\n{result.stderr}{result.stdout}")
    return line.removeprefix("TOKEN=")
