from django.apps import AppConfig


class OAuthAppConfig(AppConfig):
    name = "oauth_app"
    verbose_name = "OAuth authorization server"

    def ready(self):
        from oauth_app import consent, events, revocations

        events.connect_signals()  # the auth event trail listens to login, token and lockout signals
        revocations.connect_signals()  # a deleted access token is announced to the MCP workers' caches
        consent.connect_signals()  # a remembered consent ends with any revocation the trail records
