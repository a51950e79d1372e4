"""Bundles of what was last polled, for support and bug reports (docs/DESIGN.md "Bundles").

The raw payloads of each source's last successful poll are kept in `SourceSnapshot`; a cluster's
bundle is its Kubernetes objects plus its AWS account's responses, in the same format the
offline `analyze` command reads — so a bundle reproduces the dashboard's verdicts anywhere.
"""

from __future__ import annotations

from pathlib import Path

from bindings import models as m
from bindings.analysis.bundle import ENI_SG_TAGS_FIELD, write_bundle


class NothingPolled(Exception):
    """The cluster has no successful poll to export yet."""


def cluster_bundle_parts(cluster: m.Cluster) -> tuple[list[dict], dict, dict]:
    snap = m.SourceSnapshot.objects.filter(cluster=cluster).first()
    if snap is None:
        raise NothingPolled(f"cluster {cluster.name} has not been polled successfully yet")
    aws: dict = {}
    if cluster.aws_account_id:
        account_snap = m.SourceSnapshot.objects.filter(account_id=cluster.aws_account_id).first()
        if account_snap is not None:
            aws = account_snap.payload
    meta = {
        "cluster": cluster.name,
        "collectedAt": snap.collected_at.isoformat(),
        "clientCidrs": cluster.client_cidrs() or None,
        ENI_SG_TAGS_FIELD: dict(cluster.service_target_eni_sg_tags or {}) or None,
    }
    return list(snap.payload.get("objects", [])), aws, {k: v for k, v in meta.items() if v}


def cluster_bundle_write(cluster: m.Cluster, path: str | Path) -> Path:
    """Write the cluster's bundle to a directory or a .tar.gz/.zip archive."""
    kube_objects, aws, meta = cluster_bundle_parts(cluster)
    return write_bundle(path, kube_objects=kube_objects, aws=aws, meta=meta)
