"""Fixtures every layer shares: users, live servers, and the scale-out cluster.

The folders say what a test needs: ``oauth/``, ``mcp/`` and ``site/`` run
in-process (a few tests in them start a server and say so with the ``live``
marker), ``live/``, ``cluster/`` and ``browser/`` always start real processes.
See docs/testing.md.
"""

from pathlib import Path

import pytest
from django.core.cache import cache

# Every test in these folders starts real processes (daphne, nginx, Redis, PostgreSQL, Chromium, Node).
LIVE_FOLDERS = ("live", "cluster", "browser")


def pytest_unconfigure(config):
    # Django removes the SQLite test database's file when the run ends, but not the write-ahead
    # log and shared-memory files beside it (mcpsite/settings.py puts the test database in a file).
    from django.conf import settings

    test_database = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if test_database and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        for suffix in ("-wal", "-shm"):
            Path(test_database + suffix).unlink(missing_ok=True)


def pytest_collection_modifyitems(items):
    for item in items:
        folder = Path(item.fspath).parent.name
        if folder in LIVE_FOLDERS:
            item.add_marker(pytest.mark.live)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness buys nothing in tests (users and client secrets).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Each test starts from nothing: the cache, and the OAuth endpoints' rate-limit windows
    # (kept in this process without REDIS_URL).
    from oauth_app.ratelimit import windows

    cache.clear()
    windows.clear()
    yield
    cache.clear()
    windows.clear()


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="correct horse battery staple")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="mallory", password="another long passphrase")


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


# ---------------------------------------------------------------------------
# Live servers: real daphne processes on loopback (tests/support/live_server.py).
# ---------------------------------------------------------------------------
from tests.support.live_server import LiveServer, prepare_template, start_live_server  # noqa: E402


@pytest.fixture(autouse=True)
def _live_server_helper():
    """Disable pytest-django's helper of this name.

    pytest-django has its own `live_server` (an in-process thread server) and an
    autouse helper that, for any test using a fixture called `live_server`, opens
    the test database and calls methods our LiveServer lacks. Ours runs in its
    own process with its own database, so the helper must do nothing.
    """


@pytest.fixture(scope="session")
def live_server_template(tmp_path_factory):
    """A migrated SQLite database with the test user, made once per session."""
    return prepare_template(tmp_path_factory.mktemp("live-template"))


@pytest.fixture(scope="module")
def live_server(live_server_template, tmp_path_factory) -> LiveServer:
    """A daphne server with default settings, shared by the tests of a module."""
    server = start_live_server(live_server_template, tmp_path_factory.mktemp("live-server"))
    yield server
    server.stop()


@pytest.fixture
def live_server_factory(live_server_template, tmp_path_factory):
    """`start(**env)` starts a server with extra environment, e.g. MCP_ACCESS_TOKEN_TTL="1";
    every server it started is stopped after the test."""

    def start(**extra_env: str) -> LiveServer:
        server = start_live_server(live_server_template, tmp_path_factory.mktemp("live-server"), **extra_env)
        start.started.append(server)
        return server

    start.started = []
    yield start
    errors = []
    for server in start.started:
        try:
            server.stop()
        except AssertionError as error:  # stop the others before reporting
            errors.append(error)
    if errors:
        raise errors[0]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the stderr of the test's live servers to its failure report."""
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            started = getattr(value, "started", None) if callable(value) else None  # live_server_factory
            for server in [value, *(started if isinstance(started, list) else [])]:
                if isinstance(server, LiveServer):
                    report.sections.append((f"live server {server.url} stderr", server.stderr()[-20000:]))
                elif isinstance(server, Cluster):  # scale-out: each worker's, nginx's and Redis's logs
                    report.sections.extend(server.diagnostics())
    return report


# ---------------------------------------------------------------------------
# Scale-out: real Redis, PostgreSQL, nginx and daphne workers (tests/support/services.py).
# ---------------------------------------------------------------------------
import shutil  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from tests.support import services  # noqa: E402
from tests.support.services import Cluster  # noqa: E402


@pytest.fixture(scope="session")
def service_base():
    """The directory all scale-out services live in; removed at the end of the session.
    A missing redis-server, nginx or PostgreSQL fails here, naming what installs them."""
    services.require_binaries()
    base = services.service_base_directory()
    yield base
    shutil.rmtree(base, ignore_errors=True)


@dataclass(frozen=True)
class ScaleOutDatabase:
    postgres: services.PostgresServer
    url: str  # DATABASE_URL of the workers
    users: services.Users


@pytest.fixture(scope="session")
def scale_out_database(service_base) -> ScaleOutDatabase:
    """One PostgreSQL server, migrated once, shared by every cluster of the session."""
    postgres = services.PostgresServer(service_base / "postgres")
    try:
        postgres.start()
        url = postgres.create_database("mcp")
        users = services.prepare_database(url)
    except BaseException:
        postgres.stop()
        raise
    yield ScaleOutDatabase(postgres, url, users)
    postgres.stop()


@pytest.fixture
def cluster_factory(service_base, scale_out_database):
    """`start(**env)`: a cluster of its own for a test that breaks it (kills a worker, stops
    Redis) or needs other settings; every cluster it started is stopped after the test."""

    def start(**extra_env: str) -> Cluster:
        directory = services.cluster_directory(service_base)
        cluster = services.start_cluster(directory, scale_out_database.url, scale_out_database.users, **extra_env)
        start.started.append(cluster)
        return cluster

    start.started = []
    yield start
    errors = []
    for cluster in start.started:
        try:
            cluster.stop()
        except AssertionError as error:  # stop the others before reporting
            errors.append(error)
    if errors:
        raise errors[0]
