"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01; MCP 2026-07-28,
client registration): a client whose client_id is an https URL is described by the document at
that URL, which DOT fetches (``oauth2_provider.cimd``), and then behaves like any client.

Documents are served over real HTTPS on loopback (``tests/support/cimd.py``). DOT's own fetcher
refuses loopback, so the tests that need a document fetched select ``LoopbackTestFetcher``;
the tests of the address rules run DOT's fetcher as production does. Every refusal must look
like an unknown client: the error page at /authorize (never a redirect), invalid_client at
/token, never a 500. Each refusal test also reads DOT's log line to be sure of the reason.
"""

import logging
import socket
import threading
from datetime import timedelta

import httpx2
import pytest
from django.core.cache import cache
from django.utils import timezone
from oauth2_provider import cimd as dot_cimd
from oauth2_provider.models import get_application_model

from oauth_app.cimd import verified_host
from oauth_app.models import AuthEvent
from oauth_app.resource_server import load_access_token, token_checksum
from tests.support.cimd import (
    Answer,
    DocumentServer,
    LoopbackCA,
    cimd_settings,
    client_document,
    json_answer,
    loopback_server_environment,
    use_loopback_fetcher,
)
from tests.support.oauth_flow import (
    REDIRECT_URI,
    authorize_params,
    consent_page,
    exchange_code,
    obtain_code,
    pkce_pair,
    refresh,
    register,
)

Application = get_application_model()
Kind = AuthEvent.Kind
WAIT = 10.0  # seconds any wait on another thread may take at most


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return LoopbackCA.create(tmp_path_factory.mktemp("cimd-ca"))


@pytest.fixture
def documents(ca):
    with DocumentServer(ca) as server:
        yield server


@pytest.fixture
def loopback(settings, ca):
    use_loopback_fetcher(settings, ca)
    return settings


@pytest.fixture
def reasons(caplog):
    """DOT's log lines about CIMD, joined: why a document was refused."""
    caplog.set_level(logging.INFO, logger="oauth2_provider.cimd")
    return lambda: " ".join(record.getMessage() for record in caplog.records if record.name == "oauth2_provider.cimd")


def authorize(client, client_id: str, **extra):
    _verifier, challenge = pkce_pair()
    return consent_page(client, authorize_params(client_id, challenge, **extra))


def assert_unknown_client(response) -> None:
    assert response.status_code == 400, response.content[:500]
    assert "Location" not in response
    assert b"This authorization request can" in response.content
    assert b"Invalid client_id parameter value." in response.content


def serve_client(documents, path: str, cache_control: str | None = None, **fields) -> str:
    client_id = documents.url(path)
    documents.serve_document(client_document(client_id, **fields), cache_control)
    return client_id


def events_of(client_id: str) -> list[AuthEvent]:
    return list(AuthEvent.objects.filter(client_id=client_id).order_by("pk"))


# ---------------------------------------------------------------------------
# Advertised, and switched by MCP_CIMD_ENABLED
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_metadata_advertises_client_id_metadata_documents_beside_registration(client):
    """MCP 2026-07-28: `client_id_metadata_document_supported` in RFC 8414 metadata; DCR stays."""
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert meta["client_id_metadata_document_supported"] is True
    assert meta["registration_endpoint"] == "http://testserver/register"


@pytest.mark.django_db
def test_turned_off_no_document_is_fetched_and_known_document_clients_stop(logged_in, documents, loopback, reasons):
    known = serve_client(documents, "/off/known.json")
    assert authorize(logged_in, known).status_code == 200
    loopback.OAUTH2_PROVIDER = {**loopback.OAUTH2_PROVIDER, "CIMD_ENABLED": False}

    meta = logged_in.get("/.well-known/oauth-authorization-server").json()
    assert meta["client_id_metadata_document_supported"] is False
    new = serve_client(documents, "/off/new.json")
    assert_unknown_client(authorize(logged_in, new))
    assert documents.seen("/off/new.json") == []
    assert_unknown_client(authorize(logged_in, known))  # its stored row no longer serves it
    assert Application.objects.filter(client_id=known).exists()


