"""The outbox's delivery: claims, retries with backoff, giving up, several deliverers at once."""

from __future__ import annotations

import threading
from datetime import timedelta

from host.db import get_database
from host.events import outbox
from host.events.outbox import MAX_ATTEMPTS, Delivery, claim, deliver_batch, deliver_pending, retry_delay
from host.runtime import get_runtime

from .conftest import PLUGIN, event_rows


def deliver(app, **kwargs) -> Delivery:
    return deliver_batch(get_runtime(app), get_database(app), **kwargs)


def test_an_event_is_due_at_once_and_delivered_once(demo_app, hook, add_events):
    [event_id] = add_events()
    assert event_rows(demo_app)[event_id].next_attempt_at is not None
    assert deliver(demo_app) == Delivery(claimed=1, delivered=1)
    row = event_rows(demo_app)[event_id]
    assert row.delivered_at is not None and row.next_attempt_at is None and row.attempts == 1
    assert not row.given_up
    assert hook.calls == [f"evt_{event_id}"]
    assert deliver(demo_app) == Delivery()  # never again
    assert hook.calls == [f"evt_{event_id}"]


def test_the_retry_schedule_backs_off_then_gives_up():
    delays = [retry_delay(attempts) for attempts in range(1, MAX_ATTEMPTS + 1)]
    assert delays[:5] == [timedelta(0), timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2),
                          timedelta(minutes=4)]
    assert all(later >= earlier for earlier, later in zip(delays[:-1], delays[1:-1]))
    assert max(d for d in delays if d is not None) <= outbox.RETRY_CAP
    assert delays[-1] is None and retry_delay(MAX_ATTEMPTS + 5) is None


def test_a_failing_plugin_is_retried_with_backoff_and_given_up_after_the_maximum(demo_app, hook, add_events, clock):
    [event_id] = add_events()
    hook.fail()
    assert deliver(demo_app) == Delivery(claimed=1, failed=1)
    row = event_rows(demo_app)[event_id]
    assert (row.attempts, row.delivered_at, row.next_attempt_at) == (1, None, clock.now)  # the first retry is at once
    assert row.last_error == "error: RuntimeError"

    for attempts in range(2, MAX_ATTEMPTS):
        assert deliver(demo_app) == Delivery(claimed=1, failed=1)
        row = event_rows(demo_app)[event_id]
        wait = retry_delay(attempts)
        assert (row.attempts, row.next_attempt_at) == (attempts, clock.now + wait)
        assert deliver(demo_app) == Delivery()  # not before its time
        clock.advance(wait - timedelta(seconds=1))
        assert deliver(demo_app) == Delivery()
        clock.advance(timedelta(seconds=1))

    assert deliver(demo_app) == Delivery(claimed=1, given_up=1)
    row = event_rows(demo_app)[event_id]
    assert row.given_up and row.attempts == MAX_ATTEMPTS and row.delivered_at is None
    assert row.last_error == "error: RuntimeError"  # visible as failed, with why
    clock.advance(timedelta(days=30))
    assert deliver(demo_app) == Delivery()
    assert hook.calls == [f"evt_{event_id}"] * MAX_ATTEMPTS


def test_an_event_that_fails_once_is_delivered_on_its_retry(demo_app, hook, add_events):
    [event_id] = add_events()
    hook.fail()
    assert deliver(demo_app).failed == 1
    hook.status = "ok"
    assert deliver_pending(get_runtime(demo_app), get_database(demo_app)) == 1
    row = event_rows(demo_app)[event_id]
    assert row.delivered_at is not None and row.attempts == 2 and row.last_error  # the earlier failure stays on record


def test_a_claimed_event_is_left_to_its_claimer_until_the_claim_expires(demo_app, hook, add_events, clock):
    """A deliverer that dies after claiming leaves the events to be delivered again once its
    claim expires (at least once)."""
    add_events(3)
    rows, _ = claim(get_runtime(demo_app), get_database(demo_app), limit=2)  # then "dies"
    assert len(rows) == 2
    assert deliver(demo_app) == Delivery(claimed=1, delivered=1)  # only the unclaimed one
    clock.advance(outbox.CLAIM_MARGIN)
    assert deliver(demo_app) == Delivery()  # the claim also covers the hook's budget per event
    clock.advance(timedelta(seconds=2 * get_runtime(demo_app).invoker.budget(outbox.HOOK)))
    assert deliver(demo_app) == Delivery(claimed=2, delivered=2)
    assert sorted(hook.calls) == sorted(f"evt_{row_id}" for row_id in event_rows(demo_app))


def test_a_batch_is_limited_and_oldest_first(demo_app, hook, add_events):
    ids = add_events(5)
    assert deliver(demo_app, limit=2) == Delivery(claimed=2, delivered=2)
    assert hook.calls == [f"evt_{event_id}" for event_id in ids[:2]]
    assert deliver(demo_app, plugin_id="city.utilities") == Delivery()  # another plugin's only
    assert deliver(demo_app, plugin_id=PLUGIN) == Delivery(claimed=3, delivered=3)


def test_events_of_plugins_not_loaded_here_stay_pending(demo_app, hook, add_events):
    [event_id] = add_events(plugin_id="elsewhere.plugin")
    assert deliver(demo_app) == Delivery()
    row = event_rows(demo_app)[event_id]
    assert row.attempts == 0 and row.next_attempt_at is not None and not row.given_up


def test_a_plugin_without_canopy_on_event_has_nothing_to_be_told(demo_app, add_events):
    [event_id] = add_events(plugin_id="wealth.checkup")  # implements no canopy_on_event
    assert deliver(demo_app) == Delivery(claimed=1, delivered=1)
    assert event_rows(demo_app)[event_id].delivered_at is not None


def test_concurrent_deliverers_deliver_each_event_once(demo_app, hook, add_events):
    """Several deliverers (workers, or requests delivering inline) claim batches at once:
    every event reaches its plugin exactly once."""
    ids = add_events(30)
    gate = threading.Barrier(3)
    totals: list[Delivery] = []

    def deliverer():
        gate.wait()
        total = Delivery()
        while (batch := deliver(demo_app, limit=4)).claimed:
            total += batch
        totals.append(total)

    threads = [threading.Thread(target=deliverer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(hook.calls) == sorted(f"evt_{event_id}" for event_id in ids)  # each once
    assert sum(t.delivered for t in totals) == len(ids) and len(totals) == 3
    assert all(row.delivered_at is not None and row.attempts == 1 for row in event_rows(demo_app).values())


def test_concurrent_deliverers_skip_what_another_has_locked(demo_app, hook, add_events, postgres_only):
    """On PostgreSQL a claim skips rows another deliverer is claiming, rather than waiting."""
    from sqlalchemy import select

    from host.events.models import OutboxEvent

    first, second = add_events(2)
    database = get_database(demo_app)
    with database.transaction(write=True) as other:
        other.scalar(select(OutboxEvent).where(OutboxEvent.id == first).with_for_update())
        result: list[Delivery] = []
        thread = threading.Thread(target=lambda: result.append(deliver(demo_app)))
        thread.start()
        thread.join(60)
        assert not thread.is_alive() and result == [Delivery(claimed=1, delivered=1)]
    assert hook.calls == [f"evt_{second}"]
    assert deliver(demo_app) == Delivery(claimed=1, delivered=1)
