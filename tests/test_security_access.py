"""Issue 15 ("Safe to deploy"), the access side: each test here failed on the code before it.

1. Credential paths (token, kubeconfig, CA, alert URL files) lie under BH_CREDENTIALS_DIRS, checked
   when saved and again when read, symlinks resolved; only superusers edit connection fields;
   "Poll now" is its own permission; disabled TLS verification is shown as a warning.
5. Webhooks never follow redirects; BH_WEBHOOK_ALLOWED_HOSTS; URL files bounded and confined.
6. API tokens act with at most their owner's permissions; only superusers mint tokens for others.
8. Anonymous API POSTs get a 401 problem, not a CSRF 403; "Poll now" while a poll of the source
   holds its lock says since when, instead of queueing a poll that would do nothing.

Real parts throughout: PostgreSQL, the Redis cache (poll locks), local HTTP receivers
(pytest-httpserver) standing in for an attacker's listener and for webhook endpoints. Only the
Celery `delay_on_commit` of "Poll now" is patched: no worker runs in these tests, and what is
asserted is whether a poll was queued at all.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import patch

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from werkzeug import Response

from bindings import models as m
from bindings import tasks
from bindings.collect.credentials import URL_FILE_MAX_BYTES, CredentialPathError, credential_path
from bindings.collect.errors import KubeError
from bindings.services import alerts, polling
from bindings.tasks import poll_running_since, source_lock
from tests.factories import make_bindings, make_token

pytestmark = pytest.mark.django_db

SECRET = "worker-secret-database-password-0123456789"  # noqa: S105 - test value


def _perms(*codenames: str) -> list[Permission]:
    found = list(Permission.objects.filter(codename__in=codenames, content_type__app_label="bindings"))
    assert len(found) == len(codenames), codenames
    return found


@pytest.fixture
def outside(tmp_path) -> Path:
    """A readable file the worker must never send anywhere (outside every credentials dir)."""
    directory = tmp_path / "outside"
    directory.mkdir()
    path = directory / "secret"
    path.write_text(SECRET)
    return path


@pytest.fixture
def editor(django_user_model):
    """Eve: staff with every change_* right on sources and tokens, but no superuser."""
    user = django_user_model.objects.create_user(
        "eve", "eve@example.invalid", "eve-password-1", is_staff=True
    )
    user.user_permissions.add(
        *_perms(
            "view_cluster",
            "change_cluster",
            "add_cluster",
            "view_awsaccount",
            "change_awsaccount",
            "add_awsaccount",
            "view_apitoken",
            "add_apitoken",
            "change_apitoken",
        )
    )
    return user


# --- 1. credential paths ------------------------------------------------------------------------------


def _hostile_paths(credentials_dir: Path, outside: Path) -> dict[str, tuple[str, str]]:
    """name -> (path as typed, expected fragment of the error)."""
    escape_link = credentials_dir / "innocent-looking-token"
    escape_link.symlink_to(outside)
    linked_dir = credentials_dir / "mounted"
    linked_dir.symlink_to(outside.parent, target_is_directory=True)
    (credentials_dir / "a-directory").mkdir()
    return {
        "outside": (str(outside), "outside the credentials directories"),
        "etc-passwd": ("/etc/passwd", "outside the credentials directories"),
        "dot-dot": (f"{credentials_dir}/../outside/secret", "outside the credentials directories"),
        "symlink-out": (str(escape_link), "resolves to"),
        "symlinked-dir-out": (str(linked_dir / "secret"), "outside the credentials directories"),
        "relative": ("token", "is not an absolute path"),
        "home": ("~/.kube/config", "outside the credentials directories|does not exist"),
        "missing": (str(credentials_dir / "nope"), "does not exist"),
        "directory": (str(credentials_dir / "a-directory"), "is not a regular file"),
        "nul": (f"{credentials_dir}/tok\x00en", "NUL"),
        "proc-environ": ("/proc/self/environ", "outside the credentials directories"),
    }


HOSTILE_NAMES = [
    "outside",
    "etc-passwd",
    "dot-dot",
    "symlink-out",
    "symlinked-dir-out",
    "relative",
    "home",
    "missing",
    "directory",
    "nul",
    "proc-environ",
]


@pytest.mark.parametrize("field", ["token_file", "kubeconfig_path", "ca_file"])
@pytest.mark.parametrize("shape", HOSTILE_NAMES)
def test_validation_refuses_credential_paths_outside_the_credentials_dirs(
    field, shape, credentials_dir, outside, cluster
):
    value, fragment = _hostile_paths(credentials_dir, outside)[shape]
    if field == "kubeconfig_path":
        cluster.connection = m.Cluster.Connection.KUBECONFIG
    setattr(cluster, field, value)

    with pytest.raises(ValidationError) as error:
        cluster.full_clean()

    messages = error.value.message_dict
    assert field in messages, messages
    assert re.search(fragment, " ".join(messages[field])), messages[field]


@pytest.mark.parametrize("field", ["token_file", "kubeconfig_path", "ca_file"])
def test_validation_accepts_files_in_the_credentials_dirs_also_through_inner_symlinks(
    field, credentials_dir, cluster
):
    # Kubernetes mounts Secrets as `name -> ..data/name`, `..data -> ..2024_…`: links inside the dir.
    real = credentials_dir / "..2026_12_06" / "file"
    real.parent.mkdir()
    real.write_text(KUBECONFIG.format(ca="ca.crt", token="token"))
    for name in ("ca.crt", "token"):
        (real.parent / name).write_text("x")
    (credentials_dir / "..data").symlink_to(real.parent.name)
    (credentials_dir / "file").symlink_to("..data/file")
    if field == "kubeconfig_path":
        cluster.connection = m.Cluster.Connection.KUBECONFIG
    setattr(cluster, field, str(credentials_dir / "file"))

    cluster.full_clean()

    assert credential_path(str(credentials_dir / "file")) == real.resolve()


KUBECONFIG = """
apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {{server: "https://kube.example.invalid", certificate-authority: "{ca}"}}
users:
- name: poller
  user: {{tokenFile: "{token}"}}
