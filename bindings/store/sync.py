"""Write what a collector returned into the database, idempotently.

Each `<entity>_sync` runs in ONE transaction: a crash part-way leaves the previous state whole.
Rows are keyed on Kubernetes uids and AWS ids; a row is written only when a column changed, so
re-running a poll over unchanged data writes nothing, and rows whose object vanished are deleted.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import models, transaction

from bindings import models as m
from bindings.analysis import model as am
from bindings.store import fieldmaps as fm
from bindings.store.fieldmaps import jsonable

logger = logging.getLogger(__name__)


@dataclass
class SyncStats:
    created: int = 0
    updated: int = 0
    deleted: int = 0

    @property
    def rows_written(self) -> int:
        return self.created + self.updated + self.deleted

    def add(self, other: SyncStats) -> None:
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted


def _values(container: Any) -> Iterable[Any]:
    if container is None:
        return ()
    if isinstance(container, Mapping):
        return container.values()
    return container


def digest(payload: Any) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@functools.cache
def _char_limits(model: type[models.Model]) -> tuple[tuple[tuple[str, int], ...], bool]:
    fields = model._meta.concrete_fields
    limits = tuple(
        (f.attname, f.max_length) for f in fields if isinstance(f, models.CharField) and f.max_length
    )
    return limits, any(f.name == "problems" for f in fields)


def fit_columns(model: type[models.Model], row: dict[str, Any]) -> dict[str, Any]:
    """Clip strings longer than their column, recording a problem on the row when it has a list.

    Hostile input (a 1 MB name or ARN) is otherwise a DataError on PostgreSQL that fails the
    whole source's sync. The clipped value ends in a digest of the full one, so distinct long
    keys stay distinct and a re-poll clips identically (no spurious writes).
    """
    limits, has_problems = _char_limits(model)
    clipped = [(f, n) for f, n in limits if isinstance(row.get(f), str) and len(row[f]) > n]
    if not clipped:
        return row
    row = dict(row)
    for f, n in clipped:
        # Short columns (protocols, types) are never keys: a plain cut is enough there.
        tail = hashlib.sha256(row[f].encode()).hexdigest()[:16] if n >= 64 else ""
        row[f] = row[f][: n - 1 - len(tail)] + "…" + tail
    if has_problems:
        name = model.__name__.removeprefix("Kube")
        where = "/".join(str(row[k])[:80] for k in ("namespace", "name") if row.get(k))
        row["problems"] = list(row.get("problems") or []) + [
            {"object": f"{name} {where}".strip(), "field": f, "message": f"longer than {n} characters; cut"}
            for f, n in clipped
        ]
    return row


def upsert(
    model: type[models.Model],
    *,
    scope: dict[str, Any],
    key: tuple[str, ...],
    rows: Iterable[dict[str, Any]],
) -> SyncStats:
    """Make the rows of `model` within `scope` equal to `rows` (dicts of column values).

    1. Load the existing rows in scope once. 2. Create rows whose key is new, update rows whose
    columns differ (only those), delete rows whose key disappeared. Duplicate keys in the input
    keep the last one: AWS and Kubernetes can both repeat an object across pages.
    """
    stats = SyncStats()
    wanted: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        row = fit_columns(model, row)
        wanted[tuple(row[k] for k in key)] = row
    existing = {tuple(getattr(obj, k) for k in key): obj for obj in model.objects.filter(**scope)}
    to_create, to_update, changed_fields = [], [], set()
    for row_key, row in wanted.items():
        obj = existing.pop(row_key, None)
        if obj is None:
            to_create.append(model(**scope, **row))
            continue
        dirty = False
        for field, value in row.items():
            if getattr(obj, field) != value:
                setattr(obj, field, value)
                changed_fields.add(field)
                dirty = True
        if dirty:
            to_update.append(obj)
    if to_create:
        model.objects.bulk_create(to_create, batch_size=500)
    if to_update:
        model.objects.bulk_update(to_update, sorted(changed_fields), batch_size=500)
    if existing:
        model.objects.filter(pk__in=[obj.pk for obj in existing.values()]).delete()
    stats.created, stats.updated, stats.deleted = len(to_create), len(to_update), len(existing)
    return stats


def _problems(record: Any) -> list:
    return jsonable(getattr(record, "problems", []) or [])


def _port_text(port: int | str | None) -> tuple[str, bool]:
    if port is None:
        return "", False
    return str(port), isinstance(port, int) and not isinstance(port, bool)


# --- Kubernetes ---------------------------------------------------------------------------------


def binding_row(b: am.Binding) -> dict[str, Any]:
    port, is_number = _port_text(b.service_port)
    return {
        "uid": b.uid,
        "namespace": b.namespace,
        "name": b.name,
        "api_version": b.api_version or "",
        "resource_version": b.resource_version or "",
        "generation": b.generation,
        "observed_generation": b.observed_generation,
        "target_group_arn": b.target_group_arn or "",
        "target_group_name": b.target_group_name or "",
        "target_type": b.target_type or "",
        "target_group_protocol": b.target_group_protocol or "",
        "ip_address_type": b.ip_address_type or "",
        "service_name": b.service_name or "",
        "service_port": port,
        "service_port_is_number": is_number,
        "networking": None if b.networking is None else jsonable(b.networking),
        "annotations": jsonable(b.annotations or {}),
        "client_cidrs": None if b.client_cidrs is None else list(b.client_cidrs),
        "events": jsonable(b.events),
        "raw": jsonable(b.raw or {}),
        "problems": _problems(b),
    }


def cluster_sync(*, cluster: m.Cluster, records: Any) -> SyncStats:
    """Mirror one cluster's normalised Kubernetes records (`normalize_kubernetes` output)."""
    stats = SyncStats()
    scope = {"cluster": cluster}
    with transaction.atomic():
        stats.add(
            upsert(
                m.TargetGroupBinding,
                scope=scope,
                key=("uid",),
                rows=(binding_row(b) for b in _values(records.bindings)),
            )
        )
        stats.add(
            upsert(
                m.KubeService,
                scope=scope,
                key=("uid",),
                rows=(
                    {
                        "uid": s.uid,
                        "namespace": s.namespace,
                        "name": s.name,
                        "type": s.type or "",
                        "ports": jsonable(s.ports),
                        "selector": jsonable(s.selector or {}),
                        "problems": _problems(s),
                    }
                    for s in _values(records.services)
                ),
            )
        )
        stats.add(
            upsert(
                m.KubeEndpointSlice,
                scope=scope,
                key=("uid",),
                rows=(
                    {
                        "uid": e.uid,
                        "namespace": e.namespace,
                        "name": e.name,
                        "service_name": e.service_name or "",
                        "address_type": e.address_type or "",
                        "ports": jsonable(e.ports),
                        "endpoints": jsonable(e.endpoints),
                    }
                    for e in _values(records.endpoint_slices)
                ),
            )
        )
        stats.add(
            upsert(
                m.KubePod,
                scope=scope,
                key=("uid",),
                rows=(
                    {
                        "uid": p.uid,
                        "namespace": p.namespace,
                        "name": p.name,
                        "node_name": p.node_name or "",
                        "ips": list(p.ips),
                        "ready": bool(p.ready),
                        "container_ports": jsonable(p.container_ports),
                        "pod_eni": p.pod_eni or "",
                    }
                    for p in _values(records.pods)
                ),
            )
        )
        stats.add(
            upsert(
                m.KubeNode,
                scope=scope,
                key=("uid",),
                rows=(
                    {
                        "uid": n.uid,
                        "namespace": "",
                        "name": n.name,
                        "provider_id": n.provider_id or "",
                        "instance_id": n.instance_id or "",
                        "zone": n.zone or "",
                        "internal_ips": list(n.internal_ips),
                        "labels": jsonable(n.labels or {}),
                        "ready": bool(n.ready),
                    }
                    for n in _values(records.nodes)
                ),
            )
        )
    return stats


