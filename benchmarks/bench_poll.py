"""Poll cycle: wall time, AWS calls vs the API minimum, rows written when nothing changed, and the
worker's peak memory for `cluster_analyze` + `results_store` at 10,000 bindings.

One command:

    .venv/bin/python benchmarks/bench_poll.py [--sizes 200 2000] [--memory-bindings 10000] [--write]

For each size N it starts moto (ThreadedMotoServer over HTTP, `endpoint_url`) and the kmock
Kubernetes emulator, seeds N target groups (a third each UDP, TCP and TCP_UDP, 5 `ip` targets each,
50 listeners per NLB so N/50 NLBs, pods as secondary IPs on node ENIs, 50 pods per node, three
subnets, two node security-group variants) and the matching TGBs, Services, EndpointSlices, Pods and
Nodes, then runs, through `bindings.services.polling` exactly as the worker does:

1. a cold cycle (cluster poll, then account poll; empty database and cache);
2. the same cycle again, nothing changed (incremental: sync and analysis skipped);
3. the same unchanged cycle with BH_INCREMENTAL_ANALYSIS off (the pre-incremental cost);
4. a cycle after one TGB was changed (one annotation).

The database is PostgreSQL `bh_bench_poll` (created when missing) when it answers, else SQLite in a
temporary folder. The rate limiter is raised to 10,000 calls/s: moto is not AWS, and the point is
the calls the poller makes; at the default 5 calls/s the account poll takes calls / 5 seconds.

The memory figure runs in fresh subprocesses (one seeds 10,000 bindings from
`benchmarks/bench_analysis.build` through the real sync code, one measures) so that nothing from
the seeding inflates the peak (VmHWM). `--write` replaces the figures of the "Poll cycle" section
of docs/performance.md (its "Reading the figures" part is kept).
Not a test: budgets (docs/DESIGN.md) are checked by reading the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchdb import bench_database  # noqa: E402

REGION = "us-east-1"
TARGETS = 5
LISTENERS_PER_NLB = 50  # the NLB listener quota
PODS_PER_NODE = 50
NAMESPACES = 20


def database_url() -> str:
    return bench_database("bh_bench_poll")


def peak_rss_mb() -> float:
    """Peak resident set of this process (VmHWM). `ru_maxrss` is not used: Linux carries it over
    from the parent across fork+exec, so a child of the (large) benchmark process would report the
    parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup_django(db_url: str, *, migrate: bool = True) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    os.environ.setdefault("BH_DATA_DIR", tempfile.mkdtemp(prefix="bh-bench-poll-"))
    os.environ.pop("REDIS_URL", None)  # the embedded file cache + in-process bucket
    os.environ["BH_AWS_CALLS_PER_SECOND"] = "10000"
    # Periodic history samples (one row per binding per BH_HISTORY_SAMPLE_SECONDS, by design) would
    # land in whichever cycle crosses the period; docs/scaling.md counts them separately.
    os.environ["BH_HISTORY_SAMPLE_SECONDS"] = "86400"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    if db_url:
        os.environ["DATABASE_URL"] = db_url
    else:
        os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    if migrate:
        call_command("migrate", verbosity=0)


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


# --- seeding -------------------------------------------------------------------------------------


def _ip(subnet: int, k: int) -> str:
    # Three /18 subnets of 10.0.0.0/16: 10.0.0.0, 10.0.64.0, 10.0.128.0; k from 10 upwards.
    base = subnet * 64 * 256 + 10 + k
    return f"10.0.{base // 256}.{base % 256}"


