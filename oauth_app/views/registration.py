"""POST /register: RFC 7591 dynamic client registration, anonymous.

DOT does the registration; this view first applies what this server requires
of a client: the redirect URI policy (``oauth_app.redirect_uris``), the
authorization code grant only, and an ``application_type`` that fits the
redirect URIs (``oauth_app.application_type``), which DOT does not know: this
view stores it and adds it to the answers. The per-address rate limits are
applied in ``oauth_app/urls.py``.

``/register/<client_id>`` (RFC 7592) answers only to the registration access
token, and asks for it before anything else: a request without the right one is
answered 401 with a Bearer challenge (RFC 6750 §3.1) and its body is never read.
With the token, an update's body is bounded and checked as a registration's is.
"""

import json

from django.http import HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import get_application_model
from oauth2_provider.utils import parse_bearer_token
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


def _read_metadata(request):
    """The request body as a JSON object, and None; or None and the error to answer.
    The declared length is checked before anything is read (413 past the bound)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:  # a Content-Length that is no number: no telling what the body is
        return None, oauth_error("invalid_client_metadata", "Content-Length must be a number of bytes")
    if length <= MAX_REGISTRATION_BYTES:
        body = request.body
        length = len(body)  # a body sent without a length (chunked) is measured once read
    if length > MAX_REGISTRATION_BYTES:
        return None, oauth_error(
            "invalid_client_metadata", f"registration request larger than {MAX_REGISTRATION_BYTES} bytes", status=413
        )
    try:
        data = json.loads(body)
    except UNREADABLE_JSON:
        return None, oauth_error("invalid_client_metadata", "Request body must be a JSON object")
    if not isinstance(data, dict):
        return None, oauth_error("invalid_client_metadata", "Request body must be a JSON object")
    return data, None


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
        data, problem = _read_metadata(request)
        if problem is not None:
            return problem
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
    """RFC 7592 read/update/delete with the registration access token: the token first, then the body."""

    _authentication = None  # DOT's answer for this request (a view instance serves one request)

    def _authenticate_registration_request(self, request, client_id):
        """DOT's check of the registration access token, asked once per request: each method
        below asks before anything else, and DOT's own handlers ask again."""
        if self._authentication is None:
            if parse_bearer_token(request.META.get("HTTP_AUTHORIZATION", "")) is None:
                # RFC 6750 §3.1: a request with no bearer credentials is told the scheme, with no
                # error code in the challenge (DOT would put one there).
                self._authentication = oauth_error(
                    "invalid_token",
                    "This endpoint needs the registration access token (Authorization: Bearer)",
                    status=401,
                    WWW_Authenticate="Bearer",
                )
            else:
                self._authentication = super()._authenticate_registration_request(request, client_id)
                if isinstance(self._authentication, HttpResponse):
                    self._authentication["Cache-Control"] = "no-store"
        return self._authentication

    def _refusal(self, request, client_id) -> HttpResponse | None:
        answer = self._authenticate_registration_request(request, client_id)
        return answer if isinstance(answer, HttpResponse) else None

    def put(self, request, *args, **kwargs):
        refused = self._refusal(request, kwargs["client_id"])
        if refused is not None:
            return refused
        data, problem = _read_metadata(request)
        if problem is not None:
            return problem
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
            response["Cache-Control"] = "no-store"  # it carries the registration access token
        return response

    def get(self, request, *args, **kwargs):
        refused = self._refusal(request, kwargs["client_id"])
        if refused is not None:
            return refused
        response = super().get(request, *args, **kwargs)
        if response.status_code == 200:
            kind = (
                get_application_model()
                .objects.filter(client_id=kwargs["client_id"])
                .values_list("application_type", flat=True)
                .first()
            )
            _echo_application_type(response, kind)
            response["Cache-Control"] = "no-store"  # it carries the registration access token
        return response

    def delete(self, request, *args, **kwargs):
        refused = self._refusal(request, kwargs["client_id"])
        if refused is not None:
            return refused
        return super().delete(request, *args, **kwargs)


def _echo_application_type(response, kind: str | None) -> None:
    """RFC 7591 §3.2.1: the answer carries the metadata as registered, this field included."""
    if kind:
        body = json.loads(response.content)
        body["application_type"] = kind
        response.content = json.dumps(body)