# --- AWS ----------------------------------------------------------------------------------------


def _rules(sg: am.SecurityGroup) -> Iterable[dict[str, Any]]:
    for egress, rules in ((False, sg.ingress), (True, sg.egress)):
        for r in rules:
            yield {
                "egress": egress,
                "protocol": r.protocol,
                "from_port": r.from_port,
                "to_port": r.to_port,
                "source_kind": r.source_kind,
                "source": r.source,
                "description": r.description or "",
                "rule_id": r.rule_id or "",
            }


def account_sync(*, account: m.AwsAccount, records: Any) -> SyncStats:
    """Mirror one account's normalised AWS records (`normalize_aws` output)."""
    stats = SyncStats()
    scope = {"account": account}

    def mirror(fmap: fm.FieldMap, items: Any) -> None:
        stats.add(
            upsert(fmap.model, scope=scope, key=fmap.key, rows=(fmap.row_of(i) for i in _values(items)))
        )

    with transaction.atomic():
        mirror(fm.TARGET_GROUP, records.target_groups)
        # Health is keyed by the target group it was asked for, whatever the record says.
        health_rows = [
            {**fm.REGISTERED_TARGET.row_of(t), "target_group_arn": tg_arn}
            for tg_arn, targets in (records.target_health or {}).items()
            for t in targets
        ]
        stats.add(upsert(m.RegisteredTarget, scope=scope, key=fm.REGISTERED_TARGET.key, rows=health_rows))
        mirror(fm.LOAD_BALANCER, records.load_balancers)
        mirror(fm.LISTENER, records.listeners)
        mirror(fm.NETWORK_INTERFACE, records.network_interfaces)
        mirror(fm.INSTANCE, records.instances)
        groups = list(_values(records.security_groups))
        mirror(fm.SECURITY_GROUP, groups)
        sg_rows = {
            sg.group_id: sg
            for sg in m.SecurityGroup.objects.filter(account=account).prefetch_related("rules")
        }
        for sg in groups:
            key = fit_columns(m.SecurityGroup, {"group_id": sg.id})["group_id"]  # as upsert stored it
            stats.add(_sync_rules(sg_rows[key], list(_rules(sg))))
        mirror(fm.SUBNET, records.subnets)
        mirror(fm.VPC, records.vpcs)
        mirror(fm.NETWORK_ACL, records.network_acls)
        mirror(fm.PREFIX_LIST, records.prefix_lists)
    return stats


