from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from mcpsite import connected_apps, views
from oauth_app.views import account

urlpatterns = [
    path("", views.landing, name="landing"),
    path("accounts/login/", account.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", account.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", account.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("accounts/apps/", connected_apps.connected_apps, name="connected-apps"),
    path("accounts/apps/revoke-all/", connected_apps.revoke_all, name="connected-apps-revoke-all"),
    path("accounts/apps/<int:pk>/revoke/", connected_apps.revoke, name="connected-app-revoke"),
    path("admin/", admin.site.urls),
    path("", include("oauth_app.urls")),
]
