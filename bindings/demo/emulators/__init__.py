"""Emulated AWS and Kubernetes for the tests and the demo.

- `KubeEmulator` (`kube`) hosts kmock (a Kubernetes API emulator, pinned at 0.8) on a real HTTP port
  in a background thread; every kmock workaround lives in that module
  (shared/reference/emulators.md). `apply_objects`, `patch_object` and `delete_object` write to any
  API server's URL.
- `MotoServer` (`aws`) wraps moto's `ThreadedMotoServer` on a free port.
- `seed_demo_world` (`world`) builds the "DNS over UDP is blocked" case in both emulators;
  `seed_collection_cases` adds the missing-resource cases that `scripts/collect-bundle.sh` must survive.
- `DnsServer` (`dns`) answers DNS over UDP and TCP on one loopback port (dnspython builds the
  answers), and `closed_udp_port` finds a UDP port nothing listens on: the demo's active probes
  target them.

Run ``python -m bindings.demo.emulators --state-file PATH`` (`serve.main`) to start both emulators,
seed the demo world, write a JSON state file for the dashboard (and a kubeconfig beside it,
``PATH.kubeconfig``, for kubectl) and serve until SIGINT/SIGTERM.

Every name is importable from this package, as it was from the single module it replaces.
"""

from __future__ import annotations

from bindings.demo.emulators.aws import MotoServer
from bindings.demo.emulators.dns import DnsServer, closed_udp_port
from bindings.demo.emulators.kube import (
    KubeEmulator,
    _filled,
    _resource_path,
    apply_objects,
    delete_object,
    patch_object,
)
from bindings.demo.emulators.serve import main
from bindings.demo.emulators.world import (
    DEMO_ACCOUNT_ID,
    DEMO_CLUSTER,
    DEMO_CREDENTIALS,
    CollectionCases,
    DemoWorld,
    seed_collection_cases,
    seed_demo_world,
    write_kubeconfig,
)

__all__ = [
    "DEMO_ACCOUNT_ID",
    "DEMO_CLUSTER",
    "DEMO_CREDENTIALS",
    "CollectionCases",
    "DemoWorld",
    "DnsServer",
    "KubeEmulator",
    "MotoServer",
    "_filled",
    "_resource_path",
    "apply_objects",
    "closed_udp_port",
    "delete_object",
    "main",
    "patch_object",
    "seed_collection_cases",
    "seed_demo_world",
    "write_kubeconfig",
]
