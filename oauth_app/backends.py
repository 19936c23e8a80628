"""The bridge between Django requests and oauthlib (DOT's OAuthLibCore).

oauthlib requests carry only a relative URI; the validator needs this server's
public origin to bind tokens to it, so it travels in a private header.
"""

from oauth2_provider.oauth2_backends import OAuthLibCore

from oauth_app.origins import request_origin

PUBLIC_ORIGIN_HEADER = "X_MCP_PUBLIC_ORIGIN"


class MCPOAuthLibCore(OAuthLibCore):
    def extract_headers(self, request):
        headers = super().extract_headers(request)
        headers[PUBLIC_ORIGIN_HEADER] = request_origin(request)
        return headers