# ---------------------------------------------------------------------------
# A document client: stored, shown, used
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_document_makes_a_public_client_stored_under_its_url(logged_in, documents, loopback):
    client_id = serve_client(documents, "/apps/client.json", cache_control="max-age=600", client_name="Doc App")
    before = timezone.now()
    assert authorize(logged_in, client_id).status_code == 200

    app = Application.objects.get(client_id=client_id)
    assert (app.client_type, app.registration_source, app.user, app.name) == ("public", "cimd", None, "Doc App")
    assert app.redirect_uris == REDIRECT_URI
    assert before + timedelta(seconds=590) < app.cimd_expires_at < timezone.now() + timedelta(seconds=610)
    (request,) = documents.seen("/apps/client.json")
    assert request.headers["Host"] == f"127.0.0.1:{documents.port}"
    assert "application/json" in request.headers["Accept"]


@pytest.mark.django_db
def test_consent_page_names_the_verified_host_apart_from_the_name_the_client_chose(logged_in, documents, loopback):
    client_id = serve_client(documents, "/apps/named.json", client_name='<b>Your Bank</b> "official"')
    page = authorize(logged_in, client_id)
    assert page.status_code == 200
    html = page.content.decode()
    host = f"127.0.0.1:{documents.port}"
    assert f'<strong id="verified-host">{host}</strong>' in html
    assert f"verified: {host}" in html
    assert "the name the application gave itself" in html
    assert "&lt;b&gt;Your Bank&lt;/b&gt; &quot;official&quot;" in html  # shown as text, never as markup
    assert "<b>Your Bank</b>" not in html
    assert 'id="self-registered"' not in html
    policy = page["Content-Security-Policy"]
    assert "form-action 'self' http://127.0.0.1:33418" in policy and "unsafe" not in policy


@pytest.mark.django_db
def test_a_dynamically_registered_client_gets_the_unverified_warning_instead(logged_in):
    _status, registration = register(logged_in, client_name="Self Named")
    html = authorize(logged_in, registration["client_id"]).content.decode()
    assert 'id="self-registered"' in html and "has not been verified" in html
    assert 'id="verified-host"' not in html and 'id="client-identity"' not in html


@pytest.mark.parametrize(
    "client_id, host",
    [
        ("https://app.example.com/client.json", "app.example.com"),
        ("https://App.Example.com:443/client.json", "app.example.com"),
        ("https://app.example.com:8443/c.json", "app.example.com:8443"),
        ("https://bücher.example/client.json", "xn--bcher-kva.example"),  # a look-alike shows as such
        ("https://[2001:db8::1]/client.json", "[2001:db8::1]"),
    ],
)
def test_the_verified_host_is_the_documents_origin_in_ascii(client_id, host):
    assert verified_host(client_id) == host


@pytest.mark.django_db
def test_code_flow_refresh_and_revocation_as_for_any_client(logged_in, user, documents, loopback):
    """OAuth 2.1 §4.1 with PKCE (RFC 7636), refresh with rotation (§4.3), RFC 7009 revocation;
    and the auth event trail records the client's first sight and everything after it."""
    client_id = serve_client(documents, "/flow/client.json", client_name="Flow Client")
    verifier, challenge = pkce_pair()
    code = obtain_code(logged_in, client_id, challenge)
    issued = exchange_code(logged_in, client_id, code, verifier)
    assert issued.status_code == 200, issued.content
    first = issued.json()
    token = load_access_token(token_checksum(first["access_token"]))
    assert (token.application.client_id, token.user, token.scope) == (client_id, user, "mcp")

    refreshed = refresh(logged_in, client_id, first["refresh_token"])
    assert refreshed.status_code == 200, refreshed.content
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]

    assert logged_in.post("/revoke", {"token": second["access_token"], "client_id": client_id}).status_code == 200
    assert load_access_token(token_checksum(second["access_token"])) is None
    assert refresh(logged_in, client_id, first["refresh_token"]).json()["error"] == "invalid_grant"  # rotated out

    assert len(documents.seen("/flow/client.json")) == 1  # fetched once, then the stored row serves
    trail = events_of(client_id)
    assert [event.kind for event in trail] == [
        Kind.CLIENT_REGISTERED,
        Kind.CONSENT_GRANTED,
        Kind.TOKEN_ISSUED,
        Kind.TOKEN_REFRESHED,
        Kind.TOKEN_REVOKED,
        Kind.REFRESH_TOKEN_REUSE,
    ]
    assert trail[0].detail == f"client id metadata document {client_id!r}; client_name='Flow Client'"
    assert all(event.user == user for event in trail[1:])


