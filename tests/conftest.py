"""Shared fixtures: people, objects and sources used by several test modules. Feature-specific
fixtures live in their test modules; shared plain helpers in tests/factories.py; per-xdist-worker
data directory, Redis database and Hypothesis store in tests/isolation.py."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.factories import SCENARIOS

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


@pytest.fixture
def stubbed_world(monkeypatch) -> dict[str, Any]:
    """Sources whose collectors return the dns-udp-blocked bundle (plus whatever the test adds to
    `kube` and `aws`): the poll path from normalisation on is the product's own. Needs the db."""
    from bindings import models as m
    from bindings.analysis.bundle import load_bundle
    from bindings.collect import aws, kube

    bundle = load_bundle(SCENARIOS / "dns-udp-blocked")
    account = m.AwsAccount.objects.create(name="corpus", account_id="123456789012", region="us-east-1")
    cluster = m.Cluster.objects.create(
        name="demo", connection=m.Cluster.Connection.URL, api_url="http://127.0.0.1:9", aws_account=account
    )
    state: dict[str, Any] = {"kube": list(bundle.kube_objects), "aws": bundle.aws}
    monkeypatch.setattr(
        kube, "collect_cluster", lambda conn, **_: kube.KubeSnapshot(objects=state["kube"], api_calls={})
    )
    monkeypatch.setattr(aws, "collect_account", lambda target, **_: aws.AwsSnapshot(responses=state["aws"]))
    state.update(cluster=cluster, account=account)
    return state


@pytest.fixture
def fast_retries(monkeypatch):
    """botocore's retries without their sleeps, so the test measures behaviour, not backoff."""
    from botocore.retries import bucket, standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    monkeypatch.setattr(bucket.TokenBucket, "acquire", lambda self, amount=1, block=True: True)


@pytest.fixture
def python_clock_cache(settings):
    """The default cache in process memory, whose expiry reads time.time(): time_machine then
    moves TTLs (locks, rate-limit windows, reused answers) that Redis would expire on its own clock."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "python-clock",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }
    from django.core.cache import cache

    cache.clear()
    yield cache
    cache.clear()


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


# --- the slow mark stays honest -----------------------------------------------------------------
#
# `pytest -m "not slow"` is the inner loop. A test that starts an emulator or another process
# (a Celery worker, a browser, an interpreter, kubectl, a database server) without the mark fails
# and says so, instead of quietly slowing that loop down. Bash itself is cheap (word splitting,
# `bash -n`), so it does not count.

_CHEAP_PROGRAMS = frozenset({"bash", "sh"})
_running: list[pytest.Item] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    # Set before any fixture of the item, module-scoped emulators included, is set up.
    _running[:] = [item]
    try:
        return (yield)
    finally:
        _running.clear()


def _require_slow_mark(what: str) -> None:
    if _running and _running[0].get_closest_marker("slow") is None:
        pytest.fail(f"{_running[0].nodeid} starts {what}: mark it @pytest.mark.slow", pytrace=False)


@pytest.fixture(autouse=True, scope="session")
def _slow_work_needs_the_slow_mark():
    import subprocess

    from bindings.demo import emulators

    real_popen = subprocess.Popen

    class CheckedPopen(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            argv = [args] if isinstance(args, str | bytes | os.PathLike) else list(args)
            program = Path(os.fsdecode(argv[0])).name.split()[0] if argv else ""
            if program not in _CHEAP_PROGRAMS:
                _require_slow_mark(f"a process ({program})")
            super().__init__(args, *rest, **kwargs)

    def checked(cls: type, what: str) -> Any:
        real_enter = cls.__enter__

        def enter(self: Any) -> Any:
            _require_slow_mark(what)
            return real_enter(self)

        return enter

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subprocess, "Popen", CheckedPopen)
        mp.setattr(emulators.MotoServer, "__enter__", checked(emulators.MotoServer, "the moto server"))
        mp.setattr(
            emulators.KubeEmulator, "__enter__", checked(emulators.KubeEmulator, "the Kubernetes emulator")
        )
        yield


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # Users are created and sign in all over the suite; PBKDF2's hundreds of thousands of rounds
    # are for production, not for fixtures (no test is about the hasher).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
