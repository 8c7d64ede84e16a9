"""Installing mini-programs into a branch's storefront, uninstalling them, ordering the grid.

Only a **published** mini-program can be installed: the version this host runs is registered,
``active``, loaded with exactly its registered files, and every scope its manifest asks for
was approved by head office. A branch's own mini-program (publisher kind ``branch``) is for
that branch and the branches under it — unless head office promoted it to the whole bank
(:mod:`host.publishing.promotion`); bank and partner mini-programs may go anywhere. The version
installed is the one every customer gets (its release's stable version, docs/publishing.md).
Uninstalling deletes the installation, so the zone is gone from the very next storefront
request (storefronts read installations on every request, nothing is cached).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import audit
from ..identity.models import Staff
from ..publishing.models import PluginRelease
from ..publishing.promotion import promoted
from ..runtime.loader import LoadedPlugin
from ..runtime.models import PluginRecord, PluginState, PluginVersion
from ..runtime.services import PluginRuntime
from .errors import InvalidChange
from .models import Branch, Installation
from .rights import Action, authorize
from .services import get_branch, is_plugin_id, serving

#: Positions are spaced so a grid can be read at a glance in the database.
POSITION_STEP = 10
#: The most mini-programs one storefront may have installed.
MAX_INSTALLED = 200


@dataclass(frozen=True)
class Candidate:
    """A published mini-program that a branch could install."""

    plugin: LoadedPlugin
    version: PluginVersion
    publisher_kind: str
    publisher_id: str
    promoted: bool = False  #: a branch's mini-program head office offers to every branch

    @property
    def plugin_id(self) -> str:
        """The mini-program's id."""
        return self.version.plugin_id


def _published(session: Session, runtime: PluginRuntime) -> dict[str, Candidate]:
    """Every published mini-program, by id, in the version every customer gets: its release's
    stable version, or — never released through the host — the one loaded from the plugin
    folders. Suspended ones are not offered."""
    rows = session.execute(
        select(PluginVersion, PluginRecord.publisher_kind, PluginRecord.publisher_id, PluginRelease.plugin_id,
               PluginRelease.stable, PluginRelease.suspended_at)
        .join(PluginRecord, PluginRecord.id == PluginVersion.plugin_id)
        .outerjoin(PluginRelease, PluginRelease.plugin_id == PluginVersion.plugin_id)
        .where(PluginVersion.state == PluginState.ACTIVE)
    ).all()
    offered = promoted(session)
    found = {}
    for version, kind, publisher, released, stable, suspended_at in rows:
        if released is not None:
            if suspended_at is not None or version.version != stable:
                continue
        else:
            loaded = runtime.plugins.get(version.plugin_id)
            if loaded is None or loaded.manifest is None or loaded.manifest.version != version.version:
                continue
        if not set(version.manifest.get("scopes", [])) <= set(version.approved_scopes or []):
            continue  # head office has not approved everything it asks for
        serving_now = serving(runtime, version)
        if serving_now is not None:
            found[version.plugin_id] = Candidate(serving_now, version, kind, publisher, version.plugin_id in offered)
    return found


def _lineage(session: Session, branch_code: str) -> set[str]:
    """``branch_code`` and every branch above it."""
    parents = dict(session.execute(select(Branch.code, Branch.parent_code)).all())
    seen: set[str] = set()
    code: str | None = branch_code
    while code is not None and code not in seen:
        seen.add(code)
        code = parents.get(code)
    return seen


def _may_run_in(candidate: Candidate, lineage: set[str]) -> bool:
    return candidate.publisher_kind != "branch" or candidate.publisher_id in lineage or candidate.promoted


def installable(session: Session, runtime: PluginRuntime, branch_code: str) -> list[Candidate]:
    """The published mini-programs ``branch_code`` may install and has not, by id."""
    installed = set(session.scalars(select(Installation.plugin_id).where(Installation.branch_code == branch_code)))
    lineage = _lineage(session, branch_code)
    return [candidate for plugin_id, candidate in sorted(_published(session, runtime).items())
            if plugin_id not in installed and _may_run_in(candidate, lineage)]


