from django.apps import AppConfig


class OAuthAppConfig(AppConfig):
    name = "oauth_app"
    verbose_name = "OAuth authorization server"

    def ready(self):
        from oauth_app.events import connect_signals

        connect_signals()  # the auth event trail listens to login, token and lockout signals
