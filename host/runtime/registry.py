"""The registry: which plugins and versions the host knows, in the database.

:func:`sync_registry` records what the runtime loaded. A version, once registered,
keeps its manifest and checksum: files that differ under the same version number are
refused (publish a new version instead). State changes by staff (``disabled``) are
kept across syncs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .loader import LoadedPlugin
from .models import PluginRecord, PluginState, PluginVersion
from .services import PluginRuntime

log = logging.getLogger("canopy.registry")


@dataclass(frozen=True)
class SyncReport:
    """What one sync did."""

    added: list[str]
    refused: list[str]
    unchanged: list[str]


class UnknownPlugin(LookupError):
    """No plugin (or version) with that id is registered."""


def sync_registry(
    session: Session, runtime: PluginRuntime, *, approve: bool = False, development: bool = False
) -> SyncReport:
    """Record every plugin the runtime found.

    ``approve`` grants each newly registered version the scopes its manifest requests (for
    bundled plugins and the demo). ``development`` lets changed files replace a registered
    version's record instead of being refused — for a developer's own machine only
    (``CANOPY_DEVELOPMENT``); scopes the new manifest adds are not approved by it.
    """
    added, refused, unchanged = [], [], []
    for loaded in runtime.known():
        if loaded.manifest is None or loaded.checksum is None:
            continue  # nothing identifiable to record; the load problem is logged and listed
        manifest = loaded.manifest
        served = runtime.plugins.get(manifest.id)
        if served is not None and served is not loaded and served.manifest.version == manifest.version:
            continue  # a refused duplicate of the served plugin: the served one's files are the version
        label = f"{manifest.id} {manifest.version}"
        record = session.get(PluginRecord, manifest.id)
        if record is None:
            record = PluginRecord(
                id=manifest.id,
                publisher_kind=manifest.publisher_kind,
                publisher_id=manifest.publisher_id,
                name=manifest.name,
            )
            session.add(record)
        elif (record.publisher_kind, record.publisher_id) != (manifest.publisher_kind, manifest.publisher_id):
            _refuse(runtime, served, loaded, (
                f"plugin id {manifest.id!r} belongs to publisher {record.publisher_kind}:{record.publisher_id}, "
                f"not {manifest.publisher_kind}:{manifest.publisher_id}"
            ))
            refused.append(label)
            continue
        version = session.scalar(
            select(PluginVersion).where(PluginVersion.plugin_id == manifest.id, PluginVersion.version == manifest.version)
        )
        if version is None:
            session.add(_new_version(loaded, approve))
            session.flush()
            added.append(label)
        elif version.checksum != loaded.checksum and development:
            log.warning("development: %s files changed; its registry record now follows them", label)
            version.checksum = loaded.checksum
            version.manifest = manifest.raw
            version.approved_scopes = [s for s in version.approved_scopes if s in manifest.scopes]
            _refresh_state(version, loaded)
            unchanged.append(label)
        elif version.checksum != loaded.checksum:
            _refuse(runtime, served, loaded, (
                f"version {manifest.version} is registered with checksum {version.checksum} but these files "
                f"have {loaded.checksum}; a published version never changes, so give the changed plugin a new version"
            ))
            refused.append(label)
        else:
            _refresh_state(version, loaded)
            unchanged.append(label)
    return SyncReport(added, refused, unchanged)


def _refuse(runtime: PluginRuntime, served: LoadedPlugin | None, loaded: LoadedPlugin, reason: str) -> None:
    if served is loaded:  # never take down the served plugin for another copy's files
        runtime.refuse(loaded.manifest.id, reason)  # type: ignore[union-attr]
    else:
        loaded.problem = loaded.problem or reason


def _new_version(loaded: LoadedPlugin, approve: bool) -> PluginVersion:
    manifest = loaded.manifest
    assert manifest is not None and loaded.checksum is not None
    return PluginVersion(
        plugin_id=manifest.id,
        version=manifest.version,
        manifest=manifest.raw,
        checksum=loaded.checksum,
        source=loaded.source[:500],
        state=PluginState.ACTIVE if loaded.ok else PluginState.REFUSED,
        state_reason="" if loaded.ok else (loaded.problem or ""),
        approved_scopes=list(manifest.scopes) if approve else [],
    )


def _refresh_state(version: PluginVersion, loaded: LoadedPlugin) -> None:
    if version.state == PluginState.DISABLED:
        return
    version.state = PluginState.ACTIVE if loaded.ok else PluginState.REFUSED
    version.state_reason = "" if loaded.ok else (loaded.problem or "")


def get_version(session: Session, plugin_id: str, version: str | None = None) -> PluginVersion:
    """Return one registered version (the newest registered when ``version`` is None)."""
    query = select(PluginVersion).where(PluginVersion.plugin_id == plugin_id)
    if version is not None:
        query = query.where(PluginVersion.version == version)
    found = session.scalar(query.order_by(PluginVersion.registered_at.desc(), PluginVersion.pk.desc()).limit(1))
    if found is None:
        raise UnknownPlugin(f"no plugin {plugin_id!r}" + (f" version {version!r}" if version else "") + " is registered")
    return found


class StateChangeRefused(ValueError):
    """A change of a version's registry state that is not allowed; the message says why."""


def enable_version(session: Session, plugin_id: str, version: str | None = None) -> PluginVersion:
    """Set a ``disabled`` version (newest registered when ``version`` is None) back to
    ``active`` — staff's decision, e.g. after the sandbox disabled it for faults. Every host
    process serves it again: storefronts show active versions only, and a process that
    disabled it notices the registry within ``SANDBOX_ENABLE_CHECK`` seconds of its next call.

    An ``active`` version is left as it is; a ``refused`` one raises
    :class:`StateChangeRefused` (its files are what is wrong; the next sync decides).
    """
    found = get_version(session, plugin_id, version)
    if found.state == PluginState.REFUSED:
        raise StateChangeRefused(f"{plugin_id} {found.version} is refused, not disabled: {found.state_reason}")
    found.state = PluginState.ACTIVE
    found.state_reason = ""
    return found


def list_plugins(session: Session) -> list[PluginRecord]:
    """Every registered plugin with its versions, by id."""
    return list(session.scalars(select(PluginRecord).order_by(PluginRecord.id)))


def approve_scopes(session: Session, plugin_id: str, version: str | None = None) -> PluginVersion:
    """Approve every scope a version's manifest requests (head office's decision)."""
    found = get_version(session, plugin_id, version)
    found.approved_scopes = list(found.manifest.get("scopes", []))
    return found
