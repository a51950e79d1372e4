"""Helpers that test modules share: paths, hostile strings, model rows, analysis inventories,
deploy manifests, shell words and worker processes.

Test modules import shared helpers from here and never from one another; fixtures used by several
modules live in tests/conftest.py. This module imports without Django being set up (the analysis
golden generator, tests/analysis_golden/generate.py, is a plain script that uses the inventory
builders), so the model-row builders import the models when they are called.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
import yaml
from django.conf import settings
from django.db import connection

from bindings.analysis import model as m

if TYPE_CHECKING:
    from bindings import models

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "tests" / "scenarios"
KUBE = ROOT / "deploy" / "kubernetes"


# --- hostile strings ------------------------------------------------------------------------------

# Markup, quotes, an ANSI colour escape and a newline: for JSON, CLI and alert outputs.
HOSTILE_TEXT = "<script>alert(\"x\")</script> 'q' \x1b[31mRED\x1b[0m\nline2"
# Markup for HTML pages, and how the page must show it.
HOSTILE_HTML = '<img src=x onerror="alert(1)">'
HOSTILE_HTML_ESCAPED = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"


# --- model rows -----------------------------------------------------------------------------------


def seed_scenario(
    cluster: models.Cluster, scenario: str = "dns-udp-blocked", *, now: datetime | None = None
) -> None:
    """Sync a bundle into `cluster` as a successful poll would, then analyse it (at `now` if given)."""
    from django.utils import timezone

    from bindings import models
    from bindings.analysis.bundle import load_bundle
    from bindings.analysis.normalize import normalize_aws, normalize_kubernetes
    from bindings.services import polling
    from bindings.store import sync

    bundle = load_bundle(SCENARIOS / scenario)
    sync.cluster_sync(
        cluster=cluster, records=normalize_kubernetes(bundle.kube_objects, cluster=cluster.name)
    )
    sync.account_sync(account=cluster.aws_account, records=normalize_aws(bundle.aws))
    polled = now or timezone.now()
    models.Cluster.objects.filter(pk=cluster.pk).update(last_success_at=polled, last_polled_at=polled)
    models.AwsAccount.objects.filter(pk=cluster.aws_account_id).update(
        last_success_at=polled, last_polled_at=polled
    )
    cluster.refresh_from_db()
    polling.cluster_analyze(cluster=cluster, now=now)


def load_scenario(
    cluster: models.Cluster, name: str = "dns-udp-blocked"
) -> dict[str, models.TargetGroupBinding]:
    """Sync a scenario bundle into `cluster`, analyse it, and store the generated fixes."""
    from django.utils import timezone

    from bindings import models

    seed_scenario(cluster, name, now=timezone.now())
    attach_fixes(cluster)
    return {b.name: b for b in models.TargetGroupBinding.objects.filter(cluster=cluster)}


def attach_fixes(cluster: models.Cluster) -> None:
    """Store `fix_to_dict` output in BindingResult.data["fix"], as the poller will."""
    from django.utils import timezone

    from bindings import models
    from bindings.analysis.engine import analyze
    from bindings.fixes import fix_to_dict, generate_fix
    from bindings.store.inventory import cluster_inventory

    inventory = cluster_inventory(cluster, now=timezone.now())
    for result in analyze(inventory):
        fix = generate_fix(inventory, result)
        row = models.BindingResult.objects.get(binding__cluster=cluster, binding__uid=result.uid)
        row.data["fix"] = fix_to_dict(fix) if fix else None
        row.save(update_fields=["data"])


def make_bindings(
    cluster: models.Cluster, count: int, *, verdict: str = "blocked", prefix: str = "svc"
) -> list[models.TargetGroupBinding]:
    """`count` analysed bindings written straight to the tables (fast; shapes as results_store)."""
    from django.utils import timezone

    from bindings import models

    now = timezone.now()
    bindings = models.TargetGroupBinding.objects.bulk_create(
        [
            models.TargetGroupBinding(
                cluster=cluster,
                uid=f"{prefix}-uid-{i}",
                namespace="apps",
                name=f"{prefix}-{i:04d}",
                api_version="elbv2.k8s.aws/v1beta1",
                target_group_arn=f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{prefix}{i}/abc",
                target_type="ip",
                target_group_protocol="UDP",
            )
            for i in range(count)
        ]
    )
    results, verdicts, findings = [], [], []
    for b in bindings:
        data = {
            "cluster": cluster.name,
            "namespace": b.namespace,
            "name": b.name,
            "uid": b.uid,
            "target_group_arn": b.target_group_arn,
            "target_type": "ip",
            "target_group_protocol": "UDP",
            "protocols": [
                {
                    "protocol": "UDP",
                    "port": 53,
                    "verdict": verdict,
                    "targets_total": 2,
                    "targets_admitted": 0,
                    "client_ip_preserved": True,
                    "expected_sources": ["10.0.0.0/16"],
                    "reasons": ["no rule admits UDP 53"],
                    "targets": [],
                }
            ],
            "health_check": None,
            "findings": [
                {
                    "code": "TRAFFIC_BLOCKED",
                    "severity": "critical",
                    "message": "UDP 53 is blocked",
                    "protocol": "UDP",
                    "evidence": {},
                }
            ],
        }
        results.append(
            models.BindingResult(
                binding=b,
                analyzed_at=now,
                changed_at=now,
                worst_verdict=verdict,
                max_severity="critical",
                digest="x",
                data=data,
            )
        )
        verdicts.append(
            models.ProtocolVerdict(
                binding=b, protocol="UDP", port=53, verdict=verdict, targets_total=2, targets_admitted=0
            )
        )
        findings.append(
            models.Finding(
                binding=b, code="TRAFFIC_BLOCKED", severity="critical", protocol="UDP", message="blocked"
            )
        )
    models.BindingResult.objects.bulk_create(results)
    models.ProtocolVerdict.objects.bulk_create(verdicts)
    models.Finding.objects.bulk_create(findings)
    return bindings


def make_token(user: Any, scope: str = "read", **fields: Any) -> str:
    """An API token for `user` (stored hashed, as the admin creates them); returns the secret."""
    from bindings import models
    from bindings.api.auth import token_generate

    token, prefix, digest = token_generate()
    models.ApiToken.objects.create(name="ci", user=user, prefix=prefix, digest=digest, scope=scope, **fields)
    return token


# --- analysis inventories -------------------------------------------------------------------------
#
# `dns_inventory()` mirrors the sample bundles in tests/scenarios (cluster `demo`, VPC 10.0.0.0/16,
# an internal NLB with private addresses 10.0.1.200 and 10.0.2.200, two CoreDNS pods 10.0.1.15 and
# 10.0.2.25 held as secondary addresses by the nodes' primary ENIs, one node security group). Every
# knob defaults to the healthy, fixed case; tests change one thing and look at what the engine says.

VPC = "vpc-0a1b2c3d4e5f60718"
LB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/dns-nlb/2c404b1a74052ed7"
TG_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-dns/97044aff375392b7"
NODE_SG = "sg-0node00000000000a"
LB_SG = "sg-0lb0000000000000b"
NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
POD_IPS = ("10.0.1.15", "10.0.2.25")
INSTANCES = ("i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2")
NODE_PORT = 30053


def rule(
    protocol: str,
    port: int | None,
    source: str = "10.0.0.0/16",
    kind: str = "cidr",
    description: str = "",
    to_port: int | None = None,
) -> m.SecurityGroupRule:
    return m.SecurityGroupRule(
        protocol,
        port,
        to_port if to_port is not None else port,
        kind,
        source,
        description,  # type: ignore[arg-type]
    )


def allow_all() -> tuple[m.SecurityGroupRule, ...]:
    return (rule("-1", None, "0.0.0.0/0"), rule("-1", None, "::/0"))


def networking(
    *ports: tuple[str, int | str | None], cidrs: Iterable[str] = ("10.0.0.0/16",), sgs: Iterable[str] = ()
) -> tuple[m.NetworkingRule, ...]:
    peers = tuple(m.NetworkingPeer(cidr=c) for c in cidrs) + tuple(
        m.NetworkingPeer(security_group_id=s) for s in sgs
    )
    return (m.NetworkingRule(peers, tuple(m.NetworkingPort(p, n) for p, n in ports)),)


def dns_inventory(
    *,
    tg_protocol: str = "UDP",
    target_type: str = "ip",
    rules: Iterable[m.SecurityGroupRule] | None = None,
    net: tuple[m.NetworkingRule, ...] | None | str = "default",
    states: Iterable[str] = ("healthy", "healthy"),
    reasons: Iterable[str | None] | None = None,
    listener_protocols: Iterable[str] | None = None,
    scheme: str = "internal",
    lb_security_groups: tuple[str, ...] = (),
    attributes: dict[str, str] | None = None,
    hc_port: str = "traffic-port",
    hc_protocol: str = "TCP",
    service_port: int | str = "dns",
    service_ports: tuple[m.ServicePort, ...] | None = None,
    client_cidrs: tuple[str, ...] | None = None,
    cluster_client_cidrs: tuple[str, ...] | None = None,
) -> m.Inventory:
    """The DNS cluster with one binding `kube-system/coredns` on a `tg_protocol` group on port 53."""
    carried = m.CARRIED_PROTOCOLS.get(tg_protocol, ("TCP",))
    instance = target_type == "instance"
    traffic_port = NODE_PORT if instance else 53
    if rules is None:
        rules = tuple(
            rule(p.lower(), traffic_port, description=m.CONTROLLER_RULE_DESCRIPTION) for p in carried
        )
        if "TCP" not in carried:
            rules += (rule("tcp", traffic_port, description=m.CONTROLLER_RULE_DESCRIPTION),)
    if net == "default":
        ports = {(p, traffic_port) for p in carried} | {("TCP", traffic_port)}
        net = networking(*sorted(ports))
    inv = m.Inventory(cluster="demo", now=NOW, client_cidrs=cluster_client_cidrs)
    inv.vpcs[VPC] = m.Vpc(VPC, ("10.0.0.0/16",))
    inv.subnets["subnet-a"] = m.Subnet("subnet-a", VPC, "10.0.1.0/24", availability_zone="us-east-1a")
    inv.subnets["subnet-b"] = m.Subnet("subnet-b", VPC, "10.0.2.0/24", availability_zone="us-east-1b")
    inv.security_groups[NODE_SG] = m.SecurityGroup(
        NODE_SG, "eks-node", VPC, {"kubernetes.io/cluster/demo": "owned"}, tuple(rules)
    )
    for i, (zone, subnet, node_ip, pod_ip) in enumerate(
        (
            ("us-east-1a", "subnet-a", "10.0.1.10", POD_IPS[0]),
            ("us-east-1b", "subnet-b", "10.0.2.20", POD_IPS[1]),
        )
    ):
        eni_id = f"eni-0000000000000000{i + 1}"
        inv.network_interfaces[eni_id] = m.NetworkInterface(
            eni_id,
            "interface",
            "",
            subnet,
            VPC,
            zone,
            (node_ip, pod_ip),
            security_group_ids=(NODE_SG,),
            instance_id=INSTANCES[i],
            device_index=0,
        )
        inv.instances[INSTANCES[i]] = m.Instance(
            INSTANCES[i], VPC, subnet, zone, node_ip, (eni_id,), primary_network_interface_id=eni_id
        )
        node_name = f"ip-{node_ip.replace('.', '-')}.ec2.internal"
        inv.nodes[node_name] = m.Node(
            f"uid-{node_name}",
            node_name,
            f"aws:///{zone}/{INSTANCES[i]}",
            INSTANCES[i],
            zone,
            (node_ip,),
            ready=True,
        )
        pod_name = f"coredns-{i}"
        inv.pods[f"kube-system/{pod_name}"] = m.Pod(
            f"uid-{pod_name}",
            "kube-system",
            pod_name,
            node_name,
            (pod_ip,),
            True,
            (m.ContainerPort("dns", 53, "UDP"), m.ContainerPort("dns-tcp", 53, "TCP")),
        )
    inv.load_balancers[LB_ARN] = m.LoadBalancer(
        LB_ARN,
        "dns-nlb",
        "network",
        scheme,
        VPC,
        "active",
        "ipv4",
        security_groups=lb_security_groups,
        zones=(
            m.LoadBalancerZone("us-east-1a", "subnet-a", ("10.0.1.200",)),
            m.LoadBalancerZone("us-east-1b", "subnet-b", ("10.0.2.200",)),
        ),
    )
    for i, proto in enumerate(listener_protocols if listener_protocols is not None else (tg_protocol,)):
        inv.listeners.append(m.Listener(f"{LB_ARN}/listener{i}", LB_ARN, 53, proto, (TG_ARN,)))
    if attributes is None:
        attributes = {"preserve_client_ip.enabled": "true" if tg_protocol != "TCP" or instance else "false"}
    inv.target_groups[TG_ARN] = m.TargetGroup(
        TG_ARN,
        "k8s-dns",
        tg_protocol,
        53,
        VPC,
        target_type,
        "ipv4",
        hc_protocol,
        hc_port,
        True,
        load_balancer_arns=(LB_ARN,),
        attributes=attributes,
    )
    ids = INSTANCES if instance else POD_IPS
    reasons = list(reasons) if reasons is not None else [None] * len(ids)
    inv.target_health[TG_ARN] = [
        m.TargetHealth(TG_ARN, target_id, traffic_port, state=state, reason=reason)
        for target_id, state, reason in zip(ids, states, reasons, strict=False)
    ]
    if service_ports is None:
        service_ports = (
            m.ServicePort("dns", "UDP" if "UDP" in carried else "TCP", 53, 53, NODE_PORT),
            m.ServicePort("dns-tcp", "TCP", 53, 53, NODE_PORT + 1),
        )
        if tg_protocol == "TCP_UDP":
            service_ports = (
                m.ServicePort("dns", "UDP", 53, 53, NODE_PORT),
                m.ServicePort("dns-tcp", "TCP", 53, 53, NODE_PORT),
            )
    inv.services["kube-system/coredns-external"] = m.Service(
        "uid-svc", "kube-system", "coredns-external", "NodePort" if instance else "ClusterIP", service_ports
    )
    inv.endpoint_slices.append(
        m.EndpointSlice(
            "uid-eps",
            "kube-system",
            "coredns-external-abcde",
            "coredns-external",
            ports=tuple(m.EndpointPort(p.name, p.protocol, 53) for p in service_ports),
            endpoints=tuple(
                m.Endpoint((ip,), ready=True, pod_name=f"coredns-{i}") for i, ip in enumerate(POD_IPS)
            ),
        )
    )
    inv.bindings.append(
        m.Binding(
            uid="uid-tgb",
            namespace="kube-system",
            name="coredns",
            generation=1,
            observed_generation=1,
            target_group_arn=TG_ARN,
            target_type=target_type,
            target_group_protocol=tg_protocol,
            service_name="coredns-external",
            service_port=service_port,
            networking=net,  # type: ignore[arg-type]
            client_cidrs=client_cidrs,
        )
    )
    return inv


# Missing-data mutations of `dns_inventory`, shared by the hypothesis properties and the golden
# file's seeded random cases (tests/analysis_golden/generate.py) so both cover the same inputs.
MUTATIONS = ("none", "none", "none", "drop-eni", "drop-sg", "drop-tg", "drop-lb", "drop-vpc", "second-sg")


def mutate(
    inv: m.Inventory, mutation: str, other_rules: Callable[[], tuple[m.SecurityGroupRule, ...]]
) -> None:
    """Apply one of MUTATIONS; `other_rules` (called only for "second-sg") makes the second group's rules."""
    if mutation == "drop-eni":
        inv.network_interfaces.pop("eni-00000000000000001")
    elif mutation == "drop-sg":
        inv.network_interfaces["eni-00000000000000002"].security_group_ids = ("sg-missing",)
    elif mutation == "drop-tg":
        inv.target_groups.clear()
    elif mutation == "drop-lb":
        inv.load_balancers.clear()
    elif mutation == "drop-vpc":
        inv.vpcs.clear()
    elif mutation == "second-sg":
        inv.security_groups["sg-other"] = m.SecurityGroup("sg-other", ingress=other_rules())
        inv.network_interfaces["eni-00000000000000002"].security_group_ids = (NODE_SG, "sg-other")