@pytest.mark.django_db
def test_a_stale_document_is_fetched_again_and_its_changes_apply(logged_in, documents, loopback):
    client_id = serve_client(documents, "/stale/client.json", client_name="Old Name")
    assert authorize(logged_in, client_id).status_code == 200
    Application.objects.filter(client_id=client_id).update(cimd_expires_at=timezone.now() - timedelta(seconds=1))
    documents.serve_document(client_document(client_id, client_name="New Name"))

    page = authorize(logged_in, client_id)
    assert page.status_code == 200
    assert ">New Name<" in page.content.decode()
    assert len(documents.seen("/stale/client.json")) == 2
    assert [event.kind for event in events_of(client_id)] == [Kind.CLIENT_REGISTERED]  # first sight only


@pytest.mark.django_db
def test_the_admin_lists_document_clients_with_their_source_filterable_and_read_only(
    documents, loopback, logged_in, django_user_model, client
):
    client_id = serve_client(documents, "/admin/client.json")
    assert authorize(logged_in, client_id).status_code == 200
    _status, registration = register(logged_in)
    staff = django_user_model.objects.create_superuser("root", "", "a long admin passphrase")
    client.force_login(staff)

    base = "/admin/oauth_app/application/"
    listing = client.get(base, {"registration_source__exact": "cimd"})
    assert [app.client_id for app in listing.context["cl"].result_list] == [client_id]
    assert b"Client ID Metadata Document" in client.get(base).content
    dynamic = client.get(base, {"registration_source__exact": "dcr"})
    assert [app.client_id for app in dynamic.context["cl"].result_list] == [registration["client_id"]]
    app = Application.objects.get(client_id=client_id)
    change = client.get(f"{base}{app.pk}/change/").content.decode()
    assert 'name="registration_source"' not in change and 'name="cimd_expires_at"' not in change


# ---------------------------------------------------------------------------
# Refused: each looks like an unknown client
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_client_id_that_is_not_https_is_no_document(logged_in, documents, loopback):
    client_id = documents.url("/plain/client.json", scheme="http")
    documents.serve_document(client_document(client_id))
    assert_unknown_client(authorize(logged_in, client_id))
    assert documents.seen() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path, document_path",
    [
        ("/bind/client.json", "/bind/other.json"),
        ("/bind/client.json", "/bind/client.json/"),
        ("/bind/client.json", "/bind/CLIENT.json"),
    ],
)
def test_a_document_naming_another_client_id_is_refused(logged_in, documents, loopback, reasons, path, document_path):
    """CIMD §4.1: the document's client_id must equal the URL it was fetched from."""
    client_id = documents.url(path)
    documents.serve(path, json_answer(client_document(documents.url(document_path))))
    assert_unknown_client(authorize(logged_in, client_id))
    assert len(documents.seen(path)) == 1
    assert "does not match the client_id URL" in reasons()
    assert not Application.objects.exists()


