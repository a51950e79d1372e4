"""Binding Health's data: configuration (edited in the admin), observed state (written only by the
poller, keyed on Kubernetes uids and AWS ids), analysis results and poll records.

Observed rows carry typed columns for what the analysis reads; small nested lists (ports, IPs,
security-group ids) are JSON. `bindings.store.inventory` turns rows back into the analysis' dataclasses.
"""

from __future__ import annotations

import ipaddress
import os
import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from bindings import freshness, vocabulary
from bindings.analysis.normalize import parse_eni_sg_tags

# --- validators -------------------------------------------------------------------------------

REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
CLUSTER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


def validate_region(value: str) -> None:
    if not REGION_RE.match(value or ""):
        raise ValidationError(f"{value!r} is not an AWS region name such as us-east-1.")


def validate_role_arn(value: str) -> None:
    if value and not ROLE_ARN_RE.match(value):
        raise ValidationError(f"{value!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/name).")


def validate_account_id(value: str) -> None:
    if not ACCOUNT_ID_RE.match(value or ""):
        raise ValidationError(f"{value!r} is not a 12-digit AWS account id.")


def validate_cidr(value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ValidationError(f"{value!r} is not a CIDR block: {exc}") from None


def parse_cidr_list(text: str) -> list[str]:
    """Split a comma/space/newline separated list of CIDRs, validating each."""
    items = [item for item in re.split(r"[\s,]+", text or "") if item]
    errors = []
    for item in items:
        try:
            validate_cidr(item)
        except ValidationError as exc:
            errors.extend(exc.messages)
    if errors:
        raise ValidationError(errors)
    return items


# --- configuration ----------------------------------------------------------------------------


class PolledSource(models.Model):
    """What clusters and AWS accounts share: a cadence and the outcome of their last poll."""

    enabled = models.BooleanField(default=True)
    poll_interval_seconds = models.PositiveIntegerField(
        default=300, help_text="How often to poll this source (seconds, at least 30)."
    )
    next_poll_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_polled_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    # Problems of the last poll tied to no binding (malformed objects, unknown kinds).
    problems = models.JSONField(default=list, blank=True, editable=False)

    class Meta:
        abstract = True

    def clean(self) -> None:
        super().clean()
        if self.poll_interval_seconds is not None and self.poll_interval_seconds < 30:
            raise ValidationError({"poll_interval_seconds": "Poll at most every 30 seconds."})

    @property
    def is_stale(self) -> bool:
        """Stale now, as `bindings.freshness` defines it (the STALE_DATA finding's rule)."""
        return freshness.is_stale(self.last_success_at, self.poll_interval_seconds, timezone.now())


class AwsAccount(PolledSource):
    """An AWS account and region whose load balancers serve the clusters' bindings."""

    name = models.CharField(max_length=100, unique=True)
    account_id = models.CharField(max_length=12, validators=[validate_account_id])
    region = models.CharField(max_length=32, validators=[validate_region])
    role_arn = models.CharField(
        max_length=2048,
        blank=True,
        validators=[validate_role_arn],
        help_text="Optional role to assume (cross-account). Empty: the worker's own credentials.",
    )
    external_id = models.CharField(max_length=1224, blank=True)
    endpoint_url = models.URLField(blank=True, help_text="Only for emulators (moto). Empty for real AWS.")

    # Where the poller goes and as whom: only superusers edit these (bindings/admin.py).
    CONNECTION_FIELDS = ("role_arn", "external_id", "endpoint_url")
    # "Poll now" (admin action, API) is its own right, separate from editing the account.
    POLL_PERMISSION = "bindings.poll_awsaccount"

    class Meta:
        verbose_name = "AWS account"
        constraints = [models.UniqueConstraint(fields=["account_id", "region"], name="uniq_account_region")]
        permissions = [("poll_awsaccount", "Can poll an AWS account now")]

    def __str__(self) -> str:
        return f"{self.name} ({self.account_id}/{self.region})"


class Cluster(PolledSource):
    """A Kubernetes cluster running the AWS Load Balancer Controller."""

    class Connection(models.TextChoices):
        KUBECONFIG = "kubeconfig", "kubeconfig file"
        IN_CLUSTER = "in_cluster", "in-cluster service account"
        URL = "url", "API URL + token file"

    name = models.CharField(
        max_length=100,
        unique=True,
        help_text="The EKS cluster name: the controller matches kubernetes.io/cluster/<name> tags.",
    )
    connection = models.CharField(max_length=20, choices=Connection, default=Connection.KUBECONFIG)
    kubeconfig_path = models.CharField(max_length=1024, blank=True)
    kube_context = models.CharField(max_length=255, blank=True)
    api_url = models.URLField(blank=True)
    token_file = models.CharField(
        max_length=1024, blank=True, help_text="Path of a file holding a bearer token (read per poll)."
    )
    ca_file = models.CharField(max_length=1024, blank=True)
    verify_ssl = models.BooleanField(default=True)
    aws_account = models.ForeignKey(
        AwsAccount, on_delete=models.PROTECT, related_name="clusters", null=True, blank=True
    )
    probe_kind = models.CharField(
        max_length=8,
        blank=True,
        choices=[("", "off"), ("tcp", "TCP connect"), ("dns", "DNS query"), ("udp", "UDP payload")],
        help_text="Probe every binding of this cluster from the worker (off by default). "
        "Per-binding settings and the binding-health/probe annotation take precedence.",
    )
    allow_apply_fix = models.BooleanField(
        default=False,
        help_text="Let users with the 'apply fix' permission patch TGBs in this cluster "
        "(needs the optional patch RBAC role). Off: fixes are shown, never applied.",
    )
    service_target_eni_sg_tags = models.JSONField(
        "service target ENI security group tags",
        default=dict,
        blank=True,
        help_text="The controller's --service-target-eni-security-group-tags, as a JSON object "
        '{"key": "value"}: on an ENI with several cluster-tagged security groups, the controller '
        "writes networking rules to the one that also carries all of these tags. Empty when the "
        "flag is not set.",
    )
    emit_kube_events = models.BooleanField(
        "emit Kubernetes events",
        default=False,
        help_text="On a verdict change, create an Event on the TargetGroupBinding "
        "(BindingHealthBlocked / BindingHealthRecovered) so `kubectl describe` shows it. "
        "Needs the optional `create events` RBAC role.",
    )

    # Where the poller connects and with which credentials: only superusers edit these
    # (bindings/admin.py); the paths must lie under BH_CREDENTIALS_DIRS (bindings/collect/credentials.py).
    CONNECTION_FIELDS = (
        "connection",
        "kubeconfig_path",
        "kube_context",
        "api_url",
        "token_file",
        "ca_file",
        "verify_ssl",
    )
    # "Poll now" (admin action, dashboard, API) is its own right, separate from editing the cluster.
    POLL_PERMISSION = "bindings.poll_cluster"
    CREDENTIAL_PATH_FIELDS = {
        "kubeconfig_path": "kubeconfig file",
        "token_file": "bearer token file",
        "ca_file": "CA file",
    }

    class Meta:
        permissions = [("poll_cluster", "Can poll a cluster now")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        from bindings.collect.credentials import CredentialPathError, credential_path, kubeconfig_path

        if not CLUSTER_NAME_RE.match(self.name or ""):
            raise ValidationError({"name": "Use letters, digits, '-' and '_' (an EKS cluster name)."})
        if self.connection == self.Connection.KUBECONFIG and not self.kubeconfig_path:
            raise ValidationError({"kubeconfig_path": "A kubeconfig connection needs a path."})
        if self.connection == self.Connection.URL and not self.api_url:
            raise ValidationError({"api_url": "A URL connection needs the API server URL."})
        errors = {}
        for field, what in self.CREDENTIAL_PATH_FIELDS.items():
            if getattr(self, field):
                check = kubeconfig_path if field == "kubeconfig_path" else credential_path
                try:
                    check(getattr(self, field), what=what)
                except CredentialPathError as exc:
                    errors[field] = str(exc)
        try:
            parse_eni_sg_tags(self.service_target_eni_sg_tags, "service target ENI security group tags")
        except ValueError as exc:
            errors["service_target_eni_sg_tags"] = str(exc)
        if errors:
            raise ValidationError(errors)

    @property
    def tls_warning(self) -> str:
        """Why this cluster's API connection is not protected by verified TLS ('' when it is).

        Only the API URL mode has these settings; a kubeconfig carries its own."""
        if self.connection != self.Connection.URL or not self.api_url:
            return ""
        if self.api_url.lower().startswith("http://"):
            return "plain HTTP: the bearer token and every answer cross the network unencrypted"
        if not self.verify_ssl:
            return (
                "TLS verification is off: anyone on the path can impersonate the API server "
                "and receive the bearer token"
            )
        return ""

    def client_cidrs(self) -> list[str]:
        return [network.cidr for network in self.client_networks.all()]

    def data_sources(self) -> list[PolledSource]:
        """The sources a binding's verdicts read: the cluster, and its AWS account if it has one."""
        return [self, self.aws_account] if self.aws_account_id else [self]

    @property
    def data_is_stale(self) -> bool:
        """Whether the bindings of this cluster show stale data: the cluster or its account is."""
        return any(source.is_stale for source in self.data_sources())


class ClientNetwork(models.Model):
    """An address range the clusters' clients come from (overrides the scheme's default)."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="client_networks")
    cidr = models.CharField(max_length=64, validators=[validate_cidr])
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cluster", "cidr"], name="uniq_client_cidr")]

    def __str__(self) -> str:
        return self.cidr


# --- observed: Kubernetes ---------------------------------------------------------------------


class KubeObject(models.Model):
    """Common columns of rows mirrored from one cluster, keyed by the object's uid."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+")
    uid = models.CharField(max_length=255)
    namespace = models.CharField(max_length=253, blank=True)
    name = models.CharField(max_length=253)
    problems = models.JSONField(default=list, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


class TargetGroupBinding(KubeObject):
    """A TargetGroupBinding as last read from the cluster."""

    api_version = models.CharField(max_length=64)
    resource_version = models.CharField(max_length=64, blank=True)
    generation = models.BigIntegerField(null=True)
    observed_generation = models.BigIntegerField(null=True)
    target_group_arn = models.CharField(max_length=2048, blank=True, db_index=True)
    target_group_name = models.CharField(max_length=255, blank=True)
    target_type = models.CharField(max_length=32, blank=True)
    target_group_protocol = models.CharField(max_length=32, blank=True)
    ip_address_type = models.CharField(max_length=16, blank=True)
    service_name = models.CharField(max_length=253, blank=True)
    service_port = models.CharField(max_length=64, blank=True)
    service_port_is_number = models.BooleanField(default=False)
    networking = models.JSONField(null=True, blank=True)  # None = no spec.networking
    annotations = models.JSONField(default=dict, blank=True)
    client_cidrs = models.JSONField(null=True, blank=True)
    events = models.JSONField(default=list, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "TargetGroupBinding"
        constraints = [models.UniqueConstraint(fields=["cluster", "uid"], name="uniq_tgb_uid")]
        permissions = [("apply_fix", "Can apply generated fixes to a cluster")]
        # The API list's order, id last so that its keyset cursor is one index range.
        indexes = [
            models.Index(fields=["cluster", "namespace", "name", "id"], name="bindings_tgb_list_order")
        ]
        ordering = ["namespace", "name"]


class BindingListing(models.Model):
    """One binding's item of `GET /api/v1/bindings` as JSON text, kept by PostgreSQL.

    Everything of the item but what belongs to the cluster or to the clock: the list query puts
    id, url and cluster before it and data age and staleness after it. Triggers (migration 0011)
    rewrite a row in the statement that writes its binding, result, verdicts or findings, whoever
    writes them, so it cannot lag; no foreign key, as it is theirs to keep. Empty on SQLite, where
    the list is serialised in Python (`bindings.api`).
    """

    binding_id = models.BigIntegerField(primary_key=True)
    json = models.TextField()


class KubeService(KubeObject):
    type = models.CharField(max_length=32, blank=True)
    ports = models.JSONField(default=list, blank=True)  # [{name, protocol, port, targetPort, nodePort}]
    selector = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "Service"
        constraints = [models.UniqueConstraint(fields=["cluster", "uid"], name="uniq_svc_uid")]


class KubeEndpointSlice(KubeObject):
    service_name = models.CharField(max_length=253, blank=True)
    address_type = models.CharField(max_length=16, blank=True)
    ports = models.JSONField(default=list, blank=True)
    endpoints = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = "EndpointSlice"
        constraints = [models.UniqueConstraint(fields=["cluster", "uid"], name="uniq_eps_uid")]


class KubePod(KubeObject):
    node_name = models.CharField(max_length=253, blank=True)
    ips = models.JSONField(default=list, blank=True)
    ready = models.BooleanField(default=False)
    container_ports = models.JSONField(default=list, blank=True)
    pod_eni = models.TextField(blank=True)

    class Meta:
        verbose_name = "Pod"
        constraints = [models.UniqueConstraint(fields=["cluster", "uid"], name="uniq_pod_uid")]


class KubeNode(KubeObject):
    provider_id = models.CharField(max_length=512, blank=True)
    instance_id = models.CharField(max_length=64, blank=True)
    zone = models.CharField(max_length=64, blank=True)
    internal_ips = models.JSONField(default=list, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    ready = models.BooleanField(default=False)

    class Meta:
        verbose_name = "Node"
        constraints = [models.UniqueConstraint(fields=["cluster", "uid"], name="uniq_node_uid")]


# --- observed: AWS ------------------------------------------------------------------------------


class AwsObject(models.Model):
    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True


class TargetGroup(AwsObject):
    arn = models.CharField(max_length=2048)
    name = models.CharField(max_length=255, blank=True)
    protocol = models.CharField(max_length=16, blank=True)
    port = models.IntegerField(null=True)
    vpc_id = models.CharField(max_length=64, blank=True)
    target_type = models.CharField(max_length=16, blank=True)
    ip_address_type = models.CharField(max_length=16, blank=True)
    health_check_protocol = models.CharField(max_length=16, blank=True)
    health_check_port = models.CharField(max_length=16, blank=True)
    health_check_enabled = models.BooleanField(null=True)
    health_check_interval = models.IntegerField(null=True)
    health_check_timeout = models.IntegerField(null=True)
    healthy_threshold = models.IntegerField(null=True)
    unhealthy_threshold = models.IntegerField(null=True)
    health_check_path = models.CharField(max_length=1024, blank=True)
    matcher = models.CharField(max_length=255, blank=True)
    load_balancer_arns = models.JSONField(default=list, blank=True)
    attributes = models.JSONField(null=True, blank=True)
    problems = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "arn"], name="uniq_tg_arn")]

    def __str__(self) -> str:
        return self.name or self.arn

    @property
    def preserve_client_ip(self) -> str | None:
        return (self.attributes or {}).get("preserve_client_ip.enabled")


class RegisteredTarget(AwsObject):
    target_group_arn = models.CharField(max_length=2048, db_index=True)
    target_id = models.CharField(max_length=255)
    port = models.IntegerField(null=True)
    availability_zone = models.CharField(max_length=64, blank=True)
    health_check_port = models.CharField(max_length=16, blank=True)
    state = models.CharField(max_length=32)
    reason = models.CharField(max_length=128, blank=True)
    description = models.TextField(blank=True)
    quic_server_id = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "target_group_arn", "target_id", "port"], name="uniq_target"
            )
        ]

    def __str__(self) -> str:
        return f"{self.target_id}:{self.port} {self.state}"


