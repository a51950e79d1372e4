"""The admin configures Binding Health (clusters, AWS accounts, client networks, intervals).

Poller-owned data is shown read-only: it is rewritten on every poll, so edits would be lost.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
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
    """Clusters and AWS accounts. Where the poller connects and with which credentials (the
    model's CONNECTION_FIELDS, plus `superuser_fields`) is for superusers only, and so is adding
    a source (a source is its connection); staff with change_* edit the rest. "Poll now" needs the
    model's poll permission (POLL_PERMISSION), not change_*."""

    # Django 6 assumes https for scheme-less URLs; adopt that now (and silence the warning).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = ("last_polled_at", "last_success_at", "next_poll_at", "last_error", "problems")
    actions = ("poll_now",)
    lock_kind = ""  # source_lock's kind: "cluster" or "account"
    superuser_fields: tuple[str, ...] = ()  # beyond the model's CONNECTION_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser) and super().has_add_permission(request)

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        return fields + tuple(self.model.CONNECTION_FIELDS) + self.superuser_fields

    def has_poll_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(self.model.POLL_PERMISSION)

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

    @admin.action(description="Poll now", permissions=("poll",))
    def poll_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        from bindings.tasks import request_poll

        count = 0
        for obj in queryset.filter(enabled=True):
            since = request_poll(self.lock_kind, obj.pk, "admin")
            if since is not None:
                # A queued poll would find the lock held and do nothing: say so instead.
                self.message_user(
                    request,
                    f"Not queued: a poll of {obj.name} is already running since "
                    f"{since:%Y-%m-%d %H:%M:%S} UTC.",
                    messages.WARNING,
                )
                continue
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
    lock_kind = "cluster"
    # Whether users with bindings.apply_fix may write to this cluster: a superuser's decision.
    superuser_fields = ("allow_apply_fix",)
    list_display = (
        "name",
        "connection",
        "tls",
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
        (None, {"fields": ("name", "enabled", "aws_account", "poll_interval_seconds", "probe_kind")}),
        (
            "Connection",
            {
                "fields": m.Cluster.CONNECTION_FIELDS,
                "description": "Credentials are never stored here: give paths to files the worker can "
                "read, under BH_CREDENTIALS_DIRS. Only superusers edit these fields.",
            },
        ),
        (
            "Fixes",
            {
                "fields": ("allow_apply_fix",),
                "description": "Only superusers change this. Applying also needs the apply_fix permission "
                "and the optional patch RBAC role in the cluster.",
            },
        ),
        ("Controller", {"fields": ("service_target_eni_sg_tags",)}),
        ("Kubernetes events", {"fields": ("emit_kube_events", "last_kube_event")}),
        ("Last poll", {"fields": PolledSourceAdmin.readonly_fields}),
    )
    readonly_fields = (*PolledSourceAdmin.readonly_fields, "last_kube_event")

    @admin.display(description="last Kubernetes event")
    def last_kube_event(self, obj: m.Cluster) -> str:
        """The latest Event outcome, so missing RBAC or an unreachable API shows where it is set."""
        if obj.pk is None:
            return "none yet"
        last = (
            m.VerdictTransition.objects.filter(binding__cluster=obj)
            .exclude(kube_event="")
            .order_by("-at", "-pk")
            .values_list("kube_event", "at", "binding__namespace", "binding__name")
            .first()
        )
        if last is None:
            return "none yet"
        outcome, at, namespace, name = last
        return f"{outcome} ({namespace}/{name}, {at:%Y-%m-%d %H:%M:%S} UTC)"

    @admin.display(description="TLS")
    def tls(self, obj: m.Cluster) -> str:
        warning = obj.tls_warning
        if not warning:
            return "verified" if obj.connection == m.Cluster.Connection.URL else "(kubeconfig / in-cluster)"
        return format_html('<strong title="{}">⚠ insecure</strong>', warning)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is not None and obj.tls_warning and request.method == "GET":
            self.message_user(
                request,
                f"Cluster {obj.name}: {obj.tls_warning}. Only superusers can change this.",
                messages.WARNING,
            )
        return super().change_view(request, object_id, form_url, extra_context)


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
    lock_kind = "account"
    list_filter = ("enabled", "region")
    search_fields = ("name", "account_id")
    fieldsets = (
        (None, {"fields": ("name", "account_id", "region", "enabled", "poll_interval_seconds")}),
        ("Access", {"fields": ("role_arn", "external_id", "endpoint_url")}),
        ("Last poll", {"fields": PolledSourceAdmin.readonly_fields}),
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Observed state: visible, searchable, never editable by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """Poller-owned child rows: shown beside their parent, never added or removed by hand."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class SecurityGroupRuleInline(ReadOnlyInline):
    model = m.SecurityGroupRule
    fields = ("egress", "protocol", "from_port", "to_port", "source_kind", "source", "description")
    readonly_fields = fields


class ProtocolVerdictInline(ReadOnlyInline):
    model = m.ProtocolVerdict
    fields = ("protocol", "port", "verdict", "targets_admitted", "targets_total", "reasons")
    readonly_fields = fields


class FindingInline(ReadOnlyInline):
    model = m.Finding
    fields = ("severity", "code", "protocol", "message")
    readonly_fields = fields


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


# --- API tokens and alerts --------------------------------------------------------------------


@admin.register(m.ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens for scripts. The add form generates the token and shows it once, in a message;
    only its prefix and SHA-256 digest are stored. Revoke instead of editing a token away."""

    list_display = ("name", "user", "prefix", "scope", "created_at", "expires_at", "last_used_at", "revoked")
    list_filter = ("scope", "revoked")
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    readonly_fields = ("prefix", "created_at", "last_used_at")

    def get_fields(self, request: HttpRequest, obj: m.ApiToken | None = None) -> list[str]:
        fields = ["name", "user", "scope", "expires_at", "revoked"]
        return fields if obj is None else [*fields, "prefix", "created_at", "last_used_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: m.ApiToken | None = None) -> tuple[str, ...]:
        # Who a token acts for is fixed once it exists: issue a new token rather than re-aim one.
        return self.readonly_fields if obj is None else (*self.readonly_fields, "user")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Staff who are not superusers see (and revoke) only their own tokens.
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(user=request.user)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            # Only superusers mint tokens for others: a token for someone else would act with
            # their rights, which may exceed the creator's.
            kwargs["queryset"] = get_user_model().objects.filter(pk=request.user.pk)
            kwargs["initial"] = request.user.pk
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: m.ApiToken, form, change: bool) -> None:
        if not change and not request.user.is_superuser and obj.user_id != request.user.pk:
            raise PermissionDenied("Only superusers create API tokens for other users.")
        token = None
        if not change:
            from bindings.api.auth import token_generate

            token, obj.prefix, obj.digest = token_generate()
        super().save_model(request, obj, form, change)
        if token is not None:
            self.message_user(
                request,
                format_html(
                    "API token for “{}”: <code>{}</code> — copy it now, it will not be shown again.",
                    obj.name,
                    token,
                ),
                messages.SUCCESS,
            )


@admin.register(m.AlertHook)
class AlertHookAdmin(admin.ModelAdmin):
    """Where alerts go. The URL is a secret: name a file or an environment variable holding it."""

    list_display = ("name", "kind", "enabled", "on_transitions", "on_stale", "url_source", "last_outcome")
    list_filter = ("kind", "enabled")
    search_fields = ("name",)
    filter_horizontal = ("clusters",)

    @admin.display(description="URL from")
    def url_source(self, obj: m.AlertHook) -> str:
        what = "routing key" if obj.kind == m.AlertHook.Kind.PAGERDUTY else "URL"
        return f"{what}: file {obj.url_file}" if obj.url_file else f"{what}: ${obj.url_env}"

    @admin.display(description="last delivery")
    def last_outcome(self, obj: m.AlertHook) -> str:
        """The latest finished delivery, so a misconfigured hook (bad key, wrong host) shows here."""
        last = (
            obj.deliveries.exclude(status=m.AlertDelivery.Status.PENDING, last_error="")
            .order_by("-created_at", "-pk")
            .values_list("status", "last_error")
            .first()
        )
        if last is None:
            return "none yet"
        status, error = last
        return f"{status}: {error}" if error else status


@admin.register(m.AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: one row per hook and event, with attempts and the last error."""

    list_display = ("created_at", "hook", "event_key", "status", "attempts", "sent_at", "last_error")
    list_filter = ("status", "hook")
    search_fields = ("event_key", "last_error")
    list_select_related = ("hook",)
    date_hierarchy = "created_at"


_PROBE_POSITION = (
    "Probes run from the Celery worker, so they see what a client at the worker's network position "
    "sees; that position may not be one of the binding's client ranges. Precedence: this setting, "
    "then the TGB annotation binding-health/probe, then the cluster's probe kind."
)


@admin.register(m.ProbeSetting)
class ProbeSettingAdmin(admin.ModelAdmin):
    """Per-binding active probes: kind, target (empty = the load balancer), schedule, limits."""

    list_display = ("cluster", "namespace", "name", "kind", "target", "interval_seconds", "timeout_seconds")
    list_filter = ("kind", "cluster")
    search_fields = ("namespace", "name", "address")
    list_select_related = ("cluster",)
    actions = ("probe_now",)
    fieldsets = (
        (None, {"fields": ("cluster", "namespace", "name", "kind"), "description": _PROBE_POSITION}),
        (
            "Target",
            {
                "fields": ("address", "port"),
                "description": "Empty: the load balancer's DNS name and the port of the listener "
                "carrying each protocol.",
            },
        ),
        ("DNS probes", {"fields": ("dns_name", "dns_type")}),
        ("UDP probes", {"fields": ("udp_payload", "udp_expect")}),
        ("Schedule and limits", {"fields": ("interval_seconds", "timeout_seconds", "retries")}),
    )

    @admin.display(description="target")
    def target(self, obj: m.ProbeSetting) -> str:
        host = obj.address or "load balancer"
        return f"{host}:{obj.port}" if obj.port else f"{host} (listener port)"

    @admin.action(description="Probe now (the selected bindings' clusters)")
    def probe_now(self, request: HttpRequest, queryset: QuerySet[m.ProbeSetting]) -> None:
        from bindings.tasks import probe_cluster_task

        cluster_ids = sorted(set(queryset.values_list("cluster_id", flat=True)))
        for pk in cluster_ids:
            probe_cluster_task.delay_on_commit(pk, True)
        self.message_user(
            request, f"Probe rounds queued for {len(cluster_ids)} cluster(s).", messages.SUCCESS
        )


@admin.register(m.ProbeResult)
class ProbeResultAdmin(ReadOnlyAdmin):
    """Probe history, newest first; pruned with the verdict history (BH_HISTORY_RETENTION_DAYS)."""

    list_display = ("at", "binding", "protocol", "kind", "address", "port", "status", "latency_ms", "detail")
    list_filter = ("status", "protocol", "kind")
    search_fields = ("binding__namespace", "binding__name", "address", "detail")
    list_select_related = ("binding",)
    date_hierarchy = "at"


# --- the apply audit ----------------------------------------------------------------------------


@admin.register(m.FixApplication)
class FixApplicationAdmin(ReadOnlyAdmin):
    """Who reviewed what and when (dry-run rows: the TGB's uid and resourceVersion, the exact patch
    and its SHA-256), and what each apply sent (the same text and digest, pointing at its dry-run)."""

    list_display = ("at", "user", "status", "namespace", "name", "cluster", "reviewed", "digest", "used_at")
    list_filter = ("status", "cluster")
    search_fields = ("namespace", "name", "patch_sha256", "user__username")
    list_select_related = ("user", "cluster", "reviewed")
    date_hierarchy = "at"
    fields = (
        "at",
        "user",
        "status",
        "cluster",
        "binding",
        "namespace",
        "name",
        "uid",
        "resource_version",
        "reviewed",
        "used_at",
        "server_dry_run",
        "patch_sha256",
        "patch",
        "diff",
        "message",
    )

    @admin.display(description="sha256")
    def digest(self, obj: m.FixApplication) -> str:
        return obj.patch_sha256[:12]
