"""Shared fixtures: people and objects. Feature-specific fixtures live in their test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).parent / "scenarios"

# moto and boto3 must never find real credentials or reach AWS from a test.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture
def alice(django_user_model):
    """Alice is an SRE with a login and no special permissions: she reads dashboards."""
    return django_user_model.objects.create_user("alice", "alice@example.invalid", "alice-password-1")


@pytest.fixture
def admin_user(django_user_model):
    """Olga the operator: staff and superuser, configures sources in the admin."""
    return django_user_model.objects.create_superuser("olga", "olga@example.invalid", "olga-password-1")


@pytest.fixture
def aws_account(db):
    from bindings.models import AwsAccount

    return AwsAccount.objects.create(name="prod", account_id="123456789012", region="us-east-1")


@pytest.fixture
def cluster(db, aws_account):
    from bindings.models import Cluster

    return Cluster.objects.create(
        name="demo",
        connection=Cluster.Connection.URL,
        api_url="http://127.0.0.1:9",
        aws_account=aws_account,
    )


@pytest.fixture(autouse=True)
def _clear_cache():
    """Locks, rate-limit state, attribute caches and verified tokens must not leak between tests."""
    from django.core.cache import cache

    from bindings.api_auth import forget_tokens

    cache.clear()
    forget_tokens()
    yield
    cache.clear()
    forget_tokens()