class LoadBalancer(AwsObject):
    arn = models.CharField(max_length=2048)
    name = models.CharField(max_length=255, blank=True)
    type = models.CharField(max_length=32, blank=True)
    scheme = models.CharField(max_length=32, blank=True)
    vpc_id = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=32, blank=True)
    ip_address_type = models.CharField(max_length=32, blank=True)
    dns_name = models.CharField(max_length=512, blank=True)
    security_groups = models.JSONField(default=list, blank=True)
    zones = models.JSONField(default=list, blank=True)  # [{zone_name, subnet_id, addresses}]
    attributes = models.JSONField(null=True, blank=True)
    privatelink_enforce_inbound = models.CharField(max_length=8, blank=True)
    endpoint_services = models.JSONField(null=True, blank=True)  # None = not collected

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "arn"], name="uniq_lb_arn")]

    def __str__(self) -> str:
        return self.name or self.arn


class Listener(AwsObject):
    arn = models.CharField(max_length=2048)
    load_balancer_arn = models.CharField(max_length=2048)
    port = models.IntegerField(null=True)
    protocol = models.CharField(max_length=16, blank=True)
    target_group_arns = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "arn"], name="uniq_listener_arn")]

    def __str__(self) -> str:
        return f"{self.protocol}:{self.port}"


