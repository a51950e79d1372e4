"""`manage.py demo --walkthrough`: the story the product exists to tell, headless, step by step.

Blocked UDP behind healthy targets → the generated fix, reviewed as a dry-run → applied through
bindings/services/apply.py exactly as the detail page's Apply button does → the emulated controller writes
the rules → the next poll judges UDP reachable → one recovery alert reaches a local receiver.
Every step is checked; the first one that does not hold raises `WalkthroughFailed` (exit 1).

The emulators, the controller and the alert receiver run in this process on loopback; the
database is the configured one (the demo's SQLite under `scripts/demo`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser

from bindings import models as m
from bindings import tasks
from bindings.demo.emulated_controller import EmulatedController
from bindings.demo.emulators import KubeEmulator, MotoServer, seed_demo_world
from bindings.services import alerts, apply, polling

ALERT_URL_ENV = "BH_WALKTHROUGH_ALERT_URL"
HOOK_NAME = "walkthrough receiver"
BINDING = ("kube-system", "coredns-udp")


class WalkthroughFailed(Exception):
    """A step of the story did not hold; the message says which and what was seen."""


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:  # noqa: N802 - http.server's spelling
        length = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
        try:
            self.received.append(json.loads(self.rfile.read(length) or b"{}"))
        except ValueError:
            self.received.append({"unreadable": True})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass  # the walkthrough prints what arrived itself


@contextmanager
def alert_receiver() -> Iterator[list[dict[str, Any]]]:
    """A webhook receiver on 127.0.0.1; yields the list of JSON bodies it received."""
    received: list[dict[str, Any]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="alert-receiver", daemon=True)
    thread.start()
    previous = os.environ.get(ALERT_URL_ENV)
    os.environ[ALERT_URL_ENV] = f"http://127.0.0.1:{server.server_port}/alerts"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        if previous is None:
            os.environ.pop(ALERT_URL_ENV, None)
        else:
            os.environ[ALERT_URL_ENV] = previous


def _fix_of(binding: m.TargetGroupBinding) -> dict[str, Any] | None:
    result = m.BindingResult.objects.filter(binding=binding).first()
    fix = (result.data or {}).get("fix") if result else None
    return fix if isinstance(fix, dict) and fix else None


def review_fix(binding: m.TargetGroupBinding, user: AbstractBaseUser) -> apply.Outcome:
    """The dry-run the UI's "Dry-run" button makes (dashboard/views.binding_fix_dry_run)."""
    return apply.fix_dry_run(binding=binding, user=user)


def apply_reviewed_fix(
    binding: m.TargetGroupBinding, user: AbstractBaseUser, reviewed: apply.Outcome
) -> apply.Outcome:
    """The one call into apply.py's Apply step, made as the UI's Apply button makes it
    (dashboard/views.binding_fix_apply): exactly the patch of the dry-run the user reviewed."""
    return apply.apply_reviewed(reviewed.dry_run_id, user, binding=binding)


def _poll(cluster: m.Cluster, account: m.AwsAccount) -> None:
    for run in (
        polling.cluster_poll(cluster=cluster, trigger="walkthrough"),
        polling.account_poll(account=account, trigger="walkthrough"),
    ):
        if run.status != m.PollRun.Status.SUCCESS:
            raise WalkthroughFailed(f"a poll failed: {run.error}")


def _udp(binding: m.TargetGroupBinding) -> tuple[str, dict[str, Any]]:
    result = m.BindingResult.objects.get(binding=binding)
    verdict = m.ProtocolVerdict.objects.get(binding=binding, protocol="UDP").verdict
    return verdict, result.data or {}


def _deliver() -> list[str]:
    """What beat and the worker do: scan for new alerts, deliver each (synchronously here)."""
    return [tasks.deliver_alert_task.apply(args=(pk,)).get() for pk in alerts.alerts_scan()]


