"""Per-xdist-worker state, set before Django reads its settings.

Loaded as a plugin (`-p tests.isolation` in pyproject's addopts) because pytest-django imports
dashboard.settings before any conftest runs, and the settings read BH_DATA_DIR and REDIS_URL once.
Under `pytest -n N` each worker then gets:

- its own BH_DATA_DIR (`<BH_DATA_DIR or var>/xdist-gwN`): the SQLite test database, the file
  cache (locks, rate limits) that the autouse fixture clears, the filesystem broker a Celery
  worker started by a test consumes, worker logs;
- its own Redis database (`db - N` modulo 16, so `/15` gives 15, 14, …): the autouse
  `cache.clear()` is a FLUSHDB, and a worker's broker queue must not feed another's Celery worker;
- its own Hypothesis example database (`.hypothesis/gwN`).

PostgreSQL test databases get a `_gwN` suffix from pytest-django itself. Ports are never shared:
every emulator, DNS server and HTTP receiver binds port 0. Without xdist nothing changes.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
REDIS_DATABASES = 16  # redis-server's default `databases`


def worker_index(worker: str) -> int | None:
    """N of an xdist worker id `gwN`; None outside xdist."""
    match = re.fullmatch(r"gw(\d+)", worker)
    return int(match[1]) if match else None


def redis_url_for_worker(url: str, index: int) -> str:
    """`url` moved to its own database for worker `index`: db - index, wrapping at 16."""
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db - index) % REDIS_DATABASES}"))


def isolate(environ: MutableMapping[str, str]) -> None:
    """Point `environ` at this worker's own data directory, Redis database and Hypothesis store."""
    worker = environ.get("PYTEST_XDIST_WORKER", "")
    index = worker_index(worker)
    # Once per worker: a pytest run in a subprocess of a worker inherits the isolated environment.
    if index is None or environ.get("BH_TEST_ISOLATED") == worker:
        return
    environ["BH_TEST_ISOLATED"] = worker
    base = Path(environ.get("BH_DATA_DIR") or ROOT / "var")
    data_dir = base / f"xdist-{worker}"
    data_dir.mkdir(parents=True, exist_ok=True)
    environ["BH_DATA_DIR"] = str(data_dir)
    if environ.get("REDIS_URL"):
        environ["REDIS_URL"] = redis_url_for_worker(environ["REDIS_URL"], index)
    hypothesis = Path(environ.get("HYPOTHESIS_STORAGE_DIRECTORY") or ROOT / ".hypothesis")
    environ["HYPOTHESIS_STORAGE_DIRECTORY"] = str(hypothesis / worker)


isolate(os.environ)
