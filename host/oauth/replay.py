"""Replay caches: remember each one-time value (a DPoP proof's or client assertion's
``jti``) until it could no longer be accepted anyway.

:class:`DatabaseReplayCache` keeps them in the ``oauth_replay`` table whose primary key
makes the check-and-remember one atomic statement, so it holds across gunicorn workers
and machines. :class:`MemoryReplayCache` is for unit tests and single-process tools.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime, timezone
from typing import Protocol

from sqlalchemy import delete
from sqlalchemy.orm import Session


class ReplayCache(Protocol):
    """Remembers one-time values."""

    def first_use(self, key: str, expires_at: int) -> bool:
        """Record ``key`` until ``expires_at`` (epoch seconds); return False if it was already recorded."""


def _digest(key: str) -> str:
    # Fixed length and nothing of the value itself (a jti is the client's text) in the table.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class MemoryReplayCache:
    """A replay cache in this process's memory."""

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

    def __len__(self) -> int:
        return len(self._seen)


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
