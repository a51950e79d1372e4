"""Hostile data from Kubernetes and AWS comes out safe in every output.

Anyone who can annotate a TargetGroupBinding, name a security group or make a target fail its
health check writes text that the dashboard shows to SREs. The bundle below carries such text in
every field that comes from a cluster or an account, and travels the real path: bundle →
normalize → sync (`cluster_sync`, `account_sync`) → `cluster_analyze` → fix generation. Then:

- HTML (every page and the admin): no markup of ours is broken, no script or handler injected;
- JSON (the API): the strings come back byte for byte, in valid JSON;
- YAML (fix download, API ?format=yaml): parses back to the stored manifest, with no tags;
- CLI text (`analyze`, `check_bindings`): no raw ESC (or other C0/C1 control) characters.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.utils import timezone

from bindings import models as m
from bindings import textsafe
from bindings.analysis.bundle import bundle_inventory, load_bundle, write_bundle
from bindings.analysis.engine import analyze
from bindings.analysis.normalize import normalize_aws, normalize_kubernetes
from bindings.fixes import fix_to_dict, generate_fix
from bindings.services import polling
from bindings.store import sync
from bindings.web.visible import visible_html
from tests.factories import SCENARIOS, attach_fixes, make_token, shell_words

pytestmark = pytest.mark.django_db

# Every trick at once: markup, attribute breakout, entities, template and shell syntax, ANSI
# colour and cursor codes (ESC and the one-byte CSI), CR/LF, YAML flow and comment syntax, and the
# characters that make text read differently from what it is: bidi overrides, embeddings,
# isolates and marks, zero-width characters, the BOM, a soft hyphen and a tag character.
SPOOF = "\u202etxt.exe\u202c\u202a\u2066\u2069\u200e\u200f\u061c\u200b\ufeff\u00ad\U000e0041\x9b1m"
PAYLOAD = (
    "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>&amp;${HOME}{{7*7}}"
    "\x1b[31mRED\x1b[2J\x1b]0;title\x07\r\nkey: [a, {b: c}] # " + SPOOF
)


def hostile(field: str) -> str:
    """A hostile value that still says which field it came from."""
    return f"{field}:{PAYLOAD}"


SERVICE = hostile("service")
TGB_UDP_UID = "uid-tgb-coredns-udp"


def hostile_bundle() -> tuple[list[dict], dict]:
    """The dns-udp-blocked scenario with hostile text in every free-text field."""
    bundle = load_bundle(SCENARIOS / "dns-udp-blocked")
    kube: list[dict] = []
    for obj in copy.deepcopy(bundle.kube_objects):  # a bundle may hold `kind: List` documents
        kube.extend(obj.get("items", []) if obj.get("kind", "").endswith("List") else [obj])
    aws = copy.deepcopy(bundle.aws)
    for obj in kube:
        meta = obj.setdefault("metadata", {})
        if obj.get("kind") == "TargetGroupBinding":
            meta["labels"] = {"team": hostile("tgb-label"), "app": "dns"}
            meta["annotations"] = {"note": hostile("tgb-annotation")}
            obj["spec"]["serviceRef"]["name"] = SERVICE
        if obj.get("kind") == "Service":
            meta["name"] = SERVICE
            meta["labels"] = {"owner": hostile("service-label")}
    kube.append(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "ev1", "namespace": "kube-system", "uid": "uid-ev1"},
            "involvedObject": {
                "kind": "TargetGroupBinding",
                "namespace": "kube-system",
                "name": "coredns-udp",
                "uid": TGB_UDP_UID,
            },
            "type": "Warning",
            "reason": hostile("event-reason"),
            "message": hostile("event-message"),
            "count": 3,
            "lastTimestamp": "2026-01-01T00:00:00Z",
        }
    )
    for group in aws["DescribeSecurityGroups"]["SecurityGroups"]:
        group["GroupName"] = hostile("sg-name")
        group["Tags"] = [{"Key": "Name", "Value": hostile("sg-tag")}]
        for permission in group.get("IpPermissions", []):
            for ip_range in permission.get("IpRanges", []):
                ip_range["Description"] = hostile("rule-description")
    for tg in aws["DescribeTargetGroups"]["TargetGroups"]:
        tg["TargetGroupName"] = hostile("tg-name")[:200]
    for health in aws["DescribeTargetHealth"].values():
        for description in health["TargetHealthDescriptions"]:
            description["TargetHealth"] = {
                "State": "unhealthy",
                "Reason": "Target.FailedHealthChecks",
                "Description": hostile("target-health"),
            }
    for eni in aws["DescribeNetworkInterfaces"]["NetworkInterfaces"]:
        eni["Description"] = hostile("eni-description")
    return kube, aws


@pytest.fixture
def hostile_world(cluster) -> dict[str, Any]:
    kube, aws = hostile_bundle()
    sync.cluster_sync(cluster=cluster, records=normalize_kubernetes(kube, cluster=cluster.name))
    sync.account_sync(account=cluster.aws_account, records=normalize_aws(aws))
    now = timezone.now()
    m.Cluster.objects.filter(pk=cluster.pk).update(last_success_at=now, last_polled_at=now)
    m.AwsAccount.objects.filter(pk=cluster.aws_account_id).update(last_success_at=now, last_polled_at=now)
    cluster.refresh_from_db()
    polling.cluster_analyze(cluster=cluster, now=now)
    attach_fixes(cluster)
    # Poll errors quote what a server answered: a hostile API server or proxy chooses that text.
    m.PollRun.objects.create(
        cluster=cluster, status=m.PollRun.Status.FAILED, error=hostile("poll-error"), finished_at=now
    )
    m.PollRun.objects.create(
        account=cluster.aws_account,
        status=m.PollRun.Status.FAILED,
        error=hostile("account-error"),
        finished_at=now,
    )
    m.Cluster.objects.filter(pk=cluster.pk).update(last_error=hostile("cluster-last-error"))
    m.AwsAccount.objects.filter(pk=cluster.aws_account_id).update(last_error=hostile("account-last-error"))
    bindings = {b.uid: b for b in m.TargetGroupBinding.objects.filter(cluster=cluster)}
    return {"cluster": cluster, "binding": bindings[TGB_UDP_UID], "kube": kube, "aws": aws}


# --- HTML ---------------------------------------------------------------------------------------------


class _Elements(HTMLParser):
    """Collects every element and attribute the browser would build from a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_safe_html(html: str, url: str) -> str:
    """No injected element or handler; returns the page's text (entities decoded)."""
    parser = _Elements()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag != "img" or ("src", "x") not in attrs, f"{url}: injected <img>"
        for name, value in attrs:
            assert not name.startswith("on"), f"{url}: event handler attribute {name}={value!r}"
        if tag == "script":
            assert dict(attrs).get("src"), f"{url}: inline <script>"
    assert "<script>alert" not in html and "<img src=x" not in html, url
    return "".join(parser.text)


