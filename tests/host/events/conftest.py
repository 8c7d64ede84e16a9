"""Fixtures of the outbox tests: the demo app with its plugins' ``canopy_on_event`` replaced by
a recording stand-in, a hand-moved clock, and events written straight into the outbox."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from host.db import get_database, utcnow
from host.events import outbox
from host.events.models import OutboxEvent
from host.runtime import get_runtime
from host.runtime.invoke import ERROR, OK, Outcome

PLUGIN = "sh.deals"  # a bundled plugin with canopy_on_event, installed by the demo


class Hook:
    """Stands in for ``runtime.event``: records the ids it is given and answers ``status``."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.status = OK
        self._lock = threading.Lock()

    def __call__(self, ctx, event) -> Outcome:
        with self._lock:
            self.calls.append(event.id)
        error = None if self.status == OK else RuntimeError("the plugin's back end is down")
        return Outcome(ctx.plugin_id, outbox.HOOK, self.status, error=error)

    def fail(self) -> None:
        """Answer every later call as a hook that raised."""
        self.status = ERROR


@pytest.fixture
def hook(demo_app, monkeypatch) -> Hook:
    """The demo app's ``canopy_on_event`` calls, recorded (``hook.fail()`` makes them fail)."""
    stand_in = Hook()
    monkeypatch.setattr(get_runtime(demo_app), "event", stand_in)
    return stand_in


class Clock:
    """The outbox's ``utcnow``, moved by hand."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Stops the outbox's clock; ``clock.advance(timedelta)`` moves it."""
    stopped = Clock()
    monkeypatch.setattr(outbox, "utcnow", stopped)
    return stopped


@pytest.fixture
def add_events(demo_app):
    """``add_events(n, plugin_id=PLUGIN)`` writes ``n`` events (as a business change would); returns their ids."""

    def add(n: int = 1, plugin_id: str = PLUGIN) -> list[int]:
        with get_database(demo_app).transaction(write=True) as session:
            return [outbox.emit(session, "test.happened", plugin_id=plugin_id, payload={"n": i}, branch_code="SH001")
                    for i in range(n)]

    return add


def event_rows(app) -> dict[int, OutboxEvent]:
    """Every outbox row, by id."""
    with get_database(app).transaction() as session:
        rows = session.scalars(select(OutboxEvent)).all()
        session.expunge_all()
    return {row.id: row for row in rows}
