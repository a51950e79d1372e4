"""`manage.py demo --walkthrough`: the demo's story, headless, end to end (CI runs it too)."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from bindings import models as m

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_walkthrough_tells_blocked_fix_reachable_and_one_alert():
    out = io.StringIO()

    call_command("demo", "--walkthrough", stdout=out)

    text = out.getvalue()
    steps = [
        "kube-system/coredns-udp UDP: blocked; targets healthy 2, unhealthy 0",
        "protocol: UDP",
        "applied: Patched spec.networking of kube-system/coredns-udp",
        "UDP before the controller acts: blocked",
        "UDP 53 from 10.0.0.0/16",
        "kube-system/coredns-udp UDP: reachable",
        "received: demo kube-system/coredns-udp UDP: blocked → reachable",
        "Story complete",
    ]
    positions = [text.find(step) for step in steps]
    assert -1 not in positions, text
    assert positions == sorted(positions), "the steps are printed in the story's order"
    assert list(m.FixApplication.objects.values_list("status", flat=True).order_by("at", "pk")) == [
        "dry_run",
        "applied",
    ]
    assert m.AlertDelivery.objects.filter(status="sent").count() == 1


def test_the_walkthrough_fails_loudly_when_the_story_breaks(django_user_model):
    # The demo login exists without the right to apply fixes: the story cannot complete.
    django_user_model.objects.create_user("sre", "sre@example.invalid", "not-the-demo-password")
    out = io.StringIO()

    with pytest.raises(CommandError, match="walkthrough failed: the dry-run did not produce a change"):
        call_command("demo", "--walkthrough", stdout=out)

    assert "UDP: blocked" in out.getvalue() and "Story complete" not in out.getvalue()
    assert m.FixApplication.objects.get().status == "denied"


def test_the_demo_says_when_the_first_poll_has_landed_and_not_before(live_demo):
    from bindings.management.commands.demo import Command
    from bindings.services import polling

    out = io.StringIO()
    command = Command(stdout=out)

    assert command._first_poll_landed("http://127.0.0.1:8000/") is False
    polling.account_poll(account=live_demo.account, trigger="test")  # before the cluster: nothing to judge
    polling.cluster_poll(cluster=live_demo.cluster, trigger="test")
    assert command._first_poll_landed("http://127.0.0.1:8000/") is False  # judged without AWS: unknown
    polling.account_poll(account=live_demo.account, trigger="test")

    assert command._first_poll_landed("http://127.0.0.1:8000/") is True
    assert "first poll landed: 2 bindings, 1 blocked → http://127.0.0.1:8000/" in out.getvalue()
