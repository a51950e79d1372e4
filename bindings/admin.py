"""The admin configures Binding Health (clusters, AWS accounts, client networks, intervals).

Poller-owned data is shown read-only: it is rewritten on every poll, so edits would be lost.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from bindings import models as m


def _ago(value) -> str:
    if value is None:
        return "never"
    seconds = int((timezone.now() - value).total_seconds())
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


class PolledSourceAdmin(admin.ModelAdmin):
    # Django 6 assumes https for scheme-less URLs; adopt that now (and silence the warning).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = ("last_polled_at", "last_success_at", "next_poll_at", "last_error", "problems")
    actions = ("poll_now",)

    @admin.display(description="last success")
    def last_success(self, obj: m.PolledSource) -> str:
        return _ago(obj.last_success_at)

    @admin.display(description="status")
    def status(self, obj: m.PolledSource) -> str:
        if not obj.enabled:
            return "disabled"
        if obj.last_error:
            return format_html('<span title="{}">error</span>', obj.last_error)
        return "stale" if obj.is_stale else "ok"

    def _enqueue(self, pk: int) -> None:
        raise NotImplementedError

    @admin.action(description="Poll now")
    def poll_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for obj in queryset.filter(enabled=True):
            self._enqueue(obj.pk)
            count += 1
        skipped = queryset.filter(enabled=False).count()
        self.message_user(request, f"Queued {count} poll(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"Skipped {skipped} disabled source(s).", messages.WARNING)


class ClientNetworkInline(admin.TabularInline):
    model = m.ClientNetwork
    extra = 1


@admin.register(m.Cluster)
class ClusterAdmin(PolledSourceAdmin):
    list_display = (
        "name",
        "connection",
        "aws_account",
        "enabled",
        "poll_interval_seconds",
        "last_success",
        "status",
    )
    list_filter = ("enabled", "connection")
    search_fields = ("name", "api_url")
    list_select_related = ("aws_account",)
    inlines = (ClientNetworkInline,)
    fieldsets = (
        (None, {"fields": ("name", "enabled", "aws_account", "poll_interval_seconds")}),
        (
            "Connection",
            {
                "fields": (
                    "connection",
                    "kubeconfig_path",
                    "kube_context",
                    "api_url",
                    "token_file",
                    "ca_file",
                    "verify_ssl",
                ),
                "description": "Credentials are never stored here: give paths to files the worker can read.",
            },
        ),
        ("Last poll", {"fields": PolledSourceAdmin.readonly_fields}),
    )

    def _enqueue(self, pk: int) -> None:
        from bindings.tasks import poll_cluster_task

        poll_cluster_task.delay_on_commit(pk, "admin")


@admin.register(m.AwsAccount)
class AwsAccountAdmin(PolledSourceAdmin):
    list_display = (
        "name",
        "account_id",
        "region",
        "enabled",
        "poll_interval_seconds",
        "last_success",
        "status",
    )
    list_filter = ("enabled", "region")
    search_fields = ("name", "account_id")
    fieldsets = (
        (None, {"fields": ("name", "account_id", "region", "enabled", "poll_interval_seconds")}),
        ("Access", {"fields": ("role_arn", "external_id", "endpoint_url")}),
        ("Last poll", {"fields": PolledSourceAdmin.readonly_fields}),
    )

    def _enqueue(self, pk: int) -> None:
        from bindings.tasks import poll_account_task

        poll_account_task.delay_on_commit(pk, "admin")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Observed state: visible, searchable, never editable by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class SecurityGroupRuleInline(admin.TabularInline):
    model = m.SecurityGroupRule
    fields = ("egress", "protocol", "from_port", "to_port", "source_kind", "source", "description")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ProtocolVerdictInline(admin.TabularInline):
    model = m.ProtocolVerdict
    fields = ("protocol", "port", "verdict", "targets_admitted", "targets_total", "reasons")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class FindingInline(admin.TabularInline):
    model = m.Finding
    fields = ("severity", "code", "protocol", "message")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(m.TargetGroupBinding)
class TargetGroupBindingAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "namespace",
        "cluster",
        "target_type",
        "target_group_protocol",
        "verdicts",
        "target_group_arn",
    )
    list_filter = ("cluster", "target_type", "target_group_protocol")
    search_fields = ("name", "namespace", "target_group_arn", "service_name")
    list_select_related = ("cluster",)
    inlines = (ProtocolVerdictInline, FindingInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("verdicts")

    @admin.display(description="verdicts")
    def verdicts(self, obj: m.TargetGroupBinding) -> str:
        return ", ".join(f"{v.protocol} {v.verdict}" for v in obj.verdicts.all()) or "not analysed"


@admin.register(m.TargetGroup)
class TargetGroupAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "protocol",
        "port",
        "target_type",
        "health_check_protocol",
        "health_check_port",
        "preserve_client_ip",
        "account",
    )
    list_filter = ("account", "protocol", "target_type")
    search_fields = ("name", "arn")


@admin.register(m.RegisteredTarget)
class RegisteredTargetAdmin(ReadOnlyAdmin):
    list_display = ("target_id", "port", "state", "reason", "availability_zone", "target_group_arn")
    list_filter = ("state", "account")
    search_fields = ("target_id", "target_group_arn")


@admin.register(m.LoadBalancer)
class LoadBalancerAdmin(ReadOnlyAdmin):
    list_display = ("name", "type", "scheme", "vpc_id", "dns_name", "security_groups", "account")
    list_filter = ("account", "scheme")
    search_fields = ("name", "arn", "dns_name")


@admin.register(m.Listener)
class ListenerAdmin(ReadOnlyAdmin):
    list_display = ("protocol", "port", "load_balancer_arn", "target_group_arns")
    list_filter = ("protocol", "account")


@admin.register(m.NetworkInterface)
class NetworkInterfaceAdmin(ReadOnlyAdmin):
    list_display = (
        "eni_id",
        "interface_type",
        "private_ips",
        "security_group_ids",
        "instance_id",
        "subnet_id",
    )
    list_filter = ("account", "interface_type")
    search_fields = ("eni_id", "instance_id", "description")


@admin.register(m.SecurityGroup)
class SecurityGroupAdmin(ReadOnlyAdmin):
    list_display = ("group_id", "name", "vpc_id", "account")
    list_filter = ("account",)
    search_fields = ("group_id", "name")
    inlines = (SecurityGroupRuleInline,)


@admin.register(m.PollRun)
class PollRunAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "source_label",
        "trigger",
        "status",
        "duration_ms",
        "total_api_calls",
        "rows_written",
        "error",
    )
    list_filter = ("status", "trigger", "cluster", "account")
    list_select_related = ("cluster", "account")


for model in (m.KubeService, m.KubeEndpointSlice, m.KubePod, m.KubeNode):
    admin.site.register(
        model,
        type(
            f"{model.__name__}Admin",
            (ReadOnlyAdmin,),
            {
                "list_display": ("name", "namespace", "cluster"),
                "list_filter": ("cluster",),
                "search_fields": ("name", "namespace"),
            },
        ),
    )
for model in (m.Instance, m.Subnet, m.Vpc, m.NetworkAcl):
    admin.site.register(
        model, type(f"{model.__name__}Admin", (ReadOnlyAdmin,), {"list_filter": ("account",)})
    )
