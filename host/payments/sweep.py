"""Payments housekeeping that no request does: recording the expiry of intents nobody opens
again, and removing idempotency records past their keeping time.

An intent whose confirmation window has passed already *reads* as expired everywhere
(:func:`~host.payments.intents.view`); :func:`expire_due` writes the ``expired`` transition and
its ``payment_intent.expired`` event, so the plugin hears of it. ``canopy worker`` runs both
(:mod:`host.worker`); ``canopy payments expire`` and ``canopy payments purge-keys`` run each once.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import Database, utcnow
from . import idempotency, intents
from .models import IntentState, PaymentIntent

#: At most this many intents are expired by one call of :func:`expire_due`.
BATCH = 100


def due_intent_ids(session: Session, *, limit: int = BATCH) -> list[str]:
    """Ids of up to ``limit`` intents still awaiting confirmation after their time (earliest first)."""
    query = (select(PaymentIntent.id)
             .where(PaymentIntent.state == IntentState.REQUIRES_CONFIRMATION, PaymentIntent.expires_at <= utcnow())
             .order_by(PaymentIntent.expires_at, PaymentIntent.id).limit(limit))
    return list(session.scalars(query))


def expire_due(database: Database, *, limit: int = BATCH) -> int:
    """Record the expiry of up to ``limit`` due intents; return how many this call expired.

    Each intent is expired in a short write transaction of its own that locks its row first
    (the order every payment and refund locks in: the intent before anything else) and decides
    again under the lock, so an intent confirmed or canceled meanwhile is left as it is. On
    PostgreSQL the lock is taken ``SKIP LOCKED``: an intent a customer is confirming right now, or
    another sweeper is expiring, is skipped rather than waited for (the next sweep sees it again
    if it is still due). Concurrent sweeps therefore expire each intent once.
    """
    with database.transaction() as session:
        candidates = due_intent_ids(session, limit=limit)
    expired = 0
    for intent_id in candidates:
        with database.transaction(write=True) as session:
            intent = session.scalar(select(PaymentIntent).where(PaymentIntent.id == intent_id)
                                    .with_for_update(skip_locked=True))
            if intent is not None and intents.expire_if_due(session, intent):
                expired += 1
    return expired


def purge_keys(database: Database) -> int:
    """Delete idempotency records older than :data:`~host.payments.idempotency.KEEP`; return how many."""
    with database.transaction(write=True) as session:
        return idempotency.purge(session)
