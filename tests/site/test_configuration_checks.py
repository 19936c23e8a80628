"""Production refuses insecure settings: system checks with ids and hints."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from mcpsite.checks import CONFIGURATION_TAG
from mcpsite.env import env_bool, env_int
from oauth_app.origins import parse_public_url
from tests.support.live_server import environment_without_configuration

PROJECT = Path(__file__).resolve().parents[2]
STRONG_KEY = "q8Zt2-JvX1pLmN4rS7uW0yB3eH6kA9cF5gD2hJ8nQ1wE4rT7yU0iO3pL6kJ9hG2fD5s"


def _ids(settings, **overrides):
    for name, value in overrides.items():
        setattr(settings, name, value)
    return {message.id for message in run_checks(tags=[CONFIGURATION_TAG])}


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = STRONG_KEY
    settings.ALLOWED_HOSTS = ["mcp.example.com"]
    settings.MCP_PUBLIC_URL = "https://mcp.example.com"
    return settings


def test_a_sound_production_configuration_passes(production):
    assert _ids(production) == set()


def test_missing_secret_key(production):
    assert "mcpsite.E001" in _ids(production, SECRET_KEY="")


@pytest.mark.parametrize("key", ["short", "django-insecure-" + "x" * 60, "a" * 80])
def test_weak_secret_key(production, key):
    assert "mcpsite.E002" in _ids(production, SECRET_KEY=key)


def test_http_public_url_off_loopback(production):
    assert "mcpsite.E003" in _ids(production, MCP_PUBLIC_URL="http://mcp.example.com")


def test_http_public_url_on_loopback_is_fine(production):
    assert _ids(production, MCP_PUBLIC_URL="http://127.0.0.1:8000") == set()


def test_wildcard_and_empty_hosts(production):
    assert "mcpsite.E005" in _ids(production, ALLOWED_HOSTS=["*"])
    assert "mcpsite.E004" in _ids(production, ALLOWED_HOSTS=[])


def test_worker_route_must_be_a_plain_name(production):
    """The route prefixes session ids and is matched by nginx: a dot or a space would break both."""
    assert _ids(production, MCP_WORKER_ROUTE="8001") == set()
    assert "mcpsite.E006" in _ids(production, MCP_WORKER_ROUTE="a.b")
    assert "mcpsite.E006" in _ids(production, MCP_WORKER_ROUTE="x" * 33)


def test_the_loopback_test_fetcher_is_refused_with_debug_off(production):
    """The fetcher that trusts a test CA and fetches from loopback is for the tests only: a
    production server refuses it however it is named."""
    assert "mcpsite.E007" in _ids(production, MCP_CIMD_TEST_LOOPBACK_CA="/tmp/test-ca.pem")
    production.MCP_CIMD_TEST_LOOPBACK_CA = ""
    loopback = {**production.OAUTH2_PROVIDER, "CIMD_METADATA_FETCHER": "tests.support.cimd.LoopbackTestFetcher"}
    assert "mcpsite.E007" in _ids(production, OAUTH2_PROVIDER=loopback)
    assert "mcpsite.E007" not in _ids(production, DEBUG=True)


def test_cimd_cache_bounds_must_be_in_order(production):
    assert "mcpsite.E008" in _ids(production, MCP_CIMD_MIN_AGE_SECONDS=600, MCP_CIMD_MAX_AGE_SECONDS=60)
    assert "mcpsite.E008" not in _ids(production, MCP_CIMD_MIN_AGE_SECONDS=60, MCP_CIMD_MAX_AGE_SECONDS=60)


def test_debug_stays_quiet(settings):
    assert _ids(settings, DEBUG=True, SECRET_KEY="", ALLOWED_HOSTS=["*"]) == set()


def test_every_check_has_a_hint(production):
    production.SECRET_KEY = ""
    production.ALLOWED_HOSTS = ["*"]
    production.MCP_PUBLIC_URL = "http://mcp.example.com"
    messages = run_checks(tags=[CONFIGURATION_TAG])
    assert len(messages) == 3
    assert all(message.hint for message in messages)


@pytest.mark.parametrize("raw", ["ftp://x", "https://", "https://mcp.example.com/path", "https://u:p@mcp.example.com"])
def test_public_url_must_be_an_origin(raw):
    with pytest.raises(ImproperlyConfigured, match="MCP_PUBLIC_URL"):
        parse_public_url(raw)


def test_public_url_is_normalised():
    assert parse_public_url("https://MCP.Example.com/") == "https://mcp.example.com"


def test_bad_environment_values_name_the_variable(monkeypatch):
    monkeypatch.setenv("DJANGO_DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="DJANGO_DEBUG"):
        env_bool("DJANGO_DEBUG", True)
    monkeypatch.setenv("MCP_ACCESS_TOKEN_TTL", "soon")
    with pytest.raises(ImproperlyConfigured, match="MCP_ACCESS_TOKEN_TTL"):
        env_int("MCP_ACCESS_TOKEN_TTL", 3600)


def _start(command: list[str], tmp_path, **environment: str) -> subprocess.CompletedProcess:
    """Run a server command with ``environment`` on top of a clean one; it must exit by itself."""
    env = environment_without_configuration()
    env.update(DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3", **environment)
    return subprocess.run(command, env=env, cwd=PROJECT, capture_output=True, text=True, timeout=60)


SERVE = [sys.executable, "-m", "mcpsite.serve", "-b", "127.0.0.1", "-p", "0", "mcpsite.asgi:application"]
DAPHNE = [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", "0", "mcpsite.asgi:application"]
IMPORT = [sys.executable, "-c", "import mcpsite.asgi"]


@pytest.mark.parametrize("command", [SERVE, DAPHNE, IMPORT], ids=["mcpsite.serve", "daphne", "import"])
def test_an_unsafe_configuration_is_refused_with_the_checks_and_their_hints(tmp_path, command):
    """daphne runs no system checks; the ASGI module does, and says why in lines, not a traceback."""
    result = _start(command, tmp_path, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="", DJANGO_ALLOWED_HOSTS="*")
    assert result.returncode == 1, result.stderr
    assert "Refusing to start" in result.stderr
    assert "mcpsite.E001: DJANGO_SECRET_KEY is not set." in result.stderr
    assert "mcpsite.E005" in result.stderr
    assert result.stderr.count("HINT:") == 2
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [SERVE, DAPHNE], ids=["mcpsite.serve", "daphne"])
@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MCP_MAX_SESSIONS", "lots", "MCP_MAX_SESSIONS must be an integer, got 'lots'"),
        ("MCP_EXTENSIONS", "no.such.module", "MCP_EXTENSIONS names 'no.such.module', which cannot be imported"),
        ("MCP_EXTENSIONS", "mcp_app.principal", "MCP_EXTENSIONS names 'mcp_app.principal', which has no install("),
        ("SQLITE_SYNCHRONOUS", "off", "SQLITE_SYNCHRONOUS must be one of normal, full, got 'off'"),
    ],
    ids=["integer", "extension-missing", "extension-without-install", "sqlite-synchronous"],
)
def test_a_malformed_variable_is_refused_naming_it(tmp_path, command, variable, value, message):
    result = _start(command, tmp_path, **{variable: value})
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# What a connection of the server's own settings reports (PRAGMA synchronous: 1 NORMAL, 2 FULL).
_SQLITE_MODES = (
    "import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mcpsite.settings'); import django; django.setup(); "
    "from django.db import connection; cursor = connection.cursor(); "
    "print(cursor.execute('PRAGMA journal_mode').fetchone()[0], cursor.execute('PRAGMA synchronous').fetchone()[0])"
)


@pytest.mark.parametrize(("environment", "expected"), [({}, "wal 1"), ({"SQLITE_SYNCHRONOUS": "FULL"}, "wal 2")])
def test_sqlite_runs_with_a_write_ahead_log_and_the_durability_asked_for(tmp_path, environment, expected):
    """docs/performance.md: WAL with synchronous=NORMAL by default (no flush per commit), FULL on request."""
    result = _start([sys.executable, "-c", _SQLITE_MODES], tmp_path, **environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == expected.split()


def test_a_server_with_the_loopback_test_fetcher_and_debug_off_refuses_to_start(tmp_path):
    result = _start(
        IMPORT,
        tmp_path,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=STRONG_KEY,
        DJANGO_ALLOWED_HOSTS="mcp.example.com",
        MCP_CIMD_TEST_LOOPBACK_CA=str(tmp_path / "ca.pem"),
    )
    assert result.returncode == 1, result.stderr
    assert "mcpsite.E007: MCP_CIMD_TEST_LOOPBACK_CA is set with DJANGO_DEBUG off" in result.stderr
    assert result.stderr.count("HINT:") == 1
    assert "Traceback" not in result.stderr


_PRINT_CIMD_SETTINGS = (
    "import json, mcpsite.settings as s; "
    "print(json.dumps({k: v for k, v in s.OAUTH2_PROVIDER.items() if k.startswith('CIMD_')}))"
)


def _cimd_settings_under(tmp_path, **environment: str) -> dict:
    result = _start([sys.executable, "-c", _PRINT_CIMD_SETTINGS], tmp_path, **environment)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_cimd_settings_default_to_dots_and_follow_the_environment(tmp_path):
    """MCP_CIMD_* reach DOT's CIMD settings; unset, they are DOT's own defaults, CIMD on."""
    from oauth2_provider.settings import DEFAULTS

    defaults = _cimd_settings_under(tmp_path)
    assert defaults.pop("CIMD_ENABLED") is True
    assert defaults == {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in DEFAULTS.items()
        if key.startswith("CIMD_") and key != "CIMD_ENABLED"
    }
    tuned = _cimd_settings_under(
        tmp_path,
        MCP_CIMD_ENABLED="0",
        MCP_CIMD_ALLOWED_HOSTS="claude.ai,.example.com",
        MCP_CIMD_FETCH_TIMEOUT_SECONDS="1.5",
        MCP_CIMD_MAX_DOCUMENT_BYTES="8192",
        MCP_CIMD_MIN_AGE_SECONDS="60",
        MCP_CIMD_MAX_AGE_SECONDS="3600",
        MCP_CIMD_MAX_CONCURRENT_FETCHES="0",
        MCP_CIMD_FAILURE_BACKOFF_SECONDS="5",
    )
    assert tuned == {
        "CIMD_ENABLED": False,
        "CIMD_METADATA_FETCHER": "oauth2_provider.cimd.SafeMetadataFetcher",
        "CIMD_REGISTRATION_PERMISSION_CLASSES": ["oauth2_provider.cimd.HostAllowlistCIMDPermission"],
        "CIMD_ALLOWED_HOSTS": ["claude.ai", ".example.com"],
        "CIMD_FETCH_TIMEOUT_SECONDS": 1.5,
        "CIMD_MAX_DOCUMENT_SIZE": 8192,
        "CIMD_METADATA_MIN_AGE_SECONDS": 60,
        "CIMD_METADATA_MAX_AGE_SECONDS": 3600,
        "CIMD_MAX_CONCURRENT_FETCHES": 0,
        "CIMD_FAILURE_BACKOFF_SECONDS": 5,
    }
    with_ca = _cimd_settings_under(tmp_path, MCP_CIMD_TEST_LOOPBACK_CA="/tmp/ca.pem")
    assert with_ca["CIMD_METADATA_FETCHER"] == "tests.support.cimd.LoopbackTestFetcher"


def test_a_task_call_must_end_before_the_task_is_forgotten(production):
    assert "mcpsite.E009" in _ids(production, MCP_TASK_TIMEOUT_SECONDS=7200.0, MCP_TASK_TTL_SECONDS=3600)
    assert "mcpsite.E009" not in _ids(production, MCP_TASK_TIMEOUT_SECONDS=3600.0, MCP_TASK_TTL_SECONDS=3600)
    assert "mcpsite.E009" in _ids(production, DEBUG=True, MCP_TASK_TIMEOUT_SECONDS=61.0, MCP_TASK_TTL_SECONDS=60)


def test_a_public_url_on_a_foreign_host_with_debug_on_is_warned_about(settings):
    settings.DEBUG, settings.ALLOWED_HOSTS = True, ["mcp.example.com", ".example.org"]
    assert "mcpsite.W001" in _ids(settings, MCP_PUBLIC_URL="https://elsewhere.example.net")
    for url in ("https://mcp.example.com", "https://api.example.org", "http://127.0.0.1:8000", "http://localhost"):
        assert "mcpsite.W001" not in _ids(settings, MCP_PUBLIC_URL=url), url
    settings.DEBUG = False  # production refuses what is wrong (E003 and the rest); it does not warn
    assert "mcpsite.W001" not in _ids(settings, MCP_PUBLIC_URL="https://elsewhere.example.net")
