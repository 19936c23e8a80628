"""Real services for the scale-out tests: Redis, PostgreSQL, nginx and daphne workers.

Each runs as a child process on a free loopback port, with its files in a
directory of its own, and is ready only when it answers (every wait polls a
condition against a deadline). Nothing here is a stand-in: the binaries are
Debian's (`make test` installs them), nginx runs the project's own proxy
snippet (deploy/nginx/mcp-proxy.conf), and the workers are started with the
command of the systemd unit (deploy/systemd/mcp-daphne@.service) and the keys
of the production settings example (deploy/production.env.example).

    base = service_base_directory()                  # world-traversable, see below
    postgres = PostgresServer(base / "postgres"); postgres.start()
    database = postgres.create_database("mcp")        # a postgres://... URL
    users = prepare_database(database)                # migrate once, create the test users
    cluster = start_cluster(base / "c1", database, users, MCP_TOKEN_CACHE_SECONDS="2")
    ...  # cluster.url (nginx), cluster.workers[0].url, cluster.redis.stop() / .start()
    cluster.stop(); postgres.stop()

Nothing here depends on pytest; the fixtures in tests/conftest.py choose the
directories and stop what they started.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from tests.support.live_server import USERNAME, django_shell, environment_without_configuration, random_secret_key

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEPLOY_DIR = PROJECT_DIR / "deploy"
UNIT_FILE = DEPLOY_DIR / "systemd" / "mcp-daphne@.service"
ENV_EXAMPLE = DEPLOY_DIR / "production.env.example"
PROXY_SNIPPET = DEPLOY_DIR / "nginx" / "mcp-proxy.conf"
HOST = "127.0.0.1"
READY_TIMEOUT = 30.0  # seconds for a service to answer after it was started
STOP_TIMEOUT = 10.0  # seconds for a graceful stop before SIGKILL
POLL_INTERVAL = 0.05
INSTALL_HINT = (
    "the scale-out tests need Debian's redis-server, nginx and postgresql; "
    "`make test` installs them (apt-get install redis-server nginx postgresql)"
)


class ServiceError(AssertionError):
    """A service would not start, died, or would not stop; the message carries its log."""


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------
def free_port() -> int:
    """A loopback port nobody listens on right now.

    The services take their port on the command line (nginx and the systemd unit need it
    before they start), so the kernel's choice is read here and released; the window in
    which another process could take it is short, and a clash fails the readiness wait loudly.
    """
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def wait_until(
    condition,
    what: str,
    *,
    timeout: float = READY_TIMEOUT,
    process: subprocess.Popen | None = None,
    log: Path | None = None,
) -> None:
    """Poll `condition()` until it is true; raise ServiceError after `timeout` seconds, or at once
    if `process` exits meanwhile (a crashed service never becomes ready)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise ServiceError(f"{what}: the process exited with status {process.returncode}\n{tail(log)}")
        if time.monotonic() > deadline:
            raise ServiceError(f"{what}: not within {timeout}s\n{tail(log)}")
        time.sleep(POLL_INTERVAL)  # the poll interval of a bounded wait


def tail(path: Path | None, chars: int = 6000) -> str:
    if path is None or not Path(path).exists():
        return "(no log)"
    return f"--- {path} (tail) ---\n" + Path(path).read_text(errors="replace")[-chars:]


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _binary(name: str, *candidates: str) -> str:
    found = shutil.which(name) or next((c for c in candidates if Path(c).exists()), None)
    if found is None:
        raise ServiceError(f"{name} not found: {INSTALL_HINT}")
    return found


def postgres_bin_dir() -> Path:
    """Debian keeps PostgreSQL's server binaries out of PATH, under /usr/lib/postgresql/<major>/bin."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise ServiceError(f"PostgreSQL's server (/usr/lib/postgresql/*/bin/postgres) not found: {INSTALL_HINT}")
    return versions[-1].parent


def require_binaries() -> None:
    """Fail (not skip) with the install hint when a service binary is missing."""
    _binary("redis-server")
    _binary("nginx", "/usr/sbin/nginx")
    postgres_bin_dir()


def service_base_directory() -> Path:
    """A fresh directory for the services' files, which other users may traverse.

    As root, PostgreSQL must run as the `postgres` user and nginx's workers run as
    `nobody`; pytest's own tmp directories (/tmp/pytest-of-root, mode 0700) are closed
    to both, so the services live under a directory of their own."""
    base = Path(tempfile.mkdtemp(prefix="mcp-scale-out-"))
    base.chmod(0o755)
    return base


def cluster_directory(base: Path) -> Path:
    """A fresh directory for one cluster under `base`, traversable by nginx's workers."""
    directory = Path(tempfile.mkdtemp(prefix="cluster-", dir=base))
    directory.chmod(0o755)
    return directory


