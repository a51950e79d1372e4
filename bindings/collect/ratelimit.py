"""A token bucket per AWS account and region, shared by every worker through Redis.

The AWS Load Balancer Controller draws from the same per-account, per-region API buckets as we do
(ELB Describe refills at 10/s, docs/facts.md §5.3), so the poller takes only a configured share.
Without Redis (the embedded demo) the bucket is per process, which is enough for one worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis

# Refill and take atomically in Redis: KEYS[1] = bucket; ARGV = rate, capacity, now (s).
# Returns 0 when a token was taken, else the seconds to wait for one.
_TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return tostring(wait)
"""


class TokenBucket:
    """`take()` blocks until a call is allowed. Capacity 1 keeps bursts at the configured rate."""

    def __init__(
        self,
        key: str,
        *,
        rate: float,
        capacity: float = 1.0,
        redis_url: str = "",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.key = f"bh:ratelimit:{key}"
        self.rate = rate
        self.capacity = capacity
        self._sleep = sleep
        self._clock = clock
        self._redis = redis.Redis.from_url(redis_url) if redis_url else None
        self._script = self._redis.register_script(_TAKE) if self._redis else None
        self._lock = threading.Lock()
        self._tokens = capacity
        self._at = clock()

    def _try_take(self) -> float:
        now = self._clock()
        if self._script is not None:
            return float(self._script(keys=[self.key], args=[self.rate, self.capacity, now]))
        with self._lock:
            self._tokens = min(self.capacity, self._tokens + max(0.0, now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def try_take(self) -> bool:
        """Take a token if one is there now; never waits (for work that is deferred instead)."""
        return self._try_take() <= 0

    def take(self) -> None:
        while True:
            wait = self._try_take()
            if wait <= 0:
                return
            self._sleep(wait)


_buckets: dict[str, TokenBucket] = {}


def bucket_for(account_id: str, region: str, *, rate: float, redis_url: str) -> TokenBucket:
    """One bucket object per account+region per process (the shared state is in Redis)."""
    key = f"{account_id}:{region}"
    bucket = _buckets.get(key)
    if bucket is None or bucket.rate != rate:
        bucket = _buckets[key] = TokenBucket(key, rate=rate, redis_url=redis_url)
    return bucket
