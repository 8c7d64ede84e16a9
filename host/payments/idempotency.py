"""Idempotency keys, as Stripe's: the same key with the same parameters gets the first answer;
the same key with other parameters is an error; concurrent requests with one key execute once.

:func:`once` claims ``(caller, key)`` with ``INSERT … ON CONFLICT DO NOTHING`` in the caller's
transaction. The winner runs the operation and stores its answer in the same transaction; on
PostgreSQL a concurrent request with the same key waits on the primary key until the winner
commits (or rolls back, and then it runs itself); on SQLite writers take turns anyway. Records
are kept at least :data:`KEEP` (``canopy payments purge-keys`` removes older ones).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any, Callable

from canopy_sdk import payment_rules
from canopy_sdk.errors import IdempotencyMismatch, InvalidPayment
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..oauth.replay import insert_ignore
from .models import IdempotencyRecord

#: How long an answer is kept for replays.
KEEP = timedelta(hours=24)


def check_key(value: object, field: str = "Idempotency-Key") -> str:
    """``value`` if it is a valid key (the SDK's rule); else :class:`InvalidPayment` naming ``field``."""
    try:
        return payment_rules.check_idempotency_key(value)
    except InvalidPayment:
        raise InvalidPayment(f"{field} must be 1-255 printable ASCII characters without spaces", field=field) from None


def fingerprint(operation: str, params: dict[str, Any]) -> str:
    """A digest of what a request asks for (its operation and canonical JSON parameters)."""
    canonical = json.dumps({"op": operation, "params": params}, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=lambda value: f"{type(value).__name__}:{value!r}"[:300])
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def once(session: Session, caller: str, key: str, operation: str, params: dict[str, Any],
         run: Callable[[], tuple[int, dict[str, Any]]]) -> tuple[int, dict[str, Any]]:
    """Run ``run`` (returning an HTTP-style status and JSON body) once per ``(caller, key)``.

    Another request's answer under the same key is returned as it was; if that request asked
    for something else (another operation or other parameters) :class:`IdempotencyMismatch`
    is raised. ``run``'s exceptions propagate and the caller's rollback frees the key.
    """
    digest = fingerprint(operation, params)
    now = utcnow()
    claimed = session.execute(insert_ignore(
        session, IdempotencyRecord, caller=caller, key=key, operation=operation, request_hash=digest,
        created_at=now, expires_at=now + KEEP).returning(IdempotencyRecord.key)).scalar()
    if claimed is None:
        record = session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.caller == caller,
                                                                 IdempotencyRecord.key == key)).one()
        if record.request_hash != digest or record.operation != operation:
            raise IdempotencyMismatch(
                "this Idempotency-Key was used before with other parameters; use a new key for a new request",
                field="Idempotency-Key")
        if record.status is not None and record.response is not None:
            return record.status, record.response
        # Only possible if a request claimed the key and never finished in its transaction.
        raise IdempotencyMismatch("a request with this Idempotency-Key is still in progress", field="Idempotency-Key")
    status, body = run()
    record = session.get(IdempotencyRecord, (caller, key))
    record.status, record.response = status, body
    session.flush()
    return status, body


def purge(session: Session) -> int:
    """Delete records older than their keeping time; return how many."""
    return session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow())).rowcount or 0
