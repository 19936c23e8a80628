"""The guards in front of the MCP endpoints (``mcp_app.guards``), driven as the
ASGI app they are, with tokens from the real OAuth flow.

The tests are synchronous and call the guards through ``async_to_sync``: the
guards' database lookup (thread-sensitive ``database_sync_to_async``) then runs
on the test's own thread and connection, where ``CaptureQueriesContext`` sees
it. ``transaction=True`` because channels closes stale connections around that
lookup, which a test wrapped in a transaction does not survive.
"""

import hashlib
import json
import logging
import secrets
import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model, set_token_value

from mcp_app.guards import PRINCIPAL_SCOPE_KEY, guarded, token_cache
from mcp_app.guards.token_cache import TokenCache
from mcp_app.principal import Principal
from tests.support.oauth_flow import full_flow, register

pytestmark = pytest.mark.django_db(transaction=True)

AccessToken = get_access_token_model()
HOST = "testserver"  # the test client's host: tokens from full_flow are bound to http://testserver
RESOURCE_METADATA = 'resource_metadata="http://testserver/.well-known/oauth-protected-resource"'
INSPECTOR = "http://localhost:6274"


async def echo_principal(scope, receive, send):
    """The app behind the guards: answers with the principal it was handed."""
    principal = scope[PRINCIPAL_SCOPE_KEY]
    body = json.dumps(
        {
            "username": principal.username,
            "client_id": principal.client_id,
            "scopes": sorted(principal.scopes),
            "token_checksum": principal.token_checksum,
        }
    ).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


class Response:
    def __init__(self, raw: dict):
        self.status = raw["status"]
        self.body = raw["body"]
        self.headers: dict[str, list[str]] = {}
        for name, value in raw["headers"]:
            self.headers.setdefault(name.decode().lower(), []).append(value.decode("latin-1"))

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return ", ".join(values) if values else None

    def json(self):
        return json.loads(self.body)


def call(path="/mcp", method="POST", token=None, host=HOST, headers=None) -> Response:
    all_headers = dict(headers or {})
    if host is not None:
        all_headers["Host"] = host
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    raw_headers = [(name.lower().encode(), value.encode("latin-1")) for name, value in all_headers.items()]

    async def run():
        communicator = HttpCommunicator(guarded(echo_principal), method, path, headers=raw_headers)
        response = await communicator.get_response(timeout=5)
        await communicator.wait()
        return response

    return Response(async_to_sync(run)())


