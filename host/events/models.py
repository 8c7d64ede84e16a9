"""The transactional outbox: every business change others must hear of is written here in the
same transaction as the change, then delivered after the commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow


class OutboxEvent(Base):
    """One event for one plugin.

    ``next_attempt_at`` says when it is next due for delivery; it is cleared when the event is
    delivered (``delivered_at`` set) or given up after too many failed attempts (``delivered_at``
    still empty, the reason in ``last_error``). While a delivery is under way it holds the
    claim's expiry, so no other deliverer takes the event meanwhile.
    """

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_events_pending", "delivered_at", "id"),
                      Index("ix_outbox_events_due", "next_attempt_at"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64))
    plugin_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    branch_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, default=utcnow)

    @property
    def given_up(self) -> bool:
        """Whether delivery stopped for good without reaching the plugin (see ``last_error``)."""
        return self.delivered_at is None and self.next_attempt_at is None