class NetworkInterface(AwsObject):
    eni_id = models.CharField(max_length=64)
    interface_type = models.CharField(max_length=64, blank=True)
    description = models.TextField(blank=True)
    subnet_id = models.CharField(max_length=64, blank=True)
    vpc_id = models.CharField(max_length=64, blank=True)
    availability_zone = models.CharField(max_length=64, blank=True)
    private_ips = models.JSONField(default=list, blank=True)
    ipv6_addresses = models.JSONField(default=list, blank=True)
    ipv4_prefixes = models.JSONField(default=list, blank=True)
    ipv6_prefixes = models.JSONField(default=list, blank=True)
    security_group_ids = models.JSONField(default=list, blank=True)
    instance_id = models.CharField(max_length=64, blank=True)
    device_index = models.IntegerField(null=True)

    class Meta:
        verbose_name = "network interface"
        constraints = [models.UniqueConstraint(fields=["account", "eni_id"], name="uniq_eni")]

    def __str__(self) -> str:
        return self.eni_id


class Instance(AwsObject):
    instance_id = models.CharField(max_length=64)
    vpc_id = models.CharField(max_length=64, blank=True)
    subnet_id = models.CharField(max_length=64, blank=True)
    availability_zone = models.CharField(max_length=64, blank=True)
    private_ip = models.CharField(max_length=64, blank=True)
    network_interface_ids = models.JSONField(default=list, blank=True)
    primary_network_interface_id = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "instance_id"], name="uniq_instance")]

    def __str__(self) -> str:
        return self.instance_id


