"""Branches, what each branch's storefront has installed, its banners and feed, and the
operating rights head office granted it."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, UTCDateTime, utcnow


#: A branch code: upper-case letters, digits and '-', 2 to 16 of them.
BRANCH_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{1,15}\Z")
#: A customer tag: 1 to 32 lower-case letters, digits or '-', starting with a letter or digit.
TAG = re.compile(r"[a-z0-9][a-z0-9-]{0,31}\Z")
#: A customer's id: 32 hexadecimal digits.
CUSTOMER_ID = re.compile(r"[0-9a-f]{32}\Z")


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


class SlotKind:
    """What a storefront slot is: a banner (the strip at the top) or a card of the feed."""

    BANNER = "banner"
    FEED = "feed"
    ALL = (BANNER, FEED)


class StorefrontSlot(Base):
    """A banner or feed card on a storefront: a branch's own, or bank-wide (``branch_code`` NULL,
    head office's, shown on every storefront). Shown between ``starts_at`` and ``ends_at`` (UTC,
    either open), to everyone, or only to signed-in customers with one of ``tags``."""

    __tablename__ = "storefront_slots"
    __table_args__ = (Index("ix_storefront_slots_branch_code", "branch_code", "kind", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    branch_code: Mapped[str | None] = mapped_column(ForeignKey("branches.code", ondelete="CASCADE"), nullable=True)
    title_zh: Mapped[str] = mapped_column(String(60))
    title_en: Mapped[str] = mapped_column(String(60))
    body_zh: Mapped[str] = mapped_column(String(200), default="")
    body_en: Mapped[str] = mapped_column(String(200), default="")
    image: Mapped[str] = mapped_column(String(500), default="")
    link: Mapped[str] = mapped_column(String(500), default="")
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def title(self, locale: str) -> str:
        """The slot's title in ``locale``."""
        return self.title_en if locale.startswith("en") else self.title_zh

    def body(self, locale: str) -> str:
        """The slot's text in ``locale`` (may be empty)."""
        return self.body_en if locale.startswith("en") else self.body_zh


class OperatingRight(Base):
    """A right over its own storefront that head office granted a branch (``banners``, ``feed``,
    ``grid``, ``installs``); see :mod:`host.storefront.rights`."""

    __tablename__ = "operating_rights"

    branch_code: Mapped[str] = mapped_column(ForeignKey("branches.code", ondelete="CASCADE"), primary_key=True)
    right: Mapped[str] = mapped_column(String(32), primary_key=True)
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerTag(Base):
    """A tag of a customer (``wealth``, ``new-customer`` …) that banners and feed cards can target."""

    __tablename__ = "customer_tags"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(32), primary_key=True)
