"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine): check their structure."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_runs_web_worker_beat_redis_and_postgres_from_one_image():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]

    assert {"web", "worker", "beat", "redis", "db", "migrate"} <= set(services)
    app_images = {services[s]["image"] for s in ("web", "worker", "beat", "migrate")}
    assert app_images == {"binding-health:latest"}
    assert services["web"]["command"][0] == "gunicorn"
    assert services["worker"]["command"][:4] == ["celery", "-A", "dashboard", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "dashboard", "beat"]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://")
        assert services[name]["environment"]["REDIS_URL"].startswith("redis://")
    assert "pgdata" in compose["volumes"]


def test_the_dockerfile_is_multi_stage_and_runs_as_a_non_root_user():
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("FROM ") >= 2
    assert "USER binding-health" in text
    assert "collectstatic" in text
    assert "gunicorn" in text


def test_every_setting_is_documented_in_the_env_example():
    example = (ROOT / ".env.example").read_text()
    settings_text = (ROOT / "dashboard" / "settings.py").read_text()
    import re

    names = set(re.findall(r'env(?:bool|int|secret|list)?\("([A-Z_]+)"', settings_text))
    names |= set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', settings_text))
    names -= {"BH_SQLITE_PATH"}  # test plumbing only
    missing = [n for n in sorted(names) if f"{n}=" not in example]
    assert not missing, missing
