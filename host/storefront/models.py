"""Branches and what each branch's storefront has installed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, UTCDateTime, utcnow


class Branch(Base):
    """Head office or a branch; branches form a tree under head office."""

    __tablename__ = "branches"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("branches.code"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped["Branch | None"] = relationship(remote_side=[code])

    def name(self, locale: str) -> str:
        """The branch's name in ``locale`` (Chinese unless English is asked for)."""
        return self.name_en if locale.startswith("en") else self.name_zh


class Installation(Base):
    """A plugin version installed in a branch's storefront, at a place in its grid."""

    __tablename__ = "installations"
    __table_args__ = (UniqueConstraint("branch_code", "plugin_id"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    branch_code: Mapped[str] = mapped_column(ForeignKey("branches.code", ondelete="CASCADE"))
    plugin_id: Mapped[str] = mapped_column(ForeignKey("plugins.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer, default=0)
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