contexts:
- name: prod
  context: {{cluster: prod, user: poller}}
current-context: prod
"""


@pytest.mark.parametrize("key", ["ca", "token"])
def test_files_a_kubeconfig_names_must_lie_in_the_credentials_dirs_too(
    key, credentials_dir, outside, cluster
):
    for name in ("ca.crt", "token"):
        (credentials_dir / name).write_text("x")
    refs = {"ca": "ca.crt", "token": "token"}  # relative: to the kubeconfig's folder
    refs[key] = str(outside) if key == "ca" else "../outside/secret"
    kubeconfig = credentials_dir / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(**refs))
    m.Cluster.objects.filter(pk=cluster.pk).update(connection="kubeconfig", kubeconfig_path=str(kubeconfig))
    cluster.refresh_from_db()
    field = {"ca": "cluster 'prod' certificate-authority", "token": "user 'poller' tokenFile"}[key]

    with pytest.raises(ValidationError, match=f"{field}.*outside the credentials directories"):
        cluster.full_clean()
    with pytest.raises(KubeError, match=f"{field}.*outside the credentials directories"):
        polling.kube_connection(cluster)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- just\n- a list\n", "not a kubeconfig"),
        ("a: [\n", "not valid YAML"),
        ("x" * (2 << 20), "larger than"),
    ],
)
def test_a_kubeconfig_that_is_not_one_is_refused_by_name(content, message, credentials_dir, cluster):
    kubeconfig = credentials_dir / "kubeconfig"
    kubeconfig.write_text(content)
    cluster.connection = "kubeconfig"
    cluster.kubeconfig_path = str(kubeconfig)

    with pytest.raises(ValidationError, match=message):
        cluster.full_clean()


def test_a_kubeconfig_relative_to_its_folder_is_accepted(credentials_dir, cluster):
    for name in ("ca.crt", "token"):
        (credentials_dir / name).write_text("x")
    (credentials_dir / "kubeconfig").write_text(KUBECONFIG.format(ca="ca.crt", token="token"))
    cluster.connection = "kubeconfig"
    cluster.kubeconfig_path = str(credentials_dir / "kubeconfig")

    cluster.full_clean()

    connection = polling.kube_connection(cluster)
    assert connection.kubeconfig_path == str((credentials_dir / "kubeconfig").resolve())


def test_the_admin_form_names_the_field_and_the_boundary(client, admin_user, credentials_dir, outside):
    client.force_login(admin_user)
    form = {
        "name": "prod-eu",
        "enabled": "on",
        "poll_interval_seconds": "300",
        "connection": "url",
        "api_url": "https://kube.example.invalid",
        "token_file": str(outside),
        "ca_file": str(outside),
        "verify_ssl": "on",
        "client_networks-TOTAL_FORMS": "0",
        "client_networks-INITIAL_FORMS": "0",
    }

    response = client.post("/admin/bindings/cluster/add/", form)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("outside the credentials directories") == 2  # token and CA, each named
    assert "BH_CREDENTIALS_DIRS" in html and str(credentials_dir.resolve()) in html
    assert not m.Cluster.objects.exists()


@pytest.mark.parametrize("shape", ["outside", "symlink-out", "dot-dot", "symlinked-dir-out"])
def test_a_poll_never_sends_a_file_from_outside_the_credentials_dirs(
    shape, cluster, credentials_dir, outside, httpserver
):
    """The exploit: a cluster row whose token_file points outside (saved before this release, or
    by any path that skips validation) and whose API URL is the attacker's listener."""
    value, _ = _hostile_paths(credentials_dir, outside)[shape]
    httpserver.expect_request(re.compile(".*")).respond_with_json({"kind": "Status", "code": 401}, status=401)
    m.Cluster.objects.filter(pk=cluster.pk).update(api_url=httpserver.url_for("/"), token_file=value)
    cluster.refresh_from_db()

    with pytest.raises(KubeError, match="outside the credentials directories"):
        polling.cluster_poll(cluster=cluster, trigger="test")

    assert httpserver.log == [], "nothing may reach the listener"
    cluster.refresh_from_db()
    run = m.PollRun.objects.get(cluster=cluster)
    assert run.status == m.PollRun.Status.FAILED
    for text in (run.error, cluster.last_error):
        assert "token_file" in text and "'demo'" in text and SECRET not in text


