"""Kubernetes Events on TargetGroupBindings when a verdict changes (opt-in per cluster).

`kubectl describe targetgroupbinding` then shows `BindingHealthBlocked` / `BindingHealthRecovered`
with the root cause, where SREs already look. The same transitions as PagerDuty's page and
resolve (`alerts.PAGING_VERDICTS`); a binding's first verdict is not a change, as for alerts.

At most one Event per transition, however many beats or workers run the scan:
- a transition is claimed with a conditional UPDATE of `VerdictTransition.kube_event` ("" → "sending");
- the Event's name is derived from the transition's id, so a create repeated after a crash answers
  409 AlreadyExists instead of making a second Event.
Rate-limited per cluster by a token bucket (BH_KUBE_EVENTS_PER_MINUTE, shared through Redis):
transitions over the limit wait for the next beat, and are skipped once older than MAX_DELAY.
A failure (RBAC, unreachable API) is recorded on the transition and logged; it never touches
polling, which runs in other tasks.
"""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import urllib3
from celery.utils.log import get_task_logger
from django.conf import settings
from django.utils import timezone
from kubernetes import client as k8s

from bindings import models as m
from bindings.collect import kube
from bindings.collect.errors import KubeError
from bindings.collect.ratelimit import TokenBucket
from bindings.services import polling
from bindings.services.alerts import (
    LOOKBACK,
    PAGING_VERDICTS,
    RECOVERED_VERDICTS,
    first_judgements_of,
    root_causes,
)

task_logger = get_task_logger(__name__)

REASON_BLOCKED = "BindingHealthBlocked"
REASON_RECOVERED = "BindingHealthRecovered"
COMPONENT = "binding-health"
MAX_DELAY = timedelta(minutes=10)  # an Event later than this misleads more than it helps
MESSAGE_MAX = 1024  # events.k8s.io caps `note` at 1 KiB; keep core/v1 messages within it too
NAME_MAX = 253  # a DNS subdomain


def reason_for(old: str, new: str) -> str | None:
    """The Event reason of a transition, or None when the transition gets no Event."""
    if new in PAGING_VERDICTS:
        return REASON_BLOCKED
    if new in RECOVERED_VERDICTS and old in PAGING_VERDICTS:
        return REASON_RECOVERED
    return None


def event_name(binding_name: str, transition_id: int) -> str:
    """Deterministic per transition (the 409 on a repeat is what makes it at-most-once)."""
    suffix = f".bh-{transition_id}"
    base = re.sub(r"[^a-z0-9.-]", "-", binding_name.lower()).strip(".-") or "binding"
    return base[: NAME_MAX - len(suffix)] + suffix


def event_body(t: m.VerdictTransition, reason: str, root_cause: str) -> dict[str, Any]:
    b = t.binding
    old = t.old.replace("_", " ") or "new"
    message = f"{t.protocol}: {old} → {t.new.replace('_', ' ')}"
    if root_cause:
        message += f". {root_cause}"
    at = t.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return kube.tgb_event(
        b,
        name=event_name(b.name, t.pk),
        reason=reason,
        event_type="Warning" if reason == REASON_BLOCKED else "Normal",
        message=message[:MESSAGE_MAX],
        at=at,
        source=COMPONENT,
        reporting_instance=socket.gethostname()[:128],
    )


def _bucket(cluster: m.Cluster) -> TokenBucket:
    per_minute = max(1, settings.BH_KUBE_EVENTS_PER_MINUTE)
    return TokenBucket(
        f"kube-events:{cluster.pk}",
        rate=per_minute / 60,
        capacity=float(per_minute),
        redis_url=settings.REDIS_URL or "",
    )


def _api_error(exc: k8s.ApiException) -> str:
    if exc.status == 403:
        return (
            "HTTP 403 Forbidden: the service account may not create events "
            "(add deploy/kubernetes/components/kube-events)"
        )
    return f"HTTP {exc.status} {exc.reason}"