def _checksum(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _make_token(user, application, *, scope="mcp", resource=("http://testserver",), expires_in=3600) -> str:
    """An access token row written directly, for shapes the OAuth flow never issues."""
    raw = secrets.token_urlsafe(30)
    token = AccessToken(
        user=user,
        application=application,
        scope=scope,
        resource=list(resource),
        expires=timezone.now() + timedelta(seconds=expires_in),
    )
    set_token_value(token, raw)
    token.save()
    return raw


@pytest.fixture(autouse=True)
def _empty_token_cache():
    token_cache.clear()
    yield
    token_cache.clear()


@pytest.fixture
def flow(logged_in):
    """(client_id, access token) from the real OAuth flow, bound to http://testserver."""
    client_id, tokens = full_flow(logged_in)
    return client_id, tokens["access_token"]


@pytest.fixture
def application(flow):
    return get_application_model().objects.get(client_id=flow[0])


# ---------------------------------------------------------------------------
# Bearer tokens
# ---------------------------------------------------------------------------
def test_valid_token_reaches_the_app_with_its_principal(flow, user):
    client_id, token = flow
    response = call(token=token)
    assert response.status == 200
    assert response.json() == {
        "username": user.username,
        "client_id": client_id,
        "scopes": ["mcp"],
        "token_checksum": _checksum(token),
    }


@pytest.mark.parametrize("path", ["/mcp", "/sse", "/messages?sessionId=abc"])
def test_one_token_serves_every_transport(flow, path):
    assert call(path, token=flow[1]).status == 200


def test_no_token_is_challenged_towards_the_metadata(db):
    response = call()
    assert response.status == 401
    assert response.header("WWW-Authenticate") == f'Bearer scope="mcp",{RESOURCE_METADATA}'
    assert response.json()["error"] == "unauthorized"
    assert response.header("Cache-Control") == "no-store"


def test_other_auth_schemes_are_challenged_like_no_token(db):
    response = call(headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"})
    assert response.status == 401
    assert "error=" not in response.header("WWW-Authenticate")


def test_unknown_token_is_invalid_token(db):
    response = call(token="not-a-token-this-server-issued")
    assert response.status == 401
    challenge = response.header("WWW-Authenticate")
    assert challenge.startswith('Bearer error="invalid_token",error_description="')
    assert challenge.endswith(RESOURCE_METADATA)
    assert response.json()["error"] == "invalid_token"


def test_empty_bearer_is_invalid_request(db):
    response = call(headers={"Authorization": "Bearer "})
    assert response.status == 401
    assert response.json()["error"] == "invalid_request"


def test_token_in_the_query_string_is_refused_and_never_logged(flow, caplog):
    token = flow[1]
    with caplog.at_level(logging.DEBUG):
        alone = call(f"/mcp?access_token={token}")
        with_header = call(f"/messages?sessionId=abc&access_token={token}", token=token)
    for response in (alone, with_header):
        assert response.status == 401
        assert response.json()["error"] == "invalid_request"
        assert 'error="invalid_request"' in response.header("WWW-Authenticate")
    assert caplog.records  # the refusal is logged...
    assert token not in caplog.text  # ...without the token


def test_expired_token(flow):
    AccessToken.objects.filter(token_checksum=_checksum(flow[1])).update(expires=timezone.now() - timedelta(seconds=1))
    response = call(token=flow[1])
    assert response.status == 401
    assert "expired" in response.json()["error_description"]


def test_a_cached_token_costs_no_database_query(flow, django_assert_num_queries):
    """The hot path: once validated, a token is served from the in-process cache."""
    _client_id, token = flow
    with django_assert_num_queries(1):  # the first request looks the token up
        assert call(token=token).status == 200
    with django_assert_num_queries(0):
        assert call(token=token).status == 200


def test_cached_token_is_not_trusted_past_its_expiry(user, application):
    """A cache entry lives min(MCP_TOKEN_CACHE_SECONDS, time left on the token): checked on the
    entry itself, so no test has to wait for a token to expire."""
    token = _make_token(user, application, expires_in=2)
    assert call(token=token).status == 200
    [(fresh_until, _principal)] = token_cache._entries.values()
    assert fresh_until - time.monotonic() <= 2


async def _status_with(token: str) -> int:
    """The status the guards answer a POST /mcp carrying ``token`` with (in this event loop)."""
    headers = [(b"host", HOST.encode()), (b"authorization", f"Bearer {token}".encode())]
    communicator = HttpCommunicator(guarded(echo_principal), "POST", "/mcp", headers=headers)
    response = await communicator.get_response(timeout=5)
    await communicator.wait()
    return response["status"]


def _refused_once_revoked(token: str, revoke) -> None:
    """``token`` works and is cached; ``await revoke()`` deletes it; the announcement reaches the cache,
    which drops the token, and the next request is refused, long before MCP_TOKEN_CACHE_SECONDS."""
    import anyio

    checksum = hashlib.sha256(token.encode()).hexdigest()

    async def scenario():
        assert await _status_with(token) == 200  # validated, cached, and this worker now hears revocations
        assert token_cache.holds(checksum)
        await revoke()
        with anyio.fail_after(5):
            while token_cache.holds(checksum):
                await anyio.lowlevel.checkpoint()  # let the group's receiver run; no clock involved
        assert await _status_with(token) == 401

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)  # the announcement goes out when the deletion commits
def test_a_revoked_token_is_forgotten_by_the_cache_at_once(user, application):
    from django.test import AsyncClient

    token = _make_token(user, application)

    async def revoke():
        revoked = await AsyncClient().post("/revoke", {"token": token, "client_id": application.client_id})
        assert revoked.status_code == 200

    _refused_once_revoked(token, revoke)


def test_revocation_is_immediate_without_the_cache(logged_in, flow, settings):
    settings.MCP_TOKEN_CACHE_SECONDS = 0
    client_id, token = flow
    assert call(token=token).status == 200
    logged_in.post("/revoke", {"token": token, "client_id": client_id})
    assert call(token=token).status == 401


def test_token_for_another_resource_is_refused(user, application):
    token = _make_token(user, application, resource=["https://other.example"])
    response = call(token=token)
    assert response.status == 401
    assert "RFC 8707" in response.json()["error_description"]


def test_token_for_another_path_of_this_server_is_refused_elsewhere(user, application):
    token = _make_token(user, application, resource=["http://testserver/mcp"])
    assert call("/mcp", token=token).status == 200
    assert call("/sse", token=token).status == 401


def test_token_without_resource_is_refused(user, application):
    """DOT treats an empty `resource` as valid everywhere; this server does not."""
    assert call(token=_make_token(user, application, resource=[])).status == 401


def test_registration_token_is_refused(logged_in):
    status, registration = register(logged_in)
    assert status == 201
    response = call(token=registration["registration_access_token"])
    assert response.status == 401
    assert response.json()["error"] == "invalid_token"


def test_token_of_an_inactive_user_is_refused(flow, user):
    user.is_active = False
    user.save()
    assert call(token=flow[1]).status == 401


def test_token_without_the_mcp_scope_is_insufficient_scope(user, application):
    response = call(token=_make_token(user, application, scope="read"))
    assert response.status == 403
    assert response.header("WWW-Authenticate") == (
        'Bearer error="insufficient_scope",error_description="The access token lacks the \'mcp\' scope.",'
        f'scope="mcp",{RESOURCE_METADATA}'
    )
    assert response.json()["error"] == "insufficient_scope"


def test_public_url_names_the_metadata_and_the_audience(flow, settings):
    settings.MCP_PUBLIC_URL = "https://mcp.example.com"
    response = call()
    assert 'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource"' in response.header(
        "WWW-Authenticate"
    )
    # The token was bound to http://testserver, which is not this server's public origin.
    assert call(token=flow[1]).status == 401


# ---------------------------------------------------------------------------
# Database cost: one query on a miss, none on a hit
# ---------------------------------------------------------------------------
def test_one_query_on_a_cache_miss_and_none_on_a_hit(flow):
    token = flow[1]
    with CaptureQueriesContext(connection) as miss:
        assert call(token=token).status == 200
    assert len(miss.captured_queries) == 1, miss.captured_queries
    with CaptureQueriesContext(connection) as hit:
        assert call(token=token).status == 200
    assert len(hit.captured_queries) == 0, hit.captured_queries


def test_unknown_tokens_are_not_cached(db):
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert call(token="unknown").status == 401
        assert len(queries.captured_queries) == 1
    assert len(token_cache) == 0


def test_the_cache_keeps_only_its_most_recently_used_entries():
    cache = TokenCache(max_entries=2)
    expires = timezone.now() + timedelta(hours=1)
    principal = Principal(1, "alice", "client", "Client", frozenset({"mcp"}), "checksum", expires)
    cache.put(("a", "/mcp"), principal)
    cache.put(("b", "/mcp"), principal)
    assert cache.get(("a", "/mcp")) is principal  # "a" is now the most recent
    cache.put(("c", "/mcp"), principal)
    assert cache.get(("b", "/mcp")) is None
    assert cache.get(("a", "/mcp")) is principal
    assert len(cache) == 2


def test_entries_of_tokens_no_longer_presented_are_dropped_once_their_time_is_up(settings):
    """A client that refreshes leaves its old token's entry behind: it goes with the next put
    after its time, so the cache does not fill up to its bound with dead tokens."""
    settings.MCP_TOKEN_CACHE_SECONDS = 30
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    principal = Principal(
        1, "alice", "client", "Client", frozenset({"mcp"}), "checksum", timezone.now() + timedelta(hours=1)
    )
    for n in range(100):  # 100 refreshes, 1 s apart: each token used once, then never again
        cache.put((f"token-{n}", "/mcp"), principal)
        now[0] += 1
    assert len(cache) == 30  # the last 30 s worth
    now[0] += 30
    cache.put(("fresh", "/mcp"), principal)
    assert len(cache) == 1 and cache.get(("fresh", "/mcp")) is principal


# ---------------------------------------------------------------------------
# Host and Origin (DNS rebinding)
# ---------------------------------------------------------------------------
def test_no_origin_passes(flow):
    assert call(token=flow[1]).status == 200


def test_same_origin_passes(flow):
    assert call(token=flow[1], headers={"Origin": "http://testserver"}).status == 200


def test_configured_origin_passes(flow, settings):
    settings.MCP_ALLOWED_ORIGINS = [INSPECTOR]
    assert call(token=flow[1], headers={"Origin": INSPECTOR}).status == 200


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://testserver.evil.example", "https://testserver"]
)
def test_foreign_origin_is_forbidden_even_with_a_valid_token(flow, origin):
    response = call(token=flow[1], headers={"Origin": origin})
    assert response.status == 403
    assert response.json()["error"] == "invalid_origin"
    assert response.header("Access-Control-Allow-Origin") is None


