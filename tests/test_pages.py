"""The SRE dashboard's pages and partials through the Django test client.

Real data comes from the dns-udp-blocked scenario bundle (synced, analysed, and given the fix the
fix generator produces); bulk rows for query-count and paging tests are built directly.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from unittest.mock import patch

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from bindings import models as m
from tests.factories import HOSTILE_HTML, HOSTILE_HTML_ESCAPED, load_scenario

pytestmark = pytest.mark.django_db

# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def bob(django_user_model):
    """Bob is an on-call operator: he may poll clusters and apply fixes."""
    user = django_user_model.objects.create_user("bob", "bob@example.invalid", "bob-password-1")
    user.user_permissions.add(
        Permission.objects.get(codename="poll_cluster", content_type__app_label="bindings"),
        Permission.objects.get(codename="apply_fix", content_type__app_label="bindings"),
    )
    return user


@pytest.fixture
def dns(cluster):
    """The DNS case: coredns-udp (UDP 53 blocked, targets healthy) and coredns-tcp (reachable)."""
    return load_scenario(cluster)


def make_varied_bindings(
    cluster: m.Cluster, count: int, *, prefix: str = "svc", namespaces: int = 3
) -> list[m.TargetGroupBinding]:
    """`count` analysed bindings with one verdict and two findings each, written in bulk."""
    now = timezone.now()
    bindings = m.TargetGroupBinding.objects.bulk_create(
        [
            m.TargetGroupBinding(
                cluster=cluster,
                uid=f"{prefix}-uid-{i}",
                namespace=f"ns-{i % namespaces}",
                name=f"{prefix}-{i:04d}",
                api_version="elbv2.k8s.aws/v1beta1",
                target_group_arn=f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{prefix}-{i}/0",
                target_type="ip",
                target_group_protocol="UDP" if i % 2 else "TCP",
            )
            for i in range(count)
        ]
    )
    verdict_of = ["reachable", "blocked", "partial", "not_offered"]
    results, verdicts, findings = [], [], []
    for i, b in enumerate(bindings):
        verdict = verdict_of[i % 4]
        protocol = b.target_group_protocol
        results.append(
            m.BindingResult(
                binding=b,
                analyzed_at=now,
                changed_at=now - timedelta(seconds=i),
                worst_verdict=verdict,
                max_severity="critical" if verdict == "blocked" else "info",
                healthy=3,
                unhealthy=i % 2,
                digest=str(i),
                data={"protocols": [{"protocol": protocol, "port": 53, "verdict": verdict, "targets": []}]},
            )
        )
        verdicts.append(
            m.ProtocolVerdict(binding=b, protocol=protocol, port=53, verdict=verdict, targets_total=3)
        )
        findings.append(
            m.Finding(binding=b, code="UNHEALTHY_TARGETS", severity="info", message="one is unhealthy")
        )
        if verdict == "blocked":
            findings.append(
                m.Finding(binding=b, code="TRAFFIC_BLOCKED", severity="critical", message="blocked")
            )
    m.BindingResult.objects.bulk_create(results)
    m.ProtocolVerdict.objects.bulk_create(verdicts)
    m.Finding.objects.bulk_create(findings)
    return bindings


class _TagAudit(HTMLParser):
    """Collects what a CSP-strict page must not have: inline scripts, on* handlers, remote assets."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>")
        if tag == "script" and not values.get("src"):
            self.problems.append("inline <script>")
        for attr in ("src", "href"):
            if tag in ("script", "link") and (values.get(attr) or "").startswith(("http:", "https:", "//")):
                self.problems.append(f"remote {tag} {values[attr]}")


def assert_no_inline_script(html: str) -> None:
    """CSP-friendly pages: scripts come from files, no on* handler attributes, nothing remote."""
    audit = _TagAudit()
    audit.feed(html)
    assert audit.problems == []


# --- authentication ------------------------------------------------------------------------------------

