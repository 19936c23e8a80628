"""Production-safety checks on the configuration.

They run with every management command and when the ASGI application loads
(see ``mcpsite/asgi.py``), so daphne and uvicorn refuse insecure settings too.
With ``DJANGO_DEBUG`` on they stay quiet: development runs on defaults.
"""

import logging
import re
import sys
from contextlib import contextmanager
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured
from django.utils.http import is_same_domain

from oauth_app.origins import is_loopback_host

CONFIGURATION_TAG = "mcp_configuration"
_MIN_SECRET_LENGTH = 50
_MIN_SECRET_UNIQUE_CHARACTERS = 5


def _secret_key() -> str:
    try:
        return settings.SECRET_KEY
    except ImproperlyConfigured:  # Django refuses to hand out an empty key
        return ""


@register(Tags.security, CONFIGURATION_TAG)
def check_secret_key(app_configs=None, **kwargs):
    if settings.DEBUG:
        return []
    key = _secret_key()
    if not key:
        return [
            Error(
                "DJANGO_SECRET_KEY is not set.",
                hint="Set DJANGO_SECRET_KEY to a long random value, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(50))'.",
                id="mcpsite.E001",
            )
        ]
    if (
        len(key) < _MIN_SECRET_LENGTH
        or len(set(key)) < _MIN_SECRET_UNIQUE_CHARACTERS
        or key.startswith("django-insecure-")
    ):
        return [
            Error(
                "DJANGO_SECRET_KEY is too weak.",
                hint=f"Use at least {_MIN_SECRET_LENGTH} random characters, not a Django-generated "
                "'django-insecure-' key.",
                id="mcpsite.E002",
            )
        ]
    return []


@register(Tags.security, CONFIGURATION_TAG)
def check_public_url(app_configs=None, **kwargs):
    if settings.DEBUG or not settings.MCP_PUBLIC_URL:
        return []
    parts = urlsplit(settings.MCP_PUBLIC_URL)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return [
            Error(
                f"MCP_PUBLIC_URL {settings.MCP_PUBLIC_URL!r} uses http:// on a non-loopback host.",
                hint="OAuth tokens and codes must travel over TLS: use an https:// public URL "
                "(terminate TLS at the reverse proxy).",
                id="mcpsite.E003",
            )
        ]
    return []


@register(Tags.security, CONFIGURATION_TAG)
def check_public_url_host_in_debug(app_configs=None, **kwargs):
    """With debug on E003 does not apply, and a public URL on a host this server does not answer
    to (not loopback, not in DJANGO_ALLOWED_HOSTS) would bind every token and every OAuth URL to
    a server elsewhere: said, not refused (a developer may mean it, behind a tunnel)."""
    if not settings.DEBUG or not settings.MCP_PUBLIC_URL:
        return []
    host = urlsplit(settings.MCP_PUBLIC_URL).hostname or ""
    allowed = settings.ALLOWED_HOSTS
    if is_loopback_host(host) or "*" in allowed or any(is_same_domain(host, pattern) for pattern in allowed):
        return []
    return [
        CheckWarning(
            f"MCP_PUBLIC_URL {settings.MCP_PUBLIC_URL!r} names a host this server does not answer to.",
            hint="Tokens are bound to MCP_PUBLIC_URL and clients are sent there: set it to this server's own "
            "URL, or add its host to DJANGO_ALLOWED_HOSTS if a tunnel or proxy forwards it here.",
            id="mcpsite.W001",
        )
    ]


@register(Tags.security, CONFIGURATION_TAG)
def check_allowed_hosts(app_configs=None, **kwargs):
    if settings.DEBUG:
        return []
    if not settings.ALLOWED_HOSTS:
        return [
            Error(
                "DJANGO_ALLOWED_HOSTS is empty.",
                hint="List the host names this server answers to, comma-separated.",
                id="mcpsite.E004",
            )
        ]
    if any(host == "*" for host in settings.ALLOWED_HOSTS):
        return [
            Error(
                "DJANGO_ALLOWED_HOSTS contains the wildcard '*'.",
                hint="A wildcard host list lets any Host header through (DNS rebinding, poisoned "
                "absolute URLs); list the real host names.",
                id="mcpsite.E005",
            )
        ]
    return []


# A worker route goes into session ids and is matched by the proxy: letters, digits, `_`, `-`.
_WORKER_ROUTE = re.compile(r"[A-Za-z0-9_-]{1,32}")


