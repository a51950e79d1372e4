"""Deployment artefacts: Kubernetes manifests, RBAC and IAM exactness, production settings, CSP, logs.

- Manifests are schema-validated offline with `kubernetes-validate` (pinned in requirements-dev.txt;
  it ships the Kubernetes JSON schemas per minor version), strict mode (unknown fields fail), for
  the oldest and newest Kubernetes versions we claim. When `kubectl` is on the PATH (it is on the
  project's machines) the kustomize builds are validated too, patches and components applied.
- RBAC exactness: the collector runs against a recording HTTP server (pytest-httpserver); every
  request is mapped to (apiGroup, resource, verb) the way the API server's authorizer does, and the
  read-only ClusterRole must grant exactly those resources (read verbs only). The apply-fix code
  runs the same way, and its extra ClusterRole must add exactly `patch` on targetgroupbindings.
- IAM exactness: the AWS collector runs against moto with the demo world, a botocore ``before-call``
  hook records every operation, and deploy/iam-policy.json must list exactly those actions.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from werkzeug import Request, Response

from bindings import textsafe
from tests.factories import KUBE, ROOT, granted, load_docs

DEPLOY = ROOT / "deploy"
# Oldest and newest Kubernetes minor versions the manifests are checked against.
KUBE_VERSIONS = ("1.30", "1.37")
KUSTOMIZE_KINDS = {"Kustomization", "Component"}
READ_VERBS = {"get", "list", "watch"}
TGB = ("elbv2.k8s.aws", "targetgroupbindings")


# -- kustomize structure ------------------------------------------------------------------------------
def kustomizations() -> list[Path]:
    return sorted(KUBE.rglob("kustomization.yaml"))


def referenced(kfile: Path) -> tuple[list[Path], list[Path]]:
    """(resource/component entries, patch files) of one kustomization, as paths."""
    spec = load_docs(kfile)[0]
    entries = [kfile.parent / e for e in [*spec.get("resources", []), *spec.get("components", [])]]
    patches = [kfile.parent / p["path"] for p in spec.get("patches", []) if "path" in p]
    return entries, patches


def resource_files() -> list[Path]:
    """YAML files listed as resources (full objects, schema-validated), base and components."""
    files = []
    for kfile in kustomizations():
        entries, _ = referenced(kfile)
        files += [e for e in entries if e.is_file()]
    return sorted(set(files))


def test_every_entry_of_every_kustomization_exists_and_no_manifest_is_orphaned():
    assert (KUBE / "base" / "kustomization.yaml").is_file()
    assert (KUBE / "overlays" / "example" / "kustomization.yaml").is_file()
    used: set[Path] = set()
    for kfile in kustomizations():
        spec = load_docs(kfile)[0]
        assert spec["kind"] in KUSTOMIZE_KINDS, kfile
        entries, patches = referenced(kfile)
        for entry in entries:
            assert entry.exists(), f"{kfile.relative_to(ROOT)} lists {entry} which does not exist"
            if entry.is_dir():
                assert (entry / "kustomization.yaml").is_file(), entry
        for patch in patches:
            assert patch.is_file(), f"{kfile.relative_to(ROOT)} patches with missing {patch}"
        used |= {p.resolve() for p in [*entries, *patches] if p.is_file()}
    on_disk = {p.resolve() for p in KUBE.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert on_disk - used == set(), "manifests no kustomization lists"
    # The optional parts are not in the base.
    base_entries, _ = referenced(KUBE / "base" / "kustomization.yaml")
    assert not any(opt in e.name for e in base_entries for opt in ("ingress", "apply-fix", "kube-events"))


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_every_resource_file_is_schema_valid(version):
    files = resource_files()
    assert len(files) >= 12
    for path in files:
        for doc in load_docs(path):
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{path.relative_to(ROOT)} {doc['kind']}: {exc.message} at {list(exc.path)}")


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with built-in kustomize) not installed")
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, list[dict[str, Any]]]:
    """kustomize output of the example overlay, alone and with both optional components."""
    everything = tmp_path_factory.mktemp("all")
    rel = lambda p: os.path.relpath(p, everything)  # noqa: E731 - kustomize wants relative paths
    (everything / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [rel(KUBE / "overlays" / "example")],
                "components": [
                    rel(KUBE / "components" / "ingress"),
                    rel(KUBE / "components" / "apply-fix"),
                    rel(KUBE / "components" / "kube-events"),
                ],
            }
        )
    )
    return {"example": kustomize_build(KUBE / "overlays" / "example"), "all": kustomize_build(everything)}


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.slow
def test_kustomize_builds_are_schema_valid_and_namespaced(built):
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    for name, docs in built.items():
        for doc in docs:
            kubernetes_validate.validate(doc, KUBE_VERSIONS[-1], strict=True)
            if doc["kind"] not in cluster_scoped:
                assert doc["metadata"].get("namespace") == "binding-health", (name, doc["kind"])
    assert "Ingress" not in {d["kind"] for d in built["example"]}
    assert by_kind(built["all"], "Ingress")
    example_images = {
        c["image"]
        for d in built["example"]
        if d["kind"] in ("Deployment", "Job")
        for c in [
            *d["spec"]["template"]["spec"]["containers"],
            *d["spec"]["template"]["spec"].get("initContainers", []),
        ]
    }
    assert example_images == {"registry.example.com/platform/binding-health:0.1.0"}


def pod_templates(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def base_docs() -> list[dict[str, Any]]:
    spec = load_docs(KUBE / "base" / "kustomization.yaml")[0]
    return [d for entry in spec["resources"] for d in load_docs(KUBE / "base" / entry)]


def test_pods_are_hardened_and_read_their_secrets_from_files():
    docs = base_docs()
    templates = dict(pod_templates(docs))
    assert set(templates) == {
        "binding-health-web",
        "binding-health-worker",
        "binding-health-beat",
        "binding-health-migrate",
    }
    for name, pod in templates.items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["serviceAccountName"] == "binding-health", name
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes["tmp"], name
        assert volumes["secrets"]["secret"]["secretName"] == "binding-health-secrets"
        for container in [*pod["containers"], *pod.get("initContainers", [])]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert sc["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert sc["capabilities"]["drop"] == ["ALL"], (name, container["name"])
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
            assert {m["mountPath"] for m in container["volumeMounts"]} >= {
                "/tmp",
                "/run/secrets/binding-health",
            }
            assert container["envFrom"] == [{"configMapRef": {"name": "binding-health-config"}}]
            assert "env" not in container  # nothing secret inline
        if name != "binding-health-migrate":
            init = pod["initContainers"][0]
            assert init["command"][-2:] == ["migrate", "--check"], name

    # Only the worker talks to the Kubernetes API in the base; the token is not mounted elsewhere.
    mounted = {n for n, pod in templates.items() if pod.get("automountServiceAccountToken")}
    assert mounted == {"binding-health-worker"}

    config = by_kind(docs, "ConfigMap")["binding-health-config"]["data"]
    for secret in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
        assert secret not in config
        assert config[f"{secret}_FILE"].startswith("/run/secrets/binding-health/")
    assert "localhost" in config["ALLOWED_HOSTS"].split(",")  # the probes' Host header

    sa = by_kind(docs, "ServiceAccount")["binding-health"]
    assert "eks.amazonaws.com/role-arn" in sa["metadata"]["annotations"]


def test_web_probes_beat_singleton_and_migrate_job():
    docs = base_docs()
    deployments = by_kind(docs, "Deployment")
    web = deployments["binding-health-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["command"][0] == "gunicorn"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert {"name": "Host", "value": "localhost"} in web[probe]["httpGet"]["httpHeaders"]
    beat = deployments["binding-health-beat"]["spec"]
    assert beat["replicas"] == 1
    assert beat["strategy"] == {"type": "Recreate"}
    assert beat["template"]["spec"]["containers"][0]["command"][:4] == ["celery", "-A", "dashboard", "beat"]
    worker = deployments["binding-health-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["command"][:4] == ["celery", "-A", "dashboard", "worker"]
    job = by_kind(docs, "Job")["binding-health-migrate"]["spec"]
    assert job["template"]["spec"]["containers"][0]["command"] == [
        "python",
        "manage.py",
        "migrate",
        "--noinput",
    ]
    service = by_kind(docs, "Service")["binding-health-web"]["spec"]
    assert service["selector"] == deployments["binding-health-web"]["spec"]["selector"]["matchLabels"]


# -- RBAC exactness -----------------------------------------------------------------------------------
def request_attributes(method: str, path: str, query: dict[str, str]) -> tuple[str, str, str]:
    """(apiGroup, resource, verb) as the API server's RequestInfo resolver derives them.

    Non-resource paths come back as ("nonResourceURL", path, verb).
    """
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return ("nonResourceURL", path, method.lower())
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
        rest = rest[2:]  # /namespaces/{ns}/{resource}...; a bare /namespaces/{ns} is the namespace
    resource, named = rest[0], len(rest) >= 2
    if method == "GET":
        verb = "watch" if query.get("watch") in ("1", "true") else ("get" if named else "list")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
    return (group, resource, verb)


TGB_OBJECT = {
    "apiVersion": "elbv2.k8s.aws/v1beta1",
    "kind": "TargetGroupBinding",
    "metadata": {"name": "coredns-udp", "namespace": "kube-system", "resourceVersion": "7", "uid": "u-1"},
    "spec": {
        "serviceRef": {"name": "coredns", "port": 53},
        "targetGroupARN": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-dns-udp/0123",
        "targetType": "ip",
    },
}


class FakeApiServer:
    """Answers every request a read or apply path makes, so that the log holds all of them.

    Lists answer two pages (a ``continue`` token first) so paginated requests are recorded too;
    `missing` paths answer 404 (a TGB version that is not served).
    """

    def __init__(self, missing: tuple[str, ...] = ()) -> None:
        self.missing = missing

    def __call__(self, request: Request) -> Response:
        if any(request.path.startswith(m) for m in self.missing):
            return Response(json.dumps({"kind": "Status", "code": 404}), 404, content_type="application/json")
        if request.path.startswith("/openapi/v3/"):
            # Declares dryRun on PATCH of a TGB, so the apply code sends a server-side dry-run too.
            doc = {
                "paths": {
                    "/apis/elbv2.k8s.aws/v1beta1/namespaces/{namespace}/targetgroupbindings/{name}": {
                        "patch": {"parameters": [{"name": "dryRun", "in": "query"}]}
                    }
                }
            }
            return Response(json.dumps(doc), 200, content_type="application/json")
        group, resource, verb = request_attributes(request.method, request.path, dict(request.args))
        if verb == "list":
            first = "continue" not in request.args
            body = {"kind": "List", "metadata": {"continue": "page-2"} if first else {}, "items": []}
            return Response(json.dumps(body), 200, content_type="application/json")
        if (group, resource) == TGB and verb in ("get", "patch"):
            return Response(json.dumps(TGB_OBJECT), 200, content_type="application/json")
        return Response("unexpected", 500)


def recorded(httpserver) -> set[tuple[str, str, str]]:
    return {request_attributes(r.method, r.path, dict(r.args)) for r, _ in httpserver.log}


@pytest.fixture
def collector_requests(httpserver) -> set[tuple[str, str, str]]:
    """What `collect_cluster` asks for: with v1beta1 served, and with only v1alpha1 served."""
    from bindings.collect.kube import KubeConnection, collect_cluster

    seen: set[tuple[str, str, str]] = set()
    for missing in ((), ("/apis/elbv2.k8s.aws/v1beta1/",)):
        httpserver.clear()
        httpserver.expect_request(re.compile(".*")).respond_with_handler(FakeApiServer(missing))
        collect_cluster(KubeConnection(api_url=httpserver.url_for("/").rstrip("/")))
        seen |= recorded(httpserver)
    return seen


def test_readonly_clusterrole_grants_exactly_what_the_collector_reads(collector_requests):
    role = load_docs(KUBE / "base" / "clusterrole-readonly.yaml")[0]
    rules = granted(role)
    assert {(g, r) for g, r, _ in collector_requests} == {
        ("elbv2.k8s.aws", "targetgroupbindings"),
        ("", "services"),
        ("discovery.k8s.io", "endpointslices"),
        ("", "pods"),
        ("", "nodes"),
        ("", "events"),
    }
    # Exactly those resources, each with exactly the read-only verbs, and every request covered.
    assert {(g, r) for g, r, _ in rules} == {(g, r) for g, r, _ in collector_requests}
    assert {v for _, _, v in rules} == READ_VERBS
    assert rules == {(g, r, v) for g, r, _ in collector_requests for v in READ_VERBS}
    assert collector_requests <= rules
    assert all(rule.get("resourceNames") is None and "nonResourceURLs" not in rule for rule in role["rules"])

    binding = load_docs(KUBE / "base" / "clusterrolebinding-readonly.yaml")[0]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "binding-health", "namespace": "binding-health"}
    ]


@pytest.mark.django_db
def test_apply_fix_clusterrole_adds_only_patch_on_targetgroupbindings(httpserver, admin_user):
    from django.utils import timezone

    from bindings import models as m
    from bindings.services import apply

    httpserver.expect_request(re.compile(".*")).respond_with_handler(FakeApiServer())
    account = m.AwsAccount.objects.create(name="prod", account_id="123456789012", region="us-east-1")
    cluster = m.Cluster.objects.create(
        name="demo",
        connection=m.Cluster.Connection.URL,
        api_url=httpserver.url_for("/").rstrip("/"),
        aws_account=account,
        allow_apply_fix=True,
    )
    binding = m.TargetGroupBinding.objects.create(
        cluster=cluster,
        uid="u-1",
        namespace="kube-system",
        name="coredns-udp",
        api_version=TGB_OBJECT["apiVersion"],
    )
    fix = {
        "patch": {
            "body": {
                "spec": {
                    "networking": {
                        "ingress": [
                            {
                                "from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}],
                                "ports": [{"protocol": "UDP", "port": 53}],
                            }
                        ]
                    }
                }
            }
        }
    }

    # The review is of the binding's stored fix, as the poller stores it.
    now = timezone.now()
    m.BindingResult.objects.create(
        binding=binding,
        analyzed_at=now,
        changed_at=now,
        worst_verdict="blocked",
        digest="d",
        data={"fix": fix},
    )

    dry = apply.fix_dry_run(binding=binding, user=admin_user)
    assert dry.status == m.FixApplication.Status.DRY_RUN, dry.message
    done = apply.apply_reviewed(dry.dry_run_id, admin_user)
    assert done.status == m.FixApplication.Status.APPLIED, done.message

    requests = recorded(httpserver)
    resource_requests = {r for r in requests if r[0] != "nonResourceURL"}
    readonly = granted(load_docs(KUBE / "base" / "clusterrole-readonly.yaml")[0])
    extra_docs = load_docs(KUBE / "components" / "apply-fix" / "clusterrole-apply-fix.yaml")
    extra = granted(by_kind(extra_docs, "ClusterRole")["binding-health-apply-fix"])
    assert extra == {("elbv2.k8s.aws", "targetgroupbindings", "patch")}
    assert resource_requests - readonly == extra
    assert resource_requests <= readonly | extra
    # The OpenAPI v3 document (dry-run support) is a non-resource URL that Kubernetes' default
    # system:discovery role already grants every authenticated user (/openapi/*).
    assert {path for kind, path, _ in requests if kind == "nonResourceURL"} <= {
        "/openapi/v3/apis/elbv2.k8s.aws/v1beta1"
    }
    rb = by_kind(extra_docs, "ClusterRoleBinding")["binding-health-apply-fix"]
    assert rb["roleRef"]["name"] == "binding-health-apply-fix"
    assert rb["subjects"][0]["name"] == "binding-health"


# -- IAM exactness ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def aws_operations() -> dict[str, set[str]]:
    """IAM actions of every AWS call the collector makes on the demo world, without and with a role."""
    from bindings.collect import aws
    from bindings.demo.emulators import DEMO_CREDENTIALS, KubeEmulator, MotoServer, seed_demo_world

    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE")}
    os.environ["AWS_ACCESS_KEY_ID"] = DEMO_CREDENTIALS["aws_access_key_id"]
    os.environ["AWS_SECRET_ACCESS_KEY"] = DEMO_CREDENTIALS["aws_secret_access_key"]
    os.environ.pop("AWS_PROFILE", None)
    seen: set[str] = set()

    def record(model: Any = None, **_: Any) -> None:
        # IAM action prefixes are the services' signing names (elbv2 signs as elasticloadbalancing).
        seen.add(f"{model.service_model.signing_name}:{model.name}")

    original = aws._new_session

    def recording_session(**kwargs: Any) -> Any:
        session = original(**kwargs)
        session.events.register("before-call", record)
        return session

    aws._new_session = recording_session
    aws.clear_session_cache()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        with MotoServer() as moto, KubeEmulator() as kube:
            world = seed_demo_world(aws_endpoint=moto.url, kube=kube)

            def poll(**target: Any) -> set[str]:
                seen.clear()
                aws.collect_account(
                    aws.AwsTarget(
                        account_id=world.account_id, region=world.region, endpoint_url=moto.url, **target
                    ),
                    target_group_arns=list(world.target_group_arns.values()),
                    target_group_names=["k8s-dns-udp"],
                    node_instance_ids=world.instance_ids,
                )
                return set(seen)

            plain = poll()
            chained = poll(
                role_arn="arn:aws:iam::123456789012:role/binding-health-reader", external_id="bh-ext-id"
            )
    finally:
        aws._new_session = original
        aws.clear_session_cache()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {"plain": plain, "chained": chained}


def policy_actions(path: Path) -> set[str]:
    policy = json.loads(path.read_text())
    assert policy["Version"] == "2012-10-17"
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        value = statement["Action"]
        actions |= {value} if isinstance(value, str) else set(value)
    return actions


@pytest.mark.slow
def test_iam_policy_lists_exactly_the_operations_the_collector_calls(aws_operations):
    from bindings.collect import aws

    actions = policy_actions(DEPLOY / "iam-policy.json")
    assert actions == aws_operations["plain"]
    # Read-only calls only (GetManagedPrefixListEntries is one: it reads a list's entries).
    assert all(
        re.fullmatch(r"(ec2|elasticloadbalancing):Describe\w+", a) or a == "ec2:GetManagedPrefixListEntries"
        for a in actions
    ), actions
    # The demo run exercised every operation the collector knows (its bundle keys, plus the
    # DescribeManagedPrefixLists that finds which lists changed), so a new call added to
    # bindings/collect/aws.py cannot slip past this test unexercised.
    assert {a.split(":")[1] for a in actions} == set(aws.AWS_OPERATIONS) | {"DescribeManagedPrefixLists"}
    # Describe* calls support no resource-level permissions: "*" is the only working resource.
    for statement in json.loads((DEPLOY / "iam-policy.json").read_text())["Statement"]:
        assert statement["Resource"] == "*"


@pytest.mark.slow
def test_cross_account_examples_add_only_sts_assume_role(aws_operations):
    assert aws_operations["chained"] - aws_operations["plain"] == {"sts:AssumeRole"}
    assert policy_actions(DEPLOY / "iam-cross-account-assume.json") == {"sts:AssumeRole"}
    trust = json.loads((DEPLOY / "iam-cross-account-trust.json").read_text())
    (statement,) = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"]["AWS"].startswith("arn:aws:iam::")
    assert "sts:ExternalId" in statement["Condition"]["StringEquals"]


# -- production settings ------------------------------------------------------------------------------
def production_env(tmp_path: Path) -> dict[str, str]:
    """The environment of deploy/production.env.example, its secret files written under tmp_path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not re.match(r"(DATABASE_URL|REDIS_URL|SECRET_KEY|DEBUG|BH_|SECURE_|LOG_)", k)
    }
    values = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": "postgres://binding_health:pw@db.invalid:5432/binding_health",
        "REDIS_URL": "redis://redis.invalid:6379/0",
    }
    for line in (DEPLOY / "production.env.example").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.partition("=")
        if key.endswith("_FILE"):
            secret = tmp_path / key.lower()
            secret.write_text(values[key.removesuffix("_FILE")] + "\n")
            value = str(secret)
        env[key] = value
    env["BH_DATA_DIR"] = str(tmp_path / "data")
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_check_deploy_is_clean_with_the_production_example(tmp_path):
    env = production_env(tmp_path)
    assert {"SECRET_KEY_FILE", "DATABASE_URL_FILE", "REDIS_URL_FILE"} <= set(env)
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow
def test_check_deploy_flags_the_development_defaults(tmp_path):
    env = {
        k: v
        for k, v in production_env(tmp_path).items()
        if not k.startswith(("SECURE_", "SESSION_", "CSRF_"))
    }
    for key in ("SECRET_KEY_FILE", "DEBUG"):
        env.pop(key)
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for code in ("security.W004", "security.W008", "security.W009", "security.W012", "security.W016"):
        assert code in result.stderr + result.stdout, code