def _set(pk: int, outcome: str) -> None:
    m.VerdictTransition.objects.filter(pk=pk).update(kube_event=outcome[:300])


def _due(cluster: m.Cluster, now: datetime) -> list[m.VerdictTransition]:
    rows = list(
        m.VerdictTransition.objects.filter(binding__cluster=cluster, kube_event="", at__gte=now - LOOKBACK)
        .exclude(old="")
        .filter(new__in=PAGING_VERDICTS | RECOVERED_VERDICTS)
        .select_related("binding")
        .order_by("at", "pk")
    )
    first = first_judgements_of([t for t in rows if t.old == "unknown"])
    due = []
    for t in rows:
        if t.pk in first or reason_for(t.old, t.new) is None:
            _set(t.pk, "skipped: not a change worth an event")
        else:
            due.append(t)
    return due


def emit_for_cluster(cluster: m.Cluster, *, now: datetime | None = None) -> dict[str, int]:
    """Create the Events due for one cluster; returns counts by outcome."""
    now = now or timezone.now()
    counts = {"created": 0, "failed": 0, "deferred": 0, "skipped": 0}
    due = _due(cluster, now)
    if not due:
        return counts
    try:
        api_client = kube.api_client_for(polling.kube_connection(cluster))
    except (KubeError, ValueError) as exc:
        task_logger.warning("kubernetes events for cluster %s: %s", cluster.name, exc)
        for t in due:
            _set(t.pk, f"failed: {exc}")
        counts["failed"] += len(due)
        return counts
    bucket = _bucket(cluster)
    causes = root_causes({(t.binding_id, t.protocol) for t in due if t.new in PAGING_VERDICTS})
    with api_client:
        core = k8s.CoreV1Api(api_client)
        for t in due:
            if now - t.at > MAX_DELAY:
                _set(t.pk, f"skipped: not sent within {int(MAX_DELAY.total_seconds() // 60)} minutes")
                counts["skipped"] += 1
                continue
            if not bucket.try_take():
                counts["deferred"] += 1  # left unclaimed: the next beat tries again
                continue
            if not m.VerdictTransition.objects.filter(pk=t.pk, kube_event="").update(kube_event="sending"):
                continue  # another scan claimed it
            reason = reason_for(t.old, t.new)
            assert reason is not None
            body = event_body(t, reason, causes.get((t.binding_id, t.protocol), ""))
            unreachable = False
            try:
                core.create_namespaced_event(
                    t.binding.namespace, body, _request_timeout=settings.BH_KUBE_REQUEST_TIMEOUT
                )
            except k8s.ApiException as exc:
                if exc.status == 409:  # created by an earlier attempt: still exactly one
                    _set(t.pk, "created")
                    counts["created"] += 1
                    continue
                error = _api_error(exc)
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                error = f"cannot reach the API server: {exc.__class__.__name__}"
                unreachable = True
            else:
                _set(t.pk, "created")
                counts["created"] += 1
                continue
            task_logger.warning(
                "kubernetes event for %s/%s in cluster %s failed: %s",
                t.binding.namespace,
                t.binding.name,
                cluster.name,
                error,
            )
            _set(t.pk, f"failed: {error}")
            counts["failed"] += 1
            if unreachable:
                # One timeout per cluster and beat is enough: the rest wait for the next beat
                # (and are dropped after MAX_DELAY), so a dead API server never stalls the task.
                break
    return counts


def emit_all() -> dict[str, int]:
    """Events for every cluster that opted in; one cluster's failure skips only it."""
    totals = {"created": 0, "failed": 0, "deferred": 0, "skipped": 0}
    for cluster in m.Cluster.objects.filter(emit_kube_events=True, enabled=True):
        try:
            counts = emit_for_cluster(cluster)
        except Exception:  # a bug for one cluster must not stop the others' events
            task_logger.exception("kubernetes events for cluster %s failed", cluster.name)
            continue
        for key, value in counts.items():
            totals[key] += value
    return totals
