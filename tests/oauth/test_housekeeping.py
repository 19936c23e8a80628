"""`manage.py housekeeping` (mcpsite/management/commands/housekeeping.py): exactly the
expired, never-used, spent and too-old rows go, with counts printed; a second run removes
nothing."""

import re
import secrets
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_refresh_token_model,
    set_token_value,
)
from oauth2_provider.settings import oauth2_settings

from mcp_app.models import Task, ToolCall
from oauth_app.models import AuthEvent, RedeemedCode
from tests.support.oauth_flow import full_flow, register

pytestmark = pytest.mark.django_db

Application = get_application_model()
AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()
DAY = timedelta(days=1)


def run() -> dict[str, int | None]:
    """Run the command; its report as {what: count removed, or None when kept by a 0 setting}."""
    out = StringIO()
    call_command("housekeeping", stdout=out)
    report = {}
    for line in out.getvalue().splitlines():
        what, _, result = line.partition(": ")
        count = re.fullmatch(r"(\d+) removed", result)
        report[what] = int(count.group(1)) if count else None
    return report


def application(name, *, source="dcr", age=DAY * 30, used=False) -> Application:
    app = Application.objects.create(
        name=name,
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="http://127.0.0.1/callback",
        registration_source=source,
        last_used_at=timezone.now() - age if used else None,
    )
    Application.objects.filter(pk=app.pk).update(created=timezone.now() - age)  # `created` is auto_now_add
    return app


def access_token(app, user, *, expires_in, scope="mcp") -> AccessToken:
    token = AccessToken(user=user, application=app, expires=timezone.now() + expires_in, scope=scope)
    set_token_value(token, secrets.token_urlsafe(24))
    token.save()
    return token


def refresh_token(app, user, access, *, family=None, revoked=None) -> RefreshToken:
    token = RefreshToken(user=user, application=app, access_token=access, token_family=family, revoked=revoked)
    set_token_value(token, secrets.token_urlsafe(24))
    token.save()
    return token


def registration_token(app) -> AccessToken:
    """What dynamic registration gives every client (RFC 7592), expiring in year 9999."""
    return access_token(app, None, expires_in=DAY * 365 * 100, scope=oauth2_settings.DCR_REGISTRATION_SCOPE)


def grant(app, user, *, expires_in) -> Grant:
    return Grant.objects.create(
        application=app,
        user=user,
        code=secrets.token_urlsafe(16),
        expires=timezone.now() + expires_in,
        redirect_uri="http://127.0.0.1/callback",
        scope="mcp",
        code_challenge="x" * 43,
        code_challenge_method="S256",
    )


def tool_call(age) -> ToolCall:
    return ToolCall.objects.create(created_at=timezone.now() - age, tool="add", outcome="ok", duration_ms=1.0)


def auth_event(age) -> AuthEvent:
    return AuthEvent.objects.create(created_at=timezone.now() - age, kind=AuthEvent.Kind.LOGIN, username="alice")


def ids(model) -> set[int]:
    return set(model.objects.values_list("pk", flat=True))


def test_tokens_and_grants(user):
    app = application("used", used=True)
    refresh_ttl = timedelta(seconds=oauth2_settings.REFRESH_TOKEN_EXPIRE_SECONDS)
    access_token(app, user, expires_in=-DAY)  # expired, no refresh token: goes
    valid = access_token(app, user, expires_in=DAY)
    # Expired, but its refresh token is still within its lifetime: both stay.
    refreshable = access_token(app, user, expires_in=-DAY)
    live_refresh = refresh_token(app, user, refreshable, family=uuid.uuid4())
    # Expired longer ago than the refresh-token lifetime: the refresh token goes, then the access token.
    dormant = access_token(app, user, expires_in=-(refresh_ttl + DAY))
    refresh_token(app, user, dormant, family=uuid.uuid4())
    grant(app, user, expires_in=-timedelta(minutes=5))
    new_grant = grant(app, user, expires_in=timedelta(minutes=1))

    report = run()

    assert ids(AccessToken) == {valid.pk, refreshable.pk}
    assert ids(RefreshToken) == {live_refresh.pk}
    assert ids(Grant) == {new_grant.pk}
    assert report["expired access tokens"] == 2  # the lone expired one and the dormant one
    assert report["expired refresh tokens"] == 1
    assert report["expired grants"] == 1