@pytest.mark.slow
def test_json_logs_through_the_configured_settings_redact_tokens(tmp_path):
    env = production_env(tmp_path)
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('bindings.collect.kube').warning("
        "'GET /api/v1/pods Authorization: Bearer %s', 'eyJhbGciOi.secret'); "
        "logging.getLogger('bindings.api').error("
        "'login failed', extra={'token': 'bh_abcdef123456', 'cluster': 'prod'})"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "dashboard.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [entry["logger"] for entry in lines] == ["bindings.collect.kube", "bindings.api"]
    assert "eyJhbGciOi" not in result.stderr and "bh_abcdef123456" not in result.stderr
    assert lines[0]["level"] == "WARNING" and "[REDACTED]" in lines[0]["message"]
    assert lines[1]["token"] == "[REDACTED]" and lines[1]["cluster"] == "prod"


def test_json_formatter_output_parses_and_redacts_credentials():
    from dashboard.logging import JsonFormatter

    try:
        raise RuntimeError(
            "401 for headers {'Authorization': 'Bearer abc.def-ghi123'} key AKIAABCDEFGHIJKLMNOP"
        )
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "bindings.collect.aws",
        logging.ERROR,
        __file__,
        1,
        "token=%s password: hunter22 ok",
        ("s3cr3t-t0ken",),
        exc_info,
    )
    record.api_key = "k-123456"
    record.bindings = 3
    entry = json.loads(JsonFormatter().format(record))

    text = json.dumps(entry)
    for secret in ("s3cr3t-t0ken", "hunter22", "abc.def-ghi123", "AKIAABCDEFGHIJKLMNOP", "k-123456"):
        assert secret not in text, secret
    assert entry["level"] == "ERROR" and entry["logger"] == "bindings.collect.aws"
    assert entry["message"].endswith(" ok")
    assert entry["bindings"] == 3 and entry["api_key"] == "[REDACTED]"
    assert "RuntimeError" in entry["exception"]
    assert entry["time"].endswith("+00:00")


