"""deploy/prometheus/rules.yaml and deploy/grafana/binding-health.json use only metrics /metrics emits,
and the exporter's names follow Prometheus conventions (base units, `_total` only on counters)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from bindings import models as m
from bindings.vocabulary import THROTTLED_MARK
from tests.factories import seed_scenario

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "binding-health.json"

# PromQL words that are not metric names: aggregation modifiers, set and vector-matching operators.
PROMQL_KEYWORDS = frozenset(
    [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
    ]
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects.

    Strings, label matchers `{…}`, ranges `[…]` and the label lists of by/without/on/ignoring/
    group_* are removed first; an identifier followed by `(` is a function or aggregation.
    """
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in PROMQL_KEYWORDS or re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def test_the_expression_reader_finds_metrics_and_nothing_else():
    expr = (
        'sum by (cluster, protocol) (rate(foo_total{job="a",x=~"b|c"}[5m])) / on (cluster) group_left(team) '
        "bar_seconds > 0 and max without (source) (baz) unless vector(1) "
        'or label_replace(qux, "a", "$1", "b", "(.*)")'
    )

    assert metric_names(expr) == {"foo_total", "bar_seconds", "baz", "qux"}


def rule_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load(RULES.read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict):
            # label_values(metric, label): the metric is the first argument.
            [metric] = re.findall(r"label_values\(\s*([a-zA-Z_:][\w:]*)", query["query"])
            exprs.append((f"variable {var['name']}", metric))
    return exprs


@pytest.fixture
def emitted(client, cluster, aws_account):
    """Families and sample names of a scrape over data that gives every family a sample."""
    seed_scenario(cluster)  # a blocked UDP binding, a green-but-broken one, findings
    now = timezone.now()
    m.PollRun.objects.create(
        cluster=cluster, status="success", finished_at=now, duration_ms=900, api_calls={"l": 3}
    )
    m.PollRun.objects.create(
        account=aws_account,
        status="failed",
        finished_at=now,
        duration_ms=100,
        api_calls={"d": 2},
        error=f"DescribeTargetHealth: Throttling: Rate exceeded {THROTTLED_MARK}",
    )
    m.AwsAccount.objects.update(last_polled_at=now, last_success_at=now - timedelta(days=1), last_error="x")
    response = client.get("/metrics")
    assert response.status_code == 200
    families = list(text_string_to_metric_families(response.content.decode()))
    return {f.name: f for f in families}


@pytest.mark.django_db
def test_every_metric_the_rules_and_dashboard_use_is_emitted_with_samples(emitted):
    used = {}
    for where, expr in rule_expressions() + dashboard_expressions():
        for name in metric_names(expr):
            used.setdefault(name, []).append(where)

    assert used, "no expressions found"
    missing = {name: where for name, where in used.items() if name not in emitted}
    assert missing == {}
    empty = [name for name in used if not emitted[name].samples]
    assert empty == []


@pytest.mark.django_db
def test_metric_names_follow_prometheus_conventions(emitted):
    for name, family in emitted.items():
        assert re.fullmatch(r"bh_[a-z][a-z0-9_]*", name), name
        assert family.documentation, f"{name} has no HELP"
        # Base units only: seconds, not ms/minutes/hours; bytes, not kilobytes.
        assert not re.search(
            r"_(ms|millis|milliseconds|microseconds|minutes|hours|days|kb|kilobytes|mb)$", name
        )
        if family.type == "counter":
            assert all(s.name == name + "_total" for s in family.samples if not s.name.endswith("_created"))
        else:
            assert not name.endswith("_total"), f"{name}: _total is for counters"
        for sample in family.samples:
            assert not (sample.value < 0), f"{sample.name} is negative"


def test_the_rules_cover_what_an_operator_needs_and_are_well_formed():
    rules = {
        rule["alert"]: rule
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
    }
    for name, rule in rules.items():
        assert set(rule) >= {"alert", "expr", "labels", "annotations"}, name
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"], name
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), name
    blocked = rules["BindingHealthBindingBlocked"]
    assert blocked["for"] == "5m" and 'verdict="blocked"' in blocked["expr"]
    assert "bh_green_but_broken_bindings" in rules["BindingHealthGreenButBroken"]["expr"]
    assert "bh_source_stale" in rules["BindingHealthSourceStale"]["expr"]
    assert "bh_source_last_poll_failed" in rules["BindingHealthPollsFailing"]["expr"]


def test_the_dashboard_has_the_panels_an_operator_needs():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = " ".join(expr for _title, expr in dashboard_expressions())
    assert dashboard["uid"] == "binding-health"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for metric in (
        "bh_cluster_binding_protocols",  # verdicts by cluster and protocol
        "bh_green_but_broken_bindings",
        "bh_data_age_seconds",  # poll age
        "bh_poll_errors",
        "bh_last_poll_api_calls",  # AWS call rate (with the interval)
        "bh_poll_interval_seconds",
        "bh_poll_throttled",
    ):
        assert metric in exprs, metric
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