RULE_FIELDS = (
    "egress",
    "protocol",
    "from_port",
    "to_port",
    "source_kind",
    "source",
    "description",
    "rule_id",
)


def _sync_rules(sg: m.SecurityGroup, rules: list[dict[str, Any]]) -> SyncStats:
    """Rules have no stable id in DescribeSecurityGroups: compare the whole set, rewrite if it differs."""
    rules = [fit_columns(m.SecurityGroupRule, r) for r in rules]
    current = sorted(digest({f: getattr(r, f) for f in RULE_FIELDS}) for r in sg.rules.all())
    if current == sorted(digest(r) for r in rules):
        return SyncStats()
    deleted, _ = sg.rules.all().delete()
    m.SecurityGroupRule.objects.bulk_create([m.SecurityGroupRule(security_group=sg, **r) for r in rules])
    return SyncStats(created=len(rules), deleted=deleted)


def snapshot_store(*, payload: Any, collected_at: datetime, **owner: Any) -> bool:
    """Keep the raw payload of a successful poll (for export); write only when it changed."""
    new_digest = digest(payload)
    snap = m.SourceSnapshot.objects.filter(**owner).only("pk", "digest").first()
    if snap is not None and snap.digest == new_digest:
        return False
    m.SourceSnapshot.objects.update_or_create(
        **owner, defaults={"collected_at": collected_at, "digest": new_digest, "payload": payload}
    )
    return True
