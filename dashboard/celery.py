"""The Celery app. Configuration comes from Django settings (CELERY_* names)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Alerts live in bindings/alerts.py; register their tasks too.
app.autodiscover_tasks(related_name="alerts")
# Active probes live in bindings/probe_tasks.py.
app.autodiscover_tasks(related_name="probe_tasks")
# Kubernetes Events on TGBs (opt-in per cluster) live in bindings/kube_events.py.
app.autodiscover_tasks(related_name="kube_events")
