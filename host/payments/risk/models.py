"""The risk centre's tables: verdicts as recorded, per-branch rule settings, known devices."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ...db import Base, UTCDateTime, utcnow

_ID = BigInteger().with_variant(Integer, "sqlite")


class RiskDecision(Base):
    """One verdict of one rule (or of the whole assessment, ``rule`` = "overall") on one payment attempt."""

    __tablename__ = "risk_decisions"
    __table_args__ = (Index("ix_risk_decisions_intent", "intent_id"), Index("ix_risk_decisions_customer_at", "customer_id", "at"))

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    intent_id: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[str] = mapped_column(String(32))
    branch_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    rule: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(16))  #: allow | challenge | deny
    reason: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RiskSetting(Base):
    """A rule's parameters for one branch (``branch_code`` "*" = the bank-wide default)."""

    __tablename__ = "risk_settings"
    __table_args__ = (UniqueConstraint("branch_code", "rule", name="uq_risk_settings_branch_rule"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    branch_code: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KnownDevice(Base):
    """A device a customer has paid from before (by a digest of its identifying signals)."""

    __tablename__ = "risk_known_devices"
    __table_args__ = (UniqueConstraint("customer_id", "device", name="uq_risk_known_devices_customer_device"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    device: Mapped[str] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