@pytest.mark.django_db
def test_a_redirect_uri_the_document_does_not_list_is_refused(logged_in, documents, loopback):
    """The client is known; the redirect is not its own: an error page, never a redirect there."""
    client_id = serve_client(documents, "/redirects/client.json")
    for redirect_uri in ("https://evil.example/callback", "http://127.0.0.1:33418/elsewhere"):
        response = authorize(logged_in, client_id, redirect_uri=redirect_uri)
        assert response.status_code == 400
        assert "Location" not in response
        assert b"This authorization request can" in response.content
    assert Application.objects.filter(client_id=client_id).exists()


# DOT's own fetcher, as production runs it: the document server listens on 127.0.0.1 and would
# answer, so a refusal here is the address rule, not a failed connection.
@pytest.mark.django_db
@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:{port}",
        "localhost:{port}",  # by name: resolved, then refused (the hosts file says loopback)
        "[::1]:{port}",
        "[::ffff:127.0.0.1]:{port}",  # IPv4-mapped IPv6
        "0.0.0.0:{port}",
        "10.20.30.40",
        "172.16.0.1",
        "192.168.1.20",
        "100.64.0.1",  # carrier-grade NAT
        "169.254.169.254",  # link-local: cloud instance metadata
        "[fe80::1]",
        "[fc00::1]",
    ],
)
def test_documents_on_private_loopback_or_link_local_addresses_are_never_fetched(
    logged_in, documents, settings, reasons, host
):
    cimd_settings(settings)
    client_id = f"https://{host.format(port=documents.port)}/client.json"
    documents.serve("/client.json", json_answer(client_document(client_id)))
    assert_unknown_client(authorize(logged_in, client_id))
    assert "resolves to a non-public address" in reasons()
    assert documents.seen() == []
    assert not Application.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("addresses", [["1.1.1.1", "10.0.0.7"], ["127.0.0.1"], ["2606:4700::1111", "fd00::7"]])
def test_a_name_resolving_to_any_non_public_address_is_refused(logged_in, settings, reasons, monkeypatch, addresses):
    """DOT refuses the whole host if any resolved address is not public, so a DNS answer that
    mixes a public and a private address cannot steer the fetch inward."""
    cimd_settings(settings)
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host != "rebind.cimd.test":
            return real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port))
            for ip in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert_unknown_client(authorize(logged_in, "https://rebind.cimd.test/client.json"))
    assert f"resolves to a non-public address ({addresses[-1]})" in reasons()


@pytest.mark.django_db
def test_a_redirect_is_not_followed(logged_in, documents, loopback, reasons):
    client_id = documents.url("/moved/client.json")
    documents.serve("/moved/client.json", Answer(status=302, headers={"Location": documents.url("/moved/here.json")}))
    documents.serve("/moved/here.json", json_answer(client_document(client_id)))
    assert_unknown_client(authorize(logged_in, client_id))
    assert "returned HTTP 302" in reasons()
    assert documents.seen("/moved/here.json") == []


@pytest.mark.django_db
def test_a_document_that_does_not_arrive_in_time_is_abandoned(logged_in, documents, loopback, reasons):
    loopback.OAUTH2_PROVIDER = {**loopback.OAUTH2_PROVIDER, "CIMD_FETCH_TIMEOUT_SECONDS": 0.5}
    client_id = documents.url("/slow/client.json")
    documents.serve("/slow/client.json", Answer(body=b"{}", stall=True))
    assert_unknown_client(authorize(logged_in, client_id))
    assert documents.stalled.is_set()
    assert "timed out" in reasons()


def _oversize(client_id):
    # One byte past the default MCP_CIMD_MAX_DOCUMENT_BYTES (16384).
    document = client_document(client_id)
    padding = 16385 - len(json_answer({**document, "padding": ""}).body)
    return json_answer({**document, "padding": "x" * padding})


