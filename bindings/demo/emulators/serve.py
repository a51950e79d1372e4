"""`python -m bindings.demo.emulators`: both emulators and the probe targets in one process, the
demo world seeded, a JSON state file for the dashboard, served until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading

from bindings.demo.emulators.aws import MotoServer
from bindings.demo.emulators.dns import DnsServer, closed_udp_port
from bindings.demo.emulators.kube import KubeEmulator
from bindings.demo.emulators.world import seed_collection_cases, seed_demo_world, write_kubeconfig


def main(argv: list[str] | None = None) -> int:
    """Start both emulators and the probe targets, seed the demo world, write the state file, serve
    until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bindings.demo.emulators", description=main.__doc__)
    parser.add_argument("--state-file", required=True, help="where to write the JSON state")
    parser.add_argument("--kube-port", type=int, default=0, help="Kubernetes emulator port (0: any free)")
    parser.add_argument("--aws-port", type=int, default=0, help="moto port (0: any free)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--dns-port", type=int, default=0, help="loopback DNS server port (0: any free)")
    parser.add_argument(
        "--controller-interval",
        type=float,
        default=2.0,
        help="seconds between the emulated controller's reconciles (0: no emulated controller)",
    )
    parser.add_argument(
        "--collection-cases",
        action="store_true",
        help="add bindings on a deleted target group, a misspelled and a correct targetGroupName, and a "
        "prefix-list rule (docs/bundles.md: collecting a bundle from the emulators)",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    # The handlers only set a flag; the main thread does the (blocking) shutdown work.
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    kube = KubeEmulator(port=args.kube_port).start()
    moto = MotoServer(port=args.aws_port).start()
    # Real local services for the demo's active probes: a DNS server (UDP and TCP) and a UDP port
    # with nothing behind it.
    dns_server = DnsServer(port=args.dns_port).start()
    controller: threading.Thread | None = None
    try:
        world = seed_demo_world(aws_endpoint=moto.url, kube=kube, region=args.region)
        if args.collection_cases:
            seed_collection_cases(world, aws_endpoint=moto.url, kube=kube)
        kubeconfig = args.state_file + ".kubeconfig"
        write_kubeconfig(kubeconfig, kube.url)
        if args.controller_interval > 0:
            # Plays the AWS Load Balancer Controller: an applied fix reaches the security groups.
            from bindings.demo.emulated_controller import EmulatedController

            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
            emulated = EmulatedController(
                kube_url=kube.url, aws_endpoint=moto.url, cluster=world.cluster, region=args.region
            )
            controller = threading.Thread(
                target=emulated.run,
                args=(stop, args.controller_interval),
                name="emulated-controller",
                daemon=True,
            )
            controller.start()
        state = {
            "kube_url": kube.url,
            "kubeconfig": os.path.abspath(kubeconfig),
            "aws_endpoint": moto.url,
            "region": args.region,
            "account_id": world.account_id,
            "cluster": world.cluster,
            "target_group_arns": sorted(world.target_group_arns.values()),
            "aws_credentials": {"access_key_id": "testing", "secret_access_key": "testing"},
            "pid": os.getpid(),
            "world": world.to_json(),
            "dns_server": {"host": dns_server.host, "port": dns_server.port},
            "closed_udp_port": closed_udp_port(),
        }
        tmp = args.state_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=1)
        os.replace(tmp, args.state_file)  # atomic: a reader never sees a half-written file
        while not stop.wait(0.5):
            pass
    finally:
        stop.set()
        if controller is not None:
            controller.join(15)
        dns_server.stop()
        kube.stop()
        moto.stop()
    return 0
