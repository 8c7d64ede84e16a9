"""Storefront queries: branches, and which plugin zones a branch's storefront shows; head office
adding and renaming branches."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from canopy_sdk.manifest import PLUGIN_ID
from canopy_sdk.types import BranchInfo
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..runtime.loader import LoadedPlugin
from ..runtime.models import PluginState, PluginVersion
from ..runtime.services import PluginRuntime
from .models import Branch, Installation

log = logging.getLogger("canopy.storefront")


class UnknownBranch(LookupError):
    """No branch has that code."""


@dataclass(frozen=True, slots=True)
class ZoneVersion:
    """The registry's record of a zone's installed version: the columns serving and calling it
    read (plain values, not an ORM object: a storefront reads one per zone on every request)."""

    plugin_id: str
    version: str
    checksum: str
    state: str
    approved_scopes: list[str]


@dataclass(frozen=True)
class Zone:
    """A plugin installed in a branch's storefront that can be served now."""

    plugin: LoadedPlugin
    version: ZoneVersion
    position: int

    @property
    def plugin_id(self) -> str:
        """The plugin's id."""
        return self.version.plugin_id


def get_branch(session: Session, code: str) -> Branch:
    """Return the branch with ``code``, or raise :class:`UnknownBranch`."""
    # A NUL byte is refused by PostgreSQL as a data error: such a code names no branch.
    plausible = isinstance(code, str) and len(code) <= 16 and "\x00" not in code
    branch = session.get(Branch, code) if plausible else None
    if branch is None:
        raise UnknownBranch(f"there is no branch with code {code!r}")
    return branch


def branch_info(branch: Branch, locale: str) -> BranchInfo:
    """The branch as plugins see it."""
    return BranchInfo(code=branch.code, name=branch.name(locale), parent=branch.parent_code)


def is_plugin_id(value: str) -> bool:
    """Whether ``value`` has the shape of a plugin id (anything else names no plugin)."""
    return isinstance(value, str) and 3 <= len(value) <= 64 and PLUGIN_ID.match(value) is not None


def zones(session: Session, runtime: PluginRuntime, branch_code: str, plugin_id: str | None = None) -> list[Zone]:
    """The zones a branch's storefront shows, in grid order: installed, active in the
    registry, and loaded with exactly the registered files."""
    if plugin_id is not None and not is_plugin_id(plugin_id):
        return []
    query = (
        select(Installation.position, PluginVersion.plugin_id, PluginVersion.version, PluginVersion.checksum,
               PluginVersion.state, PluginVersion.approved_scopes)
        .join(
            PluginVersion,
            (PluginVersion.plugin_id == Installation.plugin_id) & (PluginVersion.version == Installation.version),
        )
        .where(Installation.branch_code == branch_code, PluginVersion.state == PluginState.ACTIVE)
        .order_by(Installation.position, Installation.plugin_id)
    )
    if plugin_id is not None:
        query = query.where(Installation.plugin_id == plugin_id)
    found = []
    for position, *columns in session.execute(query):
        version = ZoneVersion(*columns)
        loaded = serving(runtime, version)
        if loaded is not None:
            found.append(Zone(loaded, version, position))
    return found


def serving(runtime: PluginRuntime, version: PluginVersion | ZoneVersion) -> LoadedPlugin | None:
    """The loaded plugin if its files are exactly the registered ``version``'s, else None."""
    loaded = runtime.plugins.get(version.plugin_id)
    if loaded is None or loaded.manifest is None:
        return None
    if loaded.manifest.version != version.version or loaded.checksum != version.checksum:
        log.error(
            "plugin %s: registered version %s is not the loaded one (%s); not served",
            version.plugin_id,
            version.version,
            loaded.manifest.version,
        )
        return None
    return loaded


def served_plugin(session: Session, runtime: PluginRuntime, plugin_id: str) -> LoadedPlugin | None:
    """The loaded plugin ``plugin_id`` if the registry has its loaded version active (any branch)."""
    if not is_plugin_id(plugin_id) or plugin_id not in runtime.plugins:
        return None
    loaded = runtime.plugins[plugin_id]
    version = session.scalar(
        select(PluginVersion).where(
            PluginVersion.plugin_id == plugin_id,
            PluginVersion.version == loaded.manifest.version,  # type: ignore[union-attr]
            PluginVersion.state == PluginState.ACTIVE,
        )
    )
    return None if version is None else serving(runtime, version)


def context_for(runtime: PluginRuntime, zone: Zone, branch: Branch | BranchInfo, locale: str):
    """The ``ctx`` for a call of ``zone``'s plugin on ``branch``'s storefront (a page of many
    zones passes the :func:`branch_info` it made once).

    Calls from ``/mp`` are anonymous until the shell and its bridge bring the customer
    (the page runs in an opaque origin and never carries the host's session).
    """
    return runtime.context(
        zone.plugin_id,
        branch=branch if isinstance(branch, BranchInfo) else branch_info(branch, locale),
        locale=locale,
        approved_scopes=zone.version.approved_scopes,
    )


# -- head office: branches -------------------------------------------------------------------