class SecurityGroup(AwsObject):
    group_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255, blank=True)
    vpc_id = models.CharField(max_length=64, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    # Malformed permissions (not stored as rules): INVALID_SPEC on the bindings that use the group.
    problems = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "group_id"], name="uniq_sg")]

    def __str__(self) -> str:
        return f"{self.group_id} ({self.name})" if self.name else self.group_id


class SecurityGroupRule(models.Model):
    """One permission for one source, as AWS evaluates it (ingress or egress)."""

    security_group = models.ForeignKey(SecurityGroup, on_delete=models.CASCADE, related_name="rules")
    egress = models.BooleanField(default=False)
    protocol = models.CharField(max_length=16)
    from_port = models.IntegerField(null=True)
    to_port = models.IntegerField(null=True)
    source_kind = models.CharField(max_length=16)
    source = models.CharField(max_length=128)
    description = models.TextField(blank=True)
    rule_id = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        ports = "all" if self.from_port is None else f"{self.from_port}-{self.to_port}"
        return f"{self.protocol} {ports} from {self.source}"


class Subnet(AwsObject):
    subnet_id = models.CharField(max_length=64)
    vpc_id = models.CharField(max_length=64, blank=True)
    cidr = models.CharField(max_length=64, blank=True)
    ipv6_cidrs = models.JSONField(default=list, blank=True)
    availability_zone = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "subnet_id"], name="uniq_subnet")]

    def __str__(self) -> str:
        return self.subnet_id


