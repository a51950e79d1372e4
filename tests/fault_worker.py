"""A Celery worker whose cluster sync stops inside its transaction, for kill -9 tests.

Run by tests/test_faults.py (`python -m tests.fault_worker`); it patches
`bindings.store.sync.upsert` in this process only, writes the marker file once the
TargetGroupBinding rows are written (uncommitted), then waits to be killed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django.setup()

from bindings import models as m  # noqa: E402
from bindings.store import sync  # noqa: E402

_real_upsert = sync.upsert
_marker = Path(os.environ["BH_FAULT_MARKER"])


def _stalling_upsert(model, **kwargs):
    stats = _real_upsert(model, **kwargs)
    if model is m.TargetGroupBinding:
        _marker.write_text("inside the sync transaction")
        time.sleep(120)
    return stats


sync.upsert = _stalling_upsert

if __name__ == "__main__":
    from celery.__main__ import main

    from tests.factories import WORKER_ARGS

    sys.argv = ["celery", *WORKER_ARGS]
    main()
