"""Remembered consent: what a person allowed a client on the consent page (``ClientConsent``).

An Allow on the consent page records the scopes allowed (adding to what was allowed before).
With ``MCP_REMEMBER_CONSENT`` on, a later authorization request of the same person and client
whose scopes that record covers gets its code without the page (``views/authorize.py``),
after every other check of the request has passed. A request for any scope not allowed yet
shows the page again, as does ``prompt=consent``.

The record ends, and the next request asks again, when:

- the person revokes the client on the Connected apps page, or denies it on the consent page
  (a Deny is never remembered, and it takes back an earlier Allow);
- any revocation reaches the auth event trail: staff in the admin, the client itself at
  ``/revoke``, a refresh token presented twice or a code replayed (``_revocation_recorded``).
  Every revocation path already reports there, so listening to the trail covers them all
  without reaching into their code;
- the client's redirect URIs change (re-registration, a new metadata document): the person
  allowed a client that sends them to the addresses it had then (``_redirect_uris_changing``);
- the person or the client is deleted.
"""

from django.conf import settings
from django.db.models.signals import post_save, pre_save
from django.utils import timezone
from oauth2_provider.models import get_application_model

from oauth_app.models import AuthEvent, ClientConsent

# Events that mean "this client's access was taken back" (or that its tokens were stolen).
ENDING_KINDS = frozenset({AuthEvent.Kind.TOKEN_REVOKED, AuthEvent.Kind.REFRESH_TOKEN_REUSE, AuthEvent.Kind.CODE_REPLAY})


def remembering() -> bool:
    return settings.MCP_REMEMBER_CONSENT


def remember(user, application, scopes) -> None:
    """Record an Allow of `scopes` by `user` for `application`, adding to what they allowed before."""
    now = timezone.now()
    consent, created = ClientConsent.objects.get_or_create(
        user=user, application=application, defaults={"scope": " ".join(sorted(set(scopes))), "granted_at": now}
    )
    if not created:
        consent.scope = " ".join(sorted(consent.scopes | set(scopes)))
        consent.last_granted_at = now
        consent.save(update_fields=["scope", "last_granted_at"])


def covers(user, application, scopes) -> bool:
    """Whether `user` has allowed `application` every one of `scopes`, and not revoked it since."""
    consent = ClientConsent.objects.filter(user=user, application=application).first()
    return consent is not None and set(scopes) <= consent.scopes


def forget(user, application) -> int:
    """End what `user` allowed `application`; the number of records removed (0 or 1)."""
    deleted, _ = ClientConsent.objects.filter(user=user, application=application).delete()
    return deleted


# ---------------------------------------------------------------------------
# Signal receivers (connected in OAuthAppConfig.ready)
# ---------------------------------------------------------------------------


def _revocation_recorded(sender, instance, created, **kwargs):
    if not created or instance.kind not in ENDING_KINDS or not instance.client_id:
        return
    consents = ClientConsent.objects.filter(application__client_id=instance.client_id)
    if instance.user_id is not None:
        consents = consents.filter(user_id=instance.user_id)
    # With no person named (the admin's "revoke every token of the client"), everyone's ends.
    consents.delete()


def _redirect_uris_changing(sender, instance, raw=False, **kwargs):
    if raw or instance.pk is None:
        return
    before = sender.objects.filter(pk=instance.pk).values_list("redirect_uris", flat=True).first()
    if before is not None and set(before.split()) != set(instance.redirect_uris.split()):
        ClientConsent.objects.filter(application_id=instance.pk).delete()


def connect_signals() -> None:
    post_save.connect(_revocation_recorded, sender=AuthEvent, dispatch_uid="oauth_app.consent.revocation")
    pre_save.connect(
        _redirect_uris_changing, sender=get_application_model(), dispatch_uid="oauth_app.consent.redirect_uris"
    )