def test_never_used_registered_clients(user, settings):
    settings.MCP_UNUSED_CLIENT_DAYS = 7
    unused_old = application("unused, 30 days")
    unused_old_token = registration_token(unused_old)
    unused_new = application("unused, 1 day", age=DAY)
    registration_token(unused_new)
    used_long_ago = application("used, tokens long gone", used=True)  # last_used_at set, nothing held now
    manual = application("made by staff", source="manual")
    holding_token = application("holds a token from before last_used_at existed")
    access_token(holding_token, user, expires_in=DAY)
    holding_refresh = application("holds a refresh token")
    refresh_token(holding_refresh, user, None, family=uuid.uuid4(), revoked=timezone.now())
    consenting = application("a code is being issued")
    grant(consenting, user, expires_in=timedelta(minutes=1))

    report = run()

    assert report["never-used registered clients"] == 1
    assert ids(Application) == {
        unused_new.pk,
        used_long_ago.pk,
        manual.pk,
        holding_token.pk,
        holding_refresh.pk,
        consenting.pk,
    }
    assert not AccessToken.objects.filter(pk=unused_old_token.pk).exists()  # its registration token went with it


def test_a_client_that_was_used_is_kept_after_its_tokens_expire(client, user, settings):
    """Through the real flow: registration, consent and token mark the client used."""
    client.force_login(user)
    _status, unused = register(client)
    client_id, _tokens = full_flow(client)
    Application.objects.update(created=timezone.now() - DAY * 60)
    AccessToken.objects.exclude(scope=oauth2_settings.DCR_REGISTRATION_SCOPE).update(expires=timezone.now() - DAY * 60)
    report = run()
    assert report["never-used registered clients"] == 1
    assert list(Application.objects.values_list("client_id", flat=True)) == [client_id]
    assert not RefreshToken.objects.exists()  # gone: the client is kept for having been used, not for holding one
    assert unused["client_id"] != client_id


def test_unused_clients_kept_forever_when_set_to_zero(settings):
    settings.MCP_UNUSED_CLIENT_DAYS = 0
    old = application("unused, a year", age=DAY * 365)
    assert run()["never-used registered clients"] is None
    assert ids(Application) == {old.pk}


def test_redeemed_code_records(user):
    app = application("used", used=True)
    live_family, dead_family = uuid.uuid4(), uuid.uuid4()
    access = access_token(app, user, expires_in=DAY)
    refresh_token(app, user, access_token(app, user, expires_in=DAY), family=live_family)
    refresh_token(app, user, None, family=dead_family, revoked=timezone.now())
    records = {
        "token still there": RedeemedCode.objects.create(code_checksum="a" * 64, access_token=access),
        "family still live": RedeemedCode.objects.create(code_checksum="b" * 64, token_family=live_family),
        "family revoked": RedeemedCode.objects.create(code_checksum="c" * 64, token_family=dead_family),
        "no family, token gone": RedeemedCode.objects.create(code_checksum="d" * 64),
    }
    report = run()
    assert report["redeemed-code records with no tokens left"] == 2
    assert ids(RedeemedCode) == {records["token still there"].pk, records["family still live"].pk}


def test_audit_retention(settings):
    settings.MCP_AUDIT_RETENTION_DAYS = 90
    tool_call(DAY * 91)
    auth_event(DAY * 91)
    new_call, new_event = tool_call(DAY * 89), auth_event(DAY * 89)
    report = run()
    assert (report["tool-call audit rows"], report["auth events"]) == (1, 1)
    assert ids(ToolCall) == {new_call.pk}
    assert ids(AuthEvent) == {new_event.pk}


def test_audit_kept_forever_when_retention_is_zero(settings):
    settings.MCP_AUDIT_RETENTION_DAYS = 0
    call, event = tool_call(DAY * 3650), auth_event(DAY * 3650)
    report = run()
    assert report["tool-call audit rows"] is None and report["auth events"] is None
    assert ids(ToolCall) == {call.pk} and ids(AuthEvent) == {event.pk}


def test_a_second_run_removes_nothing(user, settings):
    settings.MCP_UNUSED_CLIENT_DAYS, settings.MCP_AUDIT_RETENTION_DAYS = 7, 90
    app = application("unused")
    registration_token(app)
    used = application("used", used=True)
    access_token(used, user, expires_in=-DAY)
    access_token(used, user, expires_in=DAY)
    grant(used, user, expires_in=-DAY)
    RedeemedCode.objects.create(code_checksum="e" * 64)
    for age in (DAY * 100, DAY):
        tool_call(age)
        auth_event(age)
    for expires_in in (-DAY, DAY):
        Task.objects.create(
            id=f"task{expires_in.days}",
            user=user,
            client_id=used.client_id,
            tool="countdown",
            expires_at=timezone.now() + expires_in,
            poll_interval_ms=1000,
        )

    first = run()
    assert all(count >= 1 for what, count in first.items() if what != "expired refresh tokens"), first
    left = {
        model: ids(model)
        for model in (Application, AccessToken, RefreshToken, Grant, RedeemedCode, ToolCall, AuthEvent, Task)
    }
    second = run()
    assert set(second.values()) == {0}, second
    assert {model: ids(model) for model in left} == left
