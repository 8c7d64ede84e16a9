"""Rate limits: at most N hits per key in a fixed window.

With ``CANOPY_REDIS_URL`` the counters live in Redis and hold across workers and
machines; without it, each process counts for itself (the embedded default).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class RateLimiterUnavailable(RuntimeError):
    """The shared counters cannot be reached (Redis is down): neither allow nor refuse."""


class RateLimiter(Protocol):
    """Counts hits per key."""

    def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        """Count one hit of ``key``; return False when it is over ``limit`` in this window."""


class MemoryRateLimiter:
    """Per-process fixed-window counters."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        window = int(self._clock() // window_seconds)
        with self._lock:
            if len(self._counts) > 100_000:  # forget old windows
                self._counts = {k: v for k, v in self._counts.items() if k[1] >= window}
            count = self._counts.get((key, window), 0) + 1
            self._counts[(key, window)] = count
        return count <= limit


class RedisRateLimiter:
    """Fixed-window counters in Redis (``INCR`` + ``EXPIRE``, one round trip)."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._errors = redis.RedisError

    def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        window = int(time.time() // window_seconds)
        name = f"canopy:rl:{key}:{window}"
        pipe = self._redis.pipeline()
        pipe.incr(name)
        pipe.expire(name, window_seconds * 2)
        try:
            count, _ = pipe.execute()
        except self._errors as exc:
            raise RateLimiterUnavailable(f"the rate limit counters cannot be reached ({exc.__class__.__name__})") from exc
        return int(count) <= limit


def rate_limiter(config) -> RateLimiter:
    """The rate limiter the configuration asks for."""
    url = config.get("REDIS_URL")
    return RedisRateLimiter(url) if url else MemoryRateLimiter()
