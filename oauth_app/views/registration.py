"""POST /register: RFC 7591 dynamic client registration, anonymous.

DOT does the registration; this view first applies what this server requires
of a client: the redirect URI policy (``oauth_app.redirect_uris``), the
authorization code grant only, and an ``application_type`` that fits the
redirect URIs (``oauth_app.application_type``), which DOT does not know: this
view stores it and adds it to the answers. The per-address rate limit is
applied in ``oauth_app/urls.py``.
"""

import json

from django.core.exceptions import RequestDataTooBig
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import get_application_model
from oauth2_provider.views import DynamicClientRegistrationManagementView, DynamicClientRegistrationView

from oauth_app import application_type, events
from oauth_app.client_address import client_address
from oauth_app.errors import JSONMethodNotAllowed, oauth_error
from oauth_app.models import AuthEvent
from oauth_app.redirect_uris import RedirectURIError, validate_redirect_uri

ALLOWED_GRANT_TYPES = {"authorization_code", "refresh_token"}
ALLOWED_RESPONSE_TYPES = {"code"}
MAX_REGISTRATION_BYTES = 64 * 1024
MAX_REDIRECT_URIS = 20
# What json.loads raises on a body that is no JSON. RecursionError too: it recurses once per
# nesting level, so a few kilobytes of `[[[[...` exhaust the stack, and RecursionError is no
# ValueError, yet such a body is as unreadable as any other (400, never 500).
UNREADABLE_JSON = (ValueError, UnicodeDecodeError, RecursionError)


def _is_list_of_strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _metadata_problem(data: dict):
    """The RFC 7591 error for metadata this server refuses, or None."""
    redirect_uris = data.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not redirect_uris:
        return oauth_error("invalid_redirect_uri", "redirect_uris must be a non-empty array of URIs")
    if len(redirect_uris) > MAX_REDIRECT_URIS:
        return oauth_error("invalid_redirect_uri", f"at most {MAX_REDIRECT_URIS} redirect URIs may be registered")
    for uri in redirect_uris:
        try:
            validate_redirect_uri(uri)
        except RedirectURIError as exc:
            return oauth_error("invalid_redirect_uri", str(exc))
    grant_types = data.get("grant_types", ["authorization_code"])
    # Strings checked before set(): an array or object inside the list is unhashable (400, never 500).
    if (
        not _is_list_of_strings(grant_types)
        or not set(grant_types) <= ALLOWED_GRANT_TYPES
        or "authorization_code" not in grant_types
    ):
        return oauth_error(
            "invalid_client_metadata", "grant_types must be authorization_code, optionally with refresh_token"
        )
    response_types = data.get("response_types", ["code"])
    if not _is_list_of_strings(response_types) or not set(response_types) <= ALLOWED_RESPONSE_TYPES:
        return oauth_error("invalid_client_metadata", 'response_types must be ["code"]')
    for field in ("client_name", "scope", "client_uri", "logo_uri", "software_id", "software_version"):
        if field in data and not isinstance(data[field], str):
            return oauth_error("invalid_client_metadata", f"{field} must be a string")
    return None


@method_decorator(csrf_exempt, name="dispatch")
class RegistrationView(JSONMethodNotAllowed, DynamicClientRegistrationView):
    def post(self, request, *args, **kwargs):
        address = client_address(request)
        try:
            if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_REGISTRATION_BYTES:
                raise RequestDataTooBig
            data = json.loads(request.body)
        except RequestDataTooBig:
            return oauth_error(
                "invalid_client_metadata",
                f"registration request larger than {MAX_REGISTRATION_BYTES} bytes",
                status=413,
            )
        except UNREADABLE_JSON:
            return oauth_error("invalid_client_metadata", "Request body must be a JSON object")
        if not isinstance(data, dict):
            return oauth_error("invalid_client_metadata", "Request body must be a JSON object")
        problem = _metadata_problem(data)
        if problem is not None:
            return problem
        kind, problem = application_type.decide(data)
        if problem is not None:
            return problem
        response = super().post(request, *args, **kwargs)
        if response.status_code == 201:
            client_id = json.loads(response.content)["client_id"]
            get_application_model().objects.filter(client_id=client_id).update(
                registered_from=address, application_type=kind
            )
            _echo_application_type(response, kind)
            response["Cache-Control"] = "no-store"
            events.record(
                AuthEvent.Kind.CLIENT_REGISTERED,
                request=request,
                client_id=client_id,
                detail=f"client_name={str(data.get('client_name', ''))[:100]!r}",
            )
        return response


@method_decorator(csrf_exempt, name="dispatch")
class RegistrationManagementView(JSONMethodNotAllowed, DynamicClientRegistrationManagementView):
    """RFC 7592 read/update/delete with the registration access token."""

    def put(self, request, *args, **kwargs):
        try:
            data = json.loads(request.body)
        except UNREADABLE_JSON:
            return oauth_error("invalid_client_metadata", "Request body must be a JSON object")
        if not isinstance(data, dict):
            return oauth_error("invalid_client_metadata", "Request body must be a JSON object")
        problem = _metadata_problem(data)
        if problem is not None:
            return problem
        kind, problem = application_type.decide(data)
        if problem is not None:
            return problem
        response = super().put(request, *args, **kwargs)
        if response.status_code == 200:
            get_application_model().objects.filter(client_id=kwargs["client_id"]).update(application_type=kind)
            _echo_application_type(response, kind)
        return response

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        if response.status_code == 200:
            kind = (
                get_application_model()
                .objects.filter(client_id=kwargs["client_id"])
                .values_list("application_type", flat=True)
                .first()
            )
            _echo_application_type(response, kind)
        return response


def _echo_application_type(response, kind: str | None) -> None:
    """RFC 7591 §3.2.1: the answer carries the metadata as registered, this field included."""
    if kind:
        body = json.loads(response.content)
        body["application_type"] = kind
        response.content = json.dumps(body)
