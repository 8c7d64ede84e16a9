"""Write events in the business transaction; deliver them after it commits.

:func:`emit` adds an :class:`~host.events.models.OutboxEvent` to the caller's session, so an
event exists exactly when its change was committed. :func:`deliver_pending` then calls each
in-process plugin's ``canopy_on_event`` (through the runtime: budget, bulkhead, error
isolation) and marks what was delivered; what failed stays pending with its error and is
tried again on the next delivery (at least once; plugins deduplicate by ``event.id``).
Partner back ends will get webhooks from the same table.
"""

from __future__ import annotations

import logging
from typing import Any

from canopy_sdk.types import BranchInfo, Event
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..db import Database, utcnow
from ..runtime.registry import get_version
from .models import OutboxEvent

log = logging.getLogger("canopy.events")
#: At most this many events are delivered per call of :func:`deliver_pending`.
BATCH = 100


def emit(session: Session, type_: str, *, plugin_id: str, payload: dict[str, Any], customer_id: str | None = None,
         branch_code: str | None = None) -> OutboxEvent:
    """Add an event for ``plugin_id`` to the outbox, in the caller's transaction."""
    event = OutboxEvent(type=type_, plugin_id=plugin_id, customer_id=customer_id, branch_code=branch_code,
                        payload=payload, created_at=utcnow(), attempts=0)
    session.add(event)
    return event


def public_event(row: OutboxEvent, subject: str | None) -> Event:
    """The outbox row as the plugin receives it (its customer as the plugin's pairwise subject)."""
    created = row.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return Event(id=f"evt_{row.id}", type=row.type, plugin_id=row.plugin_id, occurred_at=created, data=row.payload,
                 branch=row.branch_code, customer=subject)


def deliver_pending(runtime, database: Database, *, plugin_id: str | None = None, limit: int = BATCH) -> int:
    """Deliver up to ``limit`` pending events to their loaded in-process plugins; return how many
    were delivered. Events of plugins not loaded here stay pending."""
    with database.transaction() as session:
        query = select(OutboxEvent).where(OutboxEvent.delivered_at.is_(None)).order_by(OutboxEvent.id).limit(limit)
        if plugin_id is not None:
            query = query.where(OutboxEvent.plugin_id == plugin_id)
        rows = [row for row in session.scalars(query) if row.plugin_id in runtime.plugins]
        approved = {name: get_version(session, name).approved_scopes for name in {row.plugin_id for row in rows}}
        session.expunge_all()
    delivered = 0
    for row in rows:
        branch = row.branch_code or "HQ"
        ctx = runtime.context(row.plugin_id, branch=BranchInfo(code=branch, name=branch), locale="zh-CN",
                              approved_scopes=approved[row.plugin_id], customer_id=row.customer_id)
        outcome = runtime.event(ctx, public_event(row, ctx.customer.subject if ctx.customer else None))
        values: dict[str, Any] = {"attempts": OutboxEvent.attempts + 1}
        if outcome.ok:
            values["delivered_at"] = utcnow()
            delivered += 1
        else:
            values["last_error"] = f"{outcome.status}: {outcome.error.__class__.__name__ if outcome.error else ''}"[:200]
            log.warning("event %s for %s not delivered (%s)", row.id, row.plugin_id, outcome.status)
        with database.transaction(write=True) as session:
            session.execute(update(OutboxEvent).where(OutboxEvent.id == row.id, OutboxEvent.delivered_at.is_(None))
                            .values(**values))
    return delivered
