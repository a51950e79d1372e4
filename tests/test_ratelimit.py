"""The AWS rate limit holds across workers: they share one bucket in Redis."""

from __future__ import annotations

import os
import threading
import time

import pytest
import time_machine

from bindings.collect.ratelimit import TokenBucket


def test_a_local_bucket_spaces_calls_at_the_configured_rate():
    # The bucket reads time.time(); its waits move the travelled clock instead of sleeping, and
    # like time.sleep they return a little late (else float rounding leaves 1e-10 s to wait forever).
    with time_machine.travel(1_000_000.0, tick=False) as traveller:
        bucket = TokenBucket("local-test", rate=20.0, sleep=lambda seconds: traveller.shift(seconds + 1e-6))
        waits = []
        for _ in range(11):
            before = time.time()
            bucket.take()
            waits.append(time.time() - before)
    # One token at start, then ten more at 20/s: 0.5 s in all, one twentieth of a second apiece.
    assert waits[0] == 0
    assert waits[1:] == pytest.approx([0.05] * 10, abs=1e-5)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (CI provides it)")
def test_two_workers_sharing_redis_never_exceed_the_rate():
    url = os.environ["REDIS_URL"]
    key = f"shared-{time.time_ns()}"
    stamps: list[float] = []
    lock = threading.Lock()

    def worker():
        bucket = TokenBucket(key, rate=10.0, redis_url=url)  # separate clients, like two processes
        for _ in range(10):
            bucket.take()
            with lock:
                stamps.append(time.time())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    stamps.sort()
    # Any window of one second holds at most rate + capacity calls.
    for i, start in enumerate(stamps):
        in_window = [s for s in stamps[i:] if s - start < 1.0]
        assert len(in_window) <= 11
    assert stamps[-1] - stamps[0] >= 1.8  # 20 calls at 10/s with a bucket of 1