def test_a_token_swapped_for_a_symlink_after_validation_is_refused_at_read_time(
    cluster, credentials_dir, outside, httpserver
):
    token = credentials_dir / "token"
    token.write_text("the-real-token")
    cluster.api_url = httpserver.url_for("/")
    cluster.token_file = str(token)
    cluster.full_clean()
    cluster.save()
    token.unlink()
    token.symlink_to(outside)  # planted after the admin accepted the path

    with pytest.raises(KubeError, match="resolves to"):
        polling.cluster_poll(cluster=cluster, trigger="test")

    assert httpserver.log == []


@pytest.mark.parametrize("field", ["kubeconfig_path", "ca_file"])
def test_kubeconfig_and_ca_paths_are_checked_at_read_time_too(
    field, cluster, credentials_dir, outside, httpserver
):
    httpserver.expect_request(re.compile(".*")).respond_with_json({}, status=500)
    updates = {field: str(outside), "api_url": httpserver.url_for("/")}
    if field == "kubeconfig_path":
        updates["connection"] = m.Cluster.Connection.KUBECONFIG
    m.Cluster.objects.filter(pk=cluster.pk).update(**updates)
    cluster.refresh_from_db()

    with pytest.raises(KubeError, match=f"{field}.*outside the credentials directories"):
        polling.kube_connection(cluster)
    assert httpserver.log == []


def test_a_token_inside_the_credentials_dir_is_sent(cluster, credentials_dir, httpserver):
    token = credentials_dir / "token"
    token.write_text("kube-token-inside\n")
    httpserver.expect_request(re.compile(".*")).respond_with_json({"kind": "Status", "code": 401}, status=401)
    m.Cluster.objects.filter(pk=cluster.pk).update(api_url=httpserver.url_for("/"), token_file=str(token))
    cluster.refresh_from_db()

    with pytest.raises(KubeError, match="401"):
        polling.cluster_poll(cluster=cluster, trigger="test")

    assert httpserver.log[0][0].headers["Authorization"] == "Bearer kube-token-inside"


def test_the_default_credentials_dirs_are_the_service_account_folder_and_the_data_dir():
    from django.conf import settings

    dirs = list(settings.BH_CREDENTIALS_DIRS)
    assert dirs == ["/var/run/secrets/kubernetes.io/serviceaccount", str(settings.DATA_DIR)]


# --- 1. who edits connections, who polls -------------------------------------------------------------


