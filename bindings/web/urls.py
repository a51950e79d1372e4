"""The dashboard's HTML pages (namespace "dashboard")."""

from __future__ import annotations

from django.urls import path

from bindings.web import views

app_name = "dashboard"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("bindings/", views.binding_list, name="binding-list"),
    path("bindings/<int:pk>/", views.binding_detail, name="binding-detail"),
    path("bindings/<int:pk>/fix/", views.binding_fix, name="binding-fix"),
    path("bindings/<int:pk>/fix.yaml", views.binding_fix_yaml, name="binding-fix-yaml"),
    path("bindings/<int:pk>/fix/dry-run/", views.binding_fix_dry_run, name="binding-fix-dry-run"),
    path("bindings/<int:pk>/fix/apply/", views.binding_fix_apply, name="binding-fix-apply"),
    path("clusters/<int:pk>/", views.cluster_detail, name="cluster-detail"),
    path("clusters/<int:pk>/poll/", views.cluster_poll, name="cluster-poll"),
    path("clusters/<int:pk>/poll-status/", views.cluster_poll_status, name="cluster-poll-status"),
    path("accounts/aws/<int:pk>/", views.account_detail, name="account-detail"),
]