def seed_world(aws_endpoint: str, kube_url: str, n: int) -> dict[str, Any]:
    """N target groups with 5 ip targets each in moto, and the matching cluster objects in kmock."""
    import boto3
    import urllib3

    from bindings.demo.emulators import DEMO_CREDENTIALS, _filled, _resource_path

    session = boto3.session.Session(region_name=REGION, **DEMO_CREDENTIALS)
    ec2 = session.client("ec2", endpoint_url=aws_endpoint)
    elbv2 = session.client("elbv2", endpoint_url=aws_endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    zones = [f"{REGION}{z}" for z in "abc"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i * 64}.0/18", AvailabilityZone=zones[i])["Subnet"][
            "SubnetId"
        ]
        for i in range(3)
    ]

    def sg(name: str, protos: tuple[str, ...]) -> str:
        gid = ec2.create_security_group(
            GroupName=name,
            Description=name,
            VpcId=vpc,
            TagSpecifications=[
                {
                    "ResourceType": "security-group",
                    "Tags": [{"Key": "kubernetes.io/cluster/bench", "Value": "owned"}],
                }
            ],
        )["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=gid,
            IpPermissions=[
                {
                    "IpProtocol": p,
                    "FromPort": 0,
                    "ToPort": 65535,
                    "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": f"{p} from vpc"}],
                }
                for p in protos
            ],
        )
        return gid

    # 80 % of nodes admit TCP and UDP, 20 % only TCP: some UDP bindings are partial.
    sg_full, sg_tcp = sg("node-full", ("tcp", "udp")), sg("node-tcp", ("tcp",))
    pods = n * TARGETS
    nodes = math.ceil(pods / PODS_PER_NODE)
    node_rows = []  # (name, instance id, zone, node ip, pod ips)
    for i in range(nodes):
        s = i % 3
        slot = (i // 3) * (PODS_PER_NODE + 1)
        node_ip = _ip(s, slot)
        pod_ips = [_ip(s, slot + 1 + j) for j in range(PODS_PER_NODE)]
        inst = ec2.run_instances(
            ImageId="ami-12c6146b",
            InstanceType="m5.4xlarge",
            MinCount=1,
            MaxCount=1,
            NetworkInterfaces=[
                {
                    "DeviceIndex": 0,
                    "SubnetId": subnets[s],
                    "PrivateIpAddress": node_ip,
                    "Groups": [sg_tcp if i % 5 == 4 else sg_full],
                }
            ],
        )["Instances"][0]
        ec2.assign_private_ip_addresses(
            NetworkInterfaceId=inst["NetworkInterfaces"][0]["NetworkInterfaceId"], PrivateIpAddresses=pod_ips
        )
        node_rows.append((f"node-{i:04d}", inst["InstanceId"], zones[s], node_ip, pod_ips))
    all_pod_ips = [(row[0], ip) for row in node_rows for ip in row[4]]

    lbs = []
    for k in range(math.ceil(n / LISTENERS_PER_NLB)):
        lbs.append(
            elbv2.create_load_balancer(
                Name=f"bench-nlb-{k}", Subnets=subnets, Scheme="internal", Type="network"
            )["LoadBalancers"][0]["LoadBalancerArn"]
        )
    protocols = ("UDP", "TCP", "TCP_UDP")
    tgs = []
    for j in range(n):
        proto = protocols[j % 3]
        port = 1000 + j
        arn = elbv2.create_target_group(
            Name=f"k8s-bench-{j}",
            Protocol=proto,
            Port=port,
            VpcId=vpc,
            TargetType="ip",
            HealthCheckProtocol="TCP",
        )["TargetGroups"][0]["TargetGroupArn"]
        ips = all_pod_ips[j * TARGETS : (j + 1) * TARGETS]
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": ip, "Port": 8080} for _, ip in ips])
        elbv2.create_listener(
            LoadBalancerArn=lbs[j // LISTENERS_PER_NLB],
            Protocol=proto,
            Port=10000 + j % LISTENERS_PER_NLB,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}],
        )
        tgs.append((arn, proto, port, ips))

    # Kubernetes: one pooled HTTP connection instead of a client per object (16,000 objects).
    http = urllib3.PoolManager(maxsize=2)
    rv = iter(range(10_000, 10_000_000))
    count = 0

    def post(obj: dict[str, Any]) -> None:
        nonlocal count
        obj = _filled(obj, rv)
        path = _resource_path(obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace"))
        r = http.request(
            "POST", kube_url + path, body=json.dumps(obj), headers={"Content-Type": "application/json"}
        )
        if r.status >= 300:
            raise RuntimeError(f"kmock {r.status} for {path}: {r.data[:200]!r}")
        count += 1

    for name, instance_id, zone, node_ip, _ in node_rows:
        post(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
                "spec": {"providerID": f"aws:///{zone}/{instance_id}"},
                "status": {
                    "addresses": [{"type": "InternalIP", "address": node_ip}],
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        )
    for j, (arn, proto, port, ips) in enumerate(tgs):
        ns, svc = f"team-{j % NAMESPACES}", f"svc-{j}"
        kube_protos = ["UDP", "TCP"] if proto == "TCP_UDP" else [proto]
        labels = {"app": svc}
        for t, (node, ip) in enumerate(ips):
            post(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": f"{svc}-{t}", "namespace": ns, "labels": labels},
                    "spec": {
                        "nodeName": node,
                        "containers": [
                            {
                                "name": "app",
                                "ports": [{"containerPort": 8080, "protocol": p} for p in kube_protos],
                            }
                        ],
                    },
                    "status": {
                        "phase": "Running",
                        "podIP": ip,
                        "podIPs": [{"ip": ip}],
                        "conditions": [{"type": "Ready", "status": "True"}],
                    },
                }
            )
        post(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": svc, "namespace": ns},
                "spec": {
                    "type": "ClusterIP",
                    "selector": labels,
                    "ports": [
                        {"name": p.lower(), "protocol": p, "port": port, "targetPort": 8080}
                        for p in kube_protos
                    ],
                },
            }
        )
        post(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{svc}-abcde",
                    "namespace": ns,
                    "labels": {"kubernetes.io/service-name": svc},
                },
                "addressType": "IPv4",
                "ports": [{"name": p.lower(), "protocol": p, "port": 8080} for p in kube_protos],
                "endpoints": [
                    {
                        "addresses": [ip],
                        "conditions": {"ready": True, "serving": True, "terminating": False},
                        "nodeName": node,
                        "targetRef": {"kind": "Pod", "namespace": ns, "name": f"{svc}-{t}"},
                    }
                    for t, (node, ip) in enumerate(ips)
                ],
            }
        )
        spec: dict[str, Any] = {
            "serviceRef": {"name": svc, "port": kube_protos[0].lower()},
            "targetGroupARN": arn,
            "targetType": "ip",
        }
        if j % 2 == 0:
            spec["networking"] = {
                "ingress": [
                    {
                        "from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}],
                        "ports": [{"protocol": p, "port": 8080} for p in kube_protos],
                    }
                ]
            }
        post(
            {
                "apiVersion": "elbv2.k8s.aws/v1beta1",
                "kind": "TargetGroupBinding",
                "metadata": {"name": svc, "namespace": ns},
                "spec": spec,
            }
        )
    return {
        "target_groups": n,
        "load_balancers": len(lbs),
        "nodes": nodes,
        "pods": pods,
        "subnets": 3,
        "vpcs": 1,
        "security_groups": 2,
        "kube_objects": count,
        "first_tgb": (f"team-{0}", "svc-0"),
    }


