"""Page latency: p50/p95 render times of the bindings list and a binding detail page.

Seeds a fresh SQLite database (in a temporary directory) with N bindings — each with a target
group, 5 registered targets, ENIs, an analysis result of realistic size (per-protocol targets,
findings), verdicts, findings and a day of history — then requests the pages through Django's
test client as a signed-in user (the whole stack: middleware, session, views, templates).

    .venv/bin/python benchmarks/bench_pages.py [--bindings 1000 10000] [--requests 60]

Not a test: compare the figures with the budget in docs/DESIGN.md (list p95 <= 150 ms at 1,000
bindings, <= 400 ms at 10,000, paginated) and record them in docs/performance.md "Page latency".
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROTOCOLS = ("UDP", "TCP", "TCP_UDP")
VERDICTS = ("reachable", "reachable", "reachable", "blocked", "partial", "not_offered", "unknown")


def _setup(data_dir: str) -> None:
    os.environ["BH_DATA_DIR"] = data_dir
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _result_data(i: int, carried: list[str], verdict: str, targets: int) -> dict:
    """A result the size the engine writes: per-protocol target judgements and findings."""
    ips = [f"10.{i // 250 % 250}.{i % 250}.{t + 10}" for t in range(targets)]
    protocols = []
    for protocol in carried:
        protocols.append(
            {
                "protocol": protocol,
                "port": 53,
                "verdict": verdict,
                "targets_total": targets,
                "targets_admitted": targets if verdict == "reachable" else 0,
                "client_ip_preserved": protocol == "UDP",
                "expected_sources": ["10.0.0.0/16"],
                "reasons": [f"{targets} target(s) checked for {protocol} 53 from 10.0.0.0/16"],
                "targets": [
                    {
                        "target_id": ip,
                        "port": 53,
                        "network_interface_id": f"eni-{i:08x}{t:04x}",
                        "security_group_ids": [f"sg-node{i % 10}"],
                        "admitted": verdict == "reachable",
                        "uncovered_sources": [] if verdict == "reachable" else ["10.0.0.0/16"],
                        "matched_rules": [f"sg-node{i % 10} {protocol.lower()} 53 from 10.0.0.0/16"],
                        "reason": "benchmark",
                    }
                    for t, ip in enumerate(ips)
                ],
            }
        )
    findings = []
    if verdict in ("blocked", "partial"):
        findings = [
            {
                "code": "TRAFFIC_BLOCKED",
                "severity": "critical",
                "message": "UDP 53 is blocked",
                "protocol": "UDP",
                "evidence": {"targets": ips},
            },
            {
                "code": "MISSING_NETWORKING_RULE",
                "severity": "warning",
                "message": "no networking",
                "protocol": "UDP",
                "evidence": {"ports": [53]},
            },
        ]
    return {
        "cluster": "bench",
        "namespace": f"ns-{i % 40}",
        "name": f"svc-{i:05d}",
        "protocols": protocols,
        "health_check": {
            "protocol": "TCP",
            "port": "traffic-port",
            "proves": "TCP 53",
            "cannot_prove": "UDP 53",
            "admitted": True,
            "healthy": targets,
            "unhealthy": 0,
            "other": 0,
        },
        "findings": findings,
        "fix": None,
    }


def seed(count: int, targets: int = 5) -> int:
    """Write `count` bindings and everything their pages read; returns a binding id to open."""
    from django.utils import timezone

    from bindings import models as m

    now = timezone.now()
    account = m.AwsAccount.objects.create(
        name="bench", account_id="123456789012", region="us-east-1", last_success_at=now, last_polled_at=now
    )
    cluster = m.Cluster.objects.create(
        name="bench",
        connection="url",
        api_url="http://127.0.0.1:9",
        aws_account=account,
        last_success_at=now,
        last_polled_at=now,
    )
    batch = 1000
    for start in range(0, count, batch):
        idx = range(start, min(start + batch, count))
        tgbs, groups, registered, enis = [], [], [], []
        for i in idx:
            protocol = PROTOCOLS[i % 3]
            arn = f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg-{i}/{i:016x}"
            tgbs.append(
                m.TargetGroupBinding(
                    cluster=cluster,
                    uid=f"uid-{i}",
                    namespace=f"ns-{i % 40}",
                    name=f"svc-{i:05d}",
                    api_version="elbv2.k8s.aws/v1beta1",
                    target_group_arn=arn,
                    target_type="ip",
                    target_group_protocol=protocol,
                    service_name=f"svc-{i:05d}",
                    service_port="53",
                )
            )
            groups.append(
                m.TargetGroup(
                    account=account,
                    arn=arn,
                    name=f"tg-{i}",
                    protocol=protocol,
                    port=53,
                    health_check_protocol="TCP",
                    health_check_port="traffic-port",
                )
            )
            for t in range(targets):
                ip = f"10.{i // 250 % 250}.{i % 250}.{t + 10}"
                registered.append(
                    m.RegisteredTarget(
                        account=account,
                        target_group_arn=arn,
                        target_id=ip,
                        port=53,
                        availability_zone="us-east-1a",
                        state="healthy",
                    )
                )
                enis.append(
                    m.NetworkInterface(
                        account=account,
                        eni_id=f"eni-{i:08x}{t:04x}",
                        private_ips=[ip],
                        security_group_ids=[f"sg-node{i % 10}"],
                    )
                )
        tgbs = m.TargetGroupBinding.objects.bulk_create(tgbs)
        m.TargetGroup.objects.bulk_create(groups)
        m.RegisteredTarget.objects.bulk_create(registered)
        m.NetworkInterface.objects.bulk_create(enis)
        results, verdicts, findings, samples = [], [], [], []
        for binding, i in zip(tgbs, idx, strict=True):
            verdict = VERDICTS[i % len(VERDICTS)]
            carried = (
                ["TCP", "UDP"]
                if binding.target_group_protocol == "TCP_UDP"
                else [binding.target_group_protocol]
            )
            data = _result_data(i, carried, verdict, targets)
            results.append(
                m.BindingResult(
                    binding=binding,
                    analyzed_at=now,
                    changed_at=now - timedelta(seconds=i),
                    worst_verdict=verdict,
                    max_severity="critical" if data["findings"] else "",
                    healthy=targets,
                    digest=str(i),
                    data=data,
                )
            )
            for p in data["protocols"]:
                verdicts.append(
                    m.ProtocolVerdict(
                        binding=binding,
                        protocol=p["protocol"],
                        port=53,
                        verdict=verdict,
                        targets_total=targets,
                        targets_admitted=p["targets_admitted"],
                    )
                )
            for f in data["findings"]:
                findings.append(
                    m.Finding(
                        binding=binding,
                        code=f["code"],
                        severity=f["severity"],
                        protocol=f["protocol"],
                        message=f["message"],
                        evidence=f["evidence"],
                    )
                )
            for hour in range(0, 24, 4):
                samples.append(
                    m.HistorySample(
                        binding=binding,
                        at=now - timedelta(hours=hour),
                        verdicts=dict.fromkeys(carried, verdict),
                        healthy=targets,
                    )
                )
        m.BindingResult.objects.bulk_create(results)
        m.ProtocolVerdict.objects.bulk_create(verdicts)
        m.Finding.objects.bulk_create(findings)
        m.HistorySample.objects.bulk_create(samples)
    sg_rows = [m.SecurityGroup(account=account, group_id=f"sg-node{n}", name=f"node-{n}") for n in range(10)]
    for group in m.SecurityGroup.objects.bulk_create(sg_rows):
        m.SecurityGroupRule.objects.bulk_create(
            [
                m.SecurityGroupRule(
                    security_group=group,
                    protocol="tcp",
                    from_port=53,
                    to_port=53,
                    source_kind="cidr",
                    source="10.0.0.0/16",
                ),
                m.SecurityGroupRule(
                    security_group=group,
                    protocol="udp",
                    from_port=53,
                    to_port=53,
                    source_kind="cidr",
                    source="10.0.0.0/16",
                ),
            ]
        )
    blocked = m.TargetGroupBinding.objects.filter(result__worst_verdict="blocked").order_by("-pk").first()
    return blocked.pk


def _time(client, url: str, requests: int, **headers) -> tuple[float, float]:
    for _ in range(3):  # warm caches (templates, SQLite pages)
        assert client.get(url, **headers).status_code == 200, url
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(url, **headers)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, url
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


def run(count: int, requests: int) -> list[tuple[str, float, float]]:
    from django.contrib.auth.models import User
    from django.test import Client

    from bindings import models as m

    for model in (
        m.HistorySample,
        m.Finding,
        m.ProtocolVerdict,
        m.BindingResult,
        m.TargetGroupBinding,
        m.RegisteredTarget,
        m.NetworkInterface,
        m.TargetGroup,
        m.SecurityGroup,
        m.PollRun,
    ):
        model.objects.all().delete()
    m.Cluster.objects.all().delete()
    m.AwsAccount.objects.all().delete()
    started = time.perf_counter()
    detail_pk = seed(count)
    print(f"seeded {count} bindings in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    user, _ = User.objects.get_or_create(username="bench")
    client = Client()
    client.force_login(user)
    htmx = {"HTTP_HX_REQUEST": "true"}
    cases = [
        ("list, full page (worst first)", "/bindings/", {}),
        ("list, htmx table refresh", "/bindings/", htmx),
        ("list, filtered UDP+blocked, page 2", "/bindings/?protocol=UDP&verdict=blocked&page=2", {}),
        ("list, search + sort by name", "/bindings/?q=svc-00&sort=name", {}),
        ("detail, full page", f"/bindings/{detail_pk}/", {}),
        ("detail, htmx live refresh", f"/bindings/{detail_pk}/", htmx),
    ]
    rows = []
    for label, url, headers in cases:
        p50, p95 = _time(client, url, requests, **headers)
        rows.append((label, p50, p95))
    etag = client.get("/bindings/", **htmx)["ETag"]
    start = time.perf_counter()
    for _ in range(requests):
        assert client.get("/bindings/", HTTP_IF_NONE_MATCH=etag, **htmx).status_code == 304
    rows.append(
        ("list, unchanged refresh (304), mean", (time.perf_counter() - start) * 1000 / requests, float("nan"))
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bindings", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bh-bench-pages-") as data_dir:
        _setup(data_dir)
        print(
            f"Python {platform.python_version()} on {platform.machine()}, SQLite, "
            f"{args.requests} requests each"
        )
        print("| bindings | page | p50 ms | p95 ms |")
        print("|---:|---|---:|---:|")
        for count in args.bindings:
            for label, p50, p95 in run(count, args.requests):
                p95_text = "–" if p95 != p95 else f"{p95:.1f}"
                print(f"| {count:,} | {label} | {p50:.1f} | {p95_text} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
