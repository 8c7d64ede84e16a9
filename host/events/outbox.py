"""Write events in the business transaction; deliver them after it commits.

:func:`emit` adds an :class:`~host.events.models.OutboxEvent` to the caller's session, so an
event exists exactly when its change was committed. :func:`deliver_batch` then delivers what
is due, in three steps:

1. **Claim** (one short write transaction): up to ``limit`` due events of plugins loaded here
   are selected ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; on SQLite writers take turns anyway)
   and their ``next_attempt_at`` is pushed past the time the batch may take. Another
   deliverer — a second worker, or a request delivering inline — skips them, so two never
   deliver one event at the same time.
2. **Deliver**, outside any transaction: each in-process plugin's ``canopy_on_event``, through
   the runtime (budget, bulkhead, error isolation).
3. **Record** the outcomes, in one write transaction for the batch: delivered, or failed with
   its error and due again after :func:`retry_delay` — or given up after :data:`MAX_ATTEMPTS`,
   left visible with ``last_error``.

Delivery is **at least once**: a deliverer that dies between steps 2 and 3 leaves its claim to
expire and the event is delivered again, so plugins deduplicate by ``event.id``. Partner back
ends will get webhooks from the same table.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from canopy_sdk.types import BranchInfo, Event
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..db import Database, utcnow
from ..publishing.models import PluginRelease
from ..runtime.invoke import ERROR, MISSING, Outcome
from ..runtime.registry import get_version
from .models import OutboxEvent

log = logging.getLogger("canopy.events")
HOOK = "canopy_on_event"
#: At most this many events are claimed by one call of :func:`deliver_batch`.
BATCH = 100
#: Attempts after which an event is given up (``next_attempt_at`` cleared, ``last_error`` kept).
MAX_ATTEMPTS = 10
#: The wait after the second failed attempt; it doubles with each further one, up to :data:`RETRY_CAP`.
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
#: A claim lasts this long plus the hook's budget for each claimed event.
CLAIM_MARGIN = timedelta(seconds=60)
_EVENTS = OutboxEvent.__table__
_EMIT = insert(_EVENTS)
#: One event's attempt recorded (a failure: its own values); never an event delivered meanwhile.
_UPDATE_ONE = update(_EVENTS).where(_EVENTS.c.id == bindparam("event_id"), _EVENTS.c.delivered_at.is_(None))
#: Events delivered now, all at once.
_DELIVERED = (update(_EVENTS)
              .where(_EVENTS.c.id.in_(bindparam("event_ids", expanding=True)), _EVENTS.c.delivered_at.is_(None))
              .values(attempts=_EVENTS.c.attempts + 1, delivered_at=bindparam("delivered"), next_attempt_at=None))


def emit(session: Session, type_: str, *, plugin_id: str, payload: dict[str, Any], customer_id: str | None = None,
         branch_code: str | None = None) -> int:
    """Write an event for ``plugin_id`` to the outbox in the caller's transaction (due at once);
    return its id. One SQL statement: events are written by the hottest paths (payments)."""
    now = utcnow()
    written = session.connection().execute(_EMIT, {
        "type": type_, "plugin_id": plugin_id, "customer_id": customer_id, "branch_code": branch_code,
        "payload": payload, "created_at": now, "attempts": 0, "next_attempt_at": now})
    return written.inserted_primary_key[0]


def public_event(row: OutboxEvent, subject: str | None) -> Event:
    """The outbox row as the plugin receives it (its customer as the plugin's pairwise subject)."""
    created = row.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return Event(id=f"evt_{row.id}", type=row.type, plugin_id=row.plugin_id, occurred_at=created, data=row.payload,
                 branch=row.branch_code, customer=subject)


def retry_delay(attempts: int) -> timedelta | None:
    """How long an event that has failed ``attempts`` times waits before its next attempt, or
    None when it is given up. The first retry is at once (most failures are a busy plugin);
    then 30 s, 1 min, 2 min, … doubling up to an hour."""
    if attempts >= MAX_ATTEMPTS:
        return None
    if attempts <= 1:
        return timedelta(0)
    return min(RETRY_BASE * 2 ** (attempts - 2), RETRY_CAP)


@dataclass(frozen=True)
class Delivery:
    """What one call of :func:`deliver_batch` did."""

    claimed: int = 0
    delivered: int = 0
    failed: int = 0  #: failed and due again later
    given_up: int = 0  #: failed for the last time

    def __add__(self, other: "Delivery") -> "Delivery":
        return Delivery(self.claimed + other.claimed, self.delivered + other.delivered, self.failed + other.failed,
                        self.given_up + other.given_up)


@dataclass(frozen=True)
class Target:
    """The version of a plugin its events go to: the release's stable version, or the one
    loaded from the plugin folders when it was never released through the host."""

    version: str
    checksum: str
    approved_scopes: list[str]


def claim(runtime, database: Database, *, plugin_id: str | None = None,
          limit: int = BATCH) -> tuple[list[OutboxEvent], dict[str, Target]]:
    """Claim up to ``limit`` due events of plugins served here (oldest first); return them
    (detached) with the version of each plugin they go to. Events of plugins not served here
    are left for a deliverer that has them; a suspended plugin's wait until it is reinstated."""
    if limit < 1:
        return [], {}
    now = utcnow()
    with database.transaction(write=True) as session:
        releases = dict(session.execute(select(PluginRelease.plugin_id, PluginRelease.stable)
                                        .where(PluginRelease.suspended_at.is_(None))).all())
        stopped = select(PluginRelease.plugin_id).where(PluginRelease.suspended_at.is_not(None))
        served = [name for name in set(runtime.plugins) | {n for n, stable in releases.items() if stable}
                  if plugin_id is None or name == plugin_id]
        if not served:
            return [], {}
        # SKIP LOCKED: rows another deliverer is claiming are left to it rather than waited
        # for; SQLite ignores the clause (its write lock already makes claims take turns).
        query = (select(OutboxEvent).where(OutboxEvent.next_attempt_at <= now, OutboxEvent.plugin_id.in_(served),
                                           OutboxEvent.plugin_id.not_in(stopped))
                 .order_by(OutboxEvent.id).limit(limit).with_for_update(skip_locked=True))
        rows = list(session.scalars(query))
        if not rows:
            return [], {}
        until = now + CLAIM_MARGIN + timedelta(seconds=runtime.invoker.budget(HOOK) * len(rows))
        session.execute(update(OutboxEvent).where(OutboxEvent.id.in_([row.id for row in rows]))
                        .values(next_attempt_at=until).execution_options(synchronize_session=False))
        targets = {}
        for name in {row.plugin_id for row in rows}:
            version = releases.get(name) or runtime.plugins[name].manifest.version
            record = get_version(session, name, version)
            targets[name] = Target(record.version, record.checksum, list(record.approved_scopes))
        session.expunge_all()
    return rows, targets


def deliver_batch(runtime, database: Database, *, plugin_id: str | None = None, limit: int = BATCH) -> Delivery:
    """Claim up to ``limit`` due events, deliver each to its in-process plugin and record the outcomes."""
    rows, targets = claim(runtime, database, plugin_id=plugin_id, limit=limit)
    outcomes = [(row, _deliver(runtime, row, targets[row.plugin_id])) for row in rows]
    results = Counter(_record(database, outcomes))
    return Delivery(len(rows), results["delivered"], results["failed"], results["given up"])


def deliver_pending(runtime, database: Database, *, plugin_id: str | None = None, limit: int = BATCH) -> int:
    """Deliver up to ``limit`` due events (see :func:`deliver_batch`); return how many were delivered."""
    return deliver_batch(runtime, database, plugin_id=plugin_id, limit=limit).delivered


def _deliver(runtime, row: OutboxEvent, target: Target) -> Outcome:
    try:
        plugin = runtime.version(row.plugin_id, target.version, target.checksum)
        if plugin is None:
            raise LookupError(f"{row.plugin_id} {target.version} cannot be served here")
        branch = row.branch_code or "HQ"
        ctx = runtime.context(row.plugin_id, branch=BranchInfo(code=branch, name=branch), locale="zh-CN",
                              approved_scopes=target.approved_scopes, customer_id=row.customer_id, plugin=plugin)
        return runtime.event(ctx, public_event(row, ctx.customer.subject if ctx.customer else None))
    except Exception as exc:  # noqa: BLE001 - e.g. the plugin was refused meanwhile: a failed attempt, recorded
        return Outcome(row.plugin_id, HOOK, ERROR, error=exc)


def _record(database: Database, outcomes: list[tuple[OutboxEvent, Outcome]]) -> list[str]:
    """Write the attempts' outcomes in one transaction; return ``delivered``, ``failed`` or
    ``given up`` for each. The delivered events (nearly all) are marked by one statement."""
    now, results, delivered = utcnow(), [], []
    with database.transaction(write=True) as session:
        connection = session.connection()
        for row, outcome in outcomes:
            values, result = _attempt(row, outcome, now)
            results.append(result)
            if result == "delivered":
                delivered.append(row.id)
            else:
                connection.execute(_UPDATE_ONE.values(**values), {"event_id": row.id})
        if delivered:
            connection.execute(_DELIVERED, {"event_ids": delivered, "delivered": now})
    return results


def _attempt(row: OutboxEvent, outcome: Outcome, now) -> tuple[dict[str, Any], str]:
    """What one attempt changes in its event's row, and ``delivered``, ``failed`` or ``given up``."""
    attempts = row.attempts + 1
    values: dict[str, Any] = {"attempts": OutboxEvent.attempts + 1}
    # A plugin without canopy_on_event has nothing to be told: its events are done.
    if outcome.ok or outcome.status == MISSING:
        values.update(delivered_at=now, next_attempt_at=None)
        return values, "delivered"
    error = outcome.error.__class__.__name__ if outcome.error else ""
    values["last_error"] = f"{outcome.status}: {error}"[:200]
    delay = retry_delay(attempts)
    values["next_attempt_at"] = None if delay is None else now + delay
    if delay is None:
        log.error("event %s for %s given up after %d attempts (%s)", row.id, row.plugin_id, attempts, outcome.status,
                  extra={"plugin": row.plugin_id, "event": row.id})
        return values, "given up"
    log.warning("event %s for %s not delivered (%s); next attempt in %d s", row.id, row.plugin_id,
                outcome.status, delay.total_seconds(), extra={"plugin": row.plugin_id, "event": row.id})
    return values, "failed"