def _cluster_change_form(cluster: m.Cluster, **overrides: str) -> dict[str, str]:
    data = {
        "name": cluster.name,
        "enabled": "on",
        "aws_account": str(cluster.aws_account_id or ""),
        "poll_interval_seconds": "600",
        "probe_kind": "",
        "client_networks-TOTAL_FORMS": "0",
        "client_networks-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_staff_with_change_cluster_cannot_aim_the_poller_at_their_listener(
    client, editor, cluster, credentials_dir, outside
):
    """The original exploit through the admin: change api_url and token_file. Both are ignored
    (read-only for non-superusers), as is the apply switch; the harmless fields are saved."""
    client.force_login(editor)
    guarded = (*m.Cluster.CONNECTION_FIELDS, "allow_apply_fix")
    before = m.Cluster.objects.values(*guarded).get(pk=cluster.pk)

    page = client.get(f"/admin/bindings/cluster/{cluster.pk}/change/").content.decode()
    response = client.post(
        f"/admin/bindings/cluster/{cluster.pk}/change/",
        _cluster_change_form(
            cluster,
            api_url="https://attacker.example/",
            token_file=str(outside),
            kubeconfig_path=str(outside),
            ca_file=str(outside),
            connection="kubeconfig",
            verify_ssl="",
            allow_apply_fix="on",
        ),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    for field in guarded:
        assert f'name="{field}"' not in page, field
    assert m.Cluster.objects.values(*guarded).get(pk=cluster.pk) == before
    assert m.Cluster.objects.get(pk=cluster.pk).poll_interval_seconds == 600


def test_staff_cannot_change_an_accounts_role_or_endpoint(client, editor, aws_account):
    client.force_login(editor)

    response = client.post(
        f"/admin/bindings/awsaccount/{aws_account.pk}/change/",
        {
            "name": "prod",
            "account_id": "123456789012",
            "region": "us-east-1",
            "enabled": "on",
            "poll_interval_seconds": "900",
            "role_arn": "arn:aws:iam::999999999999:role/attacker",
            "external_id": "x",
            "endpoint_url": "https://attacker.example/",
        },
    )

    assert response.status_code == 302
    aws_account.refresh_from_db()
    assert (aws_account.role_arn, aws_account.external_id, aws_account.endpoint_url) == ("", "", "")
    assert aws_account.poll_interval_seconds == 900


def test_only_superusers_add_sources(client, editor, admin_user):
    client.force_login(editor)
    assert client.get("/admin/bindings/cluster/add/").status_code == 403
    assert client.get("/admin/bindings/awsaccount/add/").status_code == 403
    client.force_login(admin_user)
    assert client.get("/admin/bindings/cluster/add/").status_code == 200
    assert client.get("/admin/bindings/awsaccount/add/").status_code == 200


def test_superusers_edit_connection_fields(client, admin_user, cluster, credentials_dir):
    token = credentials_dir / "token"
    token.write_text("t")
    client.force_login(admin_user)

    response = client.post(
        f"/admin/bindings/cluster/{cluster.pk}/change/",
        _cluster_change_form(
            cluster,
            connection="url",
            api_url="https://kube.example.invalid",
            token_file=str(token),
            allow_apply_fix="on",
        ),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    cluster.refresh_from_db()
    assert (cluster.api_url, cluster.token_file, cluster.verify_ssl, cluster.allow_apply_fix) == (
        "https://kube.example.invalid",
        str(token),
        False,  # the checkbox was not sent: superusers may turn verification off
        True,
    )


ACTION = {"action": "poll_now", "index": "0"}


@pytest.mark.parametrize(
    ("url", "kind", "perm"),
    [
        ("/admin/bindings/cluster/", "cluster", "poll_cluster"),
        ("/admin/bindings/awsaccount/", "account", "poll_awsaccount"),
    ],
)
def test_the_poll_now_action_needs_the_poll_permission_not_change(client, editor, cluster, url, kind, perm):
    pk = cluster.pk if kind == "cluster" else cluster.aws_account_id
    task = "poll_cluster_task" if kind == "cluster" else "poll_account_task"
    client.force_login(editor)

    with patch(f"bindings.tasks.{task}.delay_on_commit") as delay:
        listing = client.get(url).content.decode()
        refused = client.post(url, {**ACTION, "_selected_action": [str(pk)]})
        assert 'value="poll_now"' not in listing
        assert refused.status_code in (200, 302)
        delay.assert_not_called()

        editor.user_permissions.add(*_perms(perm))
        editor = type(editor).objects.get(pk=editor.pk)  # drop the cached permissions
        client.force_login(editor)
        assert 'value="poll_now"' in client.get(url).content.decode()
        accepted = client.post(url, {**ACTION, "_selected_action": [str(pk)]})
        assert accepted.status_code == 302
        delay.assert_called_once_with(pk, "admin")


def test_the_dashboard_poll_needs_poll_cluster_not_change_cluster(client, editor, cluster):
    client.force_login(editor)
    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        assert "Poll now" not in client.get(f"/clusters/{cluster.pk}/").content.decode()
        assert client.post(f"/clusters/{cluster.pk}/poll/").status_code == 403
    delay.assert_not_called()


def test_the_migration_keeps_poll_now_for_those_who_had_it(django_user_model):
    """Upgrading takes nobody's "Poll now" away: holders of change_* (users and groups) get poll_*."""
    from importlib import import_module

    # Found by name, not number: migrations are renumbered when branches merge.
    [name] = [p.stem for p in (Path(m.__file__).parent / "migrations").glob("*_sec_access_permissions.py")]
    migration = import_module(f"bindings.migrations.{name}")
    user = django_user_model.objects.create_user("old-operator", password="x-password-1")
    group = Group.objects.create(name="old-operators")
    user.user_permissions.add(*_perms("change_cluster"))
    group.permissions.add(*_perms("change_awsaccount"))
    bystander = django_user_model.objects.create_user("bystander", password="x-password-1")

    migration.grant_poll_to_editors(django_apps, SimpleNamespace(connection=connection))

    assert set(user.user_permissions.values_list("codename", flat=True)) == {"change_cluster", "poll_cluster"}
    assert set(group.permissions.values_list("codename", flat=True)) == {
        "change_awsaccount",
        "poll_awsaccount",
    }
    assert not bystander.user_permissions.exists()


# --- 1. TLS verification off: a warning wherever the cluster is shown ----------------------------------


@pytest.fixture
def insecure(cluster):
    m.Cluster.objects.filter(pk=cluster.pk).update(api_url="https://kube.example.invalid", verify_ssl=False)
    cluster.refresh_from_db()
    return cluster


def test_disabled_tls_verification_is_a_warning_in_the_admin(client, admin_user, insecure):
    client.force_login(admin_user)

    change = client.get(f"/admin/bindings/cluster/{insecure.pk}/change/").content.decode()
    listing = client.get("/admin/bindings/cluster/").content.decode()

    assert "TLS verification is off" in change and "Only superusers can change this" in change
    assert "insecure" in listing


def test_disabled_tls_verification_is_a_warning_on_every_page_showing_the_cluster(client, alice, insecure):
    [binding] = make_bindings(insecure, 1)
    client.force_login(alice)

    pages = ["/", f"/clusters/{insecure.pk}/", f"/bindings/{binding.pk}/", "/bindings/"]
    pages.append(f"/accounts/aws/{insecure.aws_account_id}/")
    for url in pages:
        html = client.get(url).content.decode()
        assert "insecure connection" in html, url
        assert "TLS verification is off" in html, url  # in full, or in the badge's title


def test_plain_http_is_a_warning_and_verified_tls_is_not(client, alice, cluster):
    client.force_login(alice)
    assert "plain HTTP" in client.get(f"/clusters/{cluster.pk}/").content.decode()  # http://127.0.0.1:9

    m.Cluster.objects.filter(pk=cluster.pk).update(api_url="https://kube.example.invalid", verify_ssl=True)
    assert "insecure connection" not in client.get(f"/clusters/{cluster.pk}/").content.decode()


# --- 5. webhooks ----------------------------------------------------------------------------------------


@pytest.fixture
def hook(httpserver, monkeypatch, udp_transition):
    monkeypatch.setenv("BH_TEST_WEBHOOK_URL", httpserver.url_for("/hook"))
    hook = m.AlertHook.objects.create(name="ops", url_env="BH_TEST_WEBHOOK_URL", on_stale=False)
    return hook


@pytest.fixture
def udp_transition(cluster):
    from django.utils import timezone

    [binding] = make_bindings(cluster, 1)
    return m.VerdictTransition.objects.create(
        binding=binding, protocol="UDP", at=timezone.now(), old="reachable", new="blocked"
    )


def _deliver() -> m.AlertDelivery:
    [pk] = alerts.alerts_scan()
    tasks.deliver_alert_task.apply(args=(pk,))
    return m.AlertDelivery.objects.get(pk=pk)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_webhook_redirect_is_a_failed_delivery_and_is_not_followed(status, hook, httpserver):
    httpserver.expect_request("/hook").respond_with_response(
        Response(status=status, headers={"Location": httpserver.url_for("/internal-admin")})
    )
    httpserver.expect_request("/internal-admin").respond_with_data("reached")

    delivery = _deliver()

    assert [request.path for request, _ in httpserver.log] == ["/hook"]
    assert delivery.status == "failed" and delivery.attempts == 1
    assert f"HTTP {status}" in delivery.last_error and "redirects are never followed" in delivery.last_error
    assert "internal-admin" not in delivery.last_error


def test_a_webhook_redirect_to_another_host_is_not_followed(hook, httpserver):
    from pytest_httpserver import HTTPServer

    with HTTPServer() as other:
        other.expect_request(re.compile(".*")).respond_with_data("metadata")
        httpserver.expect_request("/hook").respond_with_response(
            Response(status=302, headers={"Location": other.url_for("/latest/meta-data/")})
        )

        delivery = _deliver()

        assert other.log == [] and delivery.status == "failed"


@pytest.mark.parametrize(
    ("allowed", "host", "ok"),
    [
        ([], "anything.example", True),
        (["hooks.slack.com"], "hooks.slack.com", True),
        (["hooks.slack.com"], "HOOKS.SLACK.COM.", True),
        (["hooks.slack.com"], "hooks.slack.com.evil.example", False),
        (["hooks.slack.com"], "evilhooks.slack.com", False),
        (["*.example.com"], "a.b.example.com", True),
        (["*.example.com"], "example.com", False),
        (["*.example.com"], "badexample.com", False),
        (["127.0.0.1"], "127.0.0.2", False),
    ],
)
def test_webhook_host_allow_list(allowed, host, ok):
    assert alerts.host_allowed(host, allowed) is ok


def test_a_webhook_to_a_host_not_allowed_is_refused_at_send_time(hook, httpserver, settings):
    settings.BH_WEBHOOK_ALLOWED_HOSTS = ["hooks.slack.com"]

    delivery = _deliver()

    assert httpserver.log == []
    assert delivery.status == "failed"
    assert f"{httpserver.host!r} is not in BH_WEBHOOK_ALLOWED_HOSTS" in delivery.last_error
    assert "/hook" not in delivery.last_error  # the host at most, never the URL (a credential)


def test_a_webhook_to_an_allowed_host_is_sent(hook, httpserver, settings):
    settings.BH_WEBHOOK_ALLOWED_HOSTS = [httpserver.host]
    httpserver.expect_request("/hook").respond_with_data("ok")

    assert _deliver().status == "sent"


def test_the_allow_list_is_checked_when_a_hook_is_saved(
    client, admin_user, settings, monkeypatch, credentials_dir
):
    settings.BH_WEBHOOK_ALLOWED_HOSTS = ["hooks.slack.com"]
    monkeypatch.setenv("BH_EVIL_HOOK", "http://169.254.169.254/latest/meta-data/")
    (credentials_dir / "url").write_text("https://internal.example/hook\n")
    client.force_login(admin_user)
    base = {"kind": "webhook", "enabled": "on", "on_transitions": "on", "on_stale": "on"}

    by_env = client.post("/admin/bindings/alerthook/add/", {**base, "name": "a", "url_env": "BH_EVIL_HOOK"})
    by_file = client.post(
        "/admin/bindings/alerthook/add/", {**base, "name": "b", "url_file": str(credentials_dir / "url")}
    )

    assert "&#x27;169.254.169.254&#x27; is not in BH_WEBHOOK_ALLOWED_HOSTS" in by_env.content.decode()
    assert "&#x27;internal.example&#x27; is not in BH_WEBHOOK_ALLOWED_HOSTS" in by_file.content.decode()
    assert not m.AlertHook.objects.exists()


@pytest.mark.parametrize(
    "shape", ["outside", "etc-passwd", "symlink-out", "dot-dot", "relative", "directory"]
)
def test_a_url_file_outside_the_credentials_dirs_is_refused_at_save_and_at_send(
    shape, credentials_dir, outside, udp_transition, httpserver
):
    value, fragment = _hostile_paths(credentials_dir, outside)[shape]
    outside.write_text(httpserver.url_for("/exfiltrate"))  # a valid URL: only the path stops it
    hook = m.AlertHook(name="leak", url_file=value, on_stale=False)

    with pytest.raises(ValidationError) as error:
        hook.full_clean()
    assert re.search(fragment, " ".join(error.value.message_dict["url_file"]))

    hook.save()  # as a row saved before this release would be
    delivery = _deliver()
    assert httpserver.log == []
    assert delivery.status == "failed" and re.search(fragment, delivery.last_error)
    assert "alert hook 'leak' URL file" in delivery.last_error


def test_a_url_file_larger_than_the_cap_is_refused(credentials_dir, udp_transition, httpserver):
    big = credentials_dir / "big-url"
    big.write_text(httpserver.url_for("/hook") + "?" + "a" * URL_FILE_MAX_BYTES)
    hook = m.AlertHook.objects.create(name="big", url_file=str(big), on_stale=False)

    with pytest.raises(ValidationError, match=f"larger than {URL_FILE_MAX_BYTES} bytes"):
        hook.full_clean()
    delivery = _deliver()
    assert httpserver.log == [] and "larger than" in delivery.last_error


def test_a_url_file_from_a_fifo_or_device_is_refused(credentials_dir):
    fifo = credentials_dir / "fifo"
    os.mkfifo(fifo)
    (credentials_dir / "zero").symlink_to("/dev/zero")

    for path in (fifo, credentials_dir / "zero"):
        with pytest.raises(CredentialPathError):  # never read: a fifo blocks, /dev/zero never ends
            credential_path(str(path))


# --- 6. tokens ------------------------------------------------------------------------------------------


def test_a_viewers_write_token_cannot_poll(client, alice, cluster):
    token = make_token(alice, "write")

    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        response = client.post(
            "/api/v1/polls",
            {"cluster": "demo"},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )

    assert response.status_code == 403 and response["Content-Type"] == "application/problem+json"
    assert "bindings.poll_cluster" in response.json()["detail"]
    delay.assert_not_called()


def test_a_token_loses_rights_its_owner_loses_at_once(client, alice, cluster):
    alice.user_permissions.add(*_perms("poll_cluster"))
    token = make_token(alice, "write")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "content_type": "application/json"}

    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        assert client.post("/api/v1/polls", {"cluster": "demo"}, **headers).status_code == 202
        alice.user_permissions.clear()
        # Within BH_API_TOKEN_CACHE_SECONDS: the token is answered from memory, its rights are not.
        assert client.post("/api/v1/polls", {"cluster": "demo"}, **headers).status_code == 403
    assert delay.call_count == 1


def test_a_read_token_of_a_superuser_still_cannot_poll(client, admin_user, cluster):
    token = make_token(admin_user, "read")

    response = client.post(
        "/api/v1/polls",
        {"cluster": "demo"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert response.status_code == 403


def _token_form(user_pk: int) -> dict[str, str]:
    return {"name": "ci", "user": str(user_pk), "scope": "write", "expires_at_0": "", "expires_at_1": ""}


def test_staff_cannot_mint_a_token_for_a_superuser(client, editor, admin_user):
    client.force_login(editor)

    response = client.post("/admin/bindings/apitoken/add/", _token_form(admin_user.pk))

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not m.ApiToken.objects.exists()


def test_staff_mint_tokens_for_themselves_and_see_only_their_own(client, editor, admin_user, alice):
    make_token(alice, "write")
    client.force_login(editor)

    form = client.get("/admin/bindings/apitoken/add/").content.decode()
    response = client.post("/admin/bindings/apitoken/add/", _token_form(editor.pk))

    assert response.status_code == 302
    assert "olga" not in form and "alice" not in form
    assert m.ApiToken.objects.filter(user=editor).count() == 1
    listing = client.get("/admin/bindings/apitoken/").content.decode()
    assert "alice" not in listing and "eve" in listing
    other = m.ApiToken.objects.get(user=alice)
    assert client.get(f"/admin/bindings/apitoken/{other.pk}/change/").status_code == 302  # "does not exist"


def test_superusers_mint_tokens_for_others(client, admin_user, alice):
    client.force_login(admin_user)

    response = client.post("/admin/bindings/apitoken/add/", _token_form(alice.pk))

    assert response.status_code == 302
    assert m.ApiToken.objects.get().user == alice


# --- 8. anonymous POSTs, and "Poll now" on a busy source -----------------------------------------------


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/v1/polls", {"cluster": "demo"}),
        ("/api/v1/polls", {"account": "prod"}),
        ("/api/v1/polls", {}),
        ("/api/v1/polls", "not json"),
    ],
)
@pytest.mark.parametrize("cookie", [False, True], ids=["no-cookie", "csrf-cookie"])
def test_an_anonymous_api_post_is_a_401_problem_not_a_csrf_403(url, body, cookie, cluster):
    browserless = Client(enforce_csrf_checks=True)
    if cookie:
        browserless.cookies["csrftoken"] = "x" * 32

    response = browserless.post(url, json.dumps(body), content_type="application/json")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "CSRF" not in response.json()["detail"]


def test_a_signed_in_session_still_needs_the_csrf_token(admin_user, cluster):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)

    response = browser.post("/api/v1/polls", {"cluster": "demo"}, content_type="application/json")

    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


