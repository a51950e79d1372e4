"""The bindings list filters, one definition (`bindings.store.querysets`) behind the page and the API.

Each case runs on both surfaces: the dashboard list (`/bindings/`) and `GET /api/v1/bindings`.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bindings import models as m
from bindings.store.querysets import filter_bindings

pytestmark = pytest.mark.django_db


def _binding(cluster: m.Cluster, name: str, protocol: str = "UDP") -> m.TargetGroupBinding:
    return m.TargetGroupBinding.objects.create(
        cluster=cluster,
        uid=f"uid-{name}",
        namespace="apps",
        name=name,
        api_version="elbv2.k8s.aws/v1beta1",
        target_group_arn=f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/abc",
        target_type="ip",
        target_group_protocol=protocol,
    )


def _analysed(
    binding: m.TargetGroupBinding,
    verdicts: dict[str, str],
    findings: list[tuple[str, str, str]],
) -> None:
    """Stored results as `results_store` writes them: verdicts by protocol, (code, severity, protocol)."""
    now = timezone.now()
    worst = max(verdicts.values(), key=lambda v: m.VERDICT_RANK[v])
    severities = [s for _, s, _ in findings]
    m.BindingResult.objects.create(
        binding=binding,
        analyzed_at=now,
        changed_at=now,
        worst_verdict=worst,
        max_severity=max(severities, key=lambda s: m.SEVERITY_RANK[s]) if severities else "",
        digest="x",
        data={"protocols": [], "findings": []},
    )
    for protocol, verdict in verdicts.items():
        m.ProtocolVerdict.objects.create(
            binding=binding, protocol=protocol, port=53, verdict=verdict, targets_total=1, targets_admitted=0
        )
    for code, severity, protocol in findings:
        m.Finding.objects.create(
            binding=binding, code=code, severity=severity, protocol=protocol, message=code
        )


@pytest.fixture
def world(cluster):
    """Four bindings whose answers differ between the old copies of the filters."""
    now = timezone.now()
    m.Cluster.objects.filter(pk=cluster.pk).update(last_success_at=now, last_polled_at=now)
    m.AwsAccount.objects.filter(pk=cluster.aws_account_id).update(last_success_at=now, last_polled_at=now)
    _binding(cluster, "not-analysed")
    _analysed(_binding(cluster, "unknown-udp"), {"UDP": "unknown"}, [("INVALID_SPEC", "warning", "UDP")])
    # A critical TRAFFIC_BLOCKED: one finding carries both.
    _analysed(
        _binding(cluster, "blocked-critical"), {"UDP": "blocked"}, [("TRAFFIC_BLOCKED", "critical", "UDP")]
    )
    # TRAFFIC_BLOCKED (warning) and another code that is critical: no single finding carries both.
    _analysed(
        _binding(cluster, "blocked-split", "TCP_UDP"),
        {"TCP": "reachable", "UDP": "partial"},
        [("TRAFFIC_BLOCKED", "warning", "UDP"), ("HEALTH_CHECK_MASKS_TRAFFIC", "critical", "UDP")],
    )
    return cluster


ALL = {"not-analysed", "unknown-udp", "blocked-critical", "blocked-split"}


def _api_names(client, query: str) -> set[str]:
    response = client.get(f"/api/v1/bindings?{query}")
    assert response.status_code == 200, response.content
    return {item["name"] for item in response.json()["items"]}


def _page_names(client, query: str) -> set[str]:
    html = client.get(f"/bindings/?{query}", HTTP_HX_REQUEST="true").content.decode()
    return {name for name in ALL if f">{name}</a>" in html}


CASES = [
    # Unanalysed bindings show `unknown` on both surfaces, so `verdict=unknown` includes them.
    ("verdict=unknown", {"not-analysed", "unknown-udp"}),
    # With a protocol, only stored verdicts count.
    ("verdict=unknown&protocol=UDP", {"unknown-udp"}),
    # One finding must carry the code and the severity.
    ("code=TRAFFIC_BLOCKED&severity=critical", {"blocked-critical"}),
    ("code=TRAFFIC_BLOCKED&severity=warning", {"blocked-split"}),
    ("code=TRAFFIC_BLOCKED", {"blocked-critical", "blocked-split"}),
    ("severity=critical", {"blocked-critical", "blocked-split"}),
    ("code=HEALTH_CHECK_MASKS_TRAFFIC&severity=warning", set()),
    # One protocol verdict must carry the protocol and the verdict.
    ("protocol=TCP&verdict=partial", set()),
    ("protocol=UDP&verdict=partial", {"blocked-split"}),
    ("protocol=TCP", {"blocked-split"}),
]


@pytest.mark.parametrize(("query", "names"), CASES)
def test_the_api_and_the_page_filter_alike(client, alice, world, query, names):
    client.force_login(alice)

    assert _api_names(client, query) == names
    assert _page_names(client, query) == names


def test_a_hostile_code_matches_nothing_on_the_api_and_is_dropped_on_the_page(client, alice, world):
    client.force_login(alice)

    assert _api_names(client, "code=NO_SUCH_CODE") == set()
    # The page's form drops a value that is not a finding code and lists everything.
    assert _page_names(client, "code=%3Cscript%3E") == ALL


def test_the_stale_filter_follows_the_account_as_well_as_the_cluster(world, aws_account):
    old = timezone.now() - timedelta(seconds=3 * aws_account.poll_interval_seconds + 1)
    m.AwsAccount.objects.filter(pk=aws_account.pk).update(last_success_at=old)
    qs = m.TargetGroupBinding.objects.all()

    assert {b.name for b in filter_bindings(qs, stale=True)} == ALL
    assert not filter_bindings(qs, stale=False).exists()


def test_clusters_filter_by_id_and_by_name(world, aws_account):
    other = m.Cluster.objects.create(
        name="other", connection="url", api_url="http://127.0.0.1:9", aws_account=aws_account
    )
    _binding(other, "elsewhere")
    qs = m.TargetGroupBinding.objects.all()

    assert {b.name for b in filter_bindings(qs, cluster_id=other.pk)} == {"elsewhere"}
    assert {b.name for b in filter_bindings(qs, cluster_name="other")} == {"elsewhere"}
    assert {b.name for b in filter_bindings(qs, cluster_name=world.name)} == ALL


def test_the_pages_offer_and_explain_every_code_of_the_vocabulary(client, alice, world):
    """The list's code filter offers codes no binding has yet (the PROBE_* ones included), and a
    binding's page explains a probe finding with the vocabulary's help."""
    from bindings.vocabulary import FINDINGS, Code

    client.force_login(alice)
    html = client.get("/bindings/").content.decode()
    assert all(f'value="{code}"' in html for code in FINDINGS)

    binding = m.TargetGroupBinding.objects.get(name="unknown-udp")
    finding = {
        "code": Code.PROBE_FAILS_WHILE_REACHABLE,
        "severity": "warning",
        "message": "a DNS probe got no answer",
        "protocol": "UDP",
        "evidence": {},
    }
    m.BindingResult.objects.filter(binding=binding).update(data={"protocols": [], "findings": [finding]})
    detail = client.get(f"/bindings/{binding.pk}/").content.decode()

    assert FINDINGS[Code.PROBE_FAILS_WHILE_REACHABLE].help in detail


@pytest.mark.slow
def test_the_pages_read_probes_without_importing_the_probing_service():
    """The list's probe column is a database read: the pages must not pull in the probing service
    (and through it the collectors) to get it. A fresh interpreter, so other tests' imports don't count."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import os, sys, django;"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'dashboard.settings');"
        "django.setup();"
        "import bindings.web.views;"
        "print('bindings.services.probing' in sys.modules)"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)

    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"
