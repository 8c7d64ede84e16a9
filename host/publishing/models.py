"""Publishing tables: uploaded versions with their lifecycle status, the history of every
status change, and the notifications publishers read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow


class PackageVersion(Base):
    """One uploaded version of a mini-program: its package (manifest, checksums, size) and where
    it stands in review and release (``status``, see :mod:`host.publishing.lifecycle`).

    The package columns never change after the upload; ``status`` changes only through
    :func:`host.publishing.lifecycle.apply`, which bumps ``revision`` (an optimistic lock: an
    update that finds another revision changes nothing).
    """

    __tablename__ = "package_versions"
    __table_args__ = (
        UniqueConstraint("plugin_id", "version"),
        Index("ix_package_versions_status", "status"),
        Index("ix_package_versions_publisher", "publisher_kind", "publisher_id"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    plugin_id: Mapped[str] = mapped_column(ForeignKey("plugins.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    publisher_kind: Mapped[str] = mapped_column(String(16))
    publisher_id: Mapped[str] = mapped_column(String(32))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    checksum: Mapped[str] = mapped_column(String(71))  #: the folder checksum the registry records
    archive_sha256: Mapped[str] = mapped_column(String(64))  #: of the uploaded archive
    size: Mapped[int] = mapped_column(Integer)  #: all files, decompressed
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str] = mapped_column(Text, default="")
    #: The automated pre-review's report (:mod:`host.publishing.prereview`), once submitted.
    prereview: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: While a submitted version's pre-review runs, the time until which its runner holds it
    #: (:func:`host.publishing.services.run_prereview`); a claim past due is taken again.
    prereview_claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    release_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    uploaded_by: Mapped[str] = mapped_column(String(128))
    submitted_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    revision: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __mapper_args__ = {"version_id_col": revision}


class VersionTransition(Base):
    """One change of a version's status (its upload included: from nothing to ``draft``):
    who, when, from what, to what, and why. Never updated or deleted."""

    __tablename__ = "package_version_history"
    __table_args__ = (Index("ix_package_version_history_version_pk", "version_pk", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    version_pk: Mapped[int] = mapped_column(ForeignKey("package_versions.pk", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PublisherNotification(Base):
    """A message to a publisher about one of its versions (one per status change), listed by
    ``GET /api/v1/publisher/notifications``."""

    __tablename__ = "publisher_notifications"
    __table_args__ = (Index("ix_publisher_notifications_publisher", "publisher_kind", "publisher_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    publisher_kind: Mapped[str] = mapped_column(String(16))
    publisher_id: Mapped[str] = mapped_column(String(32))
    plugin_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    #: The status change it tells of; None for a change of the whole mini-program (its suspension).
    transition_id: Mapped[int | None] = mapped_column(ForeignKey("package_version_history.id", ondelete="CASCADE"),
                                                      nullable=True)
    action: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HistoryIsAppendOnly(RuntimeError):
    """Something tried to change or remove a history row."""


@event.listens_for(VersionTransition, "before_update")
@event.listens_for(VersionTransition, "before_delete")
def _refuse_change(mapper, connection, target) -> None:
    raise HistoryIsAppendOnly("a version's history is append-only: its rows are never changed or deleted")


class PluginRelease(Base):
    """Which versions of a mini-program customers get (:mod:`host.publishing.releases`).

    ``stable`` is every customer's version and ``gray`` the version the customers selected by
    ``gray_rule`` get instead; ``previous`` is the version a rollback of ``stable`` returns
    to. A mini-program with no row here is served as the host loaded it from its plugin
    folders. ``suspended_at`` set is the kill switch: nothing of the mini-program is served
    and its tokens and consents stop working, whatever the versions say. Rows change only
    through :mod:`host.publishing.releases`, which bumps ``revision`` (an optimistic lock).
    """

    __tablename__ = "plugin_releases"

    plugin_id: Mapped[str] = mapped_column(ForeignKey("plugins.id", ondelete="CASCADE"), primary_key=True)
    stable: Mapped[str | None] = mapped_column(String(64), nullable=True)
    previous: Mapped[str | None] = mapped_column(String(64), nullable=True)
    gray: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Who gets ``gray``: ``{"branches": [...], "tags": [...], "testers": [...], "percent": 0-100}``.
    gray_rule: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    gray_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    suspended_reason: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revision: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": revision}


class ReleaseHealth(Base):
    """What one gray version did in one minute, summed over the host's processes: hook calls
    and how many failed, payments its customers confirmed and how many failed. The automatic
    rollback reads a window of these (:mod:`host.publishing.health`)."""

    __tablename__ = "release_health"

    plugin_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    payments: Mapped[int] = mapped_column(Integer, default=0)
    payment_failures: Mapped[int] = mapped_column(Integer, default=0)


class PluginPromotion(Base):
    """A branch mini-program proposed for the whole bank (全行推广), and head office's decision
    (:mod:`host.publishing.promotion`). While ``status`` is ``approved`` every branch may install
    it, not only its own branch and the branches under it."""

    __tablename__ = "plugin_promotions"

    plugin_id: Mapped[str] = mapped_column(ForeignKey("plugins.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  #: proposed, approved, declined or withdrawn
    proposed_by: Mapped[str] = mapped_column(String(128))
    proposal: Mapped[str] = mapped_column(Text)  #: why the branch proposes it
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    decision: Mapped[str] = mapped_column(Text, default="")  #: head office's reason
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revision: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": revision}