@pytest.mark.parametrize(
    ("kind", "body"), [("cluster", {"cluster": "demo"}), ("account", {"account": "prod"})]
)
def test_the_api_says_a_poll_is_already_running_instead_of_queueing(client, admin_user, cluster, kind, body):
    pk = cluster.pk if kind == "cluster" else cluster.aws_account_id
    task = "poll_cluster_task" if kind == "cluster" else "poll_account_task"
    client.force_login(admin_user)

    with patch(f"bindings.tasks.{task}.delay_on_commit") as delay:
        with source_lock(kind, pk) as held:
            assert held
            since = poll_running_since(kind, pk)
            busy = client.post("/api/v1/polls", body, content_type="application/json")
        free = client.post("/api/v1/polls", body, content_type="application/json")

    assert busy.status_code == 409 and busy["Content-Type"] == "application/problem+json"
    problem = busy.json()
    name = "demo" if kind == "cluster" else "prod"
    assert (
        f"{kind} '{name}' is already running since {since.isoformat(timespec='seconds')}" in problem["detail"]
    )
    assert problem["running_since"] == since.isoformat()
    assert free.status_code == 202
    delay.assert_called_once_with(pk, "api")


def test_the_admin_action_says_a_poll_is_already_running(client, admin_user, cluster):
    client.force_login(admin_user)

    with (
        patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay,
        source_lock("cluster", cluster.pk),
    ):
        since = poll_running_since("cluster", cluster.pk)
        response = client.post(
            "/admin/bindings/cluster/", {**ACTION, "_selected_action": [str(cluster.pk)]}, follow=True
        )

    html = response.content.decode()
    assert f"a poll of demo is already running since {since:%Y-%m-%d %H:%M:%S} UTC" in html
    assert "Queued 0 poll(s)" in html
    delay.assert_not_called()


