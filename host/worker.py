"""``canopy worker``: the background work no request does (docs/operations.md, "The worker").

Each pass:

1. records the expiry of intents nobody confirmed in time (:func:`host.payments.sweep.expire_due`,
   at most every :data:`SWEEP_EVERY` seconds);
2. delivers a batch of due outbox events — those the sweep just wrote, new ones, and retries of
   failed ones whose backoff has passed (:func:`host.events.outbox.deliver_batch`);
3. about hourly, removes idempotency records past their keeping time
   (:func:`host.payments.sweep.purge_keys`);
4. runs the pre-review of one submitted version: one waiting for the workers
   (``PREREVIEW_RUNS=worker``), or one whose runner died half way
   (:func:`host.publishing.prereview_runs.run`).

After a pass that found a full batch the next one starts at once; otherwise the worker waits
``interval`` seconds — on the Redis list :data:`host.events.WAKE_KEY` when ``REDIS_URL`` is set
(``BLPOP``; requests push a wake-up after committing events, so delivery starts at once), or
simply sleeping (polling) without Redis. SIGTERM or SIGINT stops it after the pass under way.

Several workers may run at once, on one machine or many: claims are ``FOR UPDATE SKIP LOCKED``
(PostgreSQL), so no two deliver one event at the same time, and each intent is expired once.
Delivery stays at least once (a worker that dies mid-batch leaves its claims to expire);
plugins deduplicate by ``event.id``.
"""

from __future__ import annotations

import logging
import logging.config
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from .db import get_database
from . import events
from .events import delivery_mode
from .events.outbox import BATCH, Delivery, deliver_batch
from .payments.sweep import expire_due, purge_keys
from .publishing import health as release_health
from .publishing import prereview_runs
from .runtime import get_runtime

log = logging.getLogger("canopy.worker")

#: Seconds between idle passes unless ``--interval`` says otherwise.
DEFAULT_INTERVAL = 2.0
#: Seconds between expiry sweeps (an intent reads as expired at once; the record follows).
SWEEP_EVERY = 30.0
#: Seconds between purges of old idempotency records.
PURGE_EVERY = 3600.0
#: The longest single ``BLPOP``: a worker told to stop notices within this many seconds (a
#: wake-up still ends the wait at once).
WAIT_SLICE = 1.0
#: The blocking Redis connection's socket timeout beyond BLPOP's own wait.
WAIT_MARGIN = 5.0


@dataclass(frozen=True)
class PassReport:
    """What one pass did (``None``: that step was not due this pass)."""

    expired: int | None = None
    delivery: Delivery = field(default_factory=Delivery)
    purged: int | None = None
    batch: int = BATCH
    failures: tuple[str, ...] = ()  #: the steps that raised, each with its error
    prereviewed: str | None = None  #: the submitted version pre-reviewed in this pass ("plugin version")

    @property
    def busy(self) -> bool:
        """Whether a step met its batch limit, or a pre-review ran (and none failed), so more work
        is likely waiting."""
        return not self.failures and (self.delivery.claimed >= self.batch or (self.expired or 0) >= self.batch
                                      or self.prereviewed is not None)

    @property
    def idle(self) -> bool:
        """Whether the pass found nothing to do (and nothing failed)."""
        return not (self.expired or self.delivery.claimed or self.purged or self.failures or self.prereviewed)

    def summary(self) -> str:
        """One line for people: what was expired, delivered and purged."""
        parts = [] if self.expired is None else [f"intents expired: {self.expired}"]
        d = self.delivery
        parts.append(f"events delivered: {d.delivered}, to retry: {d.failed}, given up: {d.given_up}")
        if self.purged is not None:
            parts.append(f"idempotency keys purged: {self.purged}")
        if self.prereviewed is not None:
            parts.append(f"pre-reviewed: {self.prereviewed}")
        return "; ".join(parts)


class RedisWake:
    """Waits on :data:`~host.events.WAKE_KEY` with ``BLPOP``, on a connection of its own.

    It is made from the app's Redis client (the replay and token caches' one, from
    ``REDIS_URL``) with the same settings, but a socket timeout longer than the wait: the
    shared client's one-second timeout, right for requests, would cut every ``BLPOP`` short.
    """

    def __init__(self, client: Any, errors: type[Exception]) -> None:
        self.client = client
        self.errors = errors  #: what the client raises when Redis cannot be reached

    @classmethod
    def for_app(cls, app: Flask, interval: float) -> "RedisWake | None":
        """The wake-up channel of ``app`` when ``REDIS_URL`` is set, else None."""
        import redis

        from .oauth.replay import shared_replay_cache

        cache = shared_replay_cache(app)
        if cache is None:
            return None
        pool = cache.client.connection_pool
        settings = {**pool.connection_kwargs, "socket_timeout": min(interval, WAIT_SLICE) + WAIT_MARGIN}
        client = redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **settings))
        return cls(client, cache.errors)

    def wait(self, seconds: float) -> bool:
        """Block until a wake-up arrives (True) or ``seconds`` pass (False)."""
        return self.client.blpop([events.WAKE_KEY], timeout=seconds) is not None


