"""The expiry sweep and the purge of old idempotency keys (``host/payments/sweep.py``)."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select, update

from host.db import get_database, utcnow
from host.events.models import OutboxEvent
from host.payments import idempotency, intents, sweep
from host.payments.models import IdempotencyRecord, IntentState, IntentTransition, PaymentIntent

from .conftest import SHOP


def due_intent(app, *, overdue: timedelta = timedelta(minutes=1), customer_id: str | None = None) -> str:
    """A shop intent awaiting confirmation whose window ended ``overdue`` ago (negative: still open)."""
    with app.app_context(), get_database(app).transaction(write=True) as session:
        request = intents.IntentRequest(amount=1234, currency="CNY", description="Electricity bill", metadata={})
        intent = intents.create(session, plugin_id=SHOP, request=request, customer_id=customer_id, branch_code="SH001")
        intent.expires_at = utcnow() - overdue
        return intent.id


def expiry_of(app, intent_id: str) -> tuple[str, int, list[OutboxEvent]]:
    """The intent's state, its ``expired`` transitions and its ``payment_intent.expired`` events."""
    with app.app_context(), get_database(app).transaction() as session:
        state = session.get(PaymentIntent, intent_id).state
        transitions = session.scalar(select(func.count()).select_from(IntentTransition).where(
            IntentTransition.intent_id == intent_id, IntentTransition.to_state == IntentState.EXPIRED))
        events = [event for event in session.scalars(select(OutboxEvent).where(
            OutboxEvent.type == "payment_intent.expired")) if event.payload["intent"]["id"] == intent_id]
        return state, transitions, events


def set_state(app, intent_id: str, state: str) -> None:
    """Move the intent as the confirmation page or a cancel would, in a transaction of its own."""
    with app.app_context(), get_database(app).transaction(write=True) as session:
        intents.transition(session, session.get(PaymentIntent, intent_id), state, actor="test")


def test_a_due_intent_is_recorded_expired_with_its_transition_and_event(pay_app):
    intent_id = due_intent(pay_app)
    assert sweep.expire_due(get_database(pay_app)) == 1
    state, transitions, events = expiry_of(pay_app, intent_id)
    assert (state, transitions, len(events)) == (IntentState.EXPIRED, 1, 1)
    event = events[0]
    assert (event.plugin_id, event.branch_code, event.delivered_at) == (SHOP, "SH001", None)  # for the worker to deliver
    assert event.payload["intent"]["state"] == "expired"
    with pay_app.app_context(), get_database(pay_app).transaction() as session:
        transition = session.scalar(select(IntentTransition).where(IntentTransition.intent_id == intent_id,
                                                                   IntentTransition.to_state == IntentState.EXPIRED))
        assert (transition.from_state, transition.actor, transition.reason) == (
            IntentState.REQUIRES_CONFIRMATION, "host", "not confirmed in time")
    assert sweep.expire_due(get_database(pay_app)) == 0  # recorded once
    assert expiry_of(pay_app, intent_id)[1:2] == (1,)


def test_an_intent_not_yet_due_is_left_alone(pay_app):
    intent_id = due_intent(pay_app, overdue=-timedelta(minutes=5))
    assert sweep.expire_due(get_database(pay_app)) == 0
    assert expiry_of(pay_app, intent_id) == (IntentState.REQUIRES_CONFIRMATION, 0, [])


def test_intents_no_longer_awaiting_confirmation_are_left_alone(pay_app):
    settled = {state: due_intent(pay_app) for state in (IntentState.SUCCEEDED, IntentState.CANCELED, IntentState.FAILED)}
    for state, intent_id in settled.items():
        set_state(pay_app, intent_id, state)
    assert sweep.expire_due(get_database(pay_app)) == 0
    for state, intent_id in settled.items():
        assert expiry_of(pay_app, intent_id) == (state, 0, [])