def test_the_dashboard_says_a_poll_is_already_running(client, admin_user, cluster):
    client.force_login(admin_user)

    with (
        patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay,
        source_lock("cluster", cluster.pk),
    ):
        since = poll_running_since("cluster", cluster.pk)
        response = client.post(f"/clusters/{cluster.pk}/poll/", {"next": "/"}, HTTP_HX_REQUEST="true")

    assert f"already running since {since:%Y-%m-%d %H:%M:%S} UTC" in response.content.decode()
    delay.assert_not_called()


def test_a_released_lock_is_not_reported(cluster):
    with source_lock("cluster", cluster.pk):
        assert poll_running_since("cluster", cluster.pk) is not None
    assert poll_running_since("cluster", cluster.pk) is None
    assert poll_running_since("account", cluster.aws_account_id) is None


# --- settings -------------------------------------------------------------------------------------------


def _settings_in_subprocess(env: dict[str, str], tmp_path: Path) -> tuple[int, str]:
    import subprocess
    import sys

    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.BH_CREDENTIALS_DIRS)"
    )
    full = {k: v for k, v in os.environ.items() if not k.startswith("BH_")}
    full |= {"DJANGO_SETTINGS_MODULE": "dashboard.settings", "BH_DATA_DIR": str(tmp_path), **env}
    done = subprocess.run(  # noqa: S603 - our own interpreter and a fixed program
        [sys.executable, "-c", code],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow
def test_an_empty_credentials_dirs_variable_means_the_default_not_nothing(tmp_path):
    status, out = _settings_in_subprocess({"BH_CREDENTIALS_DIRS": ""}, tmp_path)

    assert status == 0, out
    assert f"['/var/run/secrets/kubernetes.io/serviceaccount', '{tmp_path}']" in out


@pytest.mark.slow
@pytest.mark.parametrize(
    "entry", ["https://hooks.slack.com", "hooks.slack.com:443", "hooks.slack.com/x", "a*.b.c"]
)
def test_a_webhook_allow_list_entry_that_is_no_host_name_stops_the_start(entry, tmp_path):
    status, out = _settings_in_subprocess({"BH_WEBHOOK_ALLOWED_HOSTS": entry}, tmp_path)

    assert status != 0
    assert f"BH_WEBHOOK_ALLOWED_HOSTS: {entry!r} is not a host name" in out


@pytest.mark.parametrize("name", ["tok\u202eneknot", "tok\x1b[31men", "tok\nen"])
def test_hostile_characters_in_a_path_are_shown_escaped(name, credentials_dir):
    value = str(credentials_dir / name)
    with pytest.raises(CredentialPathError) as error:
        credential_path(value)
    message = str(error.value)
    assert name not in message and ascii(value) in message  # \u202e, \x1b, \n: visible, inert
