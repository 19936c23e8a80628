"""POST /token: DOT's token endpoint, with the grants this server serves.

Two gaps are closed here: DOT would route the device-code grant to its own
flow (answering 404), and errors raised while saving a token (such as
`invalid_target`) come back without a JSON content type.
"""

from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.views import RevokeTokenView as DOTRevokeTokenView
from oauth2_provider.views import TokenView as DOTTokenView

from oauth_app.errors import JSONMethodNotAllowed, oauth_error
from oauth_app.validators import ALLOWED_GRANT_TYPES


@method_decorator(csrf_exempt, name="dispatch")
class TokenView(JSONMethodNotAllowed, DOTTokenView):
    def post(self, request, *args, **kwargs):
        grant_type = request.POST.get("grant_type")
        if grant_type is not None and grant_type not in ALLOWED_GRANT_TYPES:
            return oauth_error("unsupported_grant_type", f"grant_type {grant_type!r} is not supported here")
        response = super().post(request, *args, **kwargs)
        response["Content-Type"] = "application/json"
        response["Cache-Control"] = "no-store"
        return response


@method_decorator(csrf_exempt, name="dispatch")
class RevokeTokenView(JSONMethodNotAllowed, DOTRevokeTokenView):
    """POST /revoke (RFC 7009): DOT's view; other methods get a JSON 405."""
