"""DOT's request validator, narrowed to what this MCP server allows."""

import hashlib
import logging

from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors

from oauth_app.backends import PUBLIC_ORIGIN_HEADER
from oauth_app.models import RedeemedCode
from oauth_app.resources import is_resource_of

log = logging.getLogger(__name__)

ALLOWED_GRANT_TYPES = frozenset({"authorization_code", "refresh_token"})


def checksum(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class MCPOAuth2Validator(OAuth2Validator):
    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        if grant_type not in ALLOWED_GRANT_TYPES:
            return False
        return super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs)

    def _check_and_set_request_resource(self, request):
        """RFC 8707: a token is always bound to this server. No `resource`
        means this server; a resource elsewhere is `invalid_target`."""
        super()._check_and_set_request_resource(request)
        origin = request.headers[PUBLIC_ORIGIN_HEADER]
        for resource in request.resource:
            if not is_resource_of(resource, origin):
                raise errors.CustomOAuth2Error(
                    error="invalid_target",
                    description=f"The resource {resource!r} is not served here; this server is {origin}.",
                    request=request,
                )
        if not request.resource:
            request.resource = [origin]

    def save_bearer_token(self, token, request, *args, **kwargs):
        super().save_bearer_token(token, request, *args, **kwargs)
        if request.grant_type == "authorization_code":
            self._remember_redeemed_code(token, request)

    def _remember_redeemed_code(self, token, request):
        access_token = get_access_token_model().objects.filter(token_checksum=checksum(token["access_token"])).first()
        family = None
        if token.get("refresh_token"):
            family = (
                get_refresh_token_model()
                .objects.filter(token_checksum=checksum(token["refresh_token"]))
                .values_list("token_family", flat=True)
                .first()
            )
        RedeemedCode.objects.create(code_checksum=checksum(request.code), access_token=access_token, token_family=family)

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        if super().validate_code(client_id, code, client, request, *args, **kwargs):
            return True
        self._revoke_if_replayed(code)
        return False

    def _revoke_if_replayed(self, code):
        """A code presented twice was intercepted: revoke all it issued."""
        redeemed = RedeemedCode.objects.filter(code_checksum=checksum(code)).select_related("access_token").first()
        if redeemed is None:
            return
        log.warning("authorization code replayed; revoking the tokens it issued (redemption #%s)", redeemed.pk)
        if redeemed.token_family:
            get_refresh_token_model().revoke_family(redeemed.token_family)
        if redeemed.access_token is not None:
            redeemed.access_token.revoke()
