"""The landing page, error pages and the admin's revoke actions."""

import json

import pytest
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from tests.support.oauth_flow import full_flow, refresh

pytestmark = pytest.mark.django_db


def test_landing_page_shows_this_servers_urls_and_config(client):
    response = client.get("/", HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200
    html = response.content.decode()
    assert "http://127.0.0.1:8000/mcp" in html
    assert "http://127.0.0.1:8000/sse" in html
    config = json.loads(response.context["claude_desktop_config"])
    assert config["mcpServers"]["django-mcp"] == {"command": "npx", "args": ["mcp-remote", "http://127.0.0.1:8000/mcp"]}


def test_unknown_page_is_a_clean_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert b"Not found" in response.content


def test_landing_is_get_only(client):
    assert client.post("/").status_code == 405


@pytest.fixture
def staff(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "", "a long admin passphrase")
    client.force_login(admin)
    return client


def test_admin_lists_clients_tokens_and_grants(staff):
    full_flow(staff)
    for path in (
        "/admin/oauth_app/application/",
        "/admin/oauth2_provider/accesstoken/",
        "/admin/oauth2_provider/refreshtoken/",
        "/admin/oauth2_provider/grant/",
        "/admin/auth/user/",
    ):
        assert staff.get(path).status_code == 200, path


def test_admin_revokes_an_access_token(staff):
    full_flow(staff)
    token = get_access_token_model().objects.get(scope="mcp")
    response = staff.post(
        "/admin/oauth2_provider/accesstoken/", {"action": "revoke_tokens", "_selected_action": [token.pk]}
    )
    assert response.status_code == 302
    assert not get_access_token_model().objects.filter(pk=token.pk).exists()


def test_admin_revokes_a_refresh_family(staff):
    client_id, tokens = full_flow(staff)
    rotated = refresh(staff, client_id, tokens["refresh_token"]).json()
    live = get_refresh_token_model().objects.get(revoked__isnull=True)
    staff.post("/admin/oauth2_provider/refreshtoken/", {"action": "revoke_families", "_selected_action": [live.pk]})
    assert refresh(staff, client_id, rotated["refresh_token"]).status_code == 400


def test_admin_revokes_everything_of_a_client(staff):
    from oauth2_provider.models import get_application_model

    client_id, tokens = full_flow(staff)
    app = get_application_model().objects.get(client_id=client_id)
    staff.post("/admin/oauth_app/application/", {"action": "revoke_all_tokens", "_selected_action": [app.pk]})
    assert not get_access_token_model().objects.filter(scope="mcp").exists()
    assert refresh(staff, client_id, tokens["refresh_token"]).status_code == 400