def test_plain_log_lines_are_redacted_and_show_control_characters_as_escapes():
    """A terminal tailing the log must not run an ANSI sequence from a binding name, see a name
    reversed by a bidi override, or read a forged line after a newline in a value."""
    from django.conf import settings as django_settings

    from dashboard.logging import PlainFormatter

    assert django_settings.LOGGING["formatters"]["plain"]["()"] == "dashboard.logging.PlainFormatter"
    formatter = PlainFormatter("%(levelname)s %(name)s %(message)s")
    try:
        raise RuntimeError("401 Authorization: Bearer abc.def-ghi123 for dns-\u202eetavirp")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "bindings.services.polling",
        logging.WARNING,
        __file__,
        1,
        "binding %s: token=%s",
        ("dns-\u202eetavirp\x1b[2J\n2026-12-06 INFO forged ok", "s3cr3t-t0ken"),
        exc_info,
    )

    text = formatter.format(record)

    first, *traceback = text.split("\n")
    assert first == (
        "WARNING bindings.services.polling binding dns-\\u202eetavirp\\x1b[2J\\x0a2026-12-06 INFO forged ok: "
        "token=[REDACTED]"
    )
    assert traceback and traceback[0].startswith("Traceback") and "dns-\\u202eetavirp" in traceback[-1]
    assert "abc.def-ghi123" not in text and "s3cr3t-t0ken" not in text
    assert not textsafe.UNSAFE.search(text.replace("\n", ""))


