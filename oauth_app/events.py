"""The auth event trail: logins, consents, registrations (dynamic ones, and clients first met
through their metadata document), tokens issued, refreshed and revoked, and the attacks the
token endpoint detects (a rotated refresh token presented again, an authorization code replayed).

Each event is a row of ``AuthEvent`` and one INFO line on the ``oauth_app.events`` logger.
Callers pass only what identifies the event (user, client id, row numbers, grant type);
no password, code, token or secret is ever handed to ``record``. Recording must never
fail the request it describes: a failed write is logged and the request goes on.
"""

import logging
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth import signals as auth_signals
from django.db import transaction
from django.db.models.signals import post_save
from oauth2_provider.models import get_application_model
from oauth2_provider.signals import app_authorized

from oauth_app.client_address import client_address
from oauth_app.models import DETAIL_CHARS, AuthEvent

log = logging.getLogger(__name__)
Kind = AuthEvent.Kind

USERNAME_CHARS = AuthEvent._meta.get_field("username").max_length
CLIENT_ID_CHARS = AuthEvent._meta.get_field("client_id").max_length


def record(kind: str, *, request=None, user=None, username: str = "", client_id: str = "", detail: str = "") -> None:
    """Write one event. `request` (Django or oauthlib) gives the address; `user` may be
    None or anonymous; `username` defaults to the user's."""
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    if not username and user is not None:
        username = user.get_username()
    username = (username or "")[:USERNAME_CHARS]
    client_id = (client_id or "")[:CLIENT_ID_CHARS]
    detail = (detail or "")[:DETAIL_CHARS]
    address = client_address(request)
    try:
        # A savepoint: a failed insert must not break a transaction the caller is in.
        with transaction.atomic():
            AuthEvent.objects.create(
                kind=kind, user=user, username=username, client_id=client_id, address=address, detail=detail
            )
    except Exception:
        log.exception("could not record auth event %s", kind)
    log.info("%s user=%r client=%r address=%s %s", kind, username, client_id, address or "-", detail)


# ---------------------------------------------------------------------------
# Signal receivers: Django's login signals, DOT's token signal, django-axes's lockout.
# ---------------------------------------------------------------------------


def _logged_in(sender, request, user, **kwargs):
    record(Kind.LOGIN, request=request, user=user)


def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        record(Kind.LOGOUT, request=request, user=user)


def _account_named(typed) -> tuple[Any, str, str]:
    """``(user, username, detail)`` to record for a login name as typed.

    A name that is no account's is not kept: people type their password into the
    username field, and the trail and the log must never hold a password.
    """
    typed = str(typed or "")
    user = (
        get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: typed}).first() if typed else None
    )
    if user is None:
        return None, "", "no such account (the name typed is not kept)"
    return user, user.get_username(), ""


def _login_failed(sender, credentials, request=None, **kwargs):
    # `credentials` has the password masked by Django already.
    user, username, detail = _account_named(credentials.get("username"))
    record(Kind.LOGIN_FAILED, request=request, user=user, username=username, detail=detail)


def _locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    user, username, detail = _account_named(username)
    record(
        Kind.LOCKED_OUT,
        request=request,
        user=user,
        username=username,
        detail="; ".join(filter(None, ["too many failed logins", detail])),
    )


def _token_issued(sender, request, token, **kwargs):
    grant_type = request.POST.get("grant_type", "")
    kind = Kind.TOKEN_REFRESHED if grant_type == "refresh_token" else Kind.TOKEN_ISSUED
    record(
        kind,
        request=request,
        user=token.user,
        client_id=token.application.client_id if token.application_id else "",
        detail=f"grant_type={grant_type}; access token #{token.pk}; scope={token.scope}",
    )


def _client_first_seen(sender, instance, created, **kwargs):
    """DOT stores a client ID metadata document's client when it first meets its URL, deep in
    its request validation; the new row is the one place this server sees it happen. (No
    request here: the address is not recorded.)"""
    if created and instance.registered_by_document:
        record(
            Kind.CLIENT_REGISTERED,
            client_id=instance.client_id,
            detail=f"client id metadata document {instance.client_id!r}; client_name={instance.name[:100]!r}",
        )


def connect_signals() -> None:
    """Called once from OAuthAppConfig.ready()."""
    post_save.connect(_client_first_seen, sender=get_application_model(), dispatch_uid="oauth_app.events.cimd_client")
    auth_signals.user_logged_in.connect(_logged_in, dispatch_uid="oauth_app.events.logged_in")
    auth_signals.user_logged_out.connect(_logged_out, dispatch_uid="oauth_app.events.logged_out")
    auth_signals.user_login_failed.connect(_login_failed, dispatch_uid="oauth_app.events.login_failed")
    app_authorized.connect(_token_issued, dispatch_uid="oauth_app.events.token_issued")
    if apps.is_installed("axes"):
        from axes.signals import user_locked_out

        user_locked_out.connect(_locked_out, dispatch_uid="oauth_app.events.locked_out")
