"""The detail page leads with the cause and follows an Apply; the overview lists the worst
bindings. Django's client over the scenario bundles (tests/test_browser.py drives the same pages
in Chromium)."""

from __future__ import annotations

import html as htmllib
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from bindings import models as m
from tests.factories import load_scenario

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(django_user_model):
    """An on-call operator who may apply fixes."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("bob", "bob@example.invalid", "bob-password-1")
    user.user_permissions.add(
        Permission.objects.get(codename="apply_fix", content_type__app_label="bindings")
    )
    return user


@pytest.fixture
def dns(cluster):
    return load_scenario(cluster)


def text(response) -> str:
    return htmllib.unescape(re.sub(r"\s+", " ", response.content.decode()))


def test_the_detail_page_leads_with_the_root_cause_and_the_fix_button_beside_it(client, alice, dns):
    client.force_login(alice)

    page = text(client.get(f"/bindings/{dns['coredns-udp'].pk}/"))

    causes = page[page.index('id="cause-h"') : page.index('id="verdicts-h"')]
    assert re.search(r"UDP 53 blocked: sg-\S+ admits TCP 53 only; clients 10\.0\.0\.0/16", causes)
    assert ">Show fix</a>" in causes
    assert page.index("Root cause") < page.index("Health check") < page.index("Findings (")
    assert "4 consequences of this cause" in page


def test_no_show_fix_button_when_there_is_no_fix(client, alice, dns):
    client.force_login(alice)

    page = text(client.get(f"/bindings/{dns['coredns-tcp'].pk}/"))

    assert "TCP 53 reachable: 2 of 2 target(s) admit it" in page
    assert "Show fix" not in page and "No automatic fix for this binding." in page


def test_after_apply_the_page_waits_for_the_controller_instead_of_offering_a_dry_run(
    client,
    bob,
    dns,
    cluster,
):
    cluster.allow_apply_fix = True
    cluster.next_poll_at = timezone.now() + timedelta(seconds=40)
    cluster.save()
    udp = dns["coredns-udp"]
    m.FixApplication.objects.create(
        cluster=cluster, binding=udp, namespace=udp.namespace, name=udp.name, user=bob, status="applied"
    )
    client.force_login(bob)

    page = text(client.get(f"/bindings/{udp.pk}/"))
    panel = text(client.get(f"/bindings/{udp.pk}/fix/", HTTP_HX_REQUEST="true"))

    assert re.search(
        r"Applied by bob at [\d-]+ [\d:]+; waiting for the controller \(next poll in ~(39|40) s\)", page
    )
    assert "Show fix" not in page
    assert "waiting for the controller" in panel and "Preview the change (dry-run)" not in panel


def test_once_a_poll_after_the_apply_judges_it_reachable_the_page_says_so(client, bob, cluster):
    bindings = load_scenario(cluster, "dns-udp-fixed")
    udp = bindings["coredns-udp"]
    applied_at = m.BindingResult.objects.get(binding=udp).analyzed_at - timedelta(seconds=30)
    m.FixApplication.objects.create(
        cluster=cluster,
        binding=udp,
        namespace="kube-system",
        name=udp.name,
        user=bob,
        status="applied",
        at=applied_at,
    )
    client.force_login(bob)

    page = text(client.get(f"/bindings/{udp.pk}/"))

    assert "Applied by bob at" in page and "the poll since then judges it reachable" in page
    assert "waiting for the controller" not in page


def test_hostile_values_in_the_cause_are_shown_escaped(client, alice, dns):
    udp = dns["coredns-udp"]
    result = m.BindingResult.objects.get(binding=udp)
    for pv in result.data["protocols"]:
        for target in pv["targets"]:
            target["security_group_ids"] = ["sg-<script>alert(1)</script>"]
    result.save()
    client.force_login(alice)

    raw = client.get(f"/bindings/{udp.pk}/").content.decode()

    assert "<script>alert(1)</script>" not in raw
    assert "sg-&lt;script&gt;alert(1)&lt;/script&gt;" in raw


def test_the_overview_lists_the_worst_bindings_and_counts_the_green_but_broken(client, alice, dns):
    client.force_login(alice)

    page = text(client.get("/"))

    worst = page[page.index('id="worst-h"') : page.index('id="counts-h"')]
    assert re.search(r">1</strong> binding green but broken", worst)
    assert "kube-system/coredns-udp" in worst and "coredns-tcp" not in worst
    assert re.search(r"UDP 53 blocked: sg-\S+ admits TCP 53 only", worst)


def test_the_overview_says_so_when_nothing_is_broken(client, alice, cluster):
    load_scenario(cluster, "dns-udp-fixed")
    client.force_login(alice)

    page = text(client.get("/"))

    assert (
        re.search(r">0</strong> bindings green but broken", page)
        and "No binding is blocked or partial." in page
    )


def test_every_page_names_a_favicon_that_exists(client, alice):
    from django.contrib.staticfiles import finders

    client.force_login(alice)

    page = client.get("/").content.decode()

    icon = r'<link rel="icon" type="image/svg\+xml" href="/static/dashboard/favicon[^"]*\.svg">'
    assert re.search(icon, page)
    assert finders.find("dashboard/favicon.svg")


def test_the_live_region_carries_the_last_poll_line_so_it_refreshes_with_the_verdicts(
    client, alice, dns, cluster
):
    m.PollRun.objects.create(cluster=cluster, status="success", finished_at=timezone.now(), duration_ms=1200)
    client.force_login(alice)

    live = text(client.get(f"/bindings/{dns['coredns-udp'].pk}/", HTTP_HX_REQUEST="true"))

    assert live.lstrip().startswith('<div id="binding-live"')
    assert f'id="poll-{cluster.pk}"' in live and "Last poll of demo" in live
