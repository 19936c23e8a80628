"""Helpers that walk the OAuth flow through Django's test client, the way a
browser and an MCP client would."""

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

SERVER = "http://testserver"
REDIRECT_URI = "http://127.0.0.1:33418/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def register(client, **metadata) -> tuple[int, dict]:
    body = {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", "client_name": "Test client"}
    body.update(metadata)
    response = client.post("/register", data=json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def authorize_params(client_id: str, challenge: str, **extra) -> dict:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "state-123",
        "scope": "mcp",
    }
    params.update(extra)
    return {key: value for key, value in params.items() if value is not None}


def consent_page(client, params: dict):
    """GET /authorize; returns the response (the consent page when all is well)."""
    return client.get("/authorize?" + urlencode(params, doseq=True))


def request_id_of(page) -> str:
    return page.context["request_id"]


def decide(client, page, decision: str = "allow"):
    return client.post("/authorize", {"request_id": request_id_of(page), "decision": decision})


def redirect_query(response) -> dict:
    assert response.status_code == 302, response.status_code
    location = response["Location"]
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def obtain_code(client, client_id: str, challenge: str, **extra) -> str:
    """A code through the consent page (Allow), or at once when the person's consent to the
    client is remembered (oauth_app/consent.py)."""
    page = consent_page(client, authorize_params(client_id, challenge, **extra))
    if page.status_code == 302 and page["Location"].startswith(extra.get("redirect_uri", REDIRECT_URI) + "?"):
        query = redirect_query(page)
        assert "code" in query, query
        return query["code"]
    assert page.status_code == 200, page.content
    query = redirect_query(decide(client, page))
    assert "code" in query, query
    return query["code"]


def exchange_code(client, client_id: str, code: str, verifier: str | None, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "client_id": client_id}
    if verifier is not None:
        data["code_verifier"] = verifier
    data.update(extra)
    return client.post("/token", data)


def refresh(client, client_id: str, refresh_token: str, **extra):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    data.update(extra)
    return client.post("/token", data)


def full_flow(client, **extra) -> tuple[str, dict]:
    """Register a public client, consent and exchange. Returns (client_id, token response)."""
    status, registration = register(client)
    assert status == 201, registration
    verifier, challenge = pkce_pair()
    code = obtain_code(client, registration["client_id"], challenge, **extra)
    response = exchange_code(client, registration["client_id"], code, verifier)
    assert response.status_code == 200, response.content
    return registration["client_id"], response.json()
