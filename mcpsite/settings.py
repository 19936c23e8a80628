"""Django settings for the MCP server.

Everything that varies between machines comes from the environment, read in
the one typed block below; the rest of the file only derives from it.
Production safety (secret key, public URL, hosts) is enforced by the system
checks in ``mcpsite/checks.py``, which also run when daphne loads the ASGI app.
"""

import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url

from mcp_app.protocol.names import MCP_REQUEST_HEADERS
from mcpsite.env import env_bool, env_choice, env_int, env_list, env_seconds, env_str
from oauth_app.origins import parse_public_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"  # local state of a development install (SQLite, dev secret key)

# ---------------------------------------------------------------------------
# Environment: the one place configuration comes in.
# ---------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", True)
_SECRET_KEY_ENV = env_str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
# External origin of this server (scheme://host[:port]). Unset: taken from each request.
MCP_PUBLIC_URL = parse_public_url(env_str("MCP_PUBLIC_URL"))
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
REDIS_URL = env_str("REDIS_URL")
ACCESS_TOKEN_TTL = env_int("MCP_ACCESS_TOKEN_TTL", 3600, minimum=1)
REFRESH_TOKEN_TTL = env_int("MCP_REFRESH_TOKEN_TTL", 30 * 24 * 3600, minimum=60)
AUTHORIZATION_CODE_TTL = env_int("MCP_AUTHORIZATION_CODE_TTL", 60, minimum=1)
# A client a person already allowed the requested scopes (and has not revoked since) gets its code
# without the consent page (oauth_app/consent.py). 0: the page every time.
MCP_REMEMBER_CONSENT = env_bool("MCP_REMEMBER_CONSENT", True)
# Dynamic client registrations accepted per client address per hour.
MCP_REGISTRATIONS_PER_HOUR = env_int("MCP_REGISTRATIONS_PER_HOUR", 30, minimum=1)
# Client ID Metadata Documents (CIMD; MCP 2026-07-28, draft-ietf-oauth-client-id-metadata-document):
# a client whose client_id is an https URL is described by the JSON document at that URL. DOT
# fetches it on first sight and again when its cache lifetime ends (oauth2_provider.cimd:
# public addresses only, no redirects, one deadline, a size cap); any failure makes the client
# unknown. Defaults are DOT's. The fetch runs inside the /authorize or /token request that
# names the client; the timeout and the cap on fetches in flight bound what anonymous requests
# can make this server do (SECURITY.md).
MCP_CIMD_ENABLED = env_bool("MCP_CIMD_ENABLED", True)
# Hosts allowed to publish documents, in ALLOWED_HOSTS syntax ("app.example", ".example.com"); empty: any.
MCP_CIMD_ALLOWED_HOSTS = env_list("MCP_CIMD_ALLOWED_HOSTS", [])
MCP_CIMD_FETCH_TIMEOUT_SECONDS = env_seconds("MCP_CIMD_FETCH_TIMEOUT_SECONDS", 5.0)
MCP_CIMD_MAX_DOCUMENT_BYTES = env_int("MCP_CIMD_MAX_DOCUMENT_BYTES", 16 * 1024, minimum=1024)
# A document's Cache-Control max-age is clamped to [min, max]; no max-age means max.
MCP_CIMD_MIN_AGE_SECONDS = env_int("MCP_CIMD_MIN_AGE_SECONDS", 300, minimum=0)
MCP_CIMD_MAX_AGE_SECONDS = env_int("MCP_CIMD_MAX_AGE_SECONDS", 86400, minimum=1)
# Fetches in flight per process; one more is refused at once (not queued). 0: no cap.
MCP_CIMD_MAX_CONCURRENT_FETCHES = env_int("MCP_CIMD_MAX_CONCURRENT_FETCHES", 10, minimum=0)
# After a failed fetch the URL is refused without fetching for this long.
MCP_CIMD_FAILURE_BACKOFF_SECONDS = env_int("MCP_CIMD_FAILURE_BACKOFF_SECONDS", 60, minimum=0)
# Tests only: a CA file; documents on loopback hosts are then fetched, trusting that CA
# (tests/support/cimd.py). Check mcpsite.E007 refuses it with debug off.
MCP_CIMD_TEST_LOOPBACK_CA = env_str("MCP_CIMD_TEST_LOOPBACK_CA")
# Abuse limits on the OAuth endpoints (oauth_app/ratelimit.py) and logins (django-axes, below).
# Requests per client address per minute on the other OAuth endpoints; past it 429 + Retry-After.
# A client refreshes its token about once an access-token lifetime and one authorization takes
# about three /authorize requests, so these leave room for a whole office behind one NAT.
MCP_TOKEN_REQUESTS_PER_MINUTE = env_int("MCP_TOKEN_REQUESTS_PER_MINUTE", 60, minimum=1)
MCP_AUTHORIZE_REQUESTS_PER_MINUTE = env_int("MCP_AUTHORIZE_REQUESTS_PER_MINUTE", 60, minimum=1)
MCP_REVOKE_REQUESTS_PER_MINUTE = env_int("MCP_REVOKE_REQUESTS_PER_MINUTE", 60, minimum=1)
# Requests to the RFC 7592 client configuration endpoint (/register/<client_id>) per client address
# per minute, counted before the registration access token is checked.
MCP_REGISTRATION_MANAGEMENT_REQUESTS_PER_MINUTE = env_int(
    "MCP_REGISTRATION_MANAGEMENT_REQUESTS_PER_MINUTE", 60, minimum=1
)
# Login lockout: the failed login that makes this many for one username, or from one address
# (two separate counts), locks that username / address: its logins are refused (429 page) until
# MCP_LOGIN_LOCKOUT_MINUTES pass without a try; staff can lift it in the admin (Access attempts).
MCP_LOGIN_FAILURE_LIMIT = env_int("MCP_LOGIN_FAILURE_LIMIT", 5, minimum=1)
MCP_LOGIN_LOCKOUT_MINUTES = env_int("MCP_LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
# MCP transports: request body bound, idle session expiry, SSE keep-alive, sessions per process.
MCP_MAX_BODY_BYTES = env_int("MCP_MAX_BODY_BYTES", 4 * 1024 * 1024, minimum=1024)
# Seconds a request may take to arrive whole (its headers after the request line, and its body);
# a slower sender gets 408 and its connection closed (mcpsite/daphne_requests.py, under daphne).
MCP_REQUEST_READ_SECONDS = env_seconds("MCP_REQUEST_READ_SECONDS", 30.0)
MCP_SESSION_IDLE_SECONDS = env_int("MCP_SESSION_IDLE_SECONDS", 1800, minimum=1)
MCP_SSE_PING_SECONDS = env_int("MCP_SSE_PING_SECONDS", 20, minimum=1)
MCP_MAX_SESSIONS = env_int("MCP_MAX_SESSIONS", 10000, minimum=1)
# ...of which one person may hold this many, and one access token this many (mcp_app/cluster/directory.py),
# and the subscriptions/listen streams one person may hold open (stateless era), each per worker.
MCP_MAX_SESSIONS_PER_USER = env_int("MCP_MAX_SESSIONS_PER_USER", 100, minimum=1)
MCP_MAX_SESSIONS_PER_TOKEN = env_int("MCP_MAX_SESSIONS_PER_TOKEN", 50, minimum=1)
MCP_MAX_LISTEN_STREAMS_PER_USER = env_int("MCP_MAX_LISTEN_STREAMS_PER_USER", 20, minimum=1)
# This worker's name in the session ids it issues ("<route>.<random>"), so a proxy can send a
# session's requests to the worker that holds it (deploy/nginx); the systemd unit sets its port.
MCP_WORKER_ROUTE = env_str("MCP_WORKER_ROUTE")
# Resumability: SSE events kept per session for Last-Event-ID, and the reconnect delay clients are told.
MCP_EVENT_LOG_SIZE = env_int("MCP_EVENT_LOG_SIZE", 1000, minimum=1)
# ...and bytes: per session, and for all the sessions of a process together (mcp_app/sessions/event_log.py).
MCP_EVENT_LOG_BYTES = env_int("MCP_EVENT_LOG_BYTES", 1 << 20, minimum=1024)
MCP_EVENT_LOG_PROCESS_BYTES = env_int("MCP_EVENT_LOG_PROCESS_BYTES", 64 << 20, minimum=1 << 20)
MCP_SSE_RETRY_MS = env_int("MCP_SSE_RETRY_MS", 1000, minimum=0)
# Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses); nobody else's are.
MCP_TRUSTED_PROXIES = env_list("MCP_TRUSTED_PROXIES", [])
# Extra origins allowed to call the MCP endpoints from a browser (same-origin always passes).
MCP_ALLOWED_ORIGINS = env_list("MCP_ALLOWED_ORIGINS", [])
# The audit trail (mcp_app/engine/audit.py) records each tool call's arguments, as JSON cut to this many characters.
MCP_AUDIT_ARGUMENTS = env_bool("MCP_AUDIT_ARGUMENTS", True)
MCP_AUDIT_ARGUMENT_CHARS = env_int("MCP_AUDIT_ARGUMENT_CHARS", 2000, minimum=1)
# A call is answered once its audit row is committed (an answered call is a recorded call, even if the
# process dies right after). Off: answered first, its row committed by the next write, which gathers
# rows for 5 ms; a crash loses the rows not yet committed, at most MCP_AUDIT_MAX_UNCOMMITTED answered
# ones, because past that many a call waits for its row (docs/performance.md, "Durability").
MCP_AUDIT_WAIT_FOR_COMMIT = env_bool("MCP_AUDIT_WAIT_FOR_COMMIT", True)
MCP_AUDIT_MAX_UNCOMMITTED = env_int("MCP_AUDIT_MAX_UNCOMMITTED", 1000, minimum=1)
# tools/call limits (mcp_app/engine/limits.py).
# Calls per access token per minute (shared through Redis when REDIS_URL is set); 0: no limit.
MCP_TOOL_CALLS_PER_MINUTE = env_int("MCP_TOOL_CALLS_PER_MINUTE", 600, minimum=0)
# Calls running at once in one session; one more is refused. 0: no limit.
MCP_MAX_CONCURRENT_CALLS_PER_SESSION = env_int("MCP_MAX_CONCURRENT_CALLS_PER_SESSION", 16, minimum=0)
# Who may call a tool whose declaration names no rule (mcp_app/engine/access.py): "everyone" signed
# in, or "permission": the tool's own permission (mcp_app.call_<name>), granted in the admin.
MCP_TOOL_ACCESS = env_choice("MCP_TOOL_ACCESS", "everyone", ("everyone", "permission"))
# Seconds a person's permissions are trusted per worker before they are read again (admin changes
# also make every worker forget them at once).
MCP_TOOL_ACCESS_CACHE_SECONDS = env_seconds("MCP_TOOL_ACCESS_CACHE_SECONDS", 5.0)
# Seconds a tool call may run; then it is cancelled and answered as a tool error ("timed out").
MCP_TOOL_CALL_TIMEOUT_SECONDS = env_seconds("MCP_TOOL_CALL_TIMEOUT_SECONDS", 60.0)
# Tool calls run as tasks (the io.modelcontextprotocol/tasks extension, mcp_app/engine/tasks/).
# Seconds a task is kept from its creation (its ttlMs); then it is forgotten (housekeeping deletes it).
MCP_TASK_TTL_SECONDS = env_int("MCP_TASK_TTL_SECONDS", 3600, minimum=1)
# Seconds a task's call may run (instead of MCP_TOOL_CALL_TIMEOUT_SECONDS); at most MCP_TASK_TTL_SECONDS.
MCP_TASK_TIMEOUT_SECONDS = env_seconds("MCP_TASK_TIMEOUT_SECONDS", 1800.0)
# The polling interval tasks suggest to clients (pollIntervalMs), in milliseconds.
MCP_TASK_POLL_INTERVAL_MS = env_int("MCP_TASK_POLL_INTERVAL_MS", 1000, minimum=1)
# Unfinished tasks one person may have at once; one more tools/call that would start a task is refused.
MCP_MAX_ACTIVE_TASKS_PER_USER = env_int("MCP_MAX_ACTIVE_TASKS_PER_USER", 10, minimum=1)
# Seconds a validated bearer token is trusted without asking the database again. Revocations are
# announced to every worker at once (oauth_app/revocations.py); this bounds a lost announcement.
# 0: look every request up.
MCP_TOKEN_CACHE_SECONDS = env_int("MCP_TOKEN_CACHE_SECONDS", 30, minimum=0)
# The mcp SDK wraps every request in an OpenTelemetry span: a no-op until an OTel SDK and exporter
# are installed, yet about 0.1 ms of CPU per call (12% of a tools/call). Off unless asked for.
MCP_OPENTELEMETRY = env_bool("MCP_OPENTELEMETRY", False)
# Engine extensions: import paths of modules whose `install(server, features)` adds tools, resources
# or prompts (mcp_app/engine/extensions.py). The tests load the conformance suite's fixtures this way.
MCP_EXTENSIONS = env_list("MCP_EXTENSIONS", [])
# Soak runs only: trace allocations with this many frames; SIGUSR2 writes a snapshot (mcpsite/memory_trace.py).
MCP_TRACEMALLOC = env_int("MCP_TRACEMALLOC", 0, minimum=0)
MCP_TRACEMALLOC_DIR = env_str("MCP_TRACEMALLOC_DIR", ".")
# Seconds between returns of the C allocator's free memory to the system (mcpsite/allocator.py);
# without them a server's thread arenas hold freed memory resident. 0: never.
MCP_MALLOC_TRIM_SECONDS = env_int("MCP_MALLOC_TRIM_SECONDS", 60, minimum=0)
# HSTS on HTTPS responses; on by default only when debug is off (a development http://localhost must not be pinned).
MCP_HSTS_SECONDS = env_int("MCP_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600, minimum=0)
MCP_HSTS_INCLUDE_SUBDOMAINS = env_bool("MCP_HSTS_INCLUDE_SUBDOMAINS", True)
# `manage.py housekeeping`: dynamically registered clients that never got a token are removed
# after this many days; tool-call and auth-event audit rows after MCP_AUDIT_RETENTION_DAYS. 0: keep.
MCP_UNUSED_CLIENT_DAYS = env_int("MCP_UNUSED_CLIENT_DAYS", 7, minimum=0)
MCP_AUDIT_RETENTION_DAYS = env_int("MCP_AUDIT_RETENTION_DAYS", 90, minimum=0)


def _development_secret_key() -> str:
    """A random key kept in var/ so development sessions survive restarts."""
    path = VAR_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    VAR_DIR.mkdir(exist_ok=True)
    key = secrets.token_urlsafe(50)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


# With debug off a missing key stays empty and check mcpsite.E001 refuses to start.
SECRET_KEY = _SECRET_KEY_ENV or (_development_secret_key() if DEBUG else "")

# ---------------------------------------------------------------------------
# Django
# ---------------------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",  # serves `manage.py runserver` over ASGI
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",  # login lockout (settings in the "Login lockout" block below)
    "channels",
    "corsheaders",
    "oauth2_provider",
    "mcpsite.apps.SiteConfig",
    "oauth_app",
    "mcp_app",
    "notes",  # an example app offering tools on its own data (notes/mcp_tools.py)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "mcpsite.reachability.DatabaseUnavailable",  # a lost database: 503 with Retry-After, never 500
    "csp.middleware.CSPMiddleware",  # Content-Security-Policy (CONTENT_SECURITY_POLICY below)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Keep last (django-axes): it turns a refused login into the lockout page, which then
    # passes back out through every middleware above and gets their headers.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mcpsite.urls"
ASGI_APPLICATION = "mcpsite.asgi.application"
APPEND_SLASH = False  # OAuth and MCP paths are exact; a redirect would drop POST bodies

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that does not answer fails a request (and /healthz) fast instead of hanging it.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
    # A connection kept from before a database restart is checked (and replaced) before it is used
    # again, instead of failing its first request with 503: one cheap query per request that uses it.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Each request's sync code runs on a thread and connection of its own. A transaction begun
    # DEFERRED reads, then writes; SQLite cannot let it wait for another writer (that could
    # deadlock) and fails it at once with "database is locked", so two code exchanges or refreshes
    # at once would answer 500. IMMEDIATE takes the write lock at BEGIN, where SQLite can wait,
    # up to `timeout` seconds, for the other writer to commit.
    DATABASES["default"].setdefault("OPTIONS", {}).update(transaction_mode="IMMEDIATE", timeout=20)
    # Write-ahead log: readers never wait for the writer, and a commit appends to the log instead
    # of rewriting pages through a rollback journal. With synchronous=NORMAL a commit is not
    # flushed to disk on its own (the log is, at each checkpoint): a crash of the process loses
    # nothing, a power cut or OS crash can lose the last commits before it, never corrupts the
    # file. FULL flushes every commit (docs/performance.md measures both).
    SQLITE_SYNCHRONOUS = env_choice("SQLITE_SYNCHRONOUS", "normal", ("normal", "full"))
    # Checkpoints (the log copied back and flushed) run off the calls' path, about once a second
    # while the audit writes (mcp_app/engine/sqlite_checkpoints.py); the one a commit runs itself,
    # in the call that waits for it, only past 10,000 pages instead of SQLite's 1,000.
    SQLITE_AUTOCHECKPOINT_PAGES = 10_000
    DATABASES["default"]["OPTIONS"]["init_command"] = (
        f"PRAGMA journal_mode=WAL; PRAGMA synchronous={SQLITE_SYNCHRONOUS}; "
        f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}"
    )
    # The test database is a file as well (Django's default is in memory with a shared cache, where a
    # write that meets another thread's table lock fails at once, "database table is locked",
    # instead of waiting `timeout` as above): the tests see the locking the server has.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"mcp-test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# axes first: it refuses a locked-out login before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "landing"
LOGOUT_REDIRECT_URL = None  # show "You are logged out" (templates/registration/logged_out.html)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"  # `collectstatic` target for production
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on a missing directory
WHITENOISE_USE_FINDERS = True  # serve app static files without a collectstatic step

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# "same-origin", not "no-referrer": under no-referrer browsers send `Origin: null` on form
# posts and Django's CSRF check refuses every login and consent. The redirects that carry
# authorization codes say `no-referrer` themselves (oauth_app/views/authorize.py).
SECURE_REFERRER_POLICY = "same-origin"
# Browser-side protections.
# HSTS goes on HTTPS responses only (Django's SecurityMiddleware); behind nginx a request counts
# as HTTPS through X-Forwarded-Proto from MCP_TRUSTED_PROXIES. No SECURE_SSL_REDIRECT: nginx
# terminates TLS and redirects port 80 itself, and the workers listen on loopback only.
SECURE_HSTS_SECONDS = MCP_HSTS_SECONDS
SECURE_HSTS_INCLUDE_SUBDOMAINS = MCP_HSTS_INCLUDE_SUBDOMAINS
# No page has inline script or style; only the admin runs scripts, from /static/. The consent
# page adds its client's redirect origin to form-action (oauth_app/views/authorize.py): browsers
# apply form-action to the redirect that follows the consent POST.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    },
}

