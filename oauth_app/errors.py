"""OAuth error bodies (RFC 6749 §5.2, RFC 7591 §3.2.2): one shape everywhere."""

from django.http import JsonResponse


def oauth_error(error: str, description: str, status: int = 400, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


class JSONMethodNotAllowed:
    """A view mixin: a method the endpoint does not serve gets a 405 with an OAuth error body
    and ``Allow``, instead of Django's empty 405 (clients parse these endpoints' errors as JSON)."""

    def http_method_not_allowed(self, request, *args, **kwargs):
        allowed = [method for method in self._allowed_methods() if method != "OPTIONS"]
        return oauth_error(
            "invalid_request",
            f"{request.method} is not allowed here; use {' or '.join(allowed)}",
            status=405,
            Allow=", ".join(self._allowed_methods()),
        )