# -- Content-Security-Policy --------------------------------------------------------------------------
class _Scripts(HTMLParser):
    """Collects <script> tags and whether each has a body, and the htmx-config meta tag."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self.htmx_config: str | None = None
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = True
        if tag == "meta" and attributes.get("name") == "htmx-config":
            self.htmx_config = attributes.get("content")
        if any(name.startswith("on") for name in attributes):
            self.inline.append(f"<{tag}> event handler")
        if "style" in attributes:
            self.inline.append(f"<{tag}> style attribute")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip() and self.scripts[-1].get("type") != "application/json":
            self.inline.append("inline <script> body")


def directives(policy: str) -> dict[str, list[str]]:
    return {parts[0]: parts[1:] for parts in (d.split() for d in policy.split(";")) if parts}


@pytest.mark.django_db
def test_pages_carry_a_csp_without_unsafe_inline_scripts_and_need_none(client, alice):
    from django.urls import reverse

    anonymous = client.get(reverse("login"))
    client.force_login(alice)
    page = client.get(reverse("dashboard:overview"))
    for response in (anonymous, page):
        assert response.status_code == 200
        policy = directives(response["Content-Security-Policy"])
        assert policy["script-src"] == ["'self'"]
        assert "'unsafe-inline'" not in policy["script-src"] + policy["default-src"]
        assert "'unsafe-eval'" not in policy["script-src"]
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    # The policy only holds if the page needs nothing inline: scripts are files, htmx's injected
    # indicator <style> is off.
    parser = _Scripts()
    parser.feed(page.content.decode())
    assert parser.scripts and all(s.get("src") for s in parser.scripts if s.get("type") != "application/json")
    assert parser.inline == []
    assert json.loads(parser.htmx_config or "{}").get("includeIndicatorStyles") is False


def test_csp_middleware_keeps_a_view_specific_policy(rf, settings):
    from django.http import HttpResponse

    from bindings.security import ContentSecurityPolicyMiddleware

    def view(request):
        response = HttpResponse("x")
        response["Content-Security-Policy"] = "default-src 'none'"
        return response

    assert (
        ContentSecurityPolicyMiddleware(view)(rf.get("/"))["Content-Security-Policy"] == "default-src 'none'"
    )
    settings.BH_CONTENT_SECURITY_POLICY = ""
    assert "Content-Security-Policy" not in ContentSecurityPolicyMiddleware(lambda r: HttpResponse())(
        rf.get("/")
    )


# -- image and compose --------------------------------------------------------------------------------
def test_image_and_compose_wire_health_checks_and_keep_local_state_out():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "/healthz" in dockerfile and "HEALTHCHECK" in dockerfile
    final_stage = dockerfile.rsplit("FROM ", 1)[1]
    assert "pip install" not in final_stage  # no installers or build steps in the final stage
    assert final_stage.index("USER binding-health") < final_stage.index("collectstatic")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".git", ".env"} <= set(ignored)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["beat"]["command"][-1] == "/tmp/celerybeat-schedule"
    for name in ("web", "worker", "beat", "migrate"):
        assert services[name]["environment"]["BH_DATA_DIR"] == "/var/lib/binding-health"
        assert services[name]["read_only"] is True


@pytest.mark.slow
def test_collected_static_files_serve_hashed_names_with_debug_off(tmp_path):
    """The image's collectstatic (manifest on) and a page rendered from it, as production runs it."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("BH_", "DEBUG", "DATABASE_URL", "REDIS_URL"))
    }
    env |= {"BH_DATA_DIR": str(tmp_path), "DEBUG": "false", "ALLOWED_HOSTS": "testserver"}
    collect = manage({**env, "BH_STATIC_MANIFEST": "true"}, "collectstatic", "--noinput", "-v", "0")
    assert collect.returncode == 0, collect.stderr
    assert (tmp_path / "staticfiles" / "staticfiles.json").is_file()
    code = (
        "import django; django.setup(); from django.conf import settings; from django.test import Client; "
        "print(settings.STORAGES['staticfiles']['BACKEND']); "
        "r = Client().get('/accounts/login/'); print(r.status_code); print(r.content.decode())"
    )
    page = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "dashboard.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert page.returncode == 0, page.stderr
    backend, status, html = page.stdout.split("\n", 2)
    assert backend == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert status == "200"
    assert re.search(r'src="/static/django_htmx/htmx[\w.-]*\.[0-9a-f]{12}\.js"', html), html
    assert re.search(r'href="/static/dashboard/dashboard\.[0-9a-f]{12}\.css"', html)
