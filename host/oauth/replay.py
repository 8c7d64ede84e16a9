"""Replay caches: remember each one-time value (a DPoP proof's or client assertion's
``jti``) until it could no longer be accepted anyway.

Each check-and-remember is one atomic operation on storage every gunicorn worker and
machine shares, so a value is accepted once across all of them:

* :class:`RedisReplayCache` (when ``CANOPY_REDIS_URL`` is set): ``SET key 1 NX EX ttl``.
  Nothing is written to the database, so a resource request (``GET /api/v1/me``) writes
  nothing there; a value is spent the moment it is recorded, whatever the request's
  transaction does afterwards, and Redis forgets it when it could no longer be accepted.
* :class:`DatabaseReplayCache` (the embedded default): the ``oauth_replay`` table, whose
  primary key makes the check-and-remember one ``INSERT … ON CONFLICT DO NOTHING`` in the
  request's own transaction.
* :class:`MemoryReplayCache`: for unit tests and single-process tools.

:func:`request_replay_cache` chooses between the first two for a request.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Protocol, Sequence

from sqlalchemy import delete
from sqlalchemy.orm import Session

from ..problems import Problem
from . import clock as oauth_clock

log = logging.getLogger("canopy.oauth")

#: Where the app keeps its shared (Redis) replay cache.
EXTENSION = "canopy.oauth.replay"
#: The prefix of every Redis key of the replay cache.
REDIS_PREFIX = "canopy:replay:"


class ReplayCache(Protocol):
    """Remembers one-time values."""

    #: Keys recorded in the caller's database transaction, which a rollback would lose
    #: (always empty for caches outside the database).
    recorded: Sequence[tuple[str, int]]

    def first_use(self, key: str, expires_at: int) -> bool:
        """Record ``key`` until ``expires_at`` (epoch seconds); return False if it was already recorded."""

    def restore(self) -> None:
        """Record again every key of :attr:`recorded` (after the caller's transaction rolled back)."""


class ReplayCacheUnavailable(Problem):
    """The shared replay cache cannot be reached: no one-time value can be accepted, so the
    request is refused (503, ``Retry-After``) rather than let a replay through."""

    def __init__(self) -> None:
        super().__init__(503, "Service unavailable",
                         "One-time proofs cannot be checked for a moment; try again shortly with a fresh one.")


def _digest(key: str) -> str:
    # Fixed length and nothing of the value itself (a jti is the client's text) in the table.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class MemoryReplayCache:
    """A replay cache in this process's memory."""

    recorded: Sequence[tuple[str, int]] = ()

    def __init__(self, clock=time.time) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def first_use(self, key: str, expires_at: int) -> bool:
        now = self._clock()
        with self._lock:
            for stale in [k for k, until in self._seen.items() if until <= now]:
                del self._seen[stale]
            if key in self._seen:
                return False
            self._seen[key] = expires_at
            return True

    def restore(self) -> None:
        """Nothing to do: no transaction can undo what this cache recorded."""

    def __len__(self) -> int:
        return len(self._seen)


class RedisReplayCache:
    """A replay cache in Redis, shared by every worker and machine: one ``SET key 1 NX EX
    ttl`` per value, atomic on the Redis server. Safe to share between threads (redis-py's
    connection pool) and across gunicorn's fork (the pool reconnects in a new process).

    Keys are ``canopy:replay:<purpose>:<SHA-256 of the namespaced value>``; the purpose is
    the host's own namespace (``dpop``, ``assertion``), so DPoP proofs and client
    assertions never share a key. When Redis cannot be reached it raises
    :class:`ReplayCacheUnavailable`: it never accepts a value it could not record.
    """

    recorded: Sequence[tuple[str, int]] = ()

    def __init__(self, client: Any, *, prefix: str = REDIS_PREFIX, clock: Callable[[], float] | None = None) -> None:
        import redis

        self.client = client
        self.prefix = prefix
        self._clock = clock or (lambda: oauth_clock.now().timestamp())
        self.errors = redis.RedisError  #: what the client raises when Redis cannot be reached

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "RedisReplayCache":
        """A cache on the Redis server at ``url`` (short timeouts: a request fails fast, with 503)."""
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1), **kwargs)

    def key_for(self, key: str) -> str:
        """The Redis key under which ``key`` is recorded."""
        purpose, _, _ = key.partition(":")
        return f"{self.prefix}{purpose}:{_digest(key)}"

    def first_use(self, key: str, expires_at: int) -> bool:
        ttl = max(1, math.ceil(expires_at - self._clock()))
        try:
            return bool(self.client.set(self.key_for(key), b"1", nx=True, ex=ttl))
        except self.errors as exc:
            log.error("replay cache unreachable (%s): one-time values are refused", exc.__class__.__name__)
            raise ReplayCacheUnavailable() from exc

    def restore(self) -> None:
        """Nothing to do: a value is spent in Redis at once, whatever the request's transaction does."""


class DatabaseReplayCache:
    """A replay cache in the request's own database session.

    It writes in the caller's transaction (a second connection would wait on SQLite's
    single writer). Keys it recorded are kept in :attr:`recorded` so that a request that
    rolls back can record them again with :meth:`restore`: a presented proof stays spent
    even when the request it came with failed.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.recorded: list[tuple[str, int]] = []

    def first_use(self, key: str, expires_at: int) -> bool:
        digest = _digest(key)
        if self._insert(digest, expires_at):
            self.recorded.append((digest, expires_at))
            return True
        return False

    def _insert(self, digest: str, expires_at: int) -> bool:
        from .models import ReplayEntry

        now = datetime.now(timezone.utc)
        until = datetime.fromtimestamp(expires_at, timezone.utc)
        # An expired entry under the same key no longer protects anything: make room.
        self.session.execute(delete(ReplayEntry).where(ReplayEntry.key == digest, ReplayEntry.expires_at <= now))
        statement = insert_ignore(self.session, ReplayEntry, key=digest, expires_at=until).returning(ReplayEntry.key)
        return self.session.execute(statement).scalar() is not None

    def restore(self) -> None:
        """Record again, in the session's current transaction, every key this cache recorded."""
        for digest, expires_at in self.recorded:
            self._insert(digest, expires_at)


def shared_replay_cache(app) -> RedisReplayCache | None:
    """The app's Redis replay cache when ``REDIS_URL`` is set (made once per app), else None."""
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    cache = app.extensions.get(EXTENSION)
    if cache is None:
        # Creating a client opens no connection; two threads racing here keep the first one.
        cache = app.extensions.setdefault(EXTENSION, RedisReplayCache.from_url(url))
    return cache


def request_replay_cache(app, session: Callable[[], Session]) -> ReplayCache:
    """The replay cache for one request: the app's Redis cache when configured, else a
    :class:`DatabaseReplayCache` in the request's session (``session()``)."""
    shared = shared_replay_cache(app)
    return shared if shared is not None else DatabaseReplayCache(session())


def insert_ignore(session: Session, model, **values):
    """``INSERT … ON CONFLICT DO NOTHING`` of ``values`` for the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model).values(**values).on_conflict_do_nothing()


def purge_expired(session: Session) -> int:
    """Delete entries that have expired; return how many."""
    from .models import ReplayEntry

    result = session.execute(delete(ReplayEntry).where(ReplayEntry.expires_at <= datetime.now(timezone.utc)))
    return result.rowcount or 0