def minimum_calls(world: dict[str, Any], *, warm: bool) -> dict[str, int]:
    """The fewest calls the APIs allow for this world (docs/DESIGN.md "Performance budget").

    ELBv2: DescribeTargetGroups/LoadBalancers take ≤ 20 ARNs; DescribeTargetHealth and the two
    attribute calls take one resource (attributes are cached, so 0 on a warm cycle);
    DescribeListeners one load balancer. EC2: filter values are capped at 200 per filter (199 +
    vpc-id for address filters, as the controller chunks) and we hold id lists to the same 200;
    subnets and VPCs are cached (0 warm). ENIs: the node ENIs that hold targets, by id, plus the
    NLBs' own ENIs by description filter.
    """
    n, lbs, nodes = world["target_groups"], world["load_balancers"], world["nodes"]
    return {
        "DescribeTargetGroups": math.ceil(n / 20),
        "DescribeTargetHealth": n,
        "DescribeTargetGroupAttributes": 0 if warm else n,
        "DescribeLoadBalancers": math.ceil(lbs / 20),
        "DescribeLoadBalancerAttributes": 0 if warm else lbs,
        "DescribeListeners": lbs,
        "DescribeInstances": math.ceil(nodes / 200),
        "DescribeNetworkInterfaces": math.ceil(nodes / 200) + math.ceil(lbs / 199),
        "DescribeSecurityGroups": math.ceil(world["security_groups"] / 200),
        "DescribeSubnets": 0 if warm else 1,
        "DescribeVpcs": 0 if warm else 1,
        "DescribeNetworkAcls": 1,
    }