def installed(session: Session, branch_code: str) -> list[Installation]:
    """What ``branch_code`` has installed, in grid order (served now or not)."""
    return list(session.scalars(select(Installation).where(Installation.branch_code == branch_code)
                                .order_by(Installation.position, Installation.plugin_id)))


def install(session: Session, runtime: PluginRuntime, staff: Staff, branch_code: str, plugin_id: Any) -> Installation:
    """Install the published mini-program ``plugin_id`` at the end of ``branch_code``'s grid."""
    authorize(session, staff, Action.INSTALLS, branch_code)
    branch = get_branch(session, branch_code)
    if not isinstance(plugin_id, str) or not is_plugin_id(plugin_id):
        raise InvalidChange({"plugin_id": [_("is not a mini-program id")]})
    candidate = _published(session, runtime).get(plugin_id)
    if candidate is None:
        raise InvalidChange({"plugin_id": [_("%(plugin)s is not a published mini-program", plugin=plugin_id)]})
    if not _may_run_in(candidate, _lineage(session, branch.code)):
        raise InvalidChange({"plugin_id": [_("%(plugin)s belongs to branch %(publisher)s and the branches under it",
                                             plugin=plugin_id, publisher=candidate.publisher_id)]})
    rows = installed(session, branch.code)
    if any(row.plugin_id == plugin_id for row in rows):
        raise InvalidChange({"plugin_id": [_("%(plugin)s is installed already", plugin=plugin_id)]})
    if len(rows) >= MAX_INSTALLED:
        raise InvalidChange({"plugin_id": [_("a storefront holds at most %(count)d mini-programs", count=MAX_INSTALLED)]})
    last = session.scalar(select(func.max(Installation.position)).where(Installation.branch_code == branch.code))
    row = Installation(branch_code=branch.code, plugin_id=plugin_id, version=candidate.version.version,
                       position=(last if last is not None else -POSITION_STEP) + POSITION_STEP)
    session.add(row)
    session.flush()
    audit.record("storefront.installed", outcome=audit.SUCCESS, actor=staff.username, plugin_id=plugin_id,
                 branch=branch.code, detail={"version": row.version, "position": row.position}, session=session)
    return row


def uninstall(session: Session, staff: Staff, branch_code: str, plugin_id: Any) -> None:
    """Remove ``plugin_id`` from ``branch_code``'s storefront: its zone is gone at once."""
    authorize(session, staff, Action.INSTALLS, branch_code)
    branch = get_branch(session, branch_code)
    row = None
    if isinstance(plugin_id, str) and is_plugin_id(plugin_id):
        row = session.scalar(select(Installation).where(Installation.branch_code == branch.code,
                                                        Installation.plugin_id == plugin_id))
    if row is None:
        raise InvalidChange({"plugin_id": [_("is not installed in this storefront")]})
    audit.record("storefront.uninstalled", outcome=audit.SUCCESS, actor=staff.username, plugin_id=plugin_id,
                 branch=branch.code, detail={"version": row.version}, session=session)
    session.delete(row)
    session.flush()


def order_grid(session: Session, staff: Staff, branch_code: str, order: Sequence[Any]) -> list[str]:
    """Put ``branch_code``'s installed mini-programs in ``order`` (every installed id exactly once)."""
    authorize(session, staff, Action.GRID, branch_code)
    branch = get_branch(session, branch_code)
    rows = {row.plugin_id: row for row in installed(session, branch.code)}
    wanted = [value for value in order if isinstance(value, str)] if isinstance(order, (list, tuple)) else []
    if len(wanted) != len(order) or len(set(wanted)) != len(wanted) or set(wanted) != set(rows):
        raise InvalidChange({"order": [_("must name each installed mini-program exactly once: %(ids)s",
                                         ids=", ".join(rows) or "-")]})
    before = list(rows)
    for index, plugin_id in enumerate(wanted):
        rows[plugin_id].position = index * POSITION_STEP
    session.flush()
    audit.record("storefront.grid_ordered", outcome=audit.SUCCESS, actor=staff.username, branch=branch.code,
                 detail={"old": before, "new": wanted}, session=session)
    return wanted
