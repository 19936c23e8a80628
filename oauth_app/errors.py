"""OAuth error bodies (RFC 6749 §5.2, RFC 7591 §3.2.2): one shape everywhere."""

from django.http import JsonResponse


def oauth_error(error: str, description: str, status: int = 400, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response