def _pages(world: dict[str, Any]) -> list[str]:
    binding, cluster = world["binding"], world["cluster"]
    sg = m.SecurityGroup.objects.first()
    tg = m.TargetGroup.objects.first()
    target = m.RegisteredTarget.objects.first()
    eni = m.NetworkInterface.objects.first()
    service = m.KubeService.objects.first()
    run = m.PollRun.objects.filter(cluster=cluster).first()
    assert sg and tg and target and eni and service and run
    return [
        "/",
        "/bindings/",
        f"/bindings/?q={SERVICE[:30]}",
        f"/bindings/{binding.pk}/",
        f"/bindings/{binding.pk}/fix/",
        f"/clusters/{cluster.pk}/",
        f"/clusters/{cluster.pk}/poll-status/",
        f"/accounts/aws/{cluster.aws_account_id}/",
        "/admin/bindings/targetgroupbinding/",
        f"/admin/bindings/targetgroupbinding/{binding.pk}/change/",
        "/admin/bindings/securitygroup/",
        f"/admin/bindings/securitygroup/{sg.pk}/change/",
        "/admin/bindings/targetgroup/",
        f"/admin/bindings/targetgroup/{tg.pk}/change/",
        "/admin/bindings/registeredtarget/",
        f"/admin/bindings/registeredtarget/{target.pk}/change/",
        f"/admin/bindings/networkinterface/{eni.pk}/change/",
        "/admin/bindings/kubeservice/",
        f"/admin/bindings/kubeservice/{service.pk}/change/",
        "/admin/bindings/pollrun/",
        f"/admin/bindings/pollrun/{run.pk}/change/",
        "/admin/bindings/cluster/",
        "/admin/bindings/awsaccount/",
    ]


