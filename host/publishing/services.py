"""What the API and the console call: upload a package as a draft version, submit it (its
automatic pre-review follows the commit), act on it, and list versions, history and notifications.

Every function works in the caller's transaction and raises a
:class:`~.errors.PublishingRefused` subclass, writing nothing, when it refuses.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..identity.models import StaffRole
from ..runtime.models import PluginRecord, PluginVersion
from ..storefront.services import is_plugin_id
from . import lifecycle
from .actors import BANK, BANK_PUBLISHER_ID, BRANCH, PARTNER, Actor, publishes_for
from .errors import NotAllowed, PackageInvalid, UnknownVersion, VersionExists
from .lifecycle import Status
from .models import PackageVersion, PublisherNotification
from .packages import Limits, Package, PackageRefused, read_package, store

#: The instance folder's sub-folder that holds stored packages.
STORE_FOLDER = "packages"


def package_store(app: Flask | None = None) -> Path:
    """The package store: ``<instance folder>/packages``."""
    return Path((app or current_app).instance_path) / STORE_FOLDER


def check_plugin_id(plugin_id: str) -> str:
    """``plugin_id`` when it has the shape of one; :class:`UnknownVersion` otherwise."""
    if not is_plugin_id(plugin_id):
        raise UnknownVersion("that is not a plugin id ([a-z0-9.-], 3-64 characters)")
    return plugin_id


def upload(session: Session, actor: Actor, plugin_id: str, data: bytes, root: Path, *,
           limits: Limits = Limits()) -> tuple[PackageVersion, bool]:
    """Check ``data`` (a zip archive) as a package of ``plugin_id`` by ``actor``, store it and
    record a ``draft`` version; return it and whether it is new.

    The manifest's id must be ``plugin_id`` and its publisher one ``actor`` publishes for; the
    id must be free or already this publisher's. A version number is never reused for other
    files (registered or uploaded): the same files again return the version already recorded.
    """
    check_plugin_id(plugin_id)
    try:
        package = read_package(data, limits=limits)
    except PackageRefused as exc:
        raise PackageInvalid(str(exc)) from None
    manifest = package.manifest
    if manifest.id != plugin_id:
        raise PackageInvalid(f"plugin.toml: id {manifest.id!r} is not the plugin of this address ({plugin_id!r})")
    found = publishes_for(actor, manifest.publisher_kind, manifest.publisher_id)
    if not found:
        raise NotAllowed(f"plugin.toml names publisher {manifest.publisher_kind}:{manifest.publisher_id}; {found.reason}")
    record = session.get(PluginRecord, plugin_id, with_for_update=True)
    if record is not None and (record.publisher_kind, record.publisher_id) != (manifest.publisher_kind, manifest.publisher_id):
        raise NotAllowed(f"plugin id {plugin_id!r} belongs to another publisher")
    existing = session.scalar(select(PackageVersion).where(PackageVersion.plugin_id == plugin_id,
                                                           PackageVersion.version == manifest.version))
    if existing is not None:
        if existing.checksum == package.checksum:
            return existing, False
        raise VersionExists(f"{plugin_id} {manifest.version} was uploaded with other files; a version never "
                            f"changes — publish a new version number")
    registered = session.scalar(select(PluginVersion).where(PluginVersion.plugin_id == plugin_id,
                                                            PluginVersion.version == manifest.version))
    if registered is not None and registered.checksum != package.checksum:
        raise VersionExists(f"{plugin_id} {manifest.version} is registered with other files; a version never "
                            f"changes — publish a new version number")
    try:
        store(package, root)
    except PackageRefused as exc:
        raise VersionExists(str(exc)) from None
    if record is None:
        session.add(PluginRecord(id=plugin_id, publisher_kind=manifest.publisher_kind,
                                 publisher_id=manifest.publisher_id, name=manifest.name))
        session.flush()
    row = _draft(package, actor)
    session.add(row)
    session.flush()
    lifecycle.record(session, actor, row, lifecycle.UPLOAD, None, "")
    return row, True


def _draft(package: Package, actor: Actor) -> PackageVersion:
    manifest = package.manifest
    now = utcnow()
    return PackageVersion(plugin_id=manifest.id, version=manifest.version, publisher_kind=manifest.publisher_kind,
                          publisher_id=manifest.publisher_id, manifest=manifest.raw, checksum=package.checksum,
                          archive_sha256=package.archive_sha256, size=package.size, status=Status.DRAFT,
                          status_reason="", uploaded_by=actor.id, uploaded_at=now, updated_at=now)


def submit(session: Session, actor: Actor, plugin_id: str, version: str, *, reason: object) -> PackageVersion:
    """Hand a draft in for review: it becomes ``submitted``, its automatic pre-review due. The
    pre-review runs once this transaction has committed (:mod:`host.publishing.prereview_runs`:
    the caller calls :func:`~host.publishing.prereview_runs.after_submit`), never inside it."""
    return lifecycle.apply(session, actor, plugin_id, version, "submit", reason=reason)


def may_read(actor: Actor, publisher_kind: str, publisher_id: str) -> bool:
    """Whether ``actor`` may see a publisher's versions: the publisher, and head office's staff."""
    return actor.has(StaffRole.HQ_ADMIN, StaffRole.HQ_REVIEWER) or bool(publishes_for(actor, publisher_kind, publisher_id))


def versions_of(session: Session, actor: Actor, plugin_id: str) -> list[PackageVersion]:
    """The uploaded versions of a plugin, newest upload first, for someone who may see them."""
    check_plugin_id(plugin_id)
    record = session.get(PluginRecord, plugin_id)
    if record is None:
        raise UnknownVersion(f"no plugin {plugin_id!r} is known")
    if not may_read(actor, record.publisher_kind, record.publisher_id):
        raise NotAllowed("only the plugin's publisher and head office see its versions")
    query = select(PackageVersion).where(PackageVersion.plugin_id == plugin_id)
    return list(session.scalars(query.order_by(PackageVersion.pk.desc())))


def version_of(session: Session, actor: Actor, plugin_id: str, version: str) -> PackageVersion:
    """One uploaded version, for someone who may see it."""
    check_plugin_id(plugin_id)
    row = lifecycle.find(session, plugin_id, version)
    if not may_read(actor, row.publisher_kind, row.publisher_id):
        raise NotAllowed("only the plugin's publisher and head office see its versions")
    return row


def review_queue(session: Session, actor: Actor, statuses: tuple[str, ...]) -> list[PackageVersion]:
    """Versions in ``statuses``, oldest change first: head office's work list."""
    if not actor.has(StaffRole.HQ_ADMIN, StaffRole.HQ_REVIEWER):
        raise NotAllowed("only head office's staff see the review queue")
    query = select(PackageVersion).where(PackageVersion.status.in_(statuses))
    return list(session.scalars(query.order_by(PackageVersion.updated_at, PackageVersion.pk).limit(500)))


def publisher_of(actor: Actor) -> tuple[str, str] | None:
    """The publisher whose notifications ``actor`` reads, or None."""
    if actor.has(PARTNER) and actor.org:
        return PARTNER, actor.org
    if actor.has(*StaffRole.BRANCH_BOUND) and actor.branch:
        return BRANCH, actor.branch
    if actor.has(StaffRole.HQ_ADMIN):
        return BANK, BANK_PUBLISHER_ID
    return None


def notifications(session: Session, actor: Actor, *, after: int = 0, limit: int = 100) -> list[PublisherNotification]:
    """The notifications of the actor's publisher with an id above ``after``, oldest first."""
    publisher = publisher_of(actor)
    if publisher is None:
        raise NotAllowed("you publish no mini-programs, so you have no publishing notifications")
    query = select(PublisherNotification).where(PublisherNotification.publisher_kind == publisher[0],
                                                PublisherNotification.publisher_id == publisher[1],
                                                PublisherNotification.id > after)
    return list(session.scalars(query.order_by(PublisherNotification.id).limit(limit)))