class Vpc(AwsObject):
    vpc_id = models.CharField(max_length=64)
    cidrs = models.JSONField(default=list, blank=True)
    ipv6_cidrs = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = "VPC"
        constraints = [models.UniqueConstraint(fields=["account", "vpc_id"], name="uniq_vpc")]

    def __str__(self) -> str:
        return self.vpc_id


class NetworkAcl(AwsObject):
    acl_id = models.CharField(max_length=64)
    vpc_id = models.CharField(max_length=64, blank=True)
    is_default = models.BooleanField(default=False)
    subnet_ids = models.JSONField(default=list, blank=True)
    entries = models.JSONField(default=list, blank=True)
    problems = models.JSONField(default=list, blank=True)  # malformed entries (not stored)

    class Meta:
        verbose_name = "network ACL"
        constraints = [models.UniqueConstraint(fields=["account", "acl_id"], name="uniq_nacl")]

    def __str__(self) -> str:
        return self.acl_id


class ManagedPrefixList(AwsObject):
    """The entries of a managed prefix list a security-group rule names (GetManagedPrefixListEntries)."""

    prefix_list_id = models.CharField(max_length=64)
    cidrs = models.JSONField(default=list, blank=True)
    problems = models.JSONField(default=list, blank=True)  # malformed entries (not stored)

    class Meta:
        verbose_name = "managed prefix list"
        constraints = [models.UniqueConstraint(fields=["account", "prefix_list_id"], name="uniq_prefix_list")]

    def __str__(self) -> str:
        return self.prefix_list_id