GET_PAGES = [
    "/",
    "/bindings/",
    "/bindings/1/",
    "/bindings/1/fix/",
    "/bindings/1/fix.yaml",
    "/clusters/1/",
    "/clusters/1/poll-status/",
    "/accounts/aws/1/",
]
POST_PAGES = ["/bindings/1/fix/dry-run/", "/bindings/1/fix/apply/", "/clusters/1/poll/"]


@pytest.mark.parametrize("url", GET_PAGES)
def test_it_sends_anonymous_visitors_to_the_login_page(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("url", POST_PAGES)
def test_it_refuses_anonymous_posts(client, url):
    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        response = client.post(url)

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    delay.assert_not_called()
    assert not m.FixApplication.objects.exists()


def test_it_logs_in_with_the_login_form(client, alice):
    page = client.get("/accounts/login/?next=/bindings/")
    assert page.status_code == 200
    assert b'name="username"' in page.content
    assert_no_inline_script(page.content.decode())

    response = client.post(
        "/accounts/login/", {"username": "alice", "password": "alice-password-1", "next": "/bindings/"}
    )

    assert response.status_code == 302 and response["Location"] == "/bindings/"


def test_it_rejects_a_wrong_password(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})

    assert response.status_code == 200
    assert b"didn&#x27;t match" in response.content or b"didn't match" in response.content


# --- overview ------------------------------------------------------------------------------------------


def test_it_shows_counts_sources_and_transitions_on_the_overview(client, alice, dns, cluster):
    m.Cluster.objects.filter(pk=cluster.pk).update(last_error="KubeUnavailable: timed out")
    client.force_login(alice)

    response = client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Bindings by worst verdict" in html
    assert 'href="/bindings/?verdict=blocked"' in html
    assert 'href="/bindings/?severity=critical"' in html
    assert "KubeUnavailable: timed out" in html
    assert "prod" in html  # the AWS account
    assert "kube-system/coredns-udp" in html  # a recent transition
    assert_no_inline_script(html)


def test_it_renders_the_overview_partial_for_htmx(client, alice, dns):
    client.force_login(alice)

    response = client.get("/", HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="overview-live"')
    assert "<html" not in html


# --- bindings list -------------------------------------------------------------------------------------


def test_it_lists_each_binding_with_badges_health_finding_and_age(client, alice, dns):
    client.force_login(alice)

    response = client.get("/bindings/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "coredns-udp" in html and "coredns-tcp" in html
    assert "UDP:53" in html and "TCP:53" in html
    # text + symbol, not colour alone
    assert re.search(
        r'class="badge v-blocked"><span class="proto">UDP</span> <span aria-hidden="true">✗</span> blocked',
        html,
    )
    assert re.search(r'class="badge v-reachable"><span class="proto">TCP</span>', html)
    assert "2 healthy" in html
    assert "HEALTH_CHECK_MASKS_TRAFFIC" in html
    assert "data-ago" in html
    assert_no_inline_script(html)


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("protocol=UDP", "coredns-udp", "coredns-tcp"),
        ("protocol=TCP", "coredns-tcp", "coredns-udp"),
        ("verdict=blocked", "coredns-udp", "coredns-tcp"),
        ("verdict=reachable", "coredns-tcp", "coredns-udp"),
        ("protocol=UDP&verdict=blocked", "coredns-udp", "coredns-tcp"),
        ("code=HEALTH_CHECK_MASKS_TRAFFIC", "coredns-udp", "coredns-tcp"),
        ("severity=critical", "coredns-udp", "coredns-tcp"),
        ("q=dns-tcp", "coredns-tcp", "coredns-udp"),
        ("q=COREDNS-UDP", "coredns-udp", "coredns-tcp"),
        ("namespace=kube-system&verdict=blocked", "coredns-udp", "coredns-tcp"),
    ],
)
def test_it_filters_the_list(client, alice, dns, query, shown, hidden):
    client.force_login(alice)

    html = client.get(f"/bindings/?{query}", HTTP_HX_REQUEST="true").content.decode()

    assert f">{shown}</a>" in html
    assert f">{hidden}</a>" not in html


