from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from mcpsite import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("oauth_app.urls")),
]
