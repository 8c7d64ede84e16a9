"""``canopy worker``: one pass (``--once``), the loop, stopping on signals, waking on Redis and
several workers at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from canopy_sdk.types import BranchInfo
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from host import events, worker as worker_module
from host.db import get_database
from host.events.models import OutboxEvent
from host.events.outbox import Delivery
from host.payments.models import IntentState
from host.payments.sweep import expire_due
from host.runtime import get_runtime
from host.worker import PassReport, Worker
from tests.conftest import PLUGINS, SECRET
from tests.host.payments import conftest as payments
from tests.host.payments.test_sweep import due_intent, expiry_of, set_state

pay_app = payments.pay_app  # the payment tests' fixture: the demo app with a shop that hears events
SHOP = payments.SHOP

BIN = Path(sys.executable).parent
ONE_EXPIRED = ("worker pass: intents expired: 1; events delivered: 1, to retry: 0, given up: 0; "
               "idempotency keys purged: 0\n")


def run(app, *args: str):
    return app.test_cli_runner().invoke(args=["worker", *args])


def events_heard(app) -> list[dict]:
    """What the shop's canopy_on_event kept (it stores each event it is given)."""
    ctx = get_runtime(app).context(SHOP, branch=BranchInfo(code="SH001", name="SH"), locale="zh-CN", approved_scopes=[])
    return [ctx.storage.get(key) for key in ctx.storage.list("event:")]


class Spy:
    """Wraps ``runtime.event``: counts the calls per event id, then delivers for real."""

    def __init__(self, runtime) -> None:
        self.real = runtime.event
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, ctx, event):
        with self._lock:
            self.calls.append(event.id)
        return self.real(ctx, event)


@pytest.fixture
def spy(pay_app, monkeypatch):
    stand_in = Spy(get_runtime(pay_app))
    monkeypatch.setattr(get_runtime(pay_app), "event", stand_in)
    return stand_in


# -- one pass ----------------------------------------------------------------------------


def test_one_pass_records_a_due_expiry_and_delivers_its_event_to_the_plugin(pay_app):
    due = due_intent(pay_app)
    waiting = due_intent(pay_app, overdue=-timedelta(minutes=5))  # its window is still open
    confirmed = due_intent(pay_app)
    set_state(pay_app, confirmed, IntentState.SUCCEEDED)  # confirmed just before its time was up
    result = run(pay_app, "--once")
    assert result.exit_code == 0, result.output
    assert result.stdout == ONE_EXPIRED
    state, transitions, [event] = expiry_of(pay_app, due)
    assert (state, transitions) == (IntentState.EXPIRED, 1)
    assert event.delivered_at is not None and event.attempts == 1
    assert events_heard(pay_app) == [{"type": "payment_intent.expired", "intent": due, "customer": None}]
    assert expiry_of(pay_app, waiting) == (IntentState.REQUIRES_CONFIRMATION, 0, [])
    assert expiry_of(pay_app, confirmed) == (IntentState.SUCCEEDED, 0, [])
    again = run(pay_app, "--once")
    assert again.exit_code == 0 and again.stdout.startswith("worker pass: intents expired: 0; events delivered: 0,")


