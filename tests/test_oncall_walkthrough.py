"""The on-call story end to end, on the demo world, without a browser.

A script with a token lists the blocked UDP bindings and fetches each fix as YAML over real HTTP;
a CI gate fails while one is blocked; the fix is applied and the controller's rule appears, so the
DNS binding becomes reachable; then someone removes the UDP rule and on-call gets exactly one
alert for reachable -> blocked, however many times beat runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from bindings import models as m
from bindings import tasks
from bindings.services import alerts, polling
from tests.factories import make_token

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "blocked-udp-fixes"
UDP_53 = {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}


def poll(cluster: m.Cluster, account: m.AwsAccount) -> None:
    polling.cluster_poll(cluster=cluster, trigger="test")
    polling.account_poll(account=account, trigger="test")


def udp_verdict() -> str:
    return m.ProtocolVerdict.objects.get(binding__name="coredns-udp", protocol="UDP").verdict


def run_script(server, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    url = server.url if hasattr(server, "url") and isinstance(server.url, str) else server.url_for("/")
    env = {"PATH": os.environ.get("PATH", ""), "BH_URL": url, "BH_TOKEN": token}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
    )


def gate(*args: str) -> int:
    try:
        call_command("check_bindings", *args, stdout=open(os.devnull, "w"))  # noqa: SIM115
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_a_script_with_a_token_lists_blocked_udp_bindings_and_fetches_their_fixes(
    live_demo, live_server, alice, tmp_path
):
    poll(live_demo.cluster, live_demo.account)
    token = make_token(alice, "read")

    listed = run_script(live_server, token)
    written = run_script(live_server, token, "--out", str(tmp_path / "fixes"))

    assert listed.returncode == 0, listed.stderr
    assert "demo/kube-system/coredns-udp: UDP blocked, fix follows" in listed.stderr
    assert "coredns-tcp" not in listed.stderr and "1 binding(s) with UDP blocked" in listed.stderr
    [manifest] = [d for d in yaml.safe_load_all(listed.stdout) if d]
    assert manifest["kind"] == "TargetGroupBinding" and manifest["metadata"]["name"] == "coredns-udp"
    ports = [p for rule in manifest["spec"]["networking"]["ingress"] for p in rule["ports"]]
    assert {"protocol": "UDP", "port": 53} in ports
    assert written.returncode == 0, written.stderr
    [file] = (tmp_path / "fixes").iterdir()
    assert re.fullmatch(r"demo_kube-system_coredns-udp_\d+\.yaml", file.name)
    assert yaml.safe_load(file.read_text()) == manifest


def test_the_script_fails_clearly_with_a_bad_token(live_server):
    result = run_script(live_server, "bh_not-a-real-token")

    assert result.returncode == 2
    assert "HTTP 401" in result.stderr and "bh_not-a-real-token" not in result.stderr


def test_the_script_never_follows_a_redirect_with_the_token(httpserver):
    httpserver.expect_request("/api/v1/bindings").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/elsewhere")}
    )
    httpserver.expect_request("/elsewhere").respond_with_json({"items": [], "next": None})

    result = run_script(httpserver, "bh_secret-token")

    assert result.returncode == 2 and "not followed" in result.stderr
    assert [request.path for request, _ in httpserver.log] == ["/api/v1/bindings"]


def test_the_script_says_so_when_the_answer_is_not_the_api(httpserver):
    httpserver.expect_request("/api/v1/bindings").respond_with_data("<html>Sign in</html>")

    result = run_script(httpserver, "bh_secret-token")

    assert result.returncode == 2 and "not JSON" in result.stderr and "Traceback" not in result.stderr


def test_the_script_refuses_to_send_the_token_over_plain_http_to_another_host(tmp_path):
    env = {"PATH": os.environ.get("PATH", ""), "BH_URL": "http://bh.example.com", "BH_TOKEN": "bh_x"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2 and "https://" in result.stderr


def test_the_script_does_not_overwrite_or_follow_links_in_its_output_folder(
    live_demo, live_server, alice, tmp_path
):
    poll(live_demo.cluster, live_demo.account)
    out = tmp_path / "fixes"
    first = run_script(live_server, make_token(alice, "read"), "--out", str(out))
    [file] = out.iterdir()
    file.unlink()
    file.symlink_to(tmp_path / "victim")

    second = run_script(live_server, make_token(alice, "read"), "--out", str(out))

    assert first.returncode == 0 and second.returncode == 2
    assert not (tmp_path / "victim").exists()


def test_on_call_gets_exactly_one_alert_when_the_dns_binding_turns_from_reachable_to_blocked(
    live_demo, httpserver, monkeypatch, live_server, alice
):
    d = live_demo
    world, kube, ec2, cluster, account = d.world, d.kube, d.ec2, d.cluster, d.account
    monkeypatch.setenv("BH_TEST_ONCALL_URL", httpserver.url_for("/oncall"))
    m.AlertHook.objects.create(name="on-call", kind="webhook", url_env="BH_TEST_ONCALL_URL", on_stale=False)
    httpserver.expect_request("/oncall", method="POST").respond_with_data("ok")

    def beat() -> list[dict]:
        """What beat does every 15 s: scan, then deliver each new alert (the worker's task)."""
        sent = [tasks.deliver_alert_task.apply(args=(pk,)).get() for pk in alerts.alerts_scan()]
        assert set(sent) <= {"sent"}
        bodies = [json.loads(request.get_data()) for request, _ in httpserver.log]
        httpserver.clear_log()
        return bodies

    # 1. As seeded: UDP blocked behind healthy targets. A first sighting is not a change: no alert.
    poll(cluster, account)
    assert udp_verdict() == "blocked"
    assert gate("--fail-on", "blocked") == 1, "the CI gate fails on the blocked binding"
    assert beat() == []

    # 2. The SRE applies the fetched fix; the controller writes the UDP rule it declares.
    fixes = run_script(live_server, make_token(alice, "read"))
    [manifest] = [d for d in yaml.safe_load_all(fixes.stdout) if d]
    kube.patch(
        manifest["apiVersion"],
        "TargetGroupBinding",
        "coredns-udp",
        "kube-system",
        {"spec": {"networking": manifest["spec"]["networking"]}},
    )
    ec2.authorize_security_group_ingress(GroupId=world.node_security_group_id, IpPermissions=[UDP_53])
    poll(cluster, account)
    assert udp_verdict() == "reachable"
    assert gate("--fail-on", "blocked") == 0
    recovered = beat()
    assert [(a["name"], a["old"], a["new"]) for a in recovered] == [("coredns-udp", "blocked", "reachable")]

    # 3. Someone removes the UDP rule: the DNS binding turns blocked.
    ec2.revoke_security_group_ingress(GroupId=world.node_security_group_id, IpPermissions=[UDP_53])
    poll(cluster, account)
    assert udp_verdict() == "blocked"
    first, second, third = beat(), beat(), beat()

    assert len(first) == 1 and second == third == []
    [alert] = first
    assert alert["event"] == "verdict_changed" and alert["cluster"] == "demo"
    assert (alert["namespace"], alert["name"], alert["protocol"]) == ("kube-system", "coredns-udp", "UDP")
    assert (alert["old"], alert["new"]) == ("reachable", "blocked")
    assert m.AlertDelivery.objects.filter(status="sent").count() == 2  # recovery + this one

    # 4. A poll that changes nothing sends nothing more.
    poll(cluster, account)
    assert beat() == []