def test_it_filters_by_cluster(client, alice, dns, aws_account):
    other = m.Cluster.objects.create(
        name="other", connection="url", api_url="http://127.0.0.1:9", aws_account=aws_account
    )
    make_varied_bindings(other, 2, prefix="elsewhere")
    client.force_login(alice)

    html = client.get(f"/bindings/?cluster={other.pk}").content.decode()

    assert "elsewhere-0000" in html
    assert ">coredns-udp</a>" not in html
    assert f'<option value="{other.pk}" selected>other</option>' in html


def test_it_ignores_invalid_filters_and_says_so(client, alice, dns):
    client.force_login(alice)

    response = client.get("/bindings/?verdict=bogus&page=-3&code=%3Cx%3E&cluster=abc")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Ignored invalid filters" in html
    assert ">coredns-udp</a>" in html and ">coredns-tcp</a>" in html


def test_it_keeps_the_filter_state_in_links_and_the_form(client, alice, cluster):
    make_varied_bindings(cluster, 60)
    client.force_login(alice)

    html = client.get("/bindings/?protocol=UDP&sort=name").content.decode()

    assert '<option value="UDP" selected>UDP</option>' in html
    assert 'href="?protocol=UDP&amp;sort=name&amp;page=2"' not in html  # 30 UDP bindings: one page
    html = client.get("/bindings/?sort=name").content.decode()
    assert 'href="?sort=name&amp;page=2"' in html
    assert 'hx-get="?sort=name&amp;page=2"' in html and 'hx-push-url="true"' in html
    assert '<input type="hidden" name="sort" value="name" form="filters">' in html


def test_it_works_without_javascript(client, alice, dns):
    """A plain GET form and plain links: every htmx attribute has an href/action twin."""
    client.force_login(alice)

    html = client.get("/bindings/").content.decode()

    assert '<form id="filters" class="filters" method="get" action="/bindings/"' in html
    for match in re.finditer(r'<a ([^>]*hx-get="([^"]+)"[^>]*)>', html):
        assert f'href="{match.group(2)}"' in match.group(1)


def test_it_paginates(client, alice, cluster):
    make_varied_bindings(cluster, 120, namespaces=1)
    client.force_login(alice)

    first = client.get("/bindings/?sort=name").content.decode()
    second = client.get("/bindings/?sort=name&page=2").content.decode()
    beyond = client.get("/bindings/?sort=name&page=99").content.decode()

    assert "svc-0000" in first and "svc-0050" not in first
    assert "svc-0050" in second and "svc-0099" in second and "svc-0049" not in second
    assert "Page 1 of 3" in first and "Page 3 of 3" in beyond
    assert "120 bindings" in first


def test_it_sorts(client, alice, cluster):
    make_varied_bindings(cluster, 8, namespaces=1)
    client.force_login(alice)

    by_name = client.get("/bindings/?sort=name").content.decode()
    by_name_desc = client.get("/bindings/?sort=-name").content.decode()
    worst_first = client.get("/bindings/").content.decode()

    assert by_name.index("svc-0000") < by_name.index("svc-0007")
    assert by_name_desc.index("svc-0007") < by_name_desc.index("svc-0000")
    assert worst_first.index("svc-0001") < worst_first.index("svc-0000")  # blocked before reachable


def test_it_renders_only_the_table_for_htmx_and_the_page_otherwise(client, alice, dns):
    client.force_login(alice)

    partial = client.get("/bindings/?protocol=UDP", HTTP_HX_REQUEST="true")
    boosted = client.get("/bindings/?protocol=UDP", HTTP_HX_REQUEST="true", HTTP_HX_BOOSTED="true")
    restore = client.get(
        "/bindings/?protocol=UDP", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )

    assert (
        partial.content.decode()
        .lstrip()
        .startswith('<div id="bindings-table" hx-get="/bindings/?protocol=UDP"')
    )
    assert b"<html" not in partial.content
    assert b"<html" in boosted.content and b"<html" in restore.content
    assert "HX-Request" in partial["Vary"]