# Browser-based clients (the MCP Inspector) discover, register and fetch tokens
# cross-origin. These endpoints take no cookies, so any origin may call them.
CORS_URLS_REGEX = r"^/(\.well-known/.+|token|revoke|register(/.+)?)$"
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_HEADERS = [name.lower() for name in MCP_REQUEST_HEADERS]

# Every channel this process creates shares one prefix: channels_redis serialises receives per
# prefix and process, so a second prefix would wait behind the worker door's blocking read.
CHANNEL_PREFIX = "mcp"
# Redis down must mean fast errors (503), never hung requests: connections time out quickly.
REDIS_CONNECT_TIMEOUT_SECONDS = 2
if REDIS_URL:
    from redis import exceptions as redis_exceptions
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_SECONDS,
                        # Above channels_redis's 5 s blocking read, so an idle receive is not an error.
                        "socket_timeout": 10,
                        # A connection left from before a Redis restart is retried once on a new one.
                        "retry": AsyncRetry(NoBackoff(), 1),
                        "retry_on_error": [redis_exceptions.ConnectionError],
                    }
                ],
                "capacity": 1000,  # per channel; a worker's door past this answers ChannelFull (503)
                "expiry": 30,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_SECONDS,
                "socket_timeout": REDIS_CONNECT_TIMEOUT_SECONDS,
                "retry": Retry(NoBackoff(), 1),
                "retry_on_error": [redis_exceptions.ConnectionError],
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# ---------------------------------------------------------------------------
# Login lockout (django-axes); the OAuth endpoints' rate limits are oauth_app/ratelimit.py's
# ---------------------------------------------------------------------------
# Failures are kept in the database (AccessAttempt), so every worker sees the same
# count without Redis; staff see them, and lift a lockout by deleting the attempt,
# under "Axes > Access attempts" in the admin (or `manage.py axes_reset_username NAME`).
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = MCP_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=MCP_LOGIN_LOCKOUT_MINUTES)
# Two independent counts: one per username (guessing one account from many addresses)
# and one per address (one address trying many accounts).
AXES_LOCKOUT_PARAMETERS = [["username"], ["ip_address"]]
# The address is REMOTE_ADDR as mcpsite/proxy_headers.py left it (the real client when the
# sender is a trusted proxy); axes must not read X-Forwarded-For itself.
AXES_CLIENT_IP_CALLABLE = "oauth_app.client_address.client_address"
AXES_LOCKOUT_CALLABLE = "mcpsite.login_lockout.lockout_response"  # 429 page with Retry-After
# A success does not wipe the failures: otherwise someone with one valid account could
# reset the count of the address they are guessing other accounts from.
AXES_RESET_ON_SUCCESS = False
# Successful logins go to the auth event trail, not to a second, unbounded axes table.
AXES_DISABLE_ACCESS_LOG = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # A refused Host or oversize body is one line, not a traceback (mcpsite/log_filters.py).
    "filters": {"security_one_line": {"()": "mcpsite.log_filters.SecurityRefusalsOnOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["security_one_line"]}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        # DOT logs request details (including codes) at DEBUG; keep it above that.
        "oauth2_provider": {"level": "INFO"},
        "django.request": {"level": "ERROR"},
    },
}

