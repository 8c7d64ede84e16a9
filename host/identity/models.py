"""People: customers, staff, partner organisations and their developers."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow


def new_id() -> str:
    """A new random identifier (32 hex digits)."""
    return uuid.uuid4().hex


class StaffRole:
    """Staff roles. Branch roles are bound to one branch; head-office roles are not."""

    HQ_ADMIN = "hq_admin"
    HQ_REVIEWER = "hq_reviewer"
    BRANCH_ADMIN = "branch_admin"
    BRANCH_OPERATOR = "branch_operator"
    ALL = (HQ_ADMIN, HQ_REVIEWER, BRANCH_ADMIN, BRANCH_OPERATOR)
    BRANCH_BOUND = (BRANCH_ADMIN, BRANCH_OPERATOR)


class _Lockable:
    """Failed-attempt counting for one secret (a password or a PIN)."""

    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Customer(_Lockable, Base):
    """A customer of the bank. The password signs in; the payment PIN, kept apart, confirms payments."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    pin_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    pin_failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    pin_locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    nickname: Mapped[str] = mapped_column(String(40))
    avatar: Mapped[str | None] = mapped_column(String(200), nullable=True)
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    branch_code: Mapped[str] = mapped_column(ForeignKey("branches.code"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Staff(_Lockable, Base):
    """A member of staff: head office or a branch, with one role."""

    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    branch_code: Mapped[str | None] = mapped_column(ForeignKey("branches.code"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PartnerOrg(Base):
    """A partner organisation (utility, insurer, merchant) that publishes mini-programs."""

    __tablename__ = "partner_orgs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PartnerDeveloper(_Lockable, Base):
    """A developer of a partner organisation."""

    __tablename__ = "partner_developers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("partner_orgs.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