def test_public_url_is_the_same_origin(db, settings):
    settings.MCP_PUBLIC_URL = "https://mcp.example.com"
    assert call(headers={"Origin": "https://mcp.example.com"}).status == 401  # past the Origin guard
    assert call(headers={"Origin": "http://testserver"}).status == 403


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "", "testserver:notaport"])
def test_host_outside_allowed_hosts_is_refused(flow, host):
    response = call(token=flow[1], host=host)
    assert response.status == 400
    assert response.json()["error"] == "invalid_host"


def test_missing_host_is_refused(flow):
    assert call(token=flow[1], host=None).status == 400


def test_dns_rebinding_is_refused_although_it_looks_same_origin(db):
    response = call(host="evil.example:8000", headers={"Origin": "http://evil.example:8000"})
    assert response.status == 400


def test_allowed_host_with_a_port(flow, settings):
    settings.ALLOWED_HOSTS = ["localhost"]
    # The token is bound to http://testserver, so this passes Host and Origin and stops at the audience.
    response = call(token=flow[1], host="localhost:8000", headers={"Origin": "http://localhost:8000"})
    assert response.status == 401
    assert response.json()["error"] == "invalid_token"


# ---------------------------------------------------------------------------
# CORS
# ---------------------------------------------------------------------------
def _preflight(origin, **extra):
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    headers.update(extra)
    return call(method="OPTIONS", headers=headers)


