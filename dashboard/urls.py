from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from bindings.web import ratelimit_login

urlpatterns = [
    # Rate-limited sign-in forms: listed before the admin and auth includes so they take the
    # same URLs (and names: reverse("login") still works) ahead of Django's unlimited views.
    path("admin/login/", ratelimit_login.admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("accounts/login/", ratelimit_login.login_view, name="login"),
    # Sign-out and changing one's own password; no self-service reset: it needs outgoing mail,
    # which a self-hosted install rarely has. Operators reset passwords in the admin or with
    # `manage.py changepassword`.
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    # Single sign-on (404 unless BH_OIDC_ENABLED): /oidc/authenticate/ and /oidc/callback/.
    path("oidc/", include("bindings.web.sso")),
    path("", include("bindings.urls")),
    path("", include("bindings.web.urls")),
]