def run(
    *,
    user: AbstractBaseUser,
    configure: Callable[[dict[str, Any]], tuple[m.Cluster, m.AwsAccount]],
    say: Callable[[str], None],
) -> None:
    """Run the story; `configure` points the demo rows at the emulators (state dict in, rows out)."""
    # moto accepts any credentials; fixed ones keep boto3 from looking for (and sending) real ones.
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    os.environ.pop("AWS_PROFILE", None)
    # Request logs of the in-process emulators and task traces would bury the story's lines.
    for name in ("aiohttp.access", "celery.app.trace", "werkzeug"):
        logging.getLogger(name).setLevel(logging.WARNING)
    started = time.monotonic()
    with MotoServer() as moto, KubeEmulator() as kube, alert_receiver() as received:
        world = seed_demo_world(aws_endpoint=moto.url, kube=kube)
        cluster, account = configure(
            {
                "kube_url": kube.url,
                "aws_endpoint": moto.url,
                "region": world.region,
                "account_id": world.account_id,
            }
        )
        hook, _ = m.AlertHook.objects.update_or_create(
            name=HOOK_NAME,
            defaults={"kind": "webhook", "url_env": ALERT_URL_ENV, "url_file": "", "on_stale": False},
        )
        hook.clusters.set([cluster])
        controller = EmulatedController(
            kube_url=kube.url, aws_endpoint=moto.url, cluster=world.cluster, region=world.region
        )

        say("1. First poll of the demo cluster and account")
        _poll(cluster, account)
        binding = m.TargetGroupBinding.objects.get(cluster=cluster, namespace=BINDING[0], name=BINDING[1])
        verdict, data = _udp(binding)
        health = m.BindingResult.objects.get(binding=binding)
        say(
            f"   {BINDING[0]}/{BINDING[1]} UDP: {verdict}; targets healthy {health.healthy}, "
            f"unhealthy {health.unhealthy}"
        )
        if verdict != "blocked" or health.healthy == 0 or health.unhealthy:
            raise WalkthroughFailed(f"expected UDP blocked while every target is healthy, got {verdict}")
        for finding in data.get("findings", [])[:3]:
            say(f"   {finding.get('severity')} {finding.get('code')}: {finding.get('message')}")
        if _deliver():
            raise WalkthroughFailed("a first sighting must not alert")

        say("2. Dry-run of the generated fix (what Apply would change)")
        if _fix_of(binding) is None:
            raise WalkthroughFailed("the analysis generated no fix for the blocked binding")
        reviewed = review_fix(binding, user)
        say(f"   {reviewed.status}: {reviewed.message}")
        for line in reviewed.diff.splitlines():
            say(f"   | {line}")
        if not reviewed.ok or not reviewed.diff:
            raise WalkthroughFailed(f"the dry-run did not produce a change to review: {reviewed.message}")

        say("3. Apply the reviewed fix (the detail page's Apply button)")
        applied = apply_reviewed_fix(binding, user, reviewed)
        say(f"   {applied.status}: {applied.message}")
        if applied.status != m.FixApplication.Status.APPLIED:
            raise WalkthroughFailed(f"apply did not succeed: {applied.message}")
        verdict, _ = _udp(binding)
        say(f"   UDP before the controller acts: {verdict} (nothing in AWS changed yet)")

        say("4. The emulated AWS Load Balancer Controller reconciles spec.networking")
        report = controller.reconcile()
        for line in report.lines():
            say(f"   {line}")
        if report.failures or not any(p.protocol == "udp" for _, p in report.authorized):
            raise WalkthroughFailed("the controller wrote no UDP rule")

        say("5. Next poll")
        _poll(cluster, account)
        verdict, data = _udp(binding)
        say(f"   {BINDING[0]}/{BINDING[1]} UDP: {verdict}")
        if verdict != "reachable":
            codes = sorted({f.get("code") for f in data.get("findings", [])})
            raise WalkthroughFailed(f"expected UDP reachable after the fix, got {verdict} ({codes})")

        say("6. Alerts")
        sent = _deliver()
        recovery = [a for a in received if a.get("name") == BINDING[1] and a.get("protocol") == "UDP"]
        for alert in received:
            say(f"   received: {alert.get('summary') or alert}")
        if (
            sent != ["sent"]
            or len(recovery) != 1
            or (recovery[0]["old"], recovery[0]["new"])
            != (
                "blocked",
                "reachable",
            )
        ):
            raise WalkthroughFailed(f"expected exactly one recovery alert, the receiver got {received}")
        if _deliver():
            raise WalkthroughFailed("a second scan sent another alert")
        say(f"Story complete in {time.monotonic() - started:.1f} s: blocked → fix → reachable, one alert.")