def test_once_exits_1_with_a_message_when_the_pass_fails(pay_app, monkeypatch):
    def down(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    due = due_intent(pay_app)
    assert expire_due(get_database(pay_app)) == 1  # its event waits for delivery
    monkeypatch.setattr(worker_module, "expire_due", down)
    result = run(pay_app, "--once")
    assert result.exit_code == 1
    assert result.stderr.startswith("worker pass failed: expiry sweep: OperationalError")
    assert "Traceback" not in result.output
    # The other steps still ran: a failing sweep does not hold up delivery.
    assert result.stdout.startswith("worker pass: events delivered: 1, to retry: 0, given up: 0;")
    assert expiry_of(pay_app, due)[2][0].delivered_at is not None


@pytest.mark.parametrize("interval", ["0", "-1", "0.0", "soon", "3601"])
def test_the_interval_must_be_a_positive_number_of_seconds(app, interval):
    result = run(app, "--interval", interval)
    assert result.exit_code == 2
    assert "Invalid value for '--interval'" in result.stderr and interval in result.stderr
    assert "Traceback" not in result.output


def test_a_failing_plugin_is_retried_by_a_later_pass(pay_app, monkeypatch):
    due = due_intent(pay_app)
    runtime = get_runtime(pay_app)
    real = runtime.event
    monkeypatch.setattr(runtime, "event", lambda ctx, event: real(ctx, None))  # the hook call fails
    worker = Worker(pay_app)
    first = worker.run_pass()
    assert (first.expired, first.delivery) == (1, Delivery(claimed=1, failed=1))
    [event] = expiry_of(pay_app, due)[2]
    assert event.delivered_at is None and event.last_error.startswith("error: ")
    monkeypatch.setattr(runtime, "event", real)  # the plugin recovers
    second = worker.run_pass()
    assert second.expired is None  # the sweep runs every SWEEP_EVERY seconds, not every pass
    assert second.delivery == Delivery(claimed=1, delivered=1)
    assert [e["type"] for e in events_heard(pay_app)] == ["payment_intent.expired"]


def test_a_pass_purges_old_idempotency_keys_about_hourly(pay_app, monkeypatch):
    purges: list[int] = []
    monkeypatch.setattr(worker_module, "purge_keys", lambda database: purges.append(1) or 0)
    now = [1000.0]
    worker = Worker(pay_app, clock=lambda: now[0])
    worker.run_pass()
    now[0] += worker_module.PURGE_EVERY - 1
    worker.run_pass()
    assert len(purges) == 1
    now[0] += 1
    assert worker.run_pass().purged == 0 and len(purges) == 2


# -- the loop and signals ------------------------------------------------------------------


def test_sigterm_stops_the_worker_after_the_pass_under_way(pay_app, monkeypatch):
    due = due_intent(pay_app)
    passes: list[PassReport] = []
    real = Worker.run_pass

    def pass_then_signalled(self):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the pass is under way
        passes.append(real(self))
        return passes[-1]

    monkeypatch.setattr(Worker, "run_pass", pass_then_signalled)
    before = signal.getsignal(signal.SIGTERM)
    result = run(pay_app, "--interval", "3600")
    assert result.exit_code == 0, result.output
    assert len(passes) == 1 and passes[0].expired == 1 and passes[0].delivery.delivered == 1  # the pass finished
    assert expiry_of(pay_app, due)[2][0].delivered_at is not None
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are given back


@pytest.mark.slow
@pytest.mark.parametrize("waiting_on", ["a timer", "Redis"])
def test_a_waiting_worker_process_stops_on_sigterm(database_url, tmp_path, request, waiting_on):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANOPY_")}
    env.update(CANOPY_INSTANCE_PATH=str(tmp_path / "instance"), CANOPY_DATABASE_URL=database_url,
               CANOPY_PLUGIN_PATHS=str(PLUGINS), CANOPY_LOAD_ENTRY_POINTS="false", CANOPY_SECRET_KEY=SECRET,
               CANOPY_LOG_LEVEL="DEBUG")
    if waiting_on == "Redis":
        env["CANOPY_REDIS_URL"] = request.getfixturevalue("redis_url")
    process = subprocess.Popen([str(BIN / "canopy"), "worker", "--interval", "3600"], cwd=tmp_path, env=env,
                               stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        for line in process.stderr:
            seen.append(line)
            if "worker pass: nothing to do" in line:
                break
        [started] = [line for line in seen if "worker started" in line]
        assert ("waking on Redis" in started) == (waiting_on == "Redis")
        assert "nothing to do" in seen[-1], seen[-5:]
        process.send_signal(signal.SIGTERM)  # while it waits out its hour
        _, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    assert "SIGTERM received: stopping after this pass" in rest and "worker stopped" in rest


# -- waking on Redis -----------------------------------------------------------------------


@pytest.fixture
def wake_key(monkeypatch, redis_url):
    import redis

    key = f"canopy:test:wake:{uuid.uuid4().hex}"
    monkeypatch.setattr(events, "WAKE_KEY", key)
    yield key
    client = redis.Redis.from_url(redis_url)
    client.delete(key)
    client.close()


def test_without_redis_the_worker_polls(app):
    assert Worker(app).wake is None


def test_a_request_that_writes_events_wakes_a_waiting_worker(pay_app, redis_url, wake_key):
    """The worker waits an hour between idle passes, yet delivers as soon as a request commits
    events: the request's wake-up ends its wait."""
    pay_app.config.update(EVENTS_DELIVERY="worker", REDIS_URL=redis_url)
    worker = Worker(pay_app, interval=3600)
    assert worker.wake is not None
    finished: list[PassReport] = []
    passed = threading.Semaphore(0)
    real = worker.run_pass

    def counted():
        finished.append(real())
        passed.release()
        return finished[-1]

    worker.run_pass = counted  # type: ignore[method-assign]
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert passed.acquire(timeout=60)  # the first pass, at start: nothing to do
        assert finished[0].idle
        due_intent(pay_app)
        with pay_app.test_request_context("/"):
            assert expire_due(get_database(pay_app)) == 1  # a change that wrote an event …
            events.note_emitted()  # … in a request, whose end wakes the worker
        assert passed.acquire(timeout=60)
        assert finished[1].delivery == Delivery(claimed=1, delivered=1)
        assert [e["type"] for e in events_heard(pay_app)] == ["payment_intent.expired"]
    finally:
        worker.stop()
        events.wake_workers(pay_app)  # ends the wait under way
        thread.join(60)
    assert not thread.is_alive() and len(finished) >= 2


def test_an_unreachable_redis_falls_back_to_polling(app, caplog):
    import logging

    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    worker = Worker(app, interval=0.01)
    with caplog.at_level(logging.WARNING, logger="canopy.worker"):
        worker.wait()
    assert "Redis unreachable (ConnectionError): polling every 0.01 s" in caplog.text


# -- several workers -----------------------------------------------------------------------


def test_two_workers_at_once_expire_each_intent_once_and_deliver_each_event_once(pay_app, spy, postgres_only):
    due = [due_intent(pay_app) for _ in range(10)]
    workers = [Worker(pay_app, batch=4) for _ in range(2)]
    gate = threading.Barrier(len(workers))
    reports: list[PassReport] = []

    def one_pass(worker):
        gate.wait()
        reports.append(worker.run_pass())

    threads = [threading.Thread(target=one_pass, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(reports) == 2
    # Both sweeps look at the same most overdue intents and lock them SKIP LOCKED: together they
    # expire at least one batch and at most two, each intent once.
    assert 4 <= sum(r.expired for r in reports) <= 8
    assert sum(r.delivery.delivered for r in reports) == len(spy.calls)
    assert len(spy.calls) == len(set(spy.calls))  # no event delivered twice
    while (more := Worker(pay_app, batch=4).run_pass()).expired or more.delivery.claimed:
        pass
    expiries = [expiry_of(pay_app, intent_id) for intent_id in due]
    assert all((state, transitions, len(evts)) == (IntentState.EXPIRED, 1, 1) for state, transitions, evts in expiries)
    assert sorted(spy.calls) == sorted(f"evt_{evts[0].id}" for _, _, evts in expiries)
    with get_database(pay_app).transaction() as session:
        assert session.scalars(select(OutboxEvent).where(OutboxEvent.delivered_at.is_(None))).all() == []
