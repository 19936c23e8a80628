"""Production refuses insecure settings: system checks with ids and hints."""

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from mcpsite.checks import CONFIGURATION_TAG
from mcpsite.env import env_bool, env_int
from mcpsite.public_url import parse_public_url

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


def test_asgi_startup_refuses_insecure_settings(tmp_path):
    """daphne runs no system checks; the ASGI module does."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "", "DJANGO_ALLOWED_HOSTS": "*",
           "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    result = subprocess.run(
        [sys.executable, "-c", "import mcpsite.asgi"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "mcpsite.E001" in result.stderr
    assert "mcpsite.E005" in result.stderr
