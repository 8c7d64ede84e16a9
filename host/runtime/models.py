"""The plugin registry and plugin storage tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, UTCDateTime, utcnow


class PluginState:
    """States of a registered plugin version."""

    ACTIVE = "active"  #: loaded and serving
    REFUSED = "refused"  #: cannot run (reason given), e.g. a partner plugin before the sandbox exists
    DISABLED = "disabled"  #: switched off by staff
    ALL = (ACTIVE, REFUSED, DISABLED)


class PluginRecord(Base):
    """A mini-program, across its versions."""

    __tablename__ = "plugins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    publisher_kind: Mapped[str] = mapped_column(String(16))
    publisher_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list["PluginVersion"]] = relationship(
        back_populates="plugin", order_by="PluginVersion.registered_at", cascade="all, delete-orphan"
    )


class PluginVersion(Base):
    """One published version of a mini-program. Its manifest and checksum never change."""

    __tablename__ = "plugin_versions"
    __table_args__ = (UniqueConstraint("plugin_id", "version"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    plugin_id: Mapped[str] = mapped_column(ForeignKey("plugins.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    checksum: Mapped[str] = mapped_column(String(71))  # "sha256:" + 64 hex digits
    source: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(16), default=PluginState.ACTIVE)
    state_reason: Mapped[str] = mapped_column(Text, default="")
    approved_scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    plugin: Mapped[PluginRecord] = relationship(back_populates="versions")


class StorageEntry(Base):
    """One key of a plugin's key–value store. ``customer`` is '' for plugin-wide keys."""

    __tablename__ = "plugin_storage"
    __table_args__ = (Index("ix_plugin_storage_expires_at", "expires_at"),)

    plugin_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