# ---------------------------------------------------------------------------
# OAuth 2.1 authorization server (django-oauth-toolkit, configured, not rewritten)
# ---------------------------------------------------------------------------
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth_app.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_DEVICE_GRANT_MODEL = "oauth2_provider.DeviceGrant"
MCP_SCOPE = "mcp"
# A refresh sent again with the same refresh token within this many seconds of its rotation (a
# client retrying after a time-out) gets a new pair in the same family instead of revoking the
# family (oauth_app/validators.py). 0: every reuse revokes the family.
MCP_REFRESH_GRACE_SECONDS = env_int("MCP_REFRESH_GRACE_SECONDS", 10, minimum=0)

OAUTH2_PROVIDER = {
    "SCOPES": {MCP_SCOPE: "Use the tools on this MCP server as you"},
    "DEFAULT_SCOPES": [MCP_SCOPE],
    # The server's own scope and those tools declare (oauth_app/scopes.py).
    "SCOPES_BACKEND_CLASS": "oauth_app.scopes.ToolScopes",
    "OAUTH2_VALIDATOR_CLASS": "oauth_app.validators.MCPOAuth2Validator",
    "OAUTH2_BACKEND_CLASS": "oauth_app.backends.MCPOAuthLibCore",
    "ACCESS_TOKEN_EXPIRE_SECONDS": ACCESS_TOKEN_TTL,
    "REFRESH_TOKEN_EXPIRE_SECONDS": REFRESH_TOKEN_TTL,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": AUTHORIZATION_CODE_TTL,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    # DOT's grace answers a retry with the first tokens, impossible with hashed storage (its check E001):
    # MCP_REFRESH_GRACE_SECONDS does it with a sibling pair instead (oauth_app/validators.py).
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "PKCE_REQUIRED": True,
    "REQUEST_APPROVAL_PROMPT": "force",
    # RFC 9700: S256 only, no implicit/password grants, no tokens in query strings,
    # `iss` in authorization responses, tokens stored as SHA-256 checksums only.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    # RFC 8252 §7.3: a loopback redirect matches on any port; `localhost` counts too.
    "ALLOW_LOCALHOST_LOOPBACK": True,
    "DCR_ENABLED": True,
    # MCP clients register anonymously; abuse is bounded by the per-address rate limit.
    "DCR_REGISTRATION_PERMISSION_CLASSES": ("oauth2_provider.dcr.AllowAllDCRPermission",),
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
    # `none` must be listed, or mcp-remote registers itself as a confidential client.
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["none", "client_secret_basic", "client_secret_post"],
    "OIDC_ISS_ENDPOINT": MCP_PUBLIC_URL,
    "OAUTH2_PROTECTED_RESOURCE_IDENTIFIER": MCP_PUBLIC_URL,
    "OAUTH2_PROTECTED_RESOURCE_NAME": "MCP server",
    "ERROR_RESPONSE_WITH_SCOPES": True,
    # Client ID Metadata Documents: the MCP_CIMD_* variables above.
    "CIMD_ENABLED": MCP_CIMD_ENABLED,
    "CIMD_METADATA_FETCHER": (
        "tests.support.cimd.LoopbackTestFetcher"
        if MCP_CIMD_TEST_LOOPBACK_CA
        else "oauth2_provider.cimd.SafeMetadataFetcher"
    ),
    "CIMD_REGISTRATION_PERMISSION_CLASSES": (
        ("oauth2_provider.cimd.HostAllowlistCIMDPermission",)
        if MCP_CIMD_ALLOWED_HOSTS
        else ("oauth2_provider.cimd.AllowAllCIMDPermission",)
    ),
    "CIMD_ALLOWED_HOSTS": MCP_CIMD_ALLOWED_HOSTS,
    "CIMD_FETCH_TIMEOUT_SECONDS": MCP_CIMD_FETCH_TIMEOUT_SECONDS,
    "CIMD_MAX_DOCUMENT_SIZE": MCP_CIMD_MAX_DOCUMENT_BYTES,
    "CIMD_METADATA_MIN_AGE_SECONDS": MCP_CIMD_MIN_AGE_SECONDS,
    "CIMD_METADATA_MAX_AGE_SECONDS": MCP_CIMD_MAX_AGE_SECONDS,
    "CIMD_MAX_CONCURRENT_FETCHES": MCP_CIMD_MAX_CONCURRENT_FETCHES,
    "CIMD_FAILURE_BACKOFF_SECONDS": MCP_CIMD_FAILURE_BACKOFF_SECONDS,
}