# --- measuring one cycle -------------------------------------------------------------------------


def run_cycle(cluster: Any, account: Any, label: str) -> dict[str, Any]:
    from django.db import connection

    from bindings import models as m
    from bindings.services import polling

    analysed: list[Any] = []
    real = polling.cluster_analyze

    def spy(**kwargs: Any) -> Any:
        stats = real(**kwargs)
        analysed.append(stats)
        return stats

    polling.cluster_analyze = spy  # type: ignore[assignment]
    try:
        t0 = time.perf_counter()
        crun = polling.cluster_poll(cluster=cluster, trigger="bench")
        t1 = time.perf_counter()
        arun = polling.account_poll(account=account, trigger="bench")
        t2 = time.perf_counter()
    finally:
        polling.cluster_analyze = real  # type: ignore[assignment]
    crun.refresh_from_db()
    arun.refresh_from_db()
    cluster.refresh_from_db()
    account.refresh_from_db()
    return {
        "label": label,
        "cluster_s": t1 - t0,
        "cluster_collect_sync_s": (crun.duration_ms or 0) / 1000,
        "account_s": t2 - t1,
        "account_collect_sync_s": (arun.duration_ms or 0) / 1000,
        "kube_calls": sum(crun.api_calls.values()),
        "aws_calls": dict(sorted(arun.api_calls.items())),
        "rows": crun.rows_written + arun.rows_written,
        "analysed": [s.analyzed for s in analysed],
        "skipped": [s.skipped for s in analysed],
        "status": (crun.status, arun.status),
        "vendor": connection.vendor,
        "results": m.BindingResult.objects.filter(binding__cluster=cluster).count(),
        "load": load(),
    }


def bench_size(n: int) -> dict[str, Any]:
    from django.conf import settings
    from django.core.cache import cache

    from bindings import models as m
    from bindings.demo.emulators import KubeEmulator, MotoServer

    m.Cluster.objects.all().delete()
    m.AwsAccount.objects.all().delete()
    cache.clear()
    with MotoServer() as moto, KubeEmulator() as kube:
        t0 = time.perf_counter()
        world = seed_world(moto.url, kube.url, n)
        world["seed_s"] = time.perf_counter() - t0
        print(f"[{n}] seeded in {world['seed_s']:.0f} s ({load()})", file=sys.stderr)
        account = m.AwsAccount.objects.create(
            name=f"bench-{n}", account_id="123456789012", region=REGION, endpoint_url=moto.url
        )
        cluster = m.Cluster.objects.create(
            name="bench", connection=m.Cluster.Connection.URL, api_url=kube.url, aws_account=account
        )
        cycles = [run_cycle(cluster, account, "1. cold (empty database and cache)")]
        cycles.append(run_cycle(cluster, account, "2. unchanged, incremental"))
        settings.BH_INCREMENTAL_ANALYSIS = False
        try:
            cycles.append(run_cycle(cluster, account, "3. unchanged, incremental off"))
        finally:
            settings.BH_INCREMENTAL_ANALYSIS = True
        cycles.append(run_cycle(cluster, account, "(re-prime the incremental state)"))
        ns, name = world["first_tgb"]
        kube.patch(
            "elbv2.k8s.aws/v1beta1",
            "TargetGroupBinding",
            name,
            ns,
            {"metadata": {"annotations": {"binding-health/client-cidrs": "10.0.0.0/16"}}},
        )
        cycles.append(run_cycle(cluster, account, "4. one TGB changed"))
        for c in cycles:
            print(f"[{n}] {json.dumps(c)}", file=sys.stderr)
    world["minimum_cold"] = minimum_calls(world, warm=False)
    world["minimum_warm"] = minimum_calls(world, warm=True)
    return {"world": world, "cycles": [c for c in cycles if not c["label"].startswith("(")]}