class SourceSnapshot(models.Model):
    """The raw payload of a source's last successful poll, for bundle export (support, bugs).

    Rewritten only when its digest changes, so an unchanged poll writes nothing here.
    """

    cluster = models.OneToOneField(
        Cluster, on_delete=models.CASCADE, null=True, blank=True, related_name="snapshot"
    )
    account = models.OneToOneField(
        AwsAccount, on_delete=models.CASCADE, null=True, blank=True, related_name="snapshot"
    )
    collected_at = models.DateTimeField()
    digest = models.CharField(max_length=64)
    payload = models.JSONField()


# --- polls --------------------------------------------------------------------------------------


class PollRun(models.Model):
    """One poll of one source: the audit trail of what the poller did and what it cost."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCESS = "success"
        FAILED = "failed"
        # The answer would have deleted most of the source's objects at once: nothing was stored,
        # the next poll deletes them if it agrees (`note` says why; bindings.services.polling.deletion_hold).
        HELD = "held"

    cluster = models.ForeignKey(
        Cluster, on_delete=models.CASCADE, null=True, blank=True, related_name="polls"
    )
    account = models.ForeignKey(
        AwsAccount, on_delete=models.CASCADE, null=True, blank=True, related_name="polls"
    )
    trigger = models.CharField(max_length=32, default="schedule")
    status = models.CharField(max_length=16, choices=Status, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    api_calls = models.JSONField(default=dict, blank=True)
    rows_written = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    note = models.TextField(blank=True, help_text="Why a held poll waited.")

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["-started_at"])]

    def __str__(self) -> str:
        return f"{self.source_label} {self.status} at {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def source_label(self) -> str:
        if self.cluster_id:
            return f"cluster {self.cluster}"
        return f"AWS {self.account}"

    @property
    def total_api_calls(self) -> int:
        return sum(self.api_calls.values()) if isinstance(self.api_calls, dict) else 0


# --- analysis results ---------------------------------------------------------------------------

# The ranks' home is the vocabulary; the models keep them under their old names for their users.
VERDICT_RANK = vocabulary.VERDICT_RANK
SEVERITY_RANK = vocabulary.SEVERITY_RANK


class BindingResult(models.Model):
    """The latest analysis of one binding. `data` is the full result (report shape)."""

    binding = models.OneToOneField(TargetGroupBinding, on_delete=models.CASCADE, related_name="result")
    analyzed_at = models.DateTimeField()
    changed_at = models.DateTimeField()
    worst_verdict = models.CharField(max_length=16, db_index=True)
    max_severity = models.CharField(max_length=16, blank=True, db_index=True)
    healthy = models.PositiveIntegerField(default=0)
    unhealthy = models.PositiveIntegerField(default=0)
    other = models.PositiveIntegerField(default=0)
    digest = models.CharField(max_length=64)
    data = models.JSONField()


class ProtocolVerdict(models.Model):
    binding = models.ForeignKey(TargetGroupBinding, on_delete=models.CASCADE, related_name="verdicts")
    protocol = models.CharField(max_length=8)
    port = models.IntegerField(null=True)
    verdict = models.CharField(max_length=16, db_index=True)
    targets_total = models.PositiveIntegerField(default=0)
    targets_admitted = models.PositiveIntegerField(default=0)
    reasons = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["binding", "protocol"], name="uniq_binding_protocol")]


class Finding(models.Model):
    binding = models.ForeignKey(TargetGroupBinding, on_delete=models.CASCADE, related_name="findings")
    code = models.CharField(max_length=64, db_index=True)
    severity = models.CharField(max_length=16, db_index=True)
    protocol = models.CharField(max_length=8, blank=True)
    message = models.TextField()
    evidence = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.severity} {self.code}"


class HistorySample(models.Model):
    """One point per binding and poll, for the timeline; pruned after the retention period."""

    binding = models.ForeignKey(TargetGroupBinding, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField(db_index=True)
    verdicts = models.JSONField(default=dict)  # {"UDP": "blocked"}
    healthy = models.PositiveIntegerField(default=0)
    unhealthy = models.PositiveIntegerField(default=0)
    other = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at"]


class VerdictTransition(models.Model):
    """A verdict change of one binding and protocol: feeds alerts and the timeline."""

    binding = models.ForeignKey(TargetGroupBinding, on_delete=models.CASCADE, related_name="transitions")
    protocol = models.CharField(max_length=8)
    at = models.DateTimeField(db_index=True)
    old = models.CharField(max_length=16, blank=True)
    new = models.CharField(max_length=16)
    # The Kubernetes Event for this transition: "" not handled yet; otherwise what happened
    # ("created", "skipped: …", "failed: …"). Claimed with a conditional UPDATE: one event at most.
    kube_event = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["-at"]


# --- access, alerts, audit ----------------------------------------------------------------------


class ApiToken(models.Model):
    """A bearer token for scripts. Only a SHA-256 digest is stored; the token is shown once."""

    class Scope(models.TextChoices):
        READ = "read", "read-only"
        WRITE = "write", "read-write"

    name = models.CharField(max_length=100)
    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="api_tokens")
    prefix = models.CharField(max_length=12, db_index=True, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    scope = models.CharField(max_length=8, choices=Scope, default=Scope.READ)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked = models.BooleanField(default=False)

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class AlertHook(models.Model):
    """Where alerts go. The URL itself is a secret, so it is read from a file or variable."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "generic JSON webhook"
        SLACK = "slack", "Slack-compatible incoming webhook"
        PAGERDUTY = "pagerduty", "PagerDuty Events API v2 (the file or variable holds the routing key)"
        TEAMS = "teams", "Microsoft Teams workflow webhook (Adaptive Card)"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind, default=Kind.WEBHOOK)
    url_file = models.CharField(
        max_length=1024,
        blank=True,
        help_text="Path of a file holding the URL (for PagerDuty: the routing key).",
    )
    url_env = models.CharField(
        max_length=128,
        blank=True,
        help_text="Name of an environment variable holding the URL (for PagerDuty: the routing key).",
    )
    enabled = models.BooleanField(default=True)
    on_transitions = models.BooleanField(default=True, help_text="Alert when a verdict changes.")
    on_stale = models.BooleanField(default=True, help_text="Alert when a source goes stale.")
    clusters = models.ManyToManyField(Cluster, blank=True, help_text="Empty: every cluster.")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if bool(self.url_file) == bool(self.url_env):
            raise ValidationError("Give exactly one of: a URL file, or an environment variable name.")
        from bindings.collect.hooks import HookUrlError, hook_url

        if self.url_file:
            # The file must lie under BH_CREDENTIALS_DIRS and be readable here; its host must be
            # allowed. The same checks run again before every delivery.
            try:
                hook_url(self)
            except HookUrlError as exc:
                raise ValidationError({"url_file": str(exc)}) from None
        elif os.environ.get(self.url_env, "").strip():
            # The variable may be set only in the worker's environment; when this process has it,
            # check its host now rather than at the first alert.
            try:
                hook_url(self)
            except HookUrlError as exc:
                raise ValidationError({"url_env": str(exc)}) from None


