"""`manage.py demo`: the whole product on one machine, against emulated AWS and Kubernetes.

Starts (and stops on Ctrl-C) four processes: the emulators (moto for AWS, a Kubernetes API
emulator, seeded with the DNS-over-UDP case), a Celery worker, Celery beat and the web server.
Configuration rows point at the emulators; everything else is the production code path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from bindings import models as m

DEMO_USER = "sre"
SETTLE = timedelta(seconds=10)
DEMO_PASSWORD = "binding-health-demo"  # noqa: S105 - a local demo login, printed on start


class Command(BaseCommand):
    help = "Run the demo: emulators, worker, beat and web server. Ctrl-C stops everything."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--poll-interval", type=int, default=60)
        parser.add_argument(
            "--walkthrough",
            action="store_true",
            help="run the story headless (blocked -> fix -> reachable -> one alert); exit 0 if it completes",
        )

    def handle(self, *args, **opts) -> None:
        if opts["walkthrough"]:
            self._walkthrough(opts["poll_interval"])
            return
        data_dir = Path(settings.DATA_DIR)
        state_file = data_dir / "emulators.json"
        state_file.unlink(missing_ok=True)
        env = {
            **os.environ,
            # moto accepts any credentials; set them so boto3 never looks for real ones.
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",  # noqa: S105
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONUNBUFFERED": "1",
            # The demo often runs as root in a container; Celery's "superuser privileges" warning
            # is about production workers and only buries the demo's own lines.
            "PYTHONWARNINGS": "ignore:You're running the worker with superuser privileges",
            # The demo's probes aim at the emulators' DNS server on loopback, which probe settings
            # may not target otherwise (bindings/collect/probes.py).
            "BH_PROBE_ALLOWED_NETWORKS": os.environ.get("BH_PROBE_ALLOWED_NETWORKS") or "127.0.0.0/8,::1/128",
        }
        call_command("migrate", interactive=False, verbosity=0)
        self._ensure_user()
        procs: list[tuple[str, subprocess.Popen]] = []

        def start(name: str, argv: list[str]) -> None:
            log = open(data_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
            # Own session: Ctrl-C reaches only this command, which stops the children in order.
            proc = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            procs.append((name, proc))

        def stop(*_: object) -> None:
            for _name, proc in reversed(procs):
                if proc.poll() is None:
                    proc.terminate()
            deadline = time.monotonic() + 10
            for _name, proc in procs:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()

        def interrupt(*_: object) -> None:
            raise KeyboardInterrupt

        # Installed explicitly: a shell may start us with SIGINT ignored (e.g. in the background).
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)
        py = sys.executable
        try:
            start("emulators", [py, "-m", "bindings.demo.emulators", "--state-file", str(state_file)])
            state = self._wait_for_state(state_file, procs[0][1])
            self._configure(state, opts["poll_interval"])
            start(
                "worker",
                [
                    py,
                    "-m",
                    "celery",
                    "-A",
                    "dashboard",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "2",
                    "--without-mingle",
                    "--without-gossip",
                ],
            )
            start(
                "beat",
                [
                    py,
                    "-m",
                    "celery",
                    "-A",
                    "dashboard",
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--schedule",
                    str(data_dir / "celerybeat-schedule"),
                ],
            )
            address = f"{opts['host']}:{opts['port']}"
            start("web", [py, "manage.py", "runserver", address, "--noreload"])
            self.stdout.write(
                self.style.SUCCESS("\nBinding Health demo is starting.\n")
                + f"  Dashboard: http://{address}/\n"
                + f"  Admin:     http://{address}/admin/\n"
                + f"  Login:     {DEMO_USER} / {DEMO_PASSWORD}\n"
                + f"  Logs:      {data_dir}/{{emulators,worker,beat,web}}.log\n"
                + "The first poll lands within about 30 seconds. Ctrl-C stops everything.\n"
            )
            landed = False
            while True:
                for name, proc in procs:
                    if proc.poll() is not None:
                        raise CommandError(f"{name} exited with {proc.returncode}; see {data_dir}/{name}.log")
                if not landed:
                    landed = self._first_poll_landed(f"http://{address}/")
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping the demo ...")
        finally:
            stop()

    def _walkthrough(self, interval: int) -> None:
        from bindings.demo import walkthrough

        call_command("migrate", interactive=False, verbosity=0)
        user = self._ensure_user()

        def configure(state: dict) -> tuple[m.Cluster, m.AwsAccount]:
            cluster = self._configure(state, interval)
            assert cluster.aws_account is not None
            return cluster, cluster.aws_account

        try:
            walkthrough.run(user=user, configure=configure, say=self.stdout.write)
        except walkthrough.WalkthroughFailed as exc:
            raise CommandError(f"walkthrough failed: {exc}") from exc

    def _first_poll_landed(self, url: str) -> bool:
        """Say so once the first cluster and account polls of the demo have been judged."""
        cluster = m.Cluster.objects.filter(name="demo").select_related("aws_account").first()
        if cluster is None or cluster.aws_account is None:
            return False
        # Judged with both sides: an account poll that started after the first cluster poll ended
        # (a cluster poll alone, or an account poll before it, judges every binding unknown).
        cluster_poll = (
            m.PollRun.objects.filter(cluster=cluster, status=m.PollRun.Status.SUCCESS)
            .order_by("started_at")
            .first()
        )
        if cluster_poll is None or cluster_poll.finished_at is None:
            return False
        account_poll = (
            m.PollRun.objects.filter(
                account=cluster.aws_account,
                status=m.PollRun.Status.SUCCESS,
                started_at__gte=cluster_poll.finished_at,
            )
            .order_by("started_at")
            .first()
        )
        if account_poll is None:
            return False
        results = m.BindingResult.objects.filter(binding__cluster=cluster)
        total = m.TargetGroupBinding.objects.filter(cluster=cluster).count()
        if total == 0 or results.count() < total:
            return False
        # The poll run is marked successful before its analysis is stored (with analyzed_at = its
        # start): wait for the results, or a while for any that did not change.
        judged = results.filter(analyzed_at__gte=account_poll.started_at).count()
        settled = account_poll.finished_at is not None and timezone.now() - account_poll.finished_at > SETTLE
        if judged < total and not settled:
            return False
        blocked = results.filter(worst_verdict="blocked").count()
        self.stdout.write(
            self.style.SUCCESS(f"first poll landed: {total} bindings, {blocked} blocked → {url}")
        )
        return True

    def _ensure_user(self):
        user_model = get_user_model()
        user = user_model.objects.filter(username=DEMO_USER).first()
        if user is None:
            user = user_model.objects.create_superuser(DEMO_USER, "sre@example.invalid", DEMO_PASSWORD)
        return user

    def _wait_for_state(self, state_file: Path, proc: subprocess.Popen) -> dict:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if state_file.exists():
                try:
                    return json.loads(state_file.read_text())
                except ValueError:
                    pass  # written but not complete yet
            if proc.poll() is not None:
                raise CommandError("the emulators exited early; see var/emulators.log")
            time.sleep(0.2)
        raise CommandError("the emulators did not start within 90 s; see var/emulators.log")

    def _configure(self, state: dict, interval: int) -> m.Cluster:
        """Point the demo's account and cluster at this run's emulators; poll them at once; probe
        the demo's CoreDNS bindings against the emulators' loopback DNS server.

        The emulated world is new on every run (new ids), so the previous run's observed state
        and results are dropped with the old rows rather than shown as stale.
        """
        m.Cluster.objects.filter(name="demo").delete()
        m.AwsAccount.objects.filter(name="demo-account").delete()
        account, _ = m.AwsAccount.objects.update_or_create(
            name="demo-account",
            defaults={
                "account_id": state.get("account_id", "123456789012"),
                "region": state.get("region", "us-east-1"),
                "endpoint_url": state["aws_endpoint"],
                "poll_interval_seconds": interval,
                "enabled": True,
                "next_poll_at": None,
            },
        )
        cluster, _ = m.Cluster.objects.update_or_create(
            name="demo",
            defaults={
                "connection": m.Cluster.Connection.URL,
                "api_url": state["kube_url"],
                "verify_ssl": False,
                "aws_account": account,
                "poll_interval_seconds": interval,
                "enabled": True,
                "next_poll_at": None,
                # The demo lets its superuser try the audited apply flow against the emulator;
                # real clusters keep it off until an operator enables it.
                "allow_apply_fix": True,
            },
        )
        dns = state.get("dns_server")
        if dns:
            # Active probes against the emulators' loopback DNS server (explicit addresses: the
            # emulated NLB's DNS name resolves nowhere). The worker sits where a VPC client would,
            # so: coredns-udp's DNS-over-UDP query succeeds while its rules say UDP is blocked
            # (PROBE_SUCCEEDS_WHILE_BLOCKED), and coredns-tcp's TCP connect agrees with "reachable".
            common = {"address": dns["host"], "port": dns["port"], "interval_seconds": 30}
            common |= {"timeout_seconds": 1.0, "retries": 1}
            m.ProbeSetting.objects.create(
                cluster=cluster, namespace="kube-system", name="coredns-udp", kind="dns", **common
            )
            m.ProbeSetting.objects.create(
                cluster=cluster, namespace="kube-system", name="coredns-tcp", kind="tcp", **common
            )
        return cluster
