"""Shared fixtures: people and objects. Feature-specific fixtures live in their test modules."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
def credentials_dir(tmp_path, settings) -> Path:
    """A directory the worker may read credential files from (BH_CREDENTIALS_DIRS), alone."""
    directory = tmp_path / "credentials"
    directory.mkdir()
    settings.BH_CREDENTIALS_DIRS = [str(directory)]
    return directory


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


@dataclass
class LiveDemo:
    """The demo world served by a moto server and a Kubernetes emulator, with its sources in the
    database: coredns-udp blocked (no UDP 53 rule on the node group), coredns-tcp reachable."""

    cluster: Any
    account: Any
    kube: Any
    moto: Any
    world: Any
    ec2: Any  # boto3 EC2 client on the moto server, to change the world between polls


@pytest.fixture
def live_demo():
    """A fresh demo world per test, so a test may change it. Needs a test marked django_db."""
    import boto3

    from bindings.demo.emulators import DEMO_CREDENTIALS, KubeEmulator, MotoServer, seed_demo_world
    from bindings.models import AwsAccount, Cluster

    with MotoServer() as moto, KubeEmulator() as kube:
        world = seed_demo_world(aws_endpoint=moto.url, kube=kube)
        account = AwsAccount.objects.create(
            name="prod", account_id=world.account_id, region=world.region, endpoint_url=moto.url
        )
        cluster = Cluster.objects.create(
            name="demo", connection=Cluster.Connection.URL, api_url=kube.url, aws_account=account
        )
        ec2 = boto3.client("ec2", region_name=world.region, endpoint_url=moto.url, **DEMO_CREDENTIALS)
        yield LiveDemo(cluster, account, kube, moto, world, ec2)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Locks, rate-limit state, attribute caches and verified tokens must not leak between tests."""
    from django.core.cache import cache

    from bindings.api.auth import forget_tokens

    cache.clear()
    forget_tokens()
    yield
    cache.clear()
    forget_tokens()