def test_hostile_text_is_escaped_on_every_page(hostile_world, client, admin_user):
    client.force_login(admin_user)
    shown: set[str] = set()
    for url in _pages(hostile_world):
        for htmx in (False, True):
            response = client.get(url, HTTP_HX_REQUEST="true") if htmx else client.get(url)
            assert response.status_code == 200, url
            text = assert_safe_html(response.content.decode(), url)
            shown.update(re.findall(r"([a-z-]+):<script>alert\(1\)</script>", text))
    # The hostile values were really on the pages (as text), not dropped: the test means something.
    for field in (
        "service",
        "tgb-label",
        "event-message",
        "sg-name",
        "rule-description",
        "target-health",
        "tg-name",
        "poll-error",
        "account-error",
        "cluster-last-error",
    ):
        assert field in shown, f"{field} is shown nowhere: {sorted(shown)}"


# --- JSON ---------------------------------------------------------------------------------------------


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_hostile_text_comes_back_intact_in_valid_json(hostile_world, client, alice):
    token = make_token(alice)
    binding = hostile_world["binding"]
    found: set[str] = set()
    for url in (
        "/api/v1/clusters",
        "/api/v1/accounts",
        "/api/v1/bindings",
        f"/api/v1/bindings/{binding.pk}",
        f"/api/v1/bindings/{binding.pk}/fix",
        f"/api/v1/bindings/{binding.pk}/history",
        "/api/v1/findings",
        "/api/v1/polls",
    ):
        response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200, url
        assert response["Content-Type"].startswith("application/json")
        body = json.loads(response.content)  # strict JSON: raw control characters would fail here
        # Format characters too travel as \uXXXX escapes: the same strings, nothing raw in the text.
        assert raw_unsafe(response.content.decode()) == [], url
        for text in _strings(body):
            fields = set(re.findall(r"([a-z-]+):<script>", text))
            if not fields:
                continue
            # Byte for byte: the API is no place to alter data; consumers escape for their output.
            # A string holding YAML (the fix's manifestYaml) must parse back to the exact value.
            intact = {f for f in fields if hostile(f) in text}
            if intact != fields:
                embedded = _strings(yaml.safe_load(text))
                intact |= {f for f in fields if any(hostile(f) in s for s in embedded)}
            assert intact == fields, f"{url}: altered {fields - intact}"
            found |= fields
    assert {"service", "tgb-label", "poll-error", "cluster-last-error"} <= found, sorted(found)


# --- YAML ---------------------------------------------------------------------------------------------