def test_it_answers_304_when_nothing_changed(client, alice, dns):
    client.force_login(alice)
    first = client.get("/bindings/", HTTP_HX_REQUEST="true")
    etag = first["ETag"]

    again = client.get("/bindings/", HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=etag)
    other_filter = client.get("/bindings/?protocol=UDP", HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=etag)
    full_page = client.get("/bindings/", HTTP_IF_NONE_MATCH=etag)
    # A changed result, as results_store writes it: new changed_at and a history sample.
    later = timezone.now() + timedelta(seconds=1)
    m.BindingResult.objects.filter(binding=dns["coredns-udp"]).update(changed_at=later)
    m.HistorySample.objects.create(binding=dns["coredns-udp"], at=later, verdicts={"UDP": "reachable"})
    after_change = client.get("/bindings/", HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=etag)

    assert again.status_code == 304 and again["ETag"] == etag
    assert "no-cache" in again["Cache-Control"]
    assert other_filter.status_code == 200
    assert full_page.status_code == 200
    assert after_change.status_code == 200 and after_change["ETag"] != etag


def test_it_answers_200_when_a_source_polls_again(client, alice, dns, cluster):
    client.force_login(alice)
    etag = client.get("/bindings/", HTTP_HX_REQUEST="true")["ETag"]

    m.AwsAccount.objects.filter(pk=cluster.aws_account_id).update(
        last_success_at=timezone.now() + timedelta(seconds=5)
    )

    assert client.get("/bindings/", HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_it_polls_the_table_only_while_the_tab_is_visible(client, alice, dns):
    client.force_login(alice)

    html = client.get("/bindings/").content.decode()

    # The visibility rule lives in static/dashboard/dashboard.js: the CSP forbids htmx's eval'd filters.
    assert 'hx-trigger="every 10s, bh:polled from:body"' in html
    assert "allowEval&quot;: false" in html or '"allowEval": false' in html


@pytest.mark.parametrize("partial", [False, True])
def test_it_lists_in_a_constant_number_of_queries(client, alice, cluster, django_assert_num_queries, partial):
    headers = {"HTTP_HX_REQUEST": "true"} if partial else {}
    client.force_login(alice)
    make_varied_bindings(cluster, 1, prefix="one")
    # session, user, clusters (+accounts), newest history sample (ETag), count, page ids, page
    # rows, verdicts, findings, target groups of the page, newest probe per protocol; the full
    # page adds namespaces and finding codes for the form.
    expected = 11 if partial else 13
    with django_assert_num_queries(expected):
        assert client.get("/bindings/", **headers).status_code == 200

    make_varied_bindings(cluster, 29, prefix="more")
    with django_assert_num_queries(expected):
        response = client.get("/bindings/", **headers)
    assert response.content.decode().count('class="name"') == 30


def test_it_answers_304_after_a_few_queries(client, alice, cluster, django_assert_num_queries):
    make_varied_bindings(cluster, 30)
    client.force_login(alice)
    etag = client.get("/bindings/", HTTP_HX_REQUEST="true")["ETag"]

    # session, user, clusters, newest history sample: nothing else when the answer is "not modified".
    with django_assert_num_queries(4):
        assert client.get("/bindings/", HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=etag).status_code == 304


# --- binding detail -------------------------------------------------------------------------------------


def test_it_shows_the_blocked_udp_path_and_the_health_check_warning(client, alice, dns):
    client.force_login(alice)
    udp = dns["coredns-udp"]

    response = client.get(f"/bindings/{udp.pk}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "TCP 53 healthy proves nothing about UDP 53" in html
    assert '<li class="hop hop-fail">' in html and "✗ fails here" in html
    assert "UDP 53 is dropped here" in html
    assert "no rule admits udp 53" in html
    assert "UDP:53 on dns-nlb (internal)" in html
    assert "0 of 2 admit UDP 53" in html
    assert "coredns-6d4b75cb6d-a1b2c" in html  # pod of a target
    assert "ip-10-0-1-10.ec2.internal" in html  # its node
    assert "eni-00000000000000001" in html and "sg-0node00000000000a" in html
    assert "us-east-1a" in html
    assert "HEALTH_CHECK_MASKS_TRAFFIC" in html and "green but broken" in html
    assert "tcp 53 from 10.0.0.0/16" in html  # the rule that admits TCP but not UDP
    assert '<svg class="timeline"' in html
    assert "Show fix" in html
    assert_no_inline_script(html)


def test_it_shows_a_reachable_path_without_failures(client, alice, dns):
    client.force_login(alice)

    html = client.get(f"/bindings/{dns['coredns-tcp'].pk}/").content.decode()

    assert "hop-fail" not in html
    assert "proves nothing" not in html
    assert "No automatic fix" in html


def test_it_renders_the_live_partial_for_htmx(client, alice, dns):
    client.force_login(alice)
    udp = dns["coredns-udp"]

    response = client.get(f"/bindings/{udp.pk}/", HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert html.lstrip().startswith(f'<div id="binding-live" hx-get="/bindings/{udp.pk}/"')
    # The fix panel's container is in the live region but kept (hx-preserve) across refreshes.
    assert "<html" not in html and '<div id="fix-panel" hx-preserve="true"></div>' in html
    etag = response["ETag"]
    assert (
        client.get(f"/bindings/{udp.pk}/", HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=etag).status_code == 304
    )


def test_it_shows_a_binding_that_was_not_analysed_yet(client, alice, cluster):
    binding = m.TargetGroupBinding.objects.create(cluster=cluster, uid="u1", namespace="ns", name="fresh")
    client.force_login(alice)

    html = client.get(f"/bindings/{binding.pk}/").content.decode()

    assert "has not been analysed yet" in html


def test_it_answers_404_for_an_unknown_binding(client, alice):
    client.force_login(alice)

    assert client.get("/bindings/999/").status_code == 404


def test_it_shows_the_detail_in_a_constant_number_of_queries(
    client, alice, dns, cluster, django_assert_num_queries
):
    client.force_login(alice)
    udp = dns["coredns-udp"]
    # session, user, binding+result+sources, target group, targets, load balancers, listeners, ENIs,
    # security groups, their rules, endpoint slices, nodes, history, transitions, newest poll,
    # user permissions (2: user and group permissions).
    # 17 + the binding's recent probe results + its newest fix application (ETag) and newest Apply.
    with django_assert_num_queries(20):
        client.get(f"/bindings/{udp.pk}/")

    make_varied_bindings(cluster, 30)
    with django_assert_num_queries(20):
        assert client.get(f"/bindings/{udp.pk}/").status_code == 200


# --- fix panel ------------------------------------------------------------------------------------------


def test_it_shows_the_fix_panel_with_manifest_patch_and_alternatives(client, alice, dns):
    client.force_login(alice)
    udp = dns["coredns-udp"]

    response = client.get(f"/bindings/{udp.pk}/fix/", HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert "<html" not in html
    assert "Add to spec.networking of kube-system/coredns-udp" in html
    assert 'id="fix-manifest"' in html and "protocol: UDP" in html
    assert 'data-copy-target="fix-manifest"' in html
    assert "kubectl patch" in html
    assert "aws ec2 authorize-security-group-ingress" in html
    assert "aws_vpc_security_group_ingress_rule" in html
    assert f'href="/bindings/{udp.pk}/fix.yaml"' in html
    assert "client IP is preserved for UDP" in html  # the explanation
    assert_no_inline_script(html)


def test_it_shows_the_fix_page_without_javascript(client, alice, dns):
    client.force_login(alice)

    html = client.get(f"/bindings/{dns['coredns-udp'].pk}/fix/").content.decode()

    assert "<html" in html and 'id="fix-manifest"' in html


def test_it_says_when_there_is_no_automatic_fix(client, alice, dns):
    client.force_login(alice)
    tcp = dns["coredns-tcp"]

    html = client.get(f"/bindings/{tcp.pk}/fix/", HTTP_HX_REQUEST="true").content.decode()
    download = client.get(f"/bindings/{tcp.pk}/fix.yaml")

    assert "No automatic fix" in html
    assert download.status_code == 404


def test_it_downloads_the_fix_manifest(client, alice, dns):
    client.force_login(alice)
    udp = dns["coredns-udp"]

    response = client.get(f"/bindings/{udp.pk}/fix.yaml")

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="kube-system-coredns-udp-fix.yaml"'
    assert response["Content-Type"].startswith("application/yaml")
    body = response.content.decode()
    assert body.startswith("apiVersion: elbv2.k8s.aws/v1beta1")
    assert "protocol: UDP" in body


def test_it_hides_apply_from_a_viewer_and_explains_why(client, alice, dns, cluster):
    m.Cluster.objects.filter(pk=cluster.pk).update(allow_apply_fix=True)
    client.force_login(alice)

    html = client.get(f"/bindings/{dns['coredns-udp'].pk}/fix/", HTTP_HX_REQUEST="true").content.decode()

    assert "You do not have the permission to apply fixes" in html
    assert "fix/dry-run/" not in html


def test_it_hides_apply_when_the_cluster_does_not_allow_it(client, bob, dns):
    client.force_login(bob)

    html = client.get(f"/bindings/{dns['coredns-udp'].pk}/fix/", HTTP_HX_REQUEST="true").content.decode()

    assert "Applying fixes is switched off for cluster demo" in html
    assert "fix/dry-run/" not in html


def test_it_offers_the_dry_run_to_an_operator_on_an_allowed_cluster(client, bob, dns, cluster):
    m.Cluster.objects.filter(pk=cluster.pk).update(allow_apply_fix=True)
    client.force_login(bob)
    udp = dns["coredns-udp"]

    html = client.get(f"/bindings/{udp.pk}/fix/", HTTP_HX_REQUEST="true").content.decode()

    assert f'hx-post="/bindings/{udp.pk}/fix/dry-run/"' in html


def test_it_denies_a_viewer_the_dry_run_and_records_it(client, alice, dns, cluster):
    m.Cluster.objects.filter(pk=cluster.pk).update(allow_apply_fix=True)
    client.force_login(alice)
    udp = dns["coredns-udp"]

    response = client.post(f"/bindings/{udp.pk}/fix/dry-run/", HTTP_HX_REQUEST="true")
    apply = client.post(f"/bindings/{udp.pk}/fix/apply/", {"dry_run": "1"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 403 and apply.status_code == 403
    assert "Not allowed" in response.content.decode()
    audit = list(m.FixApplication.objects.order_by("pk"))
    assert [a.status for a in audit] == ["denied", "denied"]
    assert audit[0].user == alice and audit[0].binding == udp


def test_it_requires_post_for_the_apply_steps(client, bob, dns):
    client.force_login(bob)

    assert client.get(f"/bindings/{dns['coredns-udp'].pk}/fix/dry-run/").status_code == 405


# --- polls ---------------------------------------------------------------------------------------------


def test_it_refuses_poll_now_to_a_viewer(client, alice, cluster):
    client.force_login(alice)

    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        response = client.post(f"/clusters/{cluster.pk}/poll/", HTTP_HX_REQUEST="true")

    assert response.status_code == 403
    delay.assert_not_called()


def test_it_hides_poll_now_from_a_viewer(client, alice, cluster):
    client.force_login(alice)

    html = client.get(f"/clusters/{cluster.pk}/").content.decode()

    assert "Poll now" not in html


def test_it_enqueues_a_poll_for_an_operator_and_shows_it_queued(client, bob, cluster):
    client.force_login(bob)
    page = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "Poll now" in page

    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        response = client.post(
            f"/clusters/{cluster.pk}/poll/", {"next": "/bindings/1/"}, HTTP_HX_REQUEST="true"
        )

    delay.assert_called_once_with(cluster.pk, "dashboard")
    html = response.content.decode()
    assert "queued" in html
    assert f'hx-get="/clusters/{cluster.pk}/poll-status/?since=' in html
    assert 'hx-trigger="every 2s"' in html


def test_it_redirects_after_poll_now_without_javascript(client, bob, cluster):
    client.force_login(bob)

    with patch("bindings.tasks.poll_cluster_task.delay_on_commit"):
        back = client.post(f"/clusters/{cluster.pk}/poll/", {"next": "/bindings/"})
        evil = client.post(f"/clusters/{cluster.pk}/poll/", {"next": "https://evil.example/"})

    assert back.status_code == 302 and back["Location"] == "/bindings/"
    assert evil["Location"] == f"/clusters/{cluster.pk}/"


def test_it_reports_poll_progress_and_stops_polling_when_done(client, alice, cluster):
    client.force_login(alice)
    since = timezone.now()
    queued = client.get(f"/clusters/{cluster.pk}/poll-status/", {"since": since.isoformat()}).content.decode()
    run = m.PollRun.objects.create(
        cluster=cluster, trigger="dashboard", started_at=since + timedelta(seconds=1)
    )
    running = client.get(
        f"/clusters/{cluster.pk}/poll-status/", {"since": since.isoformat()}
    ).content.decode()
    m.PollRun.objects.filter(pk=run.pk).update(status="success", duration_ms=1234)

    done = client.get(f"/clusters/{cluster.pk}/poll-status/", {"since": since.isoformat()})

    assert "queued" in queued and "hx-trigger" in queued
    assert "Polling demo" in running and "hx-trigger" in running
    html = done.content.decode()
    assert "success" in html and "1.2 s" in html
    assert "hx-trigger" not in html  # re-rendered without the trigger: polling stops
    assert "bh:polled" in done["HX-Trigger"]


# --- source pages --------------------------------------------------------------------------------------


def test_it_shows_a_cluster_with_its_polls(client, alice, dns, cluster):
    m.PollRun.objects.create(
        cluster=cluster,
        status="failed",
        duration_ms=830,
        api_calls={"list_targetgroupbindings": 1, "list_pods": 2},
        error="KubeUnavailable: connection refused",
    )
    client.force_login(alice)

    html = client.get(f"/clusters/{cluster.pk}/").content.decode()

    assert "Cluster demo" in html
    assert "830 ms" in html
    assert "list_pods 2" in html and ">3<" in html
    assert "KubeUnavailable: connection refused" in html
    assert f'href="/bindings/?cluster={cluster.pk}&amp;verdict=blocked"' in html
    assert_no_inline_script(html)


def test_it_shows_an_aws_account_with_its_polls(client, alice, cluster, aws_account):
    m.PollRun.objects.create(
        account=aws_account, status="success", duration_ms=2500, api_calls={"DescribeTargetHealth": 2}
    )
    client.force_login(alice)

    html = client.get(f"/accounts/aws/{aws_account.pk}/").content.decode()

    assert "AWS account prod" in html and "123456789012" in html
    assert "2.5 s" in html and "DescribeTargetHealth 2" in html
    assert f'href="/clusters/{cluster.pk}/"' in html


# --- hostile input ---------------------------------------------------------------------------------------


def test_it_escapes_hostile_strings_everywhere(client, bob, dns, cluster):
    udp = dns["coredns-udp"]
    m.TargetGroupBinding.objects.filter(pk=udp.pk).update(
        name=f"dns{HOSTILE_HTML}",
        namespace=f"kube{HOSTILE_HTML}",
        service_name=HOSTILE_HTML,
        annotations={"binding-health/note": HOSTILE_HTML, HOSTILE_HTML: "key"},
        raw={"metadata": {"labels": {"app": HOSTILE_HTML}}},
        events=[
            {
                "type": "Warning",
                "reason": HOSTILE_HTML,
                "message": HOSTILE_HTML,
                "count": 1,
                "last_seen": HOSTILE_HTML,
            }
        ],
    )
    m.SecurityGroup.objects.filter(group_id="sg-0node00000000000a").update(
        name=HOSTILE_HTML, tags={"Name": HOSTILE_HTML}
    )
    m.Finding.objects.filter(binding=udp).update(message=HOSTILE_HTML)
    result = m.BindingResult.objects.get(binding=udp)
    result.data["findings"][0]["message"] = HOSTILE_HTML
    result.data["protocols"][0]["reasons"] = [HOSTILE_HTML]
    result.data["fix"]["summary"] = HOSTILE_HTML
    result.data["fix"]["manifestYaml"] = f"metadata:\n  name: {HOSTILE_HTML}\n"
    result.data["fix"]["warnings"] = [HOSTILE_HTML]
    result.save()
    m.Cluster.objects.filter(pk=cluster.pk).update(last_error=HOSTILE_HTML)
    m.AwsAccount.objects.filter(pk=cluster.aws_account_id).update(last_error=HOSTILE_HTML)
    m.PollRun.objects.create(
        cluster=cluster, status="failed", error=HOSTILE_HTML, api_calls={HOSTILE_HTML: 1}
    )
    # Verdicts are vocabulary (16 chars at most); the hostile part is the binding's name, shown beside it.
    m.VerdictTransition.objects.create(binding=udp, protocol="UDP", at=timezone.now(), old="", new="blocked")
    client.force_login(bob)

    pages = [
        "/",
        "/bindings/",
        f"/bindings/?q={HOSTILE_HTML}",
        f"/bindings/{udp.pk}/",
        f"/bindings/{udp.pk}/fix/",
        f"/clusters/{cluster.pk}/",
        f"/accounts/aws/{cluster.aws_account_id}/",
    ]
    for url in pages:
        html = client.get(url).content.decode()
        assert HOSTILE_HTML not in html, url
        assert_no_inline_script(html)
    detail = client.get(f"/bindings/{udp.pk}/").content.decode()
    assert HOSTILE_HTML_ESCAPED in detail


def test_it_serves_htmx_and_its_own_assets_locally(client, alice):
    client.force_login(alice)

    html = client.get("/").content.decode()

    assert re.search(r'<script src="/static/django_htmx/htmx-2[^"]*\.js"', html)
    assert '/static/dashboard/dashboard.js"' in html and '/static/dashboard/dashboard.css"' in html
    assert 'hx-headers=\'{"x-csrftoken": "' in html


def test_it_shows_live_probe_results_next_to_the_static_verdict(client, alice, dns, cluster):
    client.force_login(alice)
    udp = m.TargetGroupBinding.objects.get(name="coredns-udp")
    m.ProbeResult.objects.create(
        binding=udp,
        protocol="UDP",
        kind="dns",
        address="127.0.0.1",
        port=5353,
        status="ok",
        latency_ms=1.5,
        detail="NOERROR, 1 answer",
    )

    listing = client.get("/bindings/").content.decode()
    detail = client.get(f"/bindings/{udp.pk}/").content.decode()

    assert "probe UDP ✓ ok" in listing
    assert "Live probes" in detail and "from the Binding Health worker" in detail
    assert "127.0.0.1:5353" in detail and "1.5 ms" in detail


def test_the_path_names_the_network_acl_entry_that_refuses_and_not_the_security_groups(
    client, alice, cluster
):
    client.force_login(alice)
    udp = load_scenario(cluster, "nacl-denies-udp-inbound")["coredns-udp"]

    html = client.get(f"/bindings/{udp.pk}/").content.decode()

    assert "Network ACL (target subnet)" in html
    assert "network ACL acl-0b1n0000000000001 rule 90 denies inbound udp 53" in html
    assert "the security groups admit it" in html
    assert "CLIENT_RANGES_NOT_COVERED" not in html

    panel = client.get(f"/bindings/{udp.pk}/fix/").content.decode()
    assert "Network ACL entries" in panel and "aws ec2 create-network-acl-entry" in panel
    assert "--rule-number 89" in panel  # just below the refusing entry 90
