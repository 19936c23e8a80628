"""RFC 7592 registration tokens are shown apart from the people's access tokens in the admin,
with a line saying what they are (issue "The people's side", item 7)."""

import pytest
from oauth2_provider.models import get_access_token_model
from oauth2_provider.settings import oauth2_settings

from tests.support.oauth_flow import full_flow

pytestmark = pytest.mark.django_db

PEOPLES = "/admin/oauth2_provider/accesstoken/"
REGISTRATION = "/admin/oauth_app/registrationtoken/"


@pytest.fixture
def staff_browser(client, django_user_model):
    staff = django_user_model.objects.create_superuser(username="root", password="a long admin passphrase")
    client.force_login(staff)
    return client


def test_registration_tokens_are_listed_apart_with_what_they_are(logged_in, staff_browser, user):
    client_id, _tokens = full_flow(logged_in)  # a self-registration (its RFC 7592 token) and a person's token
    tokens = get_access_token_model().objects.filter(application__client_id=client_id)
    registration = tokens.get(scope=oauth2_settings.DCR_REGISTRATION_SCOPE)
    personal = tokens.get(scope="mcp")

    peoples = staff_browser.get(PEOPLES)
    assert peoples.status_code == 200
    listed = {token.pk for token in peoples.context["cl"].result_list}
    assert personal.pk in listed and registration.pk not in listed
    assert b"listed apart" in peoples.content

    apart = staff_browser.get(REGISTRATION)
    assert apart.status_code == 200
    assert [token.pk for token in apart.context["cl"].result_list] == [registration.pk]
    assert b"RFC 7592" in apart.content and b"opens no MCP endpoint" in apart.content
    assert staff_browser.get(f"{REGISTRATION}{registration.pk}/change/").status_code == 200
    assert staff_browser.get(f"{REGISTRATION}{personal.pk}/change/").status_code in (302, 404)  # not one of them
