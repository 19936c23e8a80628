from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from oauth2_provider.models import AbstractApplication, AccessToken
from oauth2_provider.settings import oauth2_settings

from oauth_app.redirect_uris import RedirectURIError, allowed_schemes, validate_redirect_uri

DETAIL_CHARS = 300


class Application(AbstractApplication):
    """An OAuth client. Swapped in for DOT's model so that redirect URIs follow
    this server's policy (``oauth_app.redirect_uris``), private-use schemes of
    native apps included, rather than one global scheme list."""

    registered_from = models.GenericIPAddressField(
        null=True, blank=True, help_text="Client address that registered it dynamically."
    )
    # Set whenever a code or token is issued to the client (oauth_app.validators). Tokens and
    # grants are deleted once expired, so their absence alone cannot tell "never used" apart
    # from "used long ago"; `manage.py housekeeping` removes only clients never used.
    last_used_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When a code or token was last issued to it."
    )

    class ApplicationType(models.TextChoices):
        """OpenID Connect Dynamic Client Registration §2, which MCP 2026-07-28 (SEP-837) adopts."""

        WEB = "web", "web"
        NATIVE = "native", "native"

    # Set at dynamic registration (oauth_app/application_type.py); blank for other clients.
    application_type = models.CharField(
        max_length=8,
        choices=ApplicationType.choices,
        blank=True,
        help_text="What the client registered itself as: a web application or a native (desktop, CLI) one.",
    )

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"

    def is_usable(self, request):
        # Turning client ID metadata documents off turns off the clients they brought in, not
        # only the ones still to come: DOT would otherwise keep serving their stored rows.
        if self.registered_by_document and not oauth2_settings.CIMD_ENABLED:
            return False
        return super().is_usable(request)

    def get_allowed_schemes(self):
        return allowed_schemes(self.redirect_uris.split()) or ["https"]

    def clean(self):
        problems = []
        for uri in self.redirect_uris.split():
            try:
                validate_redirect_uri(uri)
            except RedirectURIError as exc:
                problems.append(str(exc))
        if problems:
            raise ValidationError({"redirect_uris": problems})
        super().clean()

    @property
    def registered_itself(self) -> bool:
        return self.registration_source == self.RegistrationSource.DCR

    @property
    def registered_by_document(self) -> bool:
        """Known from its client ID metadata document: the client id is the document's https URL."""
        return self.registration_source == self.RegistrationSource.CIMD

    @property
    def set_up_by_staff(self) -> bool:
        """Created by staff (the admin, a command), neither registered by itself nor known from a document."""
        return self.registration_source == self.RegistrationSource.MANUAL


class RedeemedCode(models.Model):
    """What an authorization code was exchanged for, so that a replayed code
    revokes it (OAuth 2.1 §4.1.3). Only the code's SHA-256 is kept."""

    code_checksum = models.CharField(max_length=64, unique=True)
    access_token = models.ForeignKey(
        "oauth2_provider.AccessToken", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    token_family = models.UUIDField(null=True)
    redeemed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"code redeemed at {self.redeemed_at:%Y-%m-%d %H:%M:%S}"


class ClientConsent(models.Model):
    """What a person allowed a client on the consent page, kept until they (or staff, or the
    client itself) revoke it: the scopes allowed, the union of every Allow since.

    A row of its own rather than DOT's `approval_prompt=auto`, which counts any unexpired access
    token as consent: that memory ends with the token's hour, starts with tokens the person
    never saw a page for, and cannot be told apart from an Allow. This row starts only with an
    Allow, outlives tokens, and ends with a revocation or a Deny (``oauth_app.consent``). With
    ``MCP_REMEMBER_CONSENT`` on, /authorize skips the page for a request it covers; the
    Connected apps page shows it either way.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oauth_consents")
    application = models.ForeignKey(
        oauth2_settings.APPLICATION_MODEL, on_delete=models.CASCADE, related_name="consents"
    )
    scope = models.TextField(help_text="The scopes allowed, space-separated.")
    granted_at = models.DateTimeField(
        default=timezone.now, help_text="When the person first allowed the client (since they last revoked it)."
    )
    last_granted_at = models.DateTimeField(default=timezone.now, help_text="When they last allowed it on the page.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "application"], name="one_consent_per_user_and_client")]

    def __str__(self):
        return f"consent of user #{self.user_id} to client #{self.application_id}: {self.scope}"

    @property
    def scopes(self) -> set[str]:
        return set(self.scope.split())


class AuthEvent(models.Model):
    """One event of the auth event trail (``oauth_app.events``), beside the tool-call audit.

    Who is kept twice, like the tool-call audit: a link to the user and a snapshot of the
    username that outlives the user. Never a password, code, token or secret: a token
    appears only as its row number ("access token #12").
    """

    class Kind(models.TextChoices):
        LOGIN = "login", "login"
        LOGIN_FAILED = "login_failed", "login failed"
        LOCKED_OUT = "locked_out", "locked out"
        LOGOUT = "logout", "logout"
        CONSENT_GRANTED = "consent_granted", "consent granted"
        CONSENT_DENIED = "consent_denied", "consent denied"
        CLIENT_REGISTERED = "client_registered", "client registered"
        TOKEN_ISSUED = "token_issued", "token issued"
        TOKEN_REFRESHED = "token_refreshed", "token refreshed"
        TOKEN_REVOKED = "token_revoked", "token revoked"
        REFRESH_TOKEN_REUSE = "refresh_token_reuse", "refresh token reuse detected"
        CODE_REPLAY = "code_replay", "authorization code replay detected"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="auth_events"
    )
    username = models.CharField(max_length=150, blank=True, help_text="As typed, for a failed login.")
    client_id = models.CharField(max_length=255, blank=True, help_text="The OAuth client concerned, if any.")
    address = models.GenericIPAddressField(null=True, blank=True, help_text="The client address (REMOTE_ADDR).")
    detail = models.CharField(max_length=DETAIL_CHARS, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "created_at"])]

    def __str__(self):
        who = self.username or "anonymous"
        return f"{self.get_kind_display()}: {who} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class RegistrationToken(AccessToken):
    """An RFC 7592 registration access token, seen apart in the admin (no table of its own).

    Dynamic registration gives each client one, with DOT's registration scope: it lets that
    client read, change or delete its own registration at ``/register/<client_id>``.
    It is nobody's login and opens no MCP endpoint (the bearer guard refuses it), so the admin
    lists these apart from the people's access tokens (``admin.py``)."""

    class Meta:
        proxy = True
        verbose_name = "RFC 7592 registration token"
        verbose_name_plural = "RFC 7592 registration tokens"
