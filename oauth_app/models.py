from django.core.exceptions import ValidationError
from django.db import models
from oauth2_provider.models import AbstractApplication

from oauth_app.redirect_uris import RedirectURIError, allowed_schemes, validate_redirect_uri


class Application(AbstractApplication):
    """An OAuth client. Swapped in for DOT's model so that redirect URIs follow
    this server's policy (``oauth_app.redirect_uris``), private-use schemes of
    native apps included, rather than one global scheme list."""

    registered_from = models.GenericIPAddressField(
        null=True, blank=True, help_text="Client address that registered it dynamically."
    )

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"

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