BAD_DOCUMENTS = {
    "html-media-type": (lambda url: json_answer(client_document(url), content_type="text/html"), "is not JSON"),
    "not-json": (lambda url: Answer(body=b"{'client_id': 1"), "is not valid JSON"),
    "json-array": (lambda url: Answer(body=b"[]"), "must be a JSON object"),
    "oversize": (_oversize, "exceeds the maximum allowed size"),
    "not-found": (lambda url: Answer(status=404, body=b"{}"), "returned HTTP 404"),
    "server-error": (lambda url: Answer(status=500, body=b"{}"), "returned HTTP 500"),
    "client-secret": (lambda url: json_answer(client_document(url, client_secret="s")), "must not include"),
    "confidential": (
        lambda url: json_answer(client_document(url, token_endpoint_auth_method="client_secret_basic")),
        "must be public",
    ),
    "no-redirect-uris": (lambda url: json_answer(client_document(url, redirect_uris=[])), "redirect_uris"),
    "http-redirect-off-loopback": (
        lambda url: json_answer(client_document(url, redirect_uris=["http://app.example.com/cb"])),
        "invalid client metadata",
    ),
    "script-redirect": (
        lambda url: json_answer(client_document(url, redirect_uris=["javascript:alert(1)"])),
        "invalid client metadata",
    ),
    "two-grants": (
        lambda url: json_answer(client_document(url, grant_types=["authorization_code", "client_credentials"])),
        "exactly one non-refresh grant type",
    ),
    "name-not-a-string": (lambda url: json_answer(client_document(url, client_name=["x"])), "client_name"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", BAD_DOCUMENTS)
def test_bad_documents_are_refused(logged_in, documents, loopback, reasons, case):
    answer, reason = BAD_DOCUMENTS[case]
    client_id = documents.url(f"/bad/{case}.json")
    documents.serve(f"/bad/{case}.json", answer(client_id))
    assert_unknown_client(authorize(logged_in, client_id))
    assert reason in reasons()
    assert not Application.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["", "/a/../client.json", "/./client.json", "/client.json#fragment"],
    ids=["no-path", "dot-dot", "dot", "fragment"],
)
def test_client_id_urls_the_draft_forbids_are_never_fetched(logged_in, documents, loopback, path):
    client_id = documents.url(path)
    assert_unknown_client(authorize(logged_in, client_id))
    credentials = f"https://user:pw@127.0.0.1:{documents.port}/client.json"
    assert_unknown_client(authorize(logged_in, credentials))
    assert documents.seen() == []


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["refused-document", "loopback-address"])
def test_refusals_at_the_token_endpoint_are_invalid_client(client, documents, settings, ca, where):
    """RFC 6749 §5.2: an unknown client at /token is invalid_client (401), never a 500."""
    if where == "refused-document":
        use_loopback_fetcher(settings, ca)
        client_id = documents.url("/token/client.json")
        documents.serve("/token/client.json", Answer(status=404, body=b"{}"))
    else:
        cimd_settings(settings)
        client_id = serve_client(documents, "/token/client.json")
    response = exchange_code(client, client_id, "never-issued", "v" * 43)
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"
    assert not Application.objects.exists()


@pytest.mark.django_db
def test_with_an_allowlist_only_its_hosts_are_fetched(logged_in, documents, loopback):
    """MCP_CIMD_ALLOWED_HOSTS: DOT's HostAllowlistCIMDPermission, checked before any fetch."""
    client_id = serve_client(documents, "/allow/client.json")
    allowlist = ("oauth2_provider.cimd.HostAllowlistCIMDPermission",)
    loopback.OAUTH2_PROVIDER = {
        **loopback.OAUTH2_PROVIDER,
        "CIMD_REGISTRATION_PERMISSION_CLASSES": allowlist,
        "CIMD_ALLOWED_HOSTS": [".clients.example"],
    }
    assert_unknown_client(authorize(logged_in, client_id))
    assert documents.seen() == []
    loopback.OAUTH2_PROVIDER = {**loopback.OAUTH2_PROVIDER, "CIMD_ALLOWED_HOSTS": ["127.0.0.1"]}
    assert authorize(logged_in, client_id).status_code == 200


