"""DOT's request validator, narrowed to what this MCP server allows, and the
place where the token endpoint's events enter the auth event trail (revocation,
refresh-token reuse, code replay; issued tokens come through DOT's signal).

Refresh retries. A client that sent a refresh and lost the answer (a time-out, a
dropped connection) sends it again with the same refresh token; so does a client
that refreshes from two places at once. Rotation has already retired that token,
and reuse protection would revoke the whole family: the person is logged out.
DOT's own grace period answers a retry with the tokens it issued the first time,
which it cannot do when tokens are stored hashed (RFC 9700; DOT refuses the
combination). Here a retry within ``MCP_REFRESH_GRACE_SECONDS`` of the rotation
gets a new pair in the same family instead (a sibling of the first); after the
grace, reuse still revokes the family, siblings included. Only a token retired by
rotation qualifies (one that minted a successor): one revoked on purpose
(``/revoke``, the admin, a person's revoke) never does. Refreshes racing with one
token are ordered by its row lock (a write transaction on SQLite), in validation
and in saving: the later one finds the token rotated a moment ago and takes the
retry path, never an error and never a revoked family.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import router, transaction
from django.db.models import F
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors

from oauth_app import events
from oauth_app.backends import PUBLIC_ORIGIN_HEADER
from oauth_app.models import AuthEvent, RedeemedCode
from oauth_app.origins import same_origin
from oauth_app.resource_server import token_checksum

log = logging.getLogger(__name__)

ALLOWED_GRANT_TYPES = frozenset({"authorization_code", "refresh_token"})


class MCPOAuth2Validator(OAuth2Validator):
    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        if grant_type not in ALLOWED_GRANT_TYPES:
            return False
        return super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs)

    def _authenticate_basic_auth(self, request):
        # DOT 3.4.1 catches binascii.Error from base64.b64decode but not the plain ValueError it
        # raises for non-ASCII input (`Authorization: Basic ¡`), which would make /token and /revoke
        # answer 500. Credentials that are no base64 authenticate nobody, as DOT already answers for
        # other undecodable ones: 401 invalid_client.
        credentials = self._extract_basic_auth(request)
        if credentials is not None and not credentials.isascii():
            return False
        return super()._authenticate_basic_auth(request)

    def _check_and_set_request_resource(self, request):
        """RFC 8707: a token is always bound to this server. No `resource`
        means this server; a resource elsewhere is `invalid_target`."""
        super()._check_and_set_request_resource(request)
        origin = request.headers[PUBLIC_ORIGIN_HEADER]
        for resource in request.resource:
            if not same_origin(resource, origin):
                raise errors.CustomOAuth2Error(
                    error="invalid_target",
                    description=f"The resource {resource!r} is not served here; this server is {origin}.",
                    request=request,
                )
        if not request.resource:
            request.resource = [origin]

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        super().save_authorization_code(client_id, code, request, *args, **kwargs)
        self._mark_client_used(request.client)

    def save_bearer_token(self, token, request, *args, **kwargs):
        super().save_bearer_token(token, request, *args, **kwargs)
        self._mark_client_used(request.client)
        if request.grant_type == "authorization_code":
            self._remember_redeemed_code(token, request)

    @staticmethod
    def _mark_client_used(client):
        """`manage.py housekeeping` removes only registered clients that were never used."""
        if client is not None:
            get_application_model().objects.filter(pk=client.pk).update(last_used_at=timezone.now())

    def _remember_redeemed_code(self, token, request):
        access_token = (
            get_access_token_model().objects.filter(token_checksum=token_checksum(token["access_token"])).first()
        )
        family = None
        if token.get("refresh_token"):
            family = (
                get_refresh_token_model()
                .objects.filter(token_checksum=token_checksum(token["refresh_token"]))
                .values_list("token_family", flat=True)
                .first()
            )
        RedeemedCode.objects.create(
            code_checksum=token_checksum(request.code), access_token=access_token, token_family=family
        )

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        if super().validate_code(client_id, code, client, request, *args, **kwargs):
            return True
        self._revoke_if_replayed(code, client_id, request)
        return False

    def _revoke_if_replayed(self, code, client_id, request):
        """A code presented twice was intercepted: revoke all it issued."""
        redeemed = (
            RedeemedCode.objects.filter(code_checksum=token_checksum(code)).select_related("access_token").first()
        )
        if redeemed is None:
            return
        log.warning("authorization code replayed; revoking the tokens it issued (redemption #%s)", redeemed.pk)
        owner = self._owner_of(redeemed)
        if redeemed.token_family:
            get_refresh_token_model().revoke_family(redeemed.token_family)
        if redeemed.access_token is not None:
            redeemed.access_token.revoke()
        events.record(
            AuthEvent.Kind.CODE_REPLAY,
            request=request,
            user=owner,
            client_id=client_id,
            detail=f"code redeemed at {redeemed.redeemed_at:%Y-%m-%d %H:%M:%S} presented again; "
            "the tokens it issued were revoked",
        )

    @staticmethod
    def _owner_of(redeemed):
        """The user the replayed code's tokens were issued to, while any of them is left."""
        if redeemed.access_token is not None:
            return redeemed.access_token.user
        if redeemed.token_family:
            family = get_refresh_token_model().objects.filter(token_family=redeemed.token_family)
            token = family.select_related("user").first()
            return token.user if token is not None else None
        return None

    # -- refresh retries (see the module docstring) ---------------------------------------------
    @staticmethod
    def _retried_within_grace(rt) -> bool:
        """Whether ``rt`` was retired by rotation less than the grace ago (not revoked on purpose)."""
        grace = settings.MCP_REFRESH_GRACE_SECONDS
        if not grace or rt.revoked is None or rt.revoked <= timezone.now() - timedelta(seconds=grace):
            return False
        return get_access_token_model().objects.filter(source_refresh_token=rt).exists()

    def _retry_of(self, refresh_token: str, client):
        """The retired refresh token a retry presents, if the retry is to be honoured; else None."""
        rt = (
            get_refresh_token_model()
            .objects.filter(token_checksum=token_checksum(refresh_token))
            .select_related("user")
            .order_by(F("revoked").desc(nulls_first=True))
            .first()
        )
        if rt is None or rt.revoked is None or client is None or rt.application_id != client.pk:
            return None
        return rt if self._retried_within_grace(rt) else None

    def _save_bearer_token(self, token, request, *args, **kwargs):
        previous = getattr(request, "refresh_token_instance", None)
        if request.grant_type == "refresh_token" and previous is not None and token.get("refresh_token"):
            # Lock it first: a refresh racing this one with the same token may have rotated it since
            # validation, and then this one is its retry.
            locked = get_refresh_token_model().objects.select_for_update().filter(pk=previous.pk).first()
            if locked is not None and locked.revoked is not None:
                return self._save_sibling_pair(token, request, locked)
        return super()._save_bearer_token(token, request, *args, **kwargs)

    def _save_sibling_pair(self, token, request, retired) -> None:
        if not self._retried_within_grace(retired):
            raise errors.InvalidGrantError(description="The refresh token was already used.", request=request)
        self._check_and_set_request_resource(request)
        expires = timezone.now() + timedelta(
            seconds=token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS)
        )
        # No source_refresh_token: that one-to-one slot is the first pair's. The family is shared, so
        # a later reuse of any member revokes both pairs.
        access_token = self._create_access_token(expires, request, token)
        self._create_refresh_token(request, token["refresh_token"], access_token, retired)
        log.info("refresh token #%s presented again within the grace; issued a sibling pair", retired.pk)

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        # One look at the token, under its rows' lock (IMMEDIATE on SQLite): a refresh racing this one
        # must not rotate it between the retry check here and DOT's reuse check, which would take the
        # rotation a moment ago for reuse and revoke the whole family.
        with transaction.atomic(using=router.db_for_write(get_refresh_token_model())):
            list(
                get_refresh_token_model()
                .objects.select_for_update()
                .filter(token_checksum=token_checksum(refresh_token))
                .values_list("pk", flat=True)
            )
            return self._validate_refresh_token_locked(refresh_token, client, request, *args, **kwargs)

    def _validate_refresh_token_locked(self, refresh_token, client, request, *args, **kwargs):
        retried = self._retry_of(refresh_token, client)
        if retried is not None:
            # What DOT's own validation sets for a live token (its scopes come from the pair it minted).
            request.user = retried.user
            request.refresh_token = refresh_token
            request.refresh_token_instance = retried
            return True
        if super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return True
        # DOT has just revoked the family if this was a rotated (or revoked) token presented
        # again; unknown and expired tokens are plain failures, not events.
        reused = (
            get_refresh_token_model()
            .objects.filter(token_checksum=token_checksum(refresh_token), revoked__isnull=False)
            .select_related("user", "application")
            .first()
        )
        if reused is not None and reused.token_family and oauth2_settings.REFRESH_TOKEN_REUSE_PROTECTION:
            events.record(
                AuthEvent.Kind.REFRESH_TOKEN_REUSE,
                request=request,
                user=reused.user,
                client_id=reused.application.client_id if reused.application_id else "",
                detail=f"refresh token #{reused.pk}, rotated or revoked before, presented again; "
                "its whole family was revoked",
            )
        return False

    def revoke_token(self, token, token_type_hint, request, *args, **kwargs):
        """RFC 7009 /revoke. DOT revokes only tokens of the requesting client; look first
        (the access token row is deleted by the revocation) to record what goes."""
        found = None
        client_pk = getattr(request.client, "pk", None)
        if client_pk is not None:
            lookup = {"token_checksum": token_checksum(token), "application_id": client_pk}
            found = (
                get_access_token_model().objects.filter(**lookup).select_related("user").first()
                or get_refresh_token_model()
                .objects.filter(**lookup, revoked__isnull=True)
                .select_related("user")
                .first()
            )
        super().revoke_token(token, token_type_hint, request, *args, **kwargs)
        if found is not None:
            kind = "access" if isinstance(found, get_access_token_model()) else "refresh"
            events.record(
                AuthEvent.Kind.TOKEN_REVOKED,
                request=request,
                user=found.user,
                client_id=request.client.client_id,
                detail=f"{kind} token #{found.pk} revoked by its client at /revoke",
            )