def test_preflight_from_an_allowed_origin_needs_no_token(db, settings):
    settings.MCP_ALLOWED_ORIGINS = [INSPECTOR]
    response = _preflight(INSPECTOR, **{"Access-Control-Request-Headers": "authorization, mcp-protocol-version"})
    assert response.status == 204
    assert response.body == b""
    assert response.header("Access-Control-Allow-Origin") == INSPECTOR
    assert response.header("Access-Control-Allow-Methods") == "GET, POST, DELETE, OPTIONS"
    assert response.header("Access-Control-Allow-Headers") == (
        "Authorization, Content-Type, Accept, Mcp-Protocol-Version, Mcp-Session-Id, Last-Event-ID, Mcp-Method, Mcp-Name"
    )
    assert int(response.header("Access-Control-Max-Age")) > 0
    assert response.header("Vary") == "Origin"
    assert response.header("Access-Control-Allow-Credentials") is None


def test_preflight_from_a_foreign_origin_is_forbidden(db, settings):
    settings.MCP_ALLOWED_ORIGINS = [INSPECTOR]
    response = _preflight("http://evil.example")
    assert response.status == 403
    assert response.header("Access-Control-Allow-Origin") is None
    assert response.header("Vary") == "Origin"


def test_preflight_with_a_foreign_host_is_refused(db):
    response = call(
        method="OPTIONS",
        host="evil.example",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status == 400


def test_challenge_is_readable_by_an_allowed_browser_origin(db, settings):
    settings.MCP_ALLOWED_ORIGINS = [INSPECTOR]
    response = call(headers={"Origin": INSPECTOR})
    assert response.status == 401
    assert response.header("Access-Control-Allow-Origin") == INSPECTOR
    assert response.header("Access-Control-Expose-Headers") == "Mcp-Session-Id, WWW-Authenticate, Mcp-Protocol-Version"
    assert response.header("Vary") == "Origin"


def test_allowed_browser_origin_gets_cors_headers_on_success(flow, settings):
    settings.MCP_ALLOWED_ORIGINS = [INSPECTOR]
    response = call(token=flow[1], headers={"Origin": INSPECTOR})
    assert response.status == 200
    assert response.header("Access-Control-Allow-Origin") == INSPECTOR


def test_no_cors_headers_without_an_origin(flow):
    response = call(token=flow[1])
    assert response.header("Access-Control-Allow-Origin") is None
    assert response.header("Vary") == "Origin"


def test_malformed_allowed_origins_fail_loudly(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.MCP_ALLOWED_ORIGINS = ["localhost:6274"]
    with pytest.raises(ImproperlyConfigured):
        guarded(echo_principal)


@pytest.mark.django_db(transaction=True)
def test_sign_out_everywhere_is_refused_by_the_mcp_endpoints_at_once(user, application):
    """A person's "Sign out everywhere" on the Connected apps page reaches the MCP endpoints at once."""
    from django.test import AsyncClient

    token = _make_token(user, application)

    async def sign_out_everywhere():
        browser = AsyncClient()
        await browser.aforce_login(user)
        assert (await browser.post("/accounts/apps/revoke-all/", {"confirm": "revoke"})).status_code == 302

    _refused_once_revoked(token, sign_out_everywhere)
