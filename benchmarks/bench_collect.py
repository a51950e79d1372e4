"""scripts/collect-bundle.sh's cost: wall time and AWS calls for N target groups, against moto.

Seeds the demo world plus N extra TCP target groups (ip targets: the demo's pod IPs), ten per NLB
listener set (N/10 extra NLBs), and one TargetGroupBinding per target group in the Kubernetes
emulator, then runs the script with the real kubectl and AWS CLI (from .venv/bin or PATH). Run:

    .venv/bin/python benchmarks/bench_collect.py [--target-groups N] [--parallel P] [--verbose]

Not a test: the figures go to docs/bundles.md ("Time and API calls").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3  # noqa: E402

from bindings.demo.emulators import DEMO_CREDENTIALS, KubeEmulator, MotoServer, seed_demo_world  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PER_LB = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-groups", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--verbose", action="store_true", help="print the script's progress lines, timed")
    args = parser.parse_args()
    aws = shutil.which("aws", path=str(ROOT / ".venv" / "bin")) or shutil.which("aws")
    kubectl = shutil.which("kubectl")
    if not aws or not kubectl:
        print("needs kubectl and the AWS CLI on PATH", file=sys.stderr)
        return 2
    with MotoServer() as moto, KubeEmulator() as kube, tempfile.TemporaryDirectory() as tmp:
        world = seed_demo_world(aws_endpoint=moto.url, kube=kube)
        session = boto3.session.Session(region_name=world.region, **DEMO_CREDENTIALS)
        elbv2 = session.client("elbv2", endpoint_url=moto.url)
        tgbs = []
        lb_arn = ""
        for i in range(args.target_groups):
            if i % PER_LB == 0:
                lb_arn = elbv2.create_load_balancer(
                    Name=f"bench-{i // PER_LB}", Subnets=world.subnet_ids, Scheme="internal", Type="network"
                )["LoadBalancers"][0]["LoadBalancerArn"]
            tg = elbv2.create_target_group(
                Name=f"bench-{i}", Protocol="TCP", Port=53, VpcId=world.vpc_id, TargetType="ip"
            )["TargetGroups"][0]["TargetGroupArn"]
            targets = [{"Id": ip, "Port": 53} for ip in world.pod_ips]
            elbv2.register_targets(TargetGroupArn=tg, Targets=targets)
            elbv2.create_listener(
                LoadBalancerArn=lb_arn,
                Protocol="TCP",
                Port=1000 + i % PER_LB,
                DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
            )
            tgbs.append(
                {
                    "apiVersion": "elbv2.k8s.aws/v1beta1",
                    "kind": "TargetGroupBinding",
                    "metadata": {"name": f"bench-{i}", "namespace": "kube-system"},
                    "spec": {
                        "serviceRef": {"name": "coredns-external", "port": "dns-tcp"},
                        "targetGroupARN": tg,
                        "targetType": "ip",
                    },
                }
            )
        kube.apply(tgbs)
        home = Path(tmp) / "home"
        (home / ".kube").mkdir(parents=True)
        (home / ".kube" / "config").write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "emu", "cluster": {"server": kube.url}}],
                    "users": [{"name": "emu", "user": {}}],
                    "contexts": [{"name": "demo", "context": {"cluster": "emu", "user": "emu"}}],
                    "current-context": "demo",
                }
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBE"))}
        env.update(
            HOME=str(home),
            PATH=os.pathsep.join([str(Path(aws).parent), str(Path(kubectl).parent), env.get("PATH", "")]),
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION=world.region,
        )
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        proc = subprocess.Popen(
            [
                "bash",
                str(ROOT / "scripts" / "collect-bundle.sh"),
                "demo",
                "--endpoint-url",
                moto.url,
                "--parallel",
                str(args.parallel),
                "-o",
                str(Path(tmp) / "b.tgz"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:  # the script's progress, with the time each line arrived
            lines.append(line.rstrip())
            if args.verbose:
                print(f"{time.monotonic() - started:7.1f} s  {line.rstrip()}", file=sys.stderr)
        seconds = time.monotonic() - started
        if proc.wait() != 0:
            print("\n".join(lines), file=sys.stderr)
            return 1
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("ru_utime", "ru_stime"))
        calls = [line for line in lines if "AWS calls in" in line]
        print(
            f"{args.target_groups + 2} target groups, {args.target_groups // PER_LB + 1} NLBs, "
            f"--parallel {args.parallel}: {seconds:.1f} s wall ({calls[-1].split(': ', 1)[-1]}), "
            f"{cpu:.0f} CPU-seconds in the script, kubectl and the AWS CLI; {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
