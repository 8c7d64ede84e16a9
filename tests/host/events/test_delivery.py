"""Where events are delivered (``EVENTS_DELIVERY``): at the end of the request that wrote them
(``inline``), or by the workers, whom the request wakes through Redis (``worker``)."""

from __future__ import annotations

import logging
import uuid

import pytest

from host import events
from host.config import ConfigError
from host.events import WAKE_BACKLOG, delivery_mode, note_emitted, wake_workers

from .conftest import event_rows

UNREACHABLE = "redis://127.0.0.1:1/0"


@pytest.fixture
def wake_key(monkeypatch):
    """A wake-up list of this test's own (test runs share the test Redis)."""
    key = f"canopy:test:wake:{uuid.uuid4().hex}"
    monkeypatch.setattr(events, "WAKE_KEY", key)
    return key


@pytest.fixture
def redis_client(redis_url, wake_key):
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.delete(wake_key)
    client.close()


def request_writing_events(app, add_events, n: int = 1) -> list[int]:
    """A request that writes events and says so, as the payment routes do; its teardown runs."""
    with app.test_request_context("/"):
        ids = add_events(n)
        note_emitted()
    return ids


def test_inline_a_request_delivers_its_events_at_its_end(demo_app, hook, add_events):
    assert delivery_mode(demo_app.config) == "inline"  # the default
    [event_id] = request_writing_events(demo_app, add_events)
    assert hook.calls == [f"evt_{event_id}"]
    assert event_rows(demo_app)[event_id].delivered_at is not None


def test_a_request_that_wrote_nothing_delivers_nothing(demo_app, hook, add_events):
    [event_id] = add_events()  # written outside any request, not noted
    with demo_app.test_request_context("/"):
        pass
    assert hook.calls == [] and event_rows(demo_app)[event_id].delivered_at is None


def test_worker_mode_without_redis_leaves_delivery_to_the_polling_workers(demo_app, hook, add_events):
    demo_app.config["EVENTS_DELIVERY"] = "worker"
    [event_id] = request_writing_events(demo_app, add_events)
    assert hook.calls == [] and event_rows(demo_app)[event_id].delivered_at is None
    assert wake_workers(demo_app) is False  # no Redis: nothing to push, the workers poll


def test_worker_mode_with_redis_wakes_the_workers(demo_app, hook, add_events, redis_url, redis_client, wake_key):
    demo_app.config.update(EVENTS_DELIVERY="worker", REDIS_URL=redis_url)
    [event_id] = request_writing_events(demo_app, add_events)
    assert hook.calls == [] and event_rows(demo_app)[event_id].delivered_at is None
    assert redis_client.lrange(wake_key, 0, -1) == [b"1"]
    for _ in range(WAKE_BACKLOG + 5):
        request_writing_events(demo_app, add_events)
    assert redis_client.llen(wake_key) == WAKE_BACKLOG  # bounded: one wake-up starts a pass that takes all


def test_inline_mode_does_not_push_wake_ups(demo_app, hook, add_events, redis_url, redis_client, wake_key):
    demo_app.config["REDIS_URL"] = redis_url
    request_writing_events(demo_app, add_events)
    assert len(hook.calls) == 1 and redis_client.llen(wake_key) == 0


def test_an_unreachable_redis_does_not_fail_the_request(demo_app, hook, add_events, wake_key, caplog):
    demo_app.config.update(EVENTS_DELIVERY="worker", REDIS_URL=UNREACHABLE)
    with caplog.at_level(logging.WARNING, logger="canopy.events"):
        [event_id] = request_writing_events(demo_app, add_events)
    assert event_rows(demo_app)[event_id].delivered_at is None  # still there for the workers' next poll
    assert "could not wake the event workers" in caplog.text


@pytest.mark.parametrize("value", ["cron", "", "inline,worker", "queue"])
def test_a_bad_events_delivery_setting_stops_the_start(app_factory, value):
    with pytest.raises(ConfigError, match="EVENTS_DELIVERY must be inline or worker"):
        app_factory(EVENTS_DELIVERY=value)


def test_events_delivery_comes_from_the_environment(app_factory, monkeypatch):
    monkeypatch.setenv("CANOPY_EVENTS_DELIVERY", "Worker")
    assert delivery_mode(app_factory().config) == "worker"