class _Process:
    """A child process with its output in files (nobody drains a pipe during a test)."""

    def __init__(self, name: str, argv: list[str], directory: Path, *, env=None, cwd=None, user=None):
        self.name, self.argv, self.directory = name, argv, Path(directory)
        self.stdout_path = self.directory / f"{name}.stdout"
        self.stderr_path = self.directory / f"{name}.stderr"
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.popen = subprocess.Popen(
                argv,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd or self.directory,
                # As root, a service that refuses root (PostgreSQL) runs as its own user: Popen
                # switches user in the child before exec, so popen.pid is the service itself
                # (runuser would sit in between and stand in the way of its signals).
                **(dict(user=user, group=user, extra_groups=[]) if user else {}),
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig`, wait; SIGKILL and raise if it did not exit in time."""
        if not self.alive():
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=STOP_TIMEOUT)
            raise ServiceError(
                f"{self.name} ignored signal {sig} for {STOP_TIMEOUT}s; killed\n{tail(self.stderr_path)}"
            ) from None

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up (a crashed machine, an OOM kill)."""
        self.popen.kill()
        self.popen.wait(timeout=STOP_TIMEOUT)


# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------
class RedisServer:
    """redis-server without persistence; stop() and start() again reuse the same port,
    so the workers' REDIS_URL stays valid across a restart."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        self._process: _Process | None = None

    def start(self) -> None:
        argv = [
            _binary("redis-server"),
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]
        self._process = _Process("redis", argv, self.directory)
        wait_until(
            self.answers_ping,
            f"redis-server on port {self.port}",
            process=self._process.popen,
            log=self._process.stdout_path,
        )

    def answers_ping(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            # Down means down: nothing may answer on the port afterwards.
            wait_until(lambda: not _accepts_connections(self.port), f"redis port {self.port} closed")

    def log(self) -> str:
        return tail(self._process.stdout_path if self._process else None)


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------
class PostgresServer:
    """A throw-away cluster: initdb, then `postgres` on a loopback port with its unix socket
    in the data's directory. Loopback TCP uses passwords (scram), as production does."""

    SUPERUSER = "postgres"

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.data = self.directory / "data"
        self.sockets = self.directory / "sockets"
        self.port = free_port()
        self.superuser_password = secrets.token_urlsafe(18)
        # PostgreSQL refuses to run as root; CI runs as root.
        self.user = "postgres" if os.geteuid() == 0 else None
        self._process: _Process | None = None

    def _own(self, path: Path) -> None:
        if self.user:
            shutil.chown(path, self.user, self.user)

    def start(self) -> None:
        bin_dir = postgres_bin_dir()
        self.sockets.mkdir(exist_ok=True)
        self._own(self.directory)
        self._own(self.sockets)
        password_file = self.directory / "superuser-password"
        password_file.write_text(self.superuser_password + "\n")
        self._own(password_file)
        initdb = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.SUPERUSER,
            f"--pwfile={password_file}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]
        init = _Process("initdb", initdb, self.directory, user=self.user)
        try:
            status = init.popen.wait(timeout=120)
        except subprocess.TimeoutExpired:
            init.kill()
            raise ServiceError(f"initdb did not finish in 120s\n{tail(init.stderr_path)}") from None
        password_file.unlink()
        if status != 0:
            raise ServiceError(f"initdb exited {status}\n{tail(init.stderr_path)}\n{tail(init.stdout_path)}")
        self.run()

    def run(self) -> None:
        """Start `postgres` on the data initdb made (again, after `stop`), and wait until it answers."""
        bin_dir = postgres_bin_dir()
        argv = [
            str(bin_dir / "postgres"),
            "-D",
            str(self.data),
            "-h",
            HOST,
            "-p",
            str(self.port),
            "-k",
            str(self.sockets),
            # A test database: durability buys nothing and costs seconds.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ]
        self._process = _Process("postgres", argv, self.directory, user=self.user)
        wait_until(
            self._answers, f"PostgreSQL on port {self.port}", process=self._process.popen, log=self._process.stderr_path
        )

    def url(self, user: str, password: str, database: str) -> str:
        return f"postgres://{user}:{password}@{HOST}:{self.port}/{database}"

    def connect(self, database: str = "postgres", **kwargs):
        import psycopg

        return psycopg.connect(
            host=HOST,
            port=self.port,
            user=self.SUPERUSER,
            password=self.superuser_password,
            dbname=database,
            connect_timeout=2,
            **kwargs,
        )

    def _answers(self) -> bool:
        import psycopg

        try:
            with self.connect() as connection:
                connection.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str) -> str:
        """A role and a database it owns; returns the DATABASE_URL the workers use."""
        from psycopg import sql

        password = secrets.token_urlsafe(18)
        with self.connect(autocommit=True) as connection:
            role = sql.Identifier(name)
            connection.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password)))
            connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), role))
        return self.url(name, password, name)

    def stop(self) -> None:
        if self._process is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to leave.
            self._process.stop(signal.SIGINT)

    def log(self) -> str:
        return tail(self._process.stderr_path if self._process else None)


# Migrate once and create the users the tests sign in as, in one Django start-up. The
# credentials travel in the environment, never on a command line.
_PREPARE = """
import os
from django.contrib.auth import get_user_model
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
User = get_user_model()
User.objects.create_user(username=os.environ["E2E_USERNAME"], password=os.environ["E2E_PASSWORD"])
User.objects.create_superuser(username=os.environ["E2E_STAFF"], password=os.environ["E2E_STAFF_PASSWORD"], email="")
"""
STAFF_USERNAME = "e2e-staff"


@dataclass(frozen=True)
class Users:
    username: str
    password: str
    staff_username: str
    staff_password: str


def prepare_database(database_url: str) -> Users:
    """`manage.py migrate` against PostgreSQL, then the test user and a staff user (for /admin/)."""
    users = Users(USERNAME, secrets.token_urlsafe(18), STAFF_USERNAME, secrets.token_urlsafe(18))
    env = environment_without_configuration() | {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": random_secret_key(),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "DATABASE_URL": database_url,
        "E2E_USERNAME": users.username,
        "E2E_PASSWORD": users.password,
        "E2E_STAFF": users.staff_username,
        "E2E_STAFF_PASSWORD": users.staff_password,
    }
    result = django_shell(_PREPARE, env, timeout=180)
    if result.returncode != 0:
        raise ServiceError(f"migrating PostgreSQL failed ({result.returncode}):\n{result.stderr}{result.stdout}")
    return users


# ---------------------------------------------------------------------------
# daphne workers, as the systemd unit runs them
# ---------------------------------------------------------------------------
def _unit_service_section(path: Path = UNIT_FILE) -> dict[str, str]:
    """The [Service] keys of a systemd unit (the last value of a repeated key wins)."""
    section, values = None, {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def worker_command(port: int) -> tuple[list[str], Path]:
    """The unit's ExecStart for instance `port` (%i), and its working directory, with the
    install root (/srv/mcp) replaced by this checkout and its .venv by the running one."""
    service = _unit_service_section()
    root = service["WorkingDirectory"]
    venv = f"{root}/.venv"

    def local(arg: str) -> str:
        arg = arg.replace("%i", str(port))
        if arg == venv or arg.startswith(venv + "/"):
            return sys.prefix + arg[len(venv) :]
        if arg == root or arg.startswith(root + "/"):
            return str(PROJECT_DIR) + arg[len(root) :]
        return arg

    argv = [local(arg) for arg in shlex.split(service["ExecStart"])]
    if not Path(argv[0]).exists():
        raise ServiceError(f"the unit's ExecStart program {argv[0]} does not exist (from {service['ExecStart']!r})")
    return argv, Path(local(root))


def unit_environment(port: int) -> dict[str, str]:
    """The unit's own `Environment=NAME=value` for instance `port` (one assignment per line)."""
    value = _unit_service_section().get("Environment", "")
    name, _, assigned = value.partition("=")
    return {name: assigned.replace("%i", str(port))} if name else {}


def production_env(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """KEY=VALUE lines of an EnvironmentFile (what systemd reads from /etc/mcp/production.env)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("\"'")
    return values


# One line of daphne's access log: `127.0.0.1:5555 - - [date] "POST /mcp" 200 123`.
_ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<target>[^"]*)" (?P<status>\d+|-)')


@dataclass(frozen=True)
class Access:
    method: str
    target: str  # path with the query string
    status: int | None


class Worker:
    """One daphne worker; its access log is its stdout (daphne writes one line per finished
    response there), Django's log its stderr."""

    def __init__(self, name: str, directory: Path, port: int, env: dict[str, str]):
        self.name, self.port = name, port
        self.url = f"http://{HOST}:{port}"
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.argv, self.cwd = worker_command(port)
        self.env = env | unit_environment(port)
        self._process: _Process | None = None
        self._killed = False

    def start(self) -> None:
        self._process = _Process(self.name, self.argv, self.directory, env=self.env, cwd=self.cwd)

    def wait_ready(self) -> None:
        wait_until(
            self._healthy,
            f"{self.name} ({self.url}) /healthz 200",
            process=self._process.popen,
            log=self._process.stderr_path,
        )

    def _healthy(self) -> bool:
        try:
            return httpx2.get(self.url + "/healthz", timeout=2.0, trust_env=False).status_code == 200
        except httpx2.TransportError:
            return False

    @property
    def pid(self) -> int:
        return self._process.pid

    def alive(self) -> bool:
        return self._process is not None and self._process.alive()

    def kill(self) -> None:
        self._killed = True
        self._process.kill()

    def stop(self) -> None:
        """SIGTERM and wait; raises if the worker had died on its own (not by kill())."""
        if self._process is None:
            return
        status = self._process.popen.poll()
        if status is not None and not self._killed:
            raise ServiceError(f"{self.name} exited by itself with status {status}\n{self.log()}")
        self._process.stop()

    def access_log(self) -> list[Access]:
        text = self._process.stdout_path.read_text(errors="replace") if self._process else ""
        found = (_ACCESS.search(line) for line in text.splitlines())
        return [Access(m["method"], m["target"], None if m["status"] == "-" else int(m["status"])) for m in found if m]

    def log(self) -> str:
        if self._process is None:
            return "(not started)"
        return f"{tail(self._process.stderr_path)}\n{tail(self._process.stdout_path, 3000)}"


# ---------------------------------------------------------------------------
# nginx in front of the workers
# ---------------------------------------------------------------------------
# The test's own http block around the project's snippet: the upstream the snippet expects,
# files inside the prefix, and an access log that names the upstream each request went to
# and the Mcp-Session-Id it carried or created, so a test can prove where a session lived.
_NGINX_CONF = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 512; }}
http {{
    log_format scaleout '$request_method $request_uri $status upstream=$upstream_addr '
                        'session_in=$http_mcp_session_id session_out=$sent_http_mcp_session_id '
                        'agent="$http_user_agent" time=$request_time';
    access_log {prefix}/access.log scaleout;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{upstreams}
    server {{
        listen {host}:{port};
        include {snippet};
    }}
}}
"""


def affinity_upstreams(ports: list[int]) -> str:
    """What deploy/nginx/mcp-site.conf declares for workers 8001 and 8002, for `ports`: the
    pool for new sessions, one upstream per worker (the others as backups) and the map from
    a session id's route (the worker's port, MCP_WORKER_ROUTE) to its worker's upstream."""
    lines = [
        "    upstream mcp_workers {",
        *(f"        server {HOST}:{port};" for port in ports),
        "        keepalive 32;",
        "    }",
    ]
    for port in ports:
        lines += [
            f"    upstream mcp_worker_{port} {{",
            f"        server {HOST}:{port};",
            *(f"        server {HOST}:{other} backup;" for other in ports if other != port),
            "        keepalive 16;",
            "    }",
        ]
    lines += [
        '    map "$http_mcp_session_id $arg_sessionid" $mcp_upstream {',
        "        default mcp_workers;",
        *(f'        "~(^| ){port}\\." mcp_worker_{port};' for port in ports),
        "    }",
    ]
    return "\n".join(lines)


_NGINX_LINE = re.compile(
    r"^(?P<method>\S+) (?P<target>\S+) (?P<status>\d+) upstream=(?P<upstream>.*?) "
    r"session_in=(?P<session_in>\S+) session_out=(?P<session_out>\S+) agent=\"(?P<agent>[^\"]*)\" time=(?P<time>\S+)$"
)


@dataclass(frozen=True)
class ProxiedRequest:
    method: str
    target: str
    status: int
    upstream: str  # the worker that answered (host:port): the last one nginx tried
    session_in: str | None
    session_out: str | None
    agent: str
    seconds: float  # from the request's first byte to the response's last


class Nginx:
    def __init__(self, directory: Path, upstream_ports: list[int]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.upstream_ports = upstream_ports
        self.conf = self.directory / "nginx.conf"
        self._process: _Process | None = None

    def start(self) -> None:
        self.conf.write_text(
            _NGINX_CONF.format(
                prefix=self.directory,
                upstreams=affinity_upstreams(self.upstream_ports),
                host=HOST,
                port=self.port,
                snippet=PROXY_SNIPPET,
            )
        )
        nginx = _binary("nginx", "/usr/sbin/nginx")
        # -e: the error log from the first line on (the compiled-in path may not be writable).
        argv = [
            nginx,
            "-p",
            str(self.directory),
            "-e",
            str(self.directory / "error.log"),
            "-c",
            str(self.conf),
            "-g",
            "daemon off;",
        ]
        self._process = _Process("nginx", argv, self.directory)
        wait_until(
            lambda: _accepts_connections(self.port),
            f"nginx on port {self.port}",
            process=self._process.popen,
            log=self.directory / "error.log",
        )

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(signal.SIGQUIT)  # graceful: finish the open requests

    def access_log(self) -> list[ProxiedRequest]:
        path = self.directory / "access.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        found = (_NGINX_LINE.match(line) for line in lines)
        return [
            ProxiedRequest(
                m["method"],
                m["target"],
                int(m["status"]),
                m["upstream"].split(", ")[-1],
                None if m["session_in"] == "-" else m["session_in"],
                None if m["session_out"] == "-" else m["session_out"],
                m["agent"],
                float(m["time"]),
            )
            for m in found
            if m
        ]

    def log(self) -> str:
        return f"{tail(self.directory / 'error.log')}\n{tail(self.directory / 'access.log', 4000)}"


# ---------------------------------------------------------------------------
# A cluster: its own Redis, N workers, nginx; the PostgreSQL database is shared
# ---------------------------------------------------------------------------
@dataclass
class Cluster:
    """Looks like a LiveServer to the helpers that take one (url, username, password)."""

    url: str
    username: str
    password: str
    users: Users
    database_url: str
    redis: RedisServer
    workers: list[Worker]
    nginx: Nginx
    env: dict[str, str] = field(repr=False)

    def worker_at(self, upstream: str) -> Worker:
        """The worker behind an `upstream` address of nginx's access log."""
        return next(w for w in self.workers if upstream == f"{HOST}:{w.port}")

    def stop(self) -> None:
        """Stop everything, then report the first failure (a worker that ignored SIGTERM...)."""
        errors = []
        for stop in (self.nginx.stop, *(w.stop for w in self.workers), self.redis.stop):
            try:
                stop()
            except AssertionError as error:
                errors.append(error)
        if errors:
            raise errors[0]

    def diagnostics(self) -> list[tuple[str, str]]:
        sections = [(f"{w.name} ({w.url})", w.log()) for w in self.workers]
        return [*sections, ("nginx", self.nginx.log()), ("redis", self.redis.log())]


def start_cluster(directory: Path, database_url: str, users: Users, *, workers: int = 2, **extra_env: str) -> Cluster:
    """Redis, `workers` daphne workers from the systemd unit, nginx with the deploy snippet.

    The workers' environment is the production example with every value replaced by this
    test's: debug off, a random secret, PostgreSQL, Redis, nginx as the public origin and the
    only trusted proxy, plus `extra_env`."""
    directory = Path(directory)
    redis = RedisServer(directory / "redis")
    redis.start()
    ports = [free_port() for _ in range(workers)]
    nginx = Nginx(directory / "nginx", ports)
    env = (
        environment_without_configuration()
        | production_env()
        | {
            "DJANGO_SETTINGS_MODULE": "mcpsite.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": random_secret_key(),  # one key for all workers, as one EnvironmentFile gives
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis.url,
            "MCP_PUBLIC_URL": nginx.url,
            "MCP_TRUSTED_PROXIES": HOST,
            "PYTHONUNBUFFERED": "1",  # the access log (stdout) is read while the worker runs
        }
        | {k: str(v) for k, v in extra_env.items()}
    )
    pool = [Worker(f"worker{i + 1}", directory / f"worker{i + 1}", port, env) for i, port in enumerate(ports)]
    cluster = Cluster(nginx.url, users.username, users.password, users, database_url, redis, pool, nginx, env)
    try:
        for worker in pool:  # all start at once; Django's import is the slow part
            worker.start()
        for worker in pool:
            worker.wait_ready()
        nginx.start()
    except BaseException:
        try:
            cluster.stop()
        except AssertionError:
            pass  # the start failure is the one to report
        raise
    return cluster
