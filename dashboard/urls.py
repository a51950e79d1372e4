from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from dashboard import ratelimit_login

urlpatterns = [
    # Rate-limited sign-in forms: listed before the admin and auth includes so they take the
    # same URLs (and names: reverse("login") still works) ahead of Django's unlimited views.
    path("admin/login/", ratelimit_login.admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("accounts/login/", ratelimit_login.login_view, name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("bindings.urls")),
    path("", include("dashboard.ui_urls")),
]