# ---------------------------------------------------------------------------
# Bounds on the fetching itself
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_failed_document_is_not_fetched_again_during_the_backoff(logged_in, documents, loopback):
    loopback.OAUTH2_PROVIDER = {**loopback.OAUTH2_PROVIDER, "CIMD_FAILURE_BACKOFF_SECONDS": 60}
    client_id = documents.url("/backoff/client.json")
    documents.serve("/backoff/client.json", Answer(status=503, body=b"{}"))
    assert_unknown_client(authorize(logged_in, client_id))
    documents.serve_document(client_document(client_id))  # repaired, but the URL is backed off

    assert_unknown_client(authorize(logged_in, client_id))
    assert len(documents.seen("/backoff/client.json")) == 1
    cache.clear()  # the backoff is a cache entry: what its expiry does
    assert authorize(logged_in, client_id).status_code == 200
    assert len(documents.seen("/backoff/client.json")) == 2


@pytest.mark.django_db
def test_fetches_past_the_concurrency_cap_are_refused_at_once(logged_in, documents, loopback, reasons):
    """A flood of distinct URLs fails fast instead of queueing behind slow documents."""
    loopback.OAUTH2_PROVIDER = {
        **loopback.OAUTH2_PROVIDER,
        "CIMD_MAX_CONCURRENT_FETCHES": 1,
        "CIMD_FETCH_TIMEOUT_SECONDS": WAIT,
    }
    slow = documents.url("/cap/slow.json")
    documents.serve("/cap/slow.json", Answer(body=b"{}", stall=True))
    waiting = threading.Thread(target=dot_cimd.resolve_cimd_application, args=(slow, None), daemon=True)
    waiting.start()
    assert documents.stalled.wait(WAIT)
    other = serve_client(documents, "/cap/other.json")
    try:
        assert_unknown_client(authorize(logged_in, other))
        assert documents.seen("/cap/other.json") == []
        assert "in-flight cap reached" in reasons()
    finally:
        documents.release.set()
        waiting.join(WAIT)
    assert not waiting.is_alive()
    assert authorize(logged_in, other).status_code == 200  # the slot is free again


# ---------------------------------------------------------------------------
# A live server (debug on: check mcpsite.E007 keeps the loopback fetcher out of production)
# ---------------------------------------------------------------------------


@pytest.mark.live
def test_a_live_server_fetches_documents_and_knows_their_clients(live_server_factory, ca, documents):
    server = live_server_factory(**loopback_server_environment(ca))
    client_id = serve_client(documents, "/live/client.json", client_name="Live Client")
    mismatch = documents.url("/live/mismatch.json")
    documents.serve("/live/mismatch.json", json_answer(client_document(client_id)))
    _verifier, challenge = pkce_pair()
    with httpx2.Client(base_url=server.url, timeout=WAIT, trust_env=False) as http:
        meta = http.get("/.well-known/oauth-authorization-server").json()
        assert meta["client_id_metadata_document_supported"] is True
        # Known: validated before anyone is asked to log in, so the login page comes next.
        known = http.get("/authorize", params=authorize_params(client_id, challenge))
        assert known.status_code == 302, known.text[:500]
        assert known.headers["location"].startswith("/accounts/login/")
        assert len(documents.seen("/live/client.json")) == 1
        token = http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": "never-issued",
                "redirect_uri": REDIRECT_URI,
                "client_id": client_id,
                "code_verifier": "v" * 43,
            },
        )
        assert (token.status_code, token.json()["error"]) == (400, "invalid_grant")  # a known client, a bad code
        refused = http.get("/authorize", params=authorize_params(mismatch, challenge))
        assert refused.status_code == 400
        assert "Invalid client_id parameter value." in refused.text
    assert "Traceback" not in server.stderr()