def test_the_fix_download_parses_back_to_the_stored_manifest(hostile_world, client, alice):
    binding = hostile_world["binding"]
    stored = m.BindingResult.objects.get(binding=binding).data["fix"]
    assert stored, "the hostile binding still gets a fix"
    client.force_login(alice)

    response = client.get(f"/bindings/{binding.pk}/fix.yaml")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    # The file name comes from Kubernetes names too: only safe characters reach the header.
    assert re.fullmatch(r'attachment; filename="[A-Za-z0-9._-]+"', response["Content-Disposition"])
    text = response.content.decode()
    assert "!!python" not in text and "\x1b" not in text
    parsed = yaml.safe_load(text)
    expected = stored.get("manifest") or yaml.safe_load(stored["manifestYaml"])
    assert parsed == expected
    # The hostile strings that the manifest carries survive the round trip unchanged.
    carried = [s for s in _strings(parsed) if "<script>" in s]
    assert carried and all(s.split(":", 1)[1] == PAYLOAD for s in carried)

    token = make_token(alice)
    api = client.get(f"/api/v1/bindings/{binding.pk}/fix?format=yaml", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.status_code == 200
    assert yaml.safe_load(api.content.decode()) == expected


# --- CLI text -----------------------------------------------------------------------------------------

# C0 controls except tab and newline, DEL, and C1 controls (0x9b is a one-byte CSI on some terminals).
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _run(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.suppress(SystemExit):  # --fail-on exits 1; the output is what matters here
        call_command(*args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def test_analyze_prints_no_raw_control_characters(tmp_path: Path):
    kube, aws = hostile_bundle()
    path = write_bundle(tmp_path / "hostile", kube_objects=kube, aws=aws, meta={"cluster": "demo"})

    text = _run("analyze", str(path))
    as_json = _run("analyze", str(path), "--format", "json")

    assert "coredns-udp" in text
    assert not RAW_CONTROL.search(text), repr(RAW_CONTROL.search(text))
    assert "<script>" in text  # hostile text is shown, with its control characters neutralised
    assert not RAW_CONTROL.search(as_json)
    assert SERVICE in _strings(json.loads(as_json))  # JSON keeps the value, escaped as JSON


def test_check_bindings_prints_no_raw_control_characters(hostile_world):
    text = _run("check_bindings")
    as_json = _run("check_bindings", "--format", "json")

    assert "coredns-udp" in text
    assert not RAW_CONTROL.search(text), repr(RAW_CONTROL.search(text))
    assert not RAW_CONTROL.search(as_json)
    json.loads(as_json)


# --- NUL characters: PostgreSQL cannot store them ------------------------------------------------------


@pytest.mark.slow
def test_a_nul_in_a_collected_object_does_not_break_the_sync(cluster):
    """One annotation or event message with a NUL used to fail every sync of its cluster on
    PostgreSQL ("unsupported Unicode escape sequence"). The collectors replace NULs."""
    from bindings.collect.kube import KubeConnection, collect_cluster
    from bindings.demo.emulators import KubeEmulator
    from bindings.textsafe import without_nul

    kube, _ = hostile_bundle()
    for obj in kube:
        if obj.get("kind") == "TargetGroupBinding":
            obj["metadata"]["annotations"] = {"note": "before\x00after"}
        if obj.get("kind") == "Event":
            obj["message"] = "evil\x00message"
    with KubeEmulator() as emulator:
        emulator.apply([o for o in kube if o.get("kind") in ("TargetGroupBinding", "Event")])
        snapshot = collect_cluster(KubeConnection(api_url=emulator.url))

    collected = json.dumps(snapshot.objects)
    assert "\\u0000" not in collected and "before\\ufffdafter" in collected
    sync.cluster_sync(cluster=cluster, records=normalize_kubernetes(snapshot.objects, cluster=cluster.name))
    stored = m.TargetGroupBinding.objects.get(cluster=cluster, name="coredns-udp")
    assert stored.annotations["note"] == "before\ufffdafter"
    assert without_nul({"a\x00": ["b\x00", 1, None]}) == {"a\ufffd": ["b\ufffd", 1, None]}


# --- control and format characters: shown as escapes, never raw ---------------------------------------
# Raw, these make text read differently from what it is (`coredns‮gpj.exe` shows reversed) or drive
# a terminal. Every output shows them as escapes in its own syntax (bindings/textsafe.py).

LAYOUT = "\t\n\r"  # HTML's own whitespace: not data, not escaped


def raw_unsafe(text: str, allowed: str = "") -> list[str]:
    return sorted({c for c in textsafe.UNSAFE.findall(text) if c not in allowed})


def test_the_unsafe_class_covers_every_control_format_and_separator_character():
    import sys
    import unicodedata

    wanted = {"Cc", "Cf", "Zl", "Zp", "Cs"}
    missing = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in wanted and not textsafe.UNSAFE.match(chr(code))
    ]
    assert missing == [], f"textsafe.UNSAFE_CLASS lacks (Unicode {unicodedata.unidata_version}): {missing}"
    # And nothing a name legitimately holds: letters, digits, spaces, punctuation, emoji.
    assert not textsafe.has_unsafe("kube-system/coredns é 日本 ü_1.2 🙂 \u00a0")


def test_visible_shows_each_character_as_an_escape():
    assert textsafe.visible("a\u202eb\x1b[31m\x9b\U000e0041\n") == "a\\u202eb\\x1b[31m\\x9b\\U000e0041\\x0a"
    assert textsafe.visible(None) == ""


def test_pages_show_control_and_format_characters_as_escapes(hostile_world, client, admin_user):
    client.force_login(admin_user)
    shown = ""
    for url in _pages(hostile_world):
        response = client.get(url)
        html = response.content.decode()
        outside_forms = re.sub(r'\svalue="[^"]*"|<textarea\b[^>]*>.*?</textarea>', "", html, flags=re.S)
        assert raw_unsafe(outside_forms, LAYOUT) == [], url
        shown += html
    # The characters are on the pages, visibly: the check above did not pass on empty pages.
    for escape in ("\\u202e", "\\u2066", "\\u200b", "\\ufeff", "\\U000e0041", "\\x1b[31mRED", "\\x9b1m"):
        assert escape in shown, escape


def test_form_values_are_left_as_the_browser_sends_them_back():
    form = '<input type="text" name="n" value="x\u202ey"><textarea>z\u2066</textarea>'
    html = '<p title="t\u202e">a\u202eb</p>\n' + form

    out = visible_html(html)

    assert out == '<p title="t\\u202e">a\\u202eb</p>\n' + form
    assert visible_html("<p>plain</p>") == "<p>plain</p>"


def test_the_fix_download_shows_the_characters_as_yaml_escapes(hostile_world, client, alice):
    binding = hostile_world["binding"]
    client.force_login(alice)

    text = client.get(f"/bindings/{binding.pk}/fix.yaml").content.decode()

    assert raw_unsafe(text, "\n") == []
    assert "\\u202e" in text and "\\U000E0041" in text.upper()
    stored = m.BindingResult.objects.get(binding=binding).data["fix"]
    assert yaml.safe_load(text) == stored["manifest"]  # the escapes stand for the same characters


# Scenario-like inventories whose names and ids carry the characters: the TGB's name and namespace,
# every security-group id and target-group ARN (AWS ids are checked by nobody on the way in).
HOSTILE_SUFFIX = "\u202egpj.exe\u2066\u200b\x1b[31m'$(id)"
NAME_SCENARIOS = [
    "dns-udp-blocked",  # ip targets, IPv4, TGB patch + security-group commands
    "health-check-port-mismatch",  # the health-check command names the target group's ARN
    "instance-service-port",  # instance targets
    "ipv6-blocked",  # IPv6
    "sg-tag-ambiguous",  # security-group commands instead of the TGB
    "nlb-sg-refuses-udp",  # the load balancer's own security group
]


def hostile_names(scenario: str) -> tuple[list[dict], dict, dict[str, str]]:
    """The scenario with hostile TGB names/namespaces, security-group ids and target-group ARNs;
    returns the objects, the AWS answers and each original value's hostile replacement."""
    bundle = load_bundle(SCENARIOS / scenario)
    aws_text, kube_text = json.dumps(bundle.aws), json.dumps(bundle.kube_objects)
    renames: dict[str, str] = {}
    for group in bundle.aws.get("DescribeSecurityGroups", {}).get("SecurityGroups", []):
        renames[group["GroupId"]] = group["GroupId"] + HOSTILE_SUFFIX
    for tg in bundle.aws.get("DescribeTargetGroups", {}).get("TargetGroups", []):
        renames[tg["TargetGroupArn"]] = tg["TargetGroupArn"] + HOSTILE_SUFFIX
    for old, new in renames.items():
        aws_text = aws_text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
        kube_text = kube_text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
    kube = json.loads(kube_text)
    for obj in kube:
        for item in obj.get("items", []) if obj.get("kind", "").endswith("List") else [obj]:
            if item.get("kind") == "TargetGroupBinding":
                meta = item["metadata"]
                renames[meta["name"]] = meta["name"] + HOSTILE_SUFFIX
                renames[meta["namespace"]] = meta["namespace"] + HOSTILE_SUFFIX
                meta["name"], meta["namespace"] = renames[meta["name"]], renames[meta["namespace"]]
    return kube, json.loads(aws_text), renames


@pytest.mark.parametrize("scenario", NAME_SCENARIOS)
def test_generated_commands_and_manifests_escape_hostile_names(scenario, tmp_path: Path):
    kube, aws, renames = hostile_names(scenario)
    path = write_bundle(tmp_path / scenario, kube_objects=kube, aws=aws, meta={"cluster": "demo"})
    inventory = bundle_inventory(load_bundle(path))
    hostile_values = set(renames.values())
    commands = 0
    for result in analyze(inventory):
        fix = generate_fix(inventory, result)
        if fix is None:
            continue
        data = fix_to_dict(fix)
        for command in [
            data["patch"]["kubectl"],
            *data["securityGroupCommands"],
            *(h["command"] for h in data["healthCheck"]),
        ]:
            if not command:
                continue
            commands += 1
            # Shown and pasted: no raw character (line continuations are the command's own).
            assert raw_unsafe(command, "\n") == [], command
            # Each word with a hostile name is exactly that name (or JSON holding it), unaltered.
            carried = []
            for word in shell_words(command):
                if HOSTILE_SUFFIX not in word:
                    continue
                if word[:1] in "[{":
                    carried += [v for v in _strings(json.loads(word)) if v in hostile_values]
                    continue
                value = word.split("=", 1)[1] if word.startswith("--") else word
                value = value.removeprefix("targetgroupbindings.elbv2.k8s.aws/")
                assert value in hostile_values, (command, word)
                carried.append(value)
            assert carried, command
        if data["manifestYaml"]:
            assert raw_unsafe(data["manifestYaml"], "\n") == []
            assert yaml.safe_load(data["manifestYaml"]) == fix.manifest
            assert fix.manifest["metadata"]["name"] in hostile_values
            assert "\\u202e" in data["manifestYaml"]
        assert raw_unsafe(data["terraform"], "\n") == []
    assert commands, f"{scenario}: no command was generated, the test proves nothing"


def test_the_fix_panel_shows_commands_that_paste_exactly(cluster, client, alice):
    kube, aws, renames = hostile_names("dns-udp-blocked")
    sync.cluster_sync(cluster=cluster, records=normalize_kubernetes(kube, cluster=cluster.name))
    sync.account_sync(account=cluster.aws_account, records=normalize_aws(aws))
    now = timezone.now()
    m.Cluster.objects.filter(pk=cluster.pk).update(last_success_at=now, last_polled_at=now)
    m.AwsAccount.objects.filter(pk=cluster.aws_account_id).update(last_success_at=now, last_polled_at=now)
    cluster.refresh_from_db()
    polling.cluster_analyze(cluster=cluster, now=now)
    attach_fixes(cluster)
    binding = m.TargetGroupBinding.objects.get(cluster=cluster, name=renames["coredns-udp"])
    client.force_login(alice)

    html = client.get(f"/bindings/{binding.pk}/fix/").content.decode()

    import html as html_lib

    block = re.search(r'<pre id="fix-patch" tabindex="0"><code>(.*?)</code></pre>', html, re.S)
    assert block, "no patch command on the panel"
    command = html_lib.unescape(block.group(1))
    assert raw_unsafe(command, "\n") == []
    words = shell_words(command)  # what a paste into bash runs: the exact names
    assert words[2] == f"targetgroupbindings.elbv2.k8s.aws/{renames['coredns-udp']}"
    assert words[3:5] == ["--namespace", renames["kube-system"]]
    heading = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert heading and "coredns-udp\\u202egpj.exe\\u2066\\u200b\\x1b[31m" in heading.group(1)


def test_a_fix_stored_with_raw_characters_is_rendered_again(hostile_world, client, alice):
    """Fixes stored before the escaping (raw characters in manifestYaml) are shown escaped too."""
    binding = hostile_world["binding"]
    row = m.BindingResult.objects.get(binding=binding)
    manifest = row.data["fix"]["manifest"]
    row.data["fix"]["manifestYaml"] = yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False)
    assert raw_unsafe(row.data["fix"]["manifestYaml"], "\n")  # as an older version stored it
    row.save(update_fields=["data"])
    client.force_login(alice)

    for url in (f"/bindings/{binding.pk}/fix.yaml", f"/api/v1/bindings/{binding.pk}/fix?format=yaml"):
        text = client.get(url).content.decode()
        assert raw_unsafe(text, "\n") == [], url
        assert yaml.safe_load(text) == manifest, url
