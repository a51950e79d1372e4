"""The bindings list's filters: one definition serving the dashboard list and `GET /api/v1/bindings`.

Semantics (pinned by tests/test_querysets.py on both surfaces):

- `verdict=unknown` without a protocol also matches bindings not analysed yet: both surfaces show
  such a binding's verdict as `unknown`, so a filter that hid them would contradict the rows.
  With a protocol, only stored verdicts count (an unanalysed binding has none for any protocol).
- `code` and `severity` together match a binding with ONE finding carrying both: "a critical
  TRAFFIC_BLOCKED", not "some TRAFFIC_BLOCKED and some other critical finding".
- `protocol` and `verdict` together likewise match one protocol verdict carrying both.
- `stale` compares each cluster's (and its account's) freshness as `bindings.freshness` defines it.

Every filter is an EXISTS subquery or a join condition in the one list query.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from bindings import models as m


def stale_cluster_ids() -> list[int]:
    """Ids of the clusters whose bindings show stale data (one query, clusters with their accounts)."""
    return [c.pk for c in m.Cluster.objects.select_related("aws_account") if c.data_is_stale]


def filter_bindings(
    qs: QuerySet[m.TargetGroupBinding],
    *,
    cluster_id: int | None = None,
    cluster_name: str | None = None,
    namespace: str | None = None,
    protocol: str | None = None,
    verdict: str | None = None,
    code: str | None = None,
    severity: str | None = None,
    stale: bool | None = None,
    text: str | None = None,
) -> QuerySet[m.TargetGroupBinding]:
    """`qs` narrowed by the list filters; None or '' leaves a filter out."""
    if cluster_id:
        qs = qs.filter(cluster_id=cluster_id)
    if cluster_name:
        qs = qs.filter(cluster__name=cluster_name)
    if namespace:
        qs = qs.filter(namespace=namespace)
    if protocol or verdict:
        verdicts = m.ProtocolVerdict.objects.filter(binding=OuterRef("pk"))
        if protocol:
            verdicts = verdicts.filter(protocol=protocol)
        if verdict:
            verdicts = verdicts.filter(verdict=verdict)
        condition = Exists(verdicts)
        if verdict == "unknown" and not protocol:
            condition |= Q(result__isnull=True)  # not analysed yet: nothing is known
        qs = qs.filter(condition)
    if code or severity:
        findings = m.Finding.objects.filter(binding=OuterRef("pk"))
        if code:
            findings = findings.filter(code=code)
        if severity:
            findings = findings.filter(severity=severity)
        qs = qs.filter(Exists(findings))
    if stale is not None:
        ids = stale_cluster_ids()
        qs = qs.filter(cluster_id__in=ids) if stale else qs.exclude(cluster_id__in=ids)
    if text:
        qs = qs.filter(
            Q(name__icontains=text)
            | Q(namespace__icontains=text)
            | Q(service_name__icontains=text)
            | Q(target_group_arn__icontains=text)
            | Q(target_group_name__icontains=text)
            | Q(cluster__name__icontains=text)
        )
    return qs