@register(CONFIGURATION_TAG)
def check_worker_route(app_configs=None, **kwargs):
    route = settings.MCP_WORKER_ROUTE
    if route and not _WORKER_ROUTE.fullmatch(route):
        return [
            Error(
                f"MCP_WORKER_ROUTE {route!r} is not a route name.",
                hint="Use 1 to 32 letters, digits, '_' or '-' (the systemd unit uses the worker's port).",
                id="mcpsite.E006",
            )
        ]
    return []


@register(Tags.security, CONFIGURATION_TAG)
def check_cimd_test_fetcher(app_configs=None, **kwargs):
    """The loopback fetcher trusts a test CA and fetches from this machine: the server-side
    request forgery DOT's own fetcher exists to prevent. Tests run it in-process or in a
    debug-mode server; production (debug off) never does, whatever names it."""
    if settings.DEBUG:
        return []
    fetcher = str(settings.OAUTH2_PROVIDER.get("CIMD_METADATA_FETCHER", ""))
    if getattr(settings, "MCP_CIMD_TEST_LOOPBACK_CA", "") or fetcher.startswith("tests."):
        return [
            Error(
                "MCP_CIMD_TEST_LOOPBACK_CA is set with DJANGO_DEBUG off: client ID metadata documents "
                "would be fetched from loopback addresses, trusting a test CA.",
                hint="Unset MCP_CIMD_TEST_LOOPBACK_CA; it is for the test suite only.",
                id="mcpsite.E007",
            )
        ]
    return []


@register(CONFIGURATION_TAG)
def check_cimd_cache_bounds(app_configs=None, **kwargs):
    minimum, maximum = settings.MCP_CIMD_MIN_AGE_SECONDS, settings.MCP_CIMD_MAX_AGE_SECONDS
    if minimum > maximum:
        return [
            Error(
                f"MCP_CIMD_MIN_AGE_SECONDS ({minimum}) is above MCP_CIMD_MAX_AGE_SECONDS ({maximum}).",
                hint="The cache lifetime of a client ID metadata document is clamped to [min, max]; "
                "make the minimum at most the maximum.",
                id="mcpsite.E008",
            )
        ]
    return []


@register(CONFIGURATION_TAG)
def check_task_bounds(app_configs=None, **kwargs):
    timeout, ttl = settings.MCP_TASK_TIMEOUT_SECONDS, settings.MCP_TASK_TTL_SECONDS
    if timeout > ttl:
        return [
            Error(
                f"MCP_TASK_TIMEOUT_SECONDS ({timeout:g}) is above MCP_TASK_TTL_SECONDS ({ttl}).",
                hint="A task is forgotten after its TTL; its call must end before that. "
                "Make the timeout at most the TTL.",
                id="mcpsite.E009",
            )
        ]
    return []


class RefusedConfiguration(Exception):
    """The configuration is unsafe or malformed; the message lists why, one check a line."""


def refuse_insecure_configuration() -> None:
    """Raise ``RefusedConfiguration`` if any configuration check fails.

    daphne and uvicorn do not run Django's system checks, so the ASGI module
    calls this to make them refuse the same settings `manage.py` refuses.
    """
    from django.core.checks import run_checks

    messages = run_checks(tags=[CONFIGURATION_TAG])
    for warning in (message for message in messages if not message.is_serious()):
        logging.getLogger("mcpsite.checks").warning("%s: %s HINT: %s", warning.id, warning.msg, warning.hint)
    errors = [message for message in messages if message.is_serious()]
    if errors:
        raise RefusedConfiguration("\n".join(f"{e.id}: {e.msg}\n    HINT: {e.hint}" for e in errors))


@contextmanager
def refuse_to_start_on_bad_configuration(stream=None):
    """Around the loading of the ASGI application: a malformed environment variable
    (``ImproperlyConfigured``) or a failed check ends the process with status 1 and the
    problem on stderr, as lines a person reads, not a traceback."""
    from mcpsite.reachability import ServiceUnreachable

    try:
        yield
    except (ImproperlyConfigured, RefusedConfiguration) as problem:
        print(f"Refusing to start: the configuration is not safe to serve.\n{problem}", file=stream or sys.stderr)
        raise SystemExit(1) from None
    except ServiceUnreachable as problem:
        heading = "Refusing to start: a service the configuration names does not answer."
        print(f"{heading}\n{problem}", file=stream or sys.stderr)
        raise SystemExit(1) from None