class Worker:
    """Runs passes (:meth:`run_pass`) until :meth:`stop` is called (see the module's description)."""

    def __init__(self, app: Flask, *, interval: float = DEFAULT_INTERVAL, batch: int = BATCH,
                 sweep_every: float = SWEEP_EVERY, purge_every: float = PURGE_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.database = get_database(app)
        self.runtime = get_runtime(app)
        self.interval = interval
        self.batch = batch
        self.sweep_every = sweep_every
        self.purge_every = purge_every
        self.clock = clock
        self.wake = RedisWake.for_app(app, interval)
        self._stopping = threading.Event()
        self._last_sweep: float | None = None
        self._last_purge: float | None = None
        self._last_health: float | None = None

    def _due(self, last: float | None, every: float, now: float) -> bool:
        return last is None or now - last >= every

    def run_pass(self) -> PassReport:
        """Sweep expiries (when due), deliver one batch of events, purge old keys (when due).

        A step that raises is logged and named in the report's ``failures``; the others still
        run (a sweep that keeps failing must not hold up delivery) and it is tried again next pass.
        """
        failures: list[str] = []

        def attempt(step: str, work: Callable[[], Any]) -> Any:
            try:
                return work()
            except Exception as exc:  # noqa: BLE001 - reported; the pass goes on
                log.exception("worker pass: %s failed", step)
                failures.append(f"{step}: {exc.__class__.__name__}: {str(exc)[:300]}")
                return None

        with self.app.app_context():
            now = self.clock()
            expired = purged = None
            if self._due(self._last_sweep, self.sweep_every, now):
                expired = attempt("expiry sweep", lambda: expire_due(self.database, limit=self.batch))
                if expired is not None:  # a full batch: sweep again next pass, not in SWEEP_EVERY seconds
                    self._last_sweep = None if expired >= self.batch else now
            delivery = attempt("event delivery", lambda: deliver_batch(self.runtime, self.database, limit=self.batch))
            if self._due(self._last_purge, self.purge_every, now):
                purged = attempt("idempotency key purge", lambda: purge_keys(self.database))
                if purged is not None:
                    self._last_purge = now
            health = self.app.extensions.get(release_health.EXTENSION)
            if health is not None and self._due(self._last_health, health.thresholds.flush_seconds, now):
                self._last_health = now
                attempt("release health", health.flush)  # gray versions' payments, even with no calls here
            # one submitted version per pass (a pre-review may take minutes): one waiting for the
            # workers, or one whose runner died — its claim ran out
            claimed = attempt("pre-review", lambda: prereview_runs.run(self.app))
            prereviewed = " ".join(claimed) if claimed else None
        report = PassReport(expired, delivery or Delivery(), purged, self.batch, tuple(failures), prereviewed)
        if report.idle:
            log.debug("worker pass: nothing to do")
        else:
            log.info("worker pass: %s", report.summary(),
                     extra={"expired": expired, "delivered": delivery.delivered, "failed": delivery.failed,
                            "given_up": delivery.given_up, "purged": purged})
        return report

    def run(self) -> None:
        """Run passes until stopped; a pass that fails (say, the database is down) is logged and
        tried again after the interval."""
        mode = delivery_mode(self.app.config)
        log.info("worker started: %s, every %g s when idle; requests deliver events %s",
                 "waking on Redis" if self.wake else "polling", self.interval,
                 "themselves (inline)" if mode == "inline" else "through the workers")
        while not self._stopping.is_set():
            try:
                busy = self.run_pass().busy
            except Exception:  # noqa: BLE001 - keep running: the next pass may succeed
                log.exception("worker pass failed; trying again in %g s", self.interval)
                busy = False
            if self._stopping.is_set():
                break
            if not busy:
                self.wait()
        log.info("worker stopped")

    def wait(self) -> None:
        """Wait for a wake-up (Redis) or the interval, whichever comes first; return early when stopped.

        On Redis the wait is a series of short ``BLPOP`` s (:data:`WAIT_SLICE`), so a stop is
        noticed within a second without interrupting a read from a signal handler.
        """
        if self.wake is not None:
            deadline = time.monotonic() + self.interval
            try:
                while not self._stopping.is_set() and (left := deadline - time.monotonic()) > 0:
                    if self.wake.wait(min(left, WAIT_SLICE)):
                        log.debug("worker woken by a request")
                        return
                return
            except self.wake.errors as exc:
                log.warning("Redis unreachable (%s): polling every %g s", exc.__class__.__name__, self.interval)
        self._stopping.wait(self.interval)

    def stop(self) -> None:
        """Stop after the pass under way, or the wait under way (safe from another thread and from a signal handler)."""
        self._stopping.set()


def _stop_on_signals(worker: Worker) -> dict[int, Any]:
    """Make SIGTERM and SIGINT stop ``worker`` after its pass; return the handlers replaced."""

    def handle(signum: int, _frame: Any) -> None:
        log.info("%s received: stopping after this pass", signal.Signals(signum).name)
        worker.stop()

    return {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGINT)}


def _configure_logging() -> None:
    """JSON lines on stderr (as ``canopy serve``), unless the process has configured logging."""
    from .observability import logging_config

    if not logging.getLogger().handlers:
        logging.config.dictConfig(logging_config(os.environ.get("CANOPY_LOG_LEVEL", "INFO")))


@click.command("worker")
@click.option("--once", is_flag=True, help="Run one pass and exit (for cron and tests).")
@click.option("--interval", default=DEFAULT_INTERVAL, show_default=True, type=click.FloatRange(0, 3600, min_open=True),
              metavar="SECONDS", help="Seconds to wait between passes when there is nothing to do.")
@with_appcontext
def worker_command(once: bool, interval: float) -> None:
    """Deliver outbox events, record expired payment intents and purge old idempotency keys."""
    _configure_logging()
    worker = Worker(current_app._get_current_object(), interval=interval)  # type: ignore[attr-defined]
    if once:
        report = worker.run_pass()
        click.echo(f"worker pass: {report.summary()}")
        for failure in report.failures:  # a message and an exit status for cron, not a traceback
            click.echo(f"worker pass failed: {failure}", err=True)
        if report.failures:
            sys.exit(1)
        return
    previous = _stop_on_signals(worker)
    try:
        worker.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
