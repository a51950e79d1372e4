"""/healthz and /readyz: unauthenticated, cheap probes."""

from __future__ import annotations

import pytest

from bindings.api import health as api_health


def test_it_answers_healthz_without_touching_the_database(client, django_assert_num_queries, db):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_it_is_ready_when_database_and_broker_answer(client):
    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.django_db
def test_it_is_not_ready_when_the_broker_is_unreachable(client, monkeypatch):
    from dashboard.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("failed")
    assert "127.0.0.1:1" not in response.content.decode()


@pytest.mark.django_db
def test_it_is_not_ready_when_the_filesystem_broker_folder_is_missing(client, monkeypatch, tmp_path):
    from dashboard.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "filesystem://")
    monkeypatch.setattr(app.conf, "broker_transport_options", {"data_folder_in": str(tmp_path / "gone")})

    assert client.get("/readyz").status_code == 503
    (tmp_path / "gone").mkdir()
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_it_is_not_ready_when_the_database_fails(client, monkeypatch):
    monkeypatch.setattr(api_health, "database_ready", lambda: "OperationalError")

    response = client.get("/readyz")

    assert response.status_code == 503 and response.json()["checks"]["database"] == "failed: OperationalError"


def test_it_refuses_other_methods(client):
    assert client.post("/healthz").status_code == 405