# --- deploy manifests -----------------------------------------------------------------------------


def load_docs(path: Path) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a manifest file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def granted(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples a Role or ClusterRole grants."""
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


# --- shell words ----------------------------------------------------------------------------------
#
# `shlex` knows POSIX quoting only; generated commands write values that hold control or format
# characters with bash's ANSI-C quoting (`$'…\u202e…'`, bindings.textsafe.shell_quote), so tests
# ask the shell the commands are written for. `kubectl` and `aws` are shell functions there that
# print their arguments: nothing runs.

BASH = shutil.which("bash") or "/bin/bash"
_PRINT_ARGS = 'kubectl() { printf "%s\\0" kubectl "$@"; }; aws() { printf "%s\\0" aws "$@"; }\n'


def shell_words(command: str) -> list[str]:
    """The argv that bash builds from `command` (line continuations included), decoded as UTF-8."""
    done = subprocess.run(
        [BASH, "--noprofile", "--norc", "-c", _PRINT_ARGS + command],
        capture_output=True,
        timeout=10,
        check=True,
        env={"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"},
    )
    return done.stdout.decode("utf-8").split("\0")[:-1]


# --- worker processes -----------------------------------------------------------------------------


def worker_database_url() -> str:
    """DATABASE_URL of the test database for a worker subprocess; "" on SQLite (BH_SQLITE_PATH then)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return ""
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_environment(**env: str) -> dict[str, str]:
    """Our environment for a worker subprocess on the test database and broker, `env` on top."""
    full = {**os.environ, "BH_DATA_DIR": str(settings.DATA_DIR), "PYTHONUNBUFFERED": "1", **env}
    if "DATABASE_URL" not in env:
        url = worker_database_url()
        if url:
            full["DATABASE_URL"] = url
        else:
            full["BH_SQLITE_PATH"] = str(connection.settings_dict["NAME"])
    return full


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    """Poll `predicate` until it holds; fail after `timeout` seconds with the tail of `log`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            pytest.fail(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.1)


# A test worker: one process (solo pool), no chatter with other workers; also tests/fault_worker.py.
WORKER_ARGS = [
    "-A",
    "dashboard",
    "worker",
    "--pool",
    "solo",
    "--loglevel",
    "INFO",
    "--without-mingle",
    "--without-gossip",
    "--without-heartbeat",
]


@contextmanager
def celery_worker(log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker subprocess (solo pool) on the test database and broker, `env` on top of ours;
    yielded once it says it is ready, stopped afterwards."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", *WORKER_ARGS],
            cwd=ROOT,
            env=worker_environment(**env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: b"ready." in log.read_bytes(), 60, "the worker to be ready", log)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
