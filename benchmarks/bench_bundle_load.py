"""Bundle loading: `load_bundle` on the same cluster as kubectl's YAML and as its JSON.

    .venv/bin/python benchmarks/bench_bundle_load.py [--bindings 4000]

Builds a bundle of N bindings from the dns-udp-blocked sample (each binding with its Service,
EndpointSlice and two pods; the nodes shared), writes kubernetes.yaml once as `kubectl -o yaml`
prints it and once as `kubectl -o json` does (4-space indent), then loads each in a fresh
process: wall seconds of `load_bundle` and the process's peak RSS (VmHWM). Not a test.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "scenarios" / "dns-udp-blocked"

CHILD = """
import sys, time
sys.path.insert(0, sys.argv[2])
from bindings.analysis.bundle import load_bundle
start = time.perf_counter()
bundle = load_bundle(sys.argv[1], max_file_bytes=1 << 30)
seconds = time.perf_counter() - start
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(seconds, int(hwm) / 1024, len(bundle.kube_objects[0]["items"]))
"""


def build(bindings: int) -> dict:
    """A `kind: List` of N bindings with their Services, EndpointSlices and pods."""
    [document] = yaml.safe_load_all((SAMPLE / "kubernetes.yaml").read_text())
    nodes = [o for o in document["items"] if o["kind"] == "Node"]
    per_pair = [o for o in document["items"] if o["kind"] != "Node"]  # two bindings' worth
    items = list(nodes)
    for i in range(bindings // 2):
        for obj in per_pair:
            clone = copy.deepcopy(obj)
            clone["metadata"]["name"] = f"{clone['metadata']['name']}-{i}"
            clone["metadata"]["uid"] = f"{clone['metadata'].get('uid', 'uid')}-{i}"
            items.append(clone)
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def measure(folder: Path) -> tuple[float, float, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), str(ROOT)], capture_output=True, text=True, check=True
    )
    seconds, rss, objects = out.stdout.split()
    return float(seconds), float(rss), int(objects)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bindings", type=int, default=4000)
    args = parser.parse_args()
    kube = build(args.bindings)
    with tempfile.TemporaryDirectory(prefix="bh-bench-bundle-") as tmp:
        rows = []
        for form, text in (
            ("kubectl -o yaml", yaml.safe_dump(kube, sort_keys=False, allow_unicode=True)),
            ("kubectl -o json", json.dumps(kube, indent=4, ensure_ascii=False)),
        ):
            folder = Path(tmp) / form.split()[-1]
            folder.mkdir()
            for name in ("aws.json", "bundle.json"):
                shutil.copy(SAMPLE / name, folder / name)
            (folder / "kubernetes.yaml").write_text(text)
            seconds, rss, objects = measure(folder)
            rows.append((form, len(text.encode()) / 2**20, seconds, rss, objects))
    print(f"{args.bindings} bindings")
    print(f"{'kubernetes.yaml':16} {'MiB':>6} {'load s':>8} {'peak MB':>8} {'objects':>8}")
    for form, size, seconds, rss, objects in rows:
        print(f"{form:16} {size:6.1f} {seconds:8.2f} {rss:8.0f} {objects:8}")
    print(f"JSON / YAML load time: {rows[1][2] / rows[0][2]:.3f}")


if __name__ == "__main__":
    main()