class AlertDelivery(models.Model):
    """One alert to one hook. `event_key` is unique per hook: one alert per transition."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    hook = models.ForeignKey(AlertHook, on_delete=models.CASCADE, related_name="deliveries")
    event_key = models.CharField(max_length=255)
    transition = models.ForeignKey(VerdictTransition, on_delete=models.SET_NULL, null=True, blank=True)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "alert deliveries"
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["hook", "event_key"], name="uniq_alert_event")]


class FixApplication(models.Model):
    """Audit record of a fix dry-run or apply from the dashboard: who, when, what, result.

    A dry-run row is the review: the target TGB (uid + resourceVersion) and the exact merge-patch
    text that an apply of it sends, with its SHA-256. An apply row points at the dry-run it used
    (`reviewed`) and repeats the text and digest it sent (bindings/services/apply.py).
    """

    class Status(models.TextChoices):
        DRY_RUN = "dry_run", "dry-run"
        APPLIED = "applied"
        CONFLICT = "conflict"
        FAILED = "failed"
        DENIED = "denied"
        REFUSED = "refused"

    cluster = models.ForeignKey(Cluster, on_delete=models.SET_NULL, null=True, related_name="+")
    binding = models.ForeignKey(TargetGroupBinding, on_delete=models.SET_NULL, null=True, blank=True)
    namespace = models.CharField(max_length=253)
    name = models.CharField(max_length=253)
    user = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True)
    at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status)
    manifest = models.JSONField(default=dict, help_text="The patch body, parsed (for reading).")
    diff = models.TextField(blank=True)
    message = models.TextField(blank=True)
    reviewed = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="applications",
        help_text="The dry-run this apply used.",
    )
    uid = models.CharField(max_length=255, blank=True, help_text="The TGB's uid when it was reviewed.")
    resource_version = models.CharField(
        max_length=64, blank=True, help_text="The TGB's resourceVersion when it was reviewed."
    )
    # Text, not JSON: jsonb does not keep key order, and this is the exact body sent on the wire.
    patch = models.TextField(blank=True, help_text="The exact merge-patch body (JSON text) reviewed or sent.")
    patch_sha256 = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the patch text.")
    server_dry_run = models.BooleanField(
        default=False, help_text="The API server validated the dry-run (else the diff was computed locally)."
    )
    used_at = models.DateTimeField(
        null=True, blank=True, help_text="When an apply sent this dry-run's patch (each is used once)."
    )

    class Meta:
        ordering = ["-at"]


# --- active probes ------------------------------------------------------------------------------


class ProbeSetting(models.Model):
    """Per-binding probe settings, keyed by the binding's name so they survive its re-creation."""

    class Kind(models.TextChoices):
        OFF = "off", "off"
        TCP = "tcp", "TCP connect"
        DNS = "dns", "DNS query"
        UDP = "udp", "UDP payload"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="probe_settings")
    namespace = models.CharField(max_length=253)
    name = models.CharField(max_length=253)
    kind = models.CharField(max_length=8, choices=Kind, default=Kind.DNS)
    address = models.CharField(
        max_length=255, blank=True, help_text="Host or IP to probe. Empty: the load balancer's DNS name."
    )
    port = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: the listener port.")
    dns_name = models.CharField(max_length=255, default=".", help_text="Name to query (DNS probes).")
    dns_type = models.CharField(max_length=16, default="NS")
    udp_payload = models.TextField(blank=True, help_text="Bytes to send (UDP probes); \\xNN escapes allowed.")
    udp_expect = models.CharField(
        max_length=255, blank=True, help_text="Regular expression the reply must match (UDP probes)."
    )
    interval_seconds = models.PositiveIntegerField(default=60)
    timeout_seconds = models.FloatField(default=2.0)
    retries = models.PositiveSmallIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cluster", "namespace", "name"], name="uniq_probe_setting")
        ]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}: {self.kind}"

    def clean(self) -> None:
        """An IP address the worker may never probe is refused here; a name is checked each time
        it is probed (it may resolve elsewhere later)."""
        super().clean()
        from bindings.collect.probes import target_refusal
        from bindings.security import probe_fence

        address = self.address.strip()
        if address and _is_ip(address) and (why := target_refusal(address, probe_fence())):
            raise ValidationError({"address": why})


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


class ProbeResult(models.Model):
    """One probe of one binding and protocol from the worker's network position."""

    class Status(models.TextChoices):
        OK = "ok"
        FAILED = "failed"
        INCONCLUSIVE = "inconclusive"
        ERROR = "error"

    binding = models.ForeignKey(TargetGroupBinding, on_delete=models.CASCADE, related_name="probes")
    protocol = models.CharField(max_length=8)
    kind = models.CharField(max_length=8)
    address = models.CharField(max_length=255)
    port = models.PositiveIntegerField(null=True)
    status = models.CharField(max_length=16, choices=Status)
    latency_ms = models.FloatField(null=True, blank=True)
    detail = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["binding", "protocol", "-at"])]