# --- memory at 10,000 bindings (subprocesses) ------------------------------------------------------


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _db_cpu_s() -> float | None:
    """CPU seconds of this process's PostgreSQL backend (same machine, read from /proc): what
    the database spends on the worker's writes, triggers included; None elsewhere."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _db_delta(before: float | None) -> float | None:
    after = _db_cpu_s()
    return None if before is None or after is None else after - before


def memory_child(mode: str, bindings: int, broken: bool = False) -> None:
    """`seed`: write `bindings` bindings through the sync code. `measure`: analyse + store them.

    `broken`: half the bindings' nodes admit nothing (a shared security-group change), so every
    poll generates and stores a fix for each of them."""
    setup_django(os.environ.get("DATABASE_URL", ""), migrate=mode == "seed")
    from django.utils import timezone

    from bindings import models as m
    from bindings.services import polling

    name = "bench-mem-broken" if broken else "bench-mem"
    if mode == "seed":
        import bench_analysis

        from bindings.store.sync import account_sync, cluster_sync

        account_id = "210987654322" if broken else "210987654321"  # (account, region) is unique
        stale = m.AwsAccount.objects.filter(name=name) | m.AwsAccount.objects.filter(
            account_id=account_id, region=REGION
        )
        m.Cluster.objects.filter(name=name).delete()
        m.Cluster.objects.filter(aws_account__in=stale).delete()
        stale.delete()
        inv = bench_analysis.build(bindings, TARGETS, broken_half=broken)
        account = m.AwsAccount.objects.create(name=name, account_id=account_id, region=REGION)
        cluster = m.Cluster.objects.create(
            name=name,
            connection=m.Cluster.Connection.URL,
            api_url="http://127.0.0.1:9",
            aws_account=account,
        )
        t0 = time.perf_counter()
        stats = cluster_sync(cluster=cluster, records=inv)
        stats.add(account_sync(account=account, records=inv))
        now = timezone.now()
        m.Cluster.objects.filter(pk=cluster.pk).update(last_success_at=now, last_polled_at=now)
        m.AwsAccount.objects.filter(pk=account.pk).update(last_success_at=now, last_polled_at=now)
        print(json.dumps({"sync_s": time.perf_counter() - t0, "rows": stats.rows_written}))
        return
    cluster = m.Cluster.objects.select_related("aws_account").get(name=name)
    import gc

    gc.collect()
    base = peak_rss_mb()
    out: dict[str, Any] = {"rss_after_setup_mb": base}
    t0, c0, d0 = time.perf_counter(), _cpu_s(), _db_cpu_s()
    first = polling.cluster_analyze(cluster=cluster, incremental=True)
    out["first_db_cpu_s"] = _db_delta(d0)
    out["first_s"], out["first_cpu_s"] = time.perf_counter() - t0, _cpu_s() - c0
    out["first_rows"] = first.rows_written
    out["first_analysed"] = first.analyzed
    out["peak_rss_first_mb"] = peak_rss_mb()
    t0, c0, d0 = time.perf_counter(), _cpu_s(), _db_cpu_s()
    second = polling.cluster_analyze(cluster=cluster, incremental=True)
    out["unchanged_db_cpu_s"] = _db_delta(d0)
    out["unchanged_s"], out["unchanged_cpu_s"] = time.perf_counter() - t0, _cpu_s() - c0
    out["unchanged_rows"] = second.rows_written
    out["unchanged_analysed"] = second.analyzed
    t0, c0, d0 = time.perf_counter(), _cpu_s(), _db_cpu_s()
    full = polling.cluster_analyze(cluster=cluster, incremental=False)
    out["full_unchanged_db_cpu_s"] = _db_delta(d0)
    out["full_unchanged_s"], out["full_unchanged_cpu_s"] = time.perf_counter() - t0, _cpu_s() - c0
    out["full_unchanged_rows"] = full.rows_written
    out["peak_rss_mb"] = peak_rss_mb()
    out["fixes"] = m.BindingResult.objects.filter(binding__cluster=cluster).exclude(data__fix=None).count()
    out["blocked"] = m.BindingResult.objects.filter(binding__cluster=cluster, worst_verdict="blocked").count()
    print(json.dumps(out))


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def bench_memory(bindings: int, db_url: str, broken: bool = False) -> dict[str, Any]:
    env = dict(os.environ, DATABASE_URL=db_url, BH_DATA_DIR=os.environ["BH_DATA_DIR"])
    if not db_url:
        env.pop("DATABASE_URL")
    result: dict[str, Any] = {"bindings": bindings, "broken": broken}
    for mode in ("seed", "measure"):
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-child", mode, "--memory-bindings", str(bindings)]
            + (["--broken-half"] if broken else []),
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"memory child {mode} failed:\n{proc.stderr[-3000:]}")
        result[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load"] = load()
    return result


# --- report --------------------------------------------------------------------------------------


def machine() -> str:
    import django

    return (
        f"`nproc` = {os.cpu_count()}, {platform.machine()}, Linux {platform.release()}; "
        f"Python {platform.python_version()}, Django {django.get_version()}"
    )


def render(sizes: list[dict[str, Any]], memories: list[dict[str, Any]], vendor: str) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Poll cycle",
        "",
        "Budget (DESIGN.md): AWS calls per cycle ≤ 1.1 × the minimum the API allows; a second, unchanged",
        "cycle writes ~no rows. Worker peak memory goal ≤ 300 MB at 10,000 bindings (this issue).",
        "",
        "How to measure (one command; `--write` replaces this section):",
        "",
        "```",
        ".venv/bin/python benchmarks/bench_poll.py            # --sizes 200 2000 --memory-bindings 10000",
        "```",
        "",
        "moto (ThreadedMotoServer over HTTP) and the kmock Kubernetes emulator, seeded with N target",
        "groups (⅓ each UDP, TCP, TCP_UDP; 5 `ip` targets each; 50 listeners per NLB → N/50 NLBs; pods",
        "as secondary IPs on node ENIs, 50 per node; 3 subnets; 2 node security groups) and the matching",
        "TGBs, Services, EndpointSlices, Pods and Nodes. Polls run through "
        "`bindings.services.polling` as the",
        "worker runs them (cluster poll, then account poll, which re-analyses the cluster). The rate",
        "limiter is lifted (moto is not AWS); wall times therefore exclude throttling: at the default",
        "`BH_AWS_CALLS_PER_SECOND=5` an account poll lasts at least calls ÷ 5 s.",
        "",
        f"Measured {now}: {machine()}; database {vendor}; the embedded file-based cache.",
        "",
    ]
    for size in sizes:
        w = size["world"]
        lines += [
            f"### {w['target_groups']:,} target groups",
            "",
            f"{w['load_balancers']} NLBs, {w['nodes']} nodes, {w['pods']:,} pods, "
            f"{w['kube_objects']:,} Kubernetes objects; seeding took {w['seed_s']:.0f} s.",
            "",
            "| cycle | cluster poll s (collect+sync) | account poll s (collect+sync) | Kubernetes calls | "
            "AWS calls | rows written | bindings re-analysed | load |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for c in size["cycles"]:
            lines.append(
                f"| {c['label']} | {c['cluster_s']:.2f} ({c['cluster_collect_sync_s']:.2f}) | "
                f"{c['account_s']:.2f} ({c['account_collect_sync_s']:.2f}) | {c['kube_calls']} | "
                f"{sum(c['aws_calls'].values())} | {c['rows']:,} | "
                f"{' + '.join(str(a) for a in c['analysed'])} | {c['load'].removeprefix('load average ')} |"
            )
        cold, warm = size["cycles"][0]["aws_calls"], size["cycles"][1]["aws_calls"]
        lines += [
            "",
            "| AWS operation | cold calls | cold minimum | warm calls | warm minimum |",
            "|---|---:|---:|---:|---:|",
        ]
        ops = sorted(set(cold) | set(warm) | set(w["minimum_cold"]))
        for op in ops:
            lines.append(
                f"| {op} | {cold.get(op, 0)} | {w['minimum_cold'].get(op, '–')} | {warm.get(op, 0)} | "
                f"{w['minimum_warm'].get(op, '–')} |"
            )
        tc, mc = sum(cold.values()), sum(w["minimum_cold"].values())
        tw, mw = sum(warm.values()), sum(w["minimum_warm"].values())
        lines += [
            f"| **total** | **{tc}** | **{mc}** ({tc / mc:.2f} ×) | **{tw}** | **{mw}** ({tw / mw:.2f} ×) |",
            "",
        ]
    for memory in memories:
        s, me = memory["seed"], memory["measure"]
        broken = memory.get("broken")
        lines += [
            f"### Worker memory and analysis cost at {memory['bindings']:,} bindings"
            + (", half of them broken" if broken else ""),
            "",
            "`benchmarks/bench_analysis.build` (5 `ip` targets per binding, 250 nodes, 500 NLBs"
            + ("; `broken_half`: the nodes of half the bindings admit nothing" if broken else "")
            + ") written",
            f"through `cluster_sync`/`account_sync` ({s['rows']:,} rows, {s['sync_s']:.1f} s), then, in a",
            "fresh process, `cluster_analyze` (inventory from the database, analysis, fixes,",
            f"`results_store`; {me['blocked']:,} bindings blocked, {me['fixes']:,} fixes stored):",
            "",
            "| step | wall s | worker CPU s | database CPU s | rows written | bindings analysed |",
            "|---|---:|---:|---:|---:|---:|",
            f"| first analysis (every result new) | {me['first_s']:.1f} | {me['first_cpu_s']:.1f} | "
            f"{_seconds(me.get('first_db_cpu_s'))} | {me['first_rows']:,} | {me['first_analysed']:,} |",
            f"| unchanged, incremental | {me['unchanged_s']:.1f} | {me['unchanged_cpu_s']:.1f} | "
            f"{_seconds(me.get('unchanged_db_cpu_s'))} | "
            f"{me['unchanged_rows']:,} | {me['unchanged_analysed']:,} |",
            f"| unchanged, full re-analysis | {me['full_unchanged_s']:.1f} | "
            f"{me['full_unchanged_cpu_s']:.1f} | {_seconds(me.get('full_unchanged_db_cpu_s'))} | "
            f"{me['full_unchanged_rows']:,} | {memory['bindings']:,} |",
            "",
            f"Peak RSS (VmHWM): **{me['peak_rss_mb']:.0f} MB** (after Django setup and imports: "
            f"{me['rss_after_setup_mb']:.0f} MB; after the first analysis: "
            f"{me['peak_rss_first_mb']:.0f} MB). {memory['load']}.",
            "",
        ]
    return "\n".join(lines) + "\n"


# The section's prose (what the figures mean, what changed to get them) is written by people,
# under this heading at the end of the section: `--write` replaces the figures before it only.
READING = "### Reading the figures"


def write_section(text: str) -> None:
    path = ROOT / "docs" / "performance.md"
    doc = path.read_text()
    start = doc.find("## Poll cycle")
    if start == -1:
        doc = doc.rstrip("\n") + "\n\n" + text
    else:
        end = doc.find("\n## ", start + 1)
        end = len(doc) if end == -1 else end + 1
        reading = doc.find(READING, start, end)
        doc = doc[:start] + text + ("\n" + doc[reading:end] if reading != -1 else "") + doc[end:]
    path.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[200, 2000])
    parser.add_argument("--memory-bindings", type=int, default=10_000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--memory-kinds",
        nargs="+",
        choices=["plain", "broken-half"],
        default=["plain", "broken-half"],
        help="plain: the analysis inventory; broken-half: half the bindings broken, a fix for each",
    )
    parser.add_argument("--broken-half", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help="replace the section in docs/performance.md")
    parser.add_argument("--memory-child", choices=["seed", "measure"], help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also dump raw figures to this file")
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.memory_bindings, args.broken_half)
        return
    db_url = database_url()
    setup_django(db_url)
    from django.db import connection

    sizes = [bench_size(n) for n in args.sizes]
    memory = (
        []
        if args.skip_memory
        else [bench_memory(args.memory_bindings, db_url, kind == "broken-half") for kind in args.memory_kinds]
    )
    text = render(
        sizes, memory, f"{connection.vendor} {'(' + db_url.rsplit('/', 1)[-1] + ')' if db_url else ''}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"sizes": sizes, "memory": memory}, indent=1, default=str))
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