def test_an_intent_confirmed_after_the_sweep_chose_it_is_left_alone(pay_app, monkeypatch):
    """The customer's confirmation commits between the sweep's look and its lock: the sweep
    decides again under the lock and leaves the payment as it is."""
    confirmed, waiting = due_intent(pay_app), due_intent(pay_app)
    chosen = sweep.due_intent_ids

    def choose_then_confirm(session, *, limit):
        ids = chosen(session, limit=limit)
        assert set(ids) == {confirmed, waiting}
        set_state(pay_app, confirmed, IntentState.SUCCEEDED)
        return ids

    monkeypatch.setattr(sweep, "due_intent_ids", choose_then_confirm)
    assert sweep.expire_due(get_database(pay_app)) == 1
    assert expiry_of(pay_app, confirmed) == (IntentState.SUCCEEDED, 0, [])
    assert expiry_of(pay_app, waiting)[:2] == (IntentState.EXPIRED, 1)


def test_the_sweep_is_batch_limited_and_takes_the_longest_overdue_first(pay_app):
    ids = [due_intent(pay_app, overdue=timedelta(minutes=minutes)) for minutes in (1, 3, 2)]
    database = get_database(pay_app)
    assert sweep.expire_due(database, limit=2) == 2
    assert [expiry_of(pay_app, intent_id)[0] for intent_id in ids] == [
        IntentState.REQUIRES_CONFIRMATION, IntentState.EXPIRED, IntentState.EXPIRED]
    assert sweep.expire_due(database, limit=2) == 1
    assert sweep.expire_due(database, limit=2) == 0


def test_concurrent_sweeps_expire_each_intent_once(pay_app, postgres_only):
    ids = {due_intent(pay_app) for _ in range(12)}
    database = get_database(pay_app)
    gate = threading.Barrier(4)
    counts: list[int] = []

    def sweeper():
        gate.wait()
        counts.append(sum(iter(lambda: sweep.expire_due(database, limit=3), 0)))

    threads = [threading.Thread(target=sweeper) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(counts) == len(ids)
    for intent_id in ids:
        state, transitions, events = expiry_of(pay_app, intent_id)
        assert (state, transitions, len(events)) == (IntentState.EXPIRED, 1, 1)


def test_the_sweep_skips_an_intent_being_confirmed_without_waiting(pay_app, postgres_only):
    """A confirmation holds the intent's row lock: the sweep passes it by rather than blocking,
    and once the payment commits there is nothing left to expire."""
    intent_id = due_intent(pay_app)
    database = get_database(pay_app)
    with database.transaction(write=True) as confirming:
        intent = confirming.scalar(select(PaymentIntent).where(PaymentIntent.id == intent_id).with_for_update())
        result: list[int] = []
        sweeper = threading.Thread(target=lambda: result.append(sweep.expire_due(database)))
        sweeper.start()
        sweeper.join(60)
        assert not sweeper.is_alive() and result == [0]  # it did not wait for the lock
        intents.transition(confirming, intent, IntentState.SUCCEEDED, actor="customer")
    assert sweep.expire_due(database) == 0
    assert expiry_of(pay_app, intent_id) == (IntentState.SUCCEEDED, 0, [])


# -- idempotency keys ----------------------------------------------------------------------


def keys(app) -> set[str]:
    with app.app_context(), get_database(app).transaction() as session:
        return set(session.scalars(select(IdempotencyRecord.key)))


def test_purge_keys_removes_only_keys_past_their_keeping_time(pay_app):
    database = get_database(pay_app)
    with database.transaction(write=True) as session:
        for key in ("old", "edge", "recent"):
            idempotency.once(session, "client:shop", key, "create_intent", {"amount": 1}, lambda: (201, {"id": key}))
        now = utcnow()
        for key, age in (("old", idempotency.KEEP + timedelta(hours=1)), ("edge", idempotency.KEEP),
                         ("recent", timedelta(hours=23))):
            session.execute(update(IdempotencyRecord).where(IdempotencyRecord.key == key)
                            .values(created_at=now - age, expires_at=now - age + idempotency.KEEP))
    assert sweep.purge_keys(database) == 2
    assert keys(pay_app) == {"recent"}
    assert sweep.purge_keys(database) == 0
