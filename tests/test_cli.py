"""`manage.py check_bindings`: stored results, CI exit codes, terminal-safe text."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from bindings import models as m
from tests.factories import HOSTILE_TEXT, make_bindings, seed_scenario

pytestmark = pytest.mark.django_db


def run(*args):
    """(exit code, stdout) of check_bindings."""
    from io import StringIO

    out = StringIO()
    try:
        call_command("check_bindings", *args, stdout=out)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def seeded(cluster):
    seed_scenario(cluster)
    return cluster


def test_it_prints_the_stored_verdicts_and_exits_0_without_fail_on(seeded):
    code, out = run()

    assert code == 0
    assert "demo kube-system/coredns-udp" in out and "UDP 53: blocked" in out and "TCP 53: reachable" in out
    assert "HEALTH_CHECK_MASKS_TRAFFIC" in out
    assert "2 binding(s): 1 blocked, 1 reachable" in out


@pytest.mark.parametrize("level", ["blocked", "partial", "warning"])
def test_it_exits_1_when_the_fail_on_level_matches(seeded, level):
    code, out = run("--fail-on", level)

    assert code == 1 and f"--fail-on {level}: 1 binding(s) match" in out


@pytest.mark.parametrize(
    ("verdict", "level", "expected"),
    [("partial", "blocked", 0), ("partial", "partial", 1), ("reachable", "partial", 0)],
)
def test_it_applies_each_level_to_verdicts(cluster, verdict, level, expected):
    make_bindings(cluster, 2, verdict=verdict)
    m.Finding.objects.all().delete()

    assert run("--fail-on", level)[0] == expected


def test_it_exits_0_on_healthy_results_and_on_an_empty_database(cluster):
    make_bindings(cluster, 1, verdict="reachable")
    m.Finding.objects.all().delete()

    assert run("--fail-on", "warning")[0] == 0
    m.TargetGroupBinding.objects.all().delete()
    code, out = run("--fail-on", "blocked")
    assert code == 0 and "0 binding(s): nothing judged" in out


def test_it_limits_the_check_to_the_named_clusters(seeded, aws_account):
    other = m.Cluster.objects.create(
        name="quiet", connection="url", api_url="http://127.0.0.1:9", aws_account=aws_account
    )
    make_bindings(other, 1, verdict="reachable")
    m.Finding.objects.filter(binding__cluster=other).delete()

    assert run("--cluster", "quiet", "--fail-on", "blocked")[0] == 0
    assert run("--cluster", "quiet", "--cluster", "demo", "--fail-on", "blocked")[0] == 1


def test_it_fails_with_2_on_an_unknown_cluster(seeded):
    with pytest.raises(CommandError) as excinfo:
        call_command("check_bindings", "--cluster", "nope")

    assert excinfo.value.returncode == 2 and "nope" in str(excinfo.value)


def test_it_prints_json(seeded):
    code, out = run("--format", "json", "--fail-on", "blocked")

    report = json.loads(out)
    assert code == 1 and report["fail_on"] == "blocked" and report["matched"] == 1
    udp = next(b for b in report["bindings"] if b["name"] == "coredns-udp")
    assert udp["protocols"][0]["verdict"] == "blocked" and udp["findings"][0]["severity"] == "critical"


def test_it_strips_ansi_and_control_characters_from_text(cluster):
    [b] = make_bindings(cluster, 1)
    m.TargetGroupBinding.objects.filter(pk=b.pk).update(name=HOSTILE_TEXT, namespace="ns\x07\x1b]0;title\x07")
    m.Finding.objects.update(message=HOSTILE_TEXT)

    code, out = run("--fail-on", "blocked")

    assert code == 1
    assert "\x1b" not in out and "\x07" not in out
    assert "RED" in out and "\\x0aline2" in out  # the newline shows as an escape, on one line
    assert '<script>alert("x")</script>' in out  # harmless on a terminal: left readable


def test_it_keeps_hostile_strings_intact_in_json(cluster):
    [b] = make_bindings(cluster, 1)
    m.TargetGroupBinding.objects.filter(pk=b.pk).update(name=HOSTILE_TEXT)

    _code, out = run("--format", "json")

    assert "\x1b" not in out and json.loads(out)["bindings"][0]["name"] == HOSTILE_TEXT


def test_it_reads_in_constant_queries(cluster, django_assert_num_queries):
    make_bindings(cluster, 20)
    # 1 bindings with cluster and account, 2 verdicts, 3 findings.
    with django_assert_num_queries(3):
        run()
