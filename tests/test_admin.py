"""The admin configures sources with clear validation, and shows observed data read-only."""

from __future__ import annotations

from unittest.mock import patch

import pytest

from bindings import models as m

pytestmark = pytest.mark.django_db


def _cluster_form(**overrides):
    data = {
        "name": "prod-eu",
        "enabled": "on",
        "poll_interval_seconds": "300",
        "connection": "url",
        "api_url": "https://kube.example.invalid",
        "verify_ssl": "on",
        "client_networks-TOTAL_FORMS": "1",
        "client_networks-INITIAL_FORMS": "0",
        "client_networks-MIN_NUM_FORMS": "0",
        "client_networks-MAX_NUM_FORMS": "1000",
        "client_networks-0-cidr": "",
        "client_networks-0-description": "",
    }
    data.update(overrides)
    return data


def test_it_lists_and_shows_every_admin_page(client, admin_user, cluster):
    client.force_login(admin_user)
    for url in [
        "/admin/",
        "/admin/bindings/cluster/",
        f"/admin/bindings/cluster/{cluster.pk}/change/",
        "/admin/bindings/awsaccount/",
        "/admin/bindings/targetgroupbinding/",
        "/admin/bindings/securitygroup/",
        "/admin/bindings/pollrun/",
        "/admin/bindings/targetgroup/",
        "/admin/bindings/registeredtarget/",
        "/admin/bindings/networkinterface/",
    ]:
        assert client.get(url).status_code == 200, url


def test_it_creates_a_cluster_with_client_networks(client, admin_user, aws_account):
    client.force_login(admin_user)

    response = client.post(
        "/admin/bindings/cluster/add/",
        _cluster_form(aws_account=str(aws_account.pk), **{"client_networks-0-cidr": "192.0.2.0/24"}),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    cluster = m.Cluster.objects.get(name="prod-eu")
    assert cluster.client_cidrs() == ["192.0.2.0/24"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"client_networks-0-cidr": "10.0.0.0/33"}, "is not a CIDR block"),
        (
            {"connection": "kubeconfig", "kubeconfig_path": "/nonexistent/kubeconfig"},
            "does not exist",
        ),
        ({"connection": "url", "api_url": ""}, "needs the API server URL"),
        ({"name": "bad name!"}, "EKS cluster name"),
        ({"poll_interval_seconds": "5"}, "at most every 30 seconds"),
        ({"token_file": "/nonexistent/token"}, "does not exist"),
        # Hostile paths: the worker would read them and send them as credentials.
        ({"token_file": "/etc/passwd"}, "outside the credentials directories"),
        ({"ca_file": "/proc/self/environ"}, "outside the credentials directories"),
        # Enough `..` to reach / from any temporary directory (xdist nests it one level deeper).
        ({"token_file": "{credentials}" + "/.." * 40 + "/etc/passwd"}, "outside the credentials directories"),
        (
            {"connection": "kubeconfig", "kubeconfig_path": "/etc/passwd"},
            "outside the credentials directories",
        ),
        ({"token_file": "relative/token"}, "is not an absolute path"),
        ({"token_file": "{credentials}/<script>alert(1)</script>"}, "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ({"api_url": "javascript:alert(1)"}, "Enter a valid URL"),
        ({"api_url": "file:///etc/passwd"}, "Enter a valid URL"),
    ],
)
def test_it_rejects_bad_cluster_settings_with_a_clear_message(
    client, admin_user, overrides, message, credentials_dir
):
    overrides = {k: v.replace("{credentials}", str(credentials_dir)) for k, v in overrides.items()}
    client.force_login(admin_user)

    response = client.post("/admin/bindings/cluster/add/", _cluster_form(**overrides))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not m.Cluster.objects.exists()


def test_it_saves_the_controllers_eni_security_group_tags(client, admin_user):
    client.force_login(admin_user)

    response = client.post(
        "/admin/bindings/cluster/add/",
        _cluster_form(service_target_eni_sg_tags='{"keyA": "valueA", "team": ""}'),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    cluster = m.Cluster.objects.get(name="prod-eu")
    assert cluster.service_target_eni_sg_tags == {"keyA": "valueA", "team": ""}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('["keyA=valueA"]', "must be an object of tag key to value"),
        ('{"keyA": 7}', "the value must be a string"),
        ('{"": "x"}', "tag key"),
    ],
)
def test_it_rejects_malformed_eni_security_group_tags(client, admin_user, value, message):
    client.force_login(admin_user)

    response = client.post("/admin/bindings/cluster/add/", _cluster_form(service_target_eni_sg_tags=value))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not m.Cluster.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("region", "mars-north-1a", "is not an AWS region name"),
        ("account_id", "12345", "is not a 12-digit AWS account id"),
        ("role_arn", "arn:aws:iam::123:user/bob", "is not an IAM role ARN"),
    ],
)
def test_it_rejects_bad_account_settings(client, admin_user, field, value, message):
    client.force_login(admin_user)
    data = {
        "name": "prod",
        "account_id": "123456789012",
        "region": "us-east-1",
        "enabled": "on",
        "poll_interval_seconds": "300",
        field: value,
    }

    response = client.post("/admin/bindings/awsaccount/add/", data)

    assert response.status_code == 200
    assert message in response.content.decode()


def test_poll_now_enqueues_a_poll_for_each_selected_source(client, admin_user, cluster):
    client.force_login(admin_user)

    # delay_on_commit waits for a commit that never comes inside the test transaction.
    with patch("bindings.tasks.poll_cluster_task.delay_on_commit") as delay:
        response = client.post(
            "/admin/bindings/cluster/", {"action": "poll_now", "_selected_action": [str(cluster.pk)]}
        )

    assert response.status_code == 302
    delay.assert_called_once_with(cluster.pk, "admin")


def test_observed_data_is_read_only(client, admin_user, cluster):
    client.force_login(admin_user)
    tgb = m.TargetGroupBinding.objects.create(
        cluster=cluster, uid="u1", namespace="ns", name="tgb", api_version="v1beta1"
    )

    assert client.get("/admin/bindings/targetgroupbinding/add/").status_code == 403
    response = client.post(f"/admin/bindings/targetgroupbinding/{tgb.pk}/change/", {"name": "changed"})
    assert response.status_code == 403
    tgb.refresh_from_db()
    assert tgb.name == "tgb"


def test_the_admin_requires_a_staff_login(client, alice):
    assert client.get("/admin/bindings/cluster/").status_code == 302
    client.force_login(alice)
    assert client.get("/admin/bindings/cluster/").status_code == 302
