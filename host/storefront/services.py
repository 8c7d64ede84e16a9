"""Storefront queries: branches, and which plugin zones a branch's storefront shows; head office
adding and renaming branches."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import groupby

from canopy_sdk.manifest import PLUGIN_ID
from canopy_sdk.types import BranchInfo
from sqlalchemy import case, or_, select
from sqlalchemy.orm import Session

from ..identity.models import Customer
from ..publishing.models import PluginRelease
from ..publishing.rollout import NOBODY, Audience, choose, rule_from_json
from ..runtime.loader import LoadedPlugin
from ..runtime.models import PluginState, PluginVersion
from ..runtime.services import PluginRuntime
from .models import Branch, CustomerTag, Installation

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


def customer_tags(session: Session, customer_id: str) -> list[str]:
    """The tags ``customer_id`` carries, by name."""
    return list(session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == customer_id)
                                .order_by(CustomerTag.tag)))


def audience(session: Session, customer_id: str | None, branch_code: str) -> Audience:
    """Whom a request serves, for choosing versions: a signed-in customer (their home branch and
    tags read only if a gray rule names branches or tags), or an anonymous visitor of
    ``branch_code``'s storefront."""
    if customer_id is None:
        return Audience(None, branch_code)
    return Audience(customer_id, branch_code, lambda who: customer_tags(session, who),
                    lambda who: session.scalar(select(Customer.branch_code).where(Customer.id == who)))


def zones(session: Session, runtime: PluginRuntime, branch_code: str, plugin_id: str | None = None,
          who: Audience = NOBODY, *, version: str | None = None) -> list[Zone]:
    """The zones a branch's storefront shows, in grid order: installed, not suspended, in the
    version ``who`` gets (docs/publishing.md: stable, or gray when its rule selects them; the
    installed version when the mini-program was never released through the host), active in
    the registry and loaded with exactly the registered files. ``version`` asks for that
    version when it is the stable or the gray one (a frame's address carries the shell's choice)."""
    if plugin_id is not None and not is_plugin_id(plugin_id):
        return []
    stable = case((PluginRelease.plugin_id.is_(None), Installation.version), else_=PluginRelease.stable)
    query = (
        select(Installation.position, PluginVersion.plugin_id, PluginVersion.version, PluginVersion.checksum,
               PluginVersion.state, PluginVersion.approved_scopes, stable, PluginRelease.gray, PluginRelease.gray_rule)
        .outerjoin(PluginRelease, PluginRelease.plugin_id == Installation.plugin_id)
        .join(
            PluginVersion,
            (PluginVersion.plugin_id == Installation.plugin_id)
            & or_(PluginVersion.version == stable, PluginVersion.version == PluginRelease.gray),
        )
        .where(Installation.branch_code == branch_code, PluginVersion.state == PluginState.ACTIVE,
               PluginRelease.suspended_at.is_(None))
        .order_by(Installation.position, Installation.plugin_id, PluginVersion.version)
    )
    if plugin_id is not None:
        query = query.where(Installation.plugin_id == plugin_id)
    found = []
    # One or two rows per installed plugin (its stable and its gray version), next to each other.
    for plugin, group in groupby(session.execute(query), key=lambda row: row[1]):
        candidates = {row[2]: row for row in group}
        position, *_, stable_version, gray, rule = next(iter(candidates.values()))
        if version is not None and version in (stable_version, gray):
            wanted = version
        elif gray is not None:
            wanted = choose(plugin, stable_version, gray, rule_from_json(rule), who)
        else:
            wanted = stable_version
        row = candidates.get(wanted) or candidates.get(stable_version)
        if row is None:
            continue
        zone_version = ZoneVersion(*row[1:6])
        loaded = runtime.version(zone_version.plugin_id, zone_version.version, zone_version.checksum)
        if loaded is not None:
            found.append(Zone(loaded, zone_version, position))
    return found


def serving(runtime: PluginRuntime, version: PluginVersion | ZoneVersion) -> LoadedPlugin | None:
    """The plugin ``version`` ready to call if its files are exactly the registered ones, else None."""
    return runtime.version(version.plugin_id, version.version, version.checksum)


def served_plugin(session: Session, runtime: PluginRuntime, plugin_id: str, version: str | None = None) -> LoadedPlugin | None:
    """The plugin as it is served to visitors nobody knows (its static files, the bridge's
    session exchange): ``version`` while it is the stable or the gray one, else the stable one;
    None when it is suspended or nothing of it is served."""
    if not is_plugin_id(plugin_id):
        return None
    release = session.get(PluginRelease, plugin_id)
    if release is None:
        loaded = runtime.plugins.get(plugin_id)
        wanted = None if loaded is None or loaded.manifest is None else loaded.manifest.version
    elif release.suspended_at is not None:
        return None
    else:
        wanted = version if version is not None and version in (release.stable, release.gray) else release.stable
    if wanted is None:
        return None
    row = session.scalar(select(PluginVersion).where(PluginVersion.plugin_id == plugin_id,
                                                     PluginVersion.version == wanted,
                                                     PluginVersion.state == PluginState.ACTIVE))
    return None if row is None else serving(runtime, row)


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
        plugin=zone.plugin,
    )


# -- head office: branches -------------------------------------------------------------------
