"""The OAuth package's clock. Everything here asks :func:`now`, so tests can move time
(``monkeypatch.setattr(clock, "now", ...)``) instead of waiting for it."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


def epoch() -> int:
    """The current time in seconds since the epoch (what JWTs use)."""
    return int(now().timestamp())
