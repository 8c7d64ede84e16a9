"""Releasing approved versions: gray release, widening, release to everyone, rollback, and the
kill switch — the one place that changes which versions customers get.

A mini-program's :class:`~.models.PluginRelease` row says it: ``stable`` for everyone, ``gray``
for the customers its rule selects (:mod:`.rollout`), ``previous`` for a rollback to return to,
``suspended_at`` for the kill switch. Each function works in the caller's transaction with the
row locked (and its ``revision`` checked), changes the versions' statuses through
:func:`.lifecycle.apply` (history, audit entry and notification with each), and raises a
:class:`~.errors.PublishingRefused`, writing nothing, when it refuses. Every host process reads
the row on every request that serves the mini-program, so a change is in effect from the next
request on.

A mini-program without a row is served as the host loaded it from its plugin folders; its first
gray release creates the row with that version (``baseline``) as ``stable``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from .. import audit
from ..db import utcnow
from ..identity.models import StaffRole
from ..oauth import token_cache
from ..runtime.models import PluginRecord, PluginState, PluginVersion
from . import lifecycle
from .actors import SYSTEM, Actor
from .errors import InvalidInput, NotAllowed, UnknownVersion, WrongState
from .lifecycle import Status
from .models import PackageVersion, PluginRelease
from .rollout import GrayRule, RuleInvalid, parse_rule, rule_from_json

#: The host when it rolls back or restores versions as part of a release or rollback.
RELEASES = Actor("system:releases", frozenset({SYSTEM}))
#: The host's automatic rollback (:mod:`.health`).
AUTO_ROLLBACK = Actor("system:auto-rollback", frozenset({SYSTEM}))


@dataclass(frozen=True)
class Serving:
    """What a mini-program's customers get now (the answer of the API)."""

    plugin_id: str
    stable: str | None
    gray: str | None
    rule: GrayRule
    previous: str | None
    suspended: bool
    suspended_reason: str

    def as_json(self) -> dict[str, Any]:
        """The release as the API answers it."""
        return {"plugin_id": self.plugin_id, "stable": self.stable, "gray": self.gray,
                "gray_rule": self.rule.as_json() if self.gray else None, "previous": self.previous,
                "suspended": self.suspended, "suspended_reason": self.suspended_reason or None}


def baseline(runtime, plugin_id: str) -> str | None:
    """The version ``runtime`` loaded from its plugin folders (served while there is no release)."""
    loaded = runtime.plugins.get(plugin_id)
    return None if loaded is None or loaded.manifest is None else loaded.manifest.version


def serving(session: Session, plugin_id: str, baseline: str | None) -> Serving:
    """What customers of ``plugin_id`` get now (``baseline``: the version loaded from the plugin
    folders, served while there is no release)."""
    row = session.get(PluginRelease, plugin_id)
    if row is None:
        return Serving(plugin_id, baseline, None, GrayRule(), None, False, "")
    return Serving(plugin_id, row.stable, row.gray, rule_from_json(row.gray_rule), row.previous,
                   row.suspended_at is not None, row.suspended_reason)


def _release_row(session: Session, actor: Actor, plugin_id: str, baseline: str | None) -> PluginRelease:
    """The plugin's release row, locked; made (with ``baseline`` as stable) when there is none."""
    row = session.get(PluginRelease, plugin_id, with_for_update=True)
    if row is None:
        if session.get(PluginRecord, plugin_id) is None:
            raise UnknownVersion(f"no plugin {plugin_id!r} is known")
        row = PluginRelease(plugin_id=plugin_id, stable=baseline, previous=None, gray=None, gray_rule={},
                            suspended_reason="", updated_by=actor.id, updated_at=utcnow())
        session.add(row)
    return row


def _save(session: Session, row: PluginRelease, actor: Actor) -> None:
    row.updated_by = actor.id
    row.updated_at = utcnow()
    try:
        session.flush()
    except StaleDataError:  # another transaction changed it first (where rows cannot be locked)
        raise WrongState(f"the release of {row.plugin_id} changed meanwhile; reload it and try again") from None


def _not_suspended(row: PluginRelease) -> None:
    if row.suspended_at is not None:
        raise WrongState(f"{row.plugin_id} is suspended by head office; it must be reinstated first")


def _rule(data: object) -> GrayRule:
    try:
        return parse_rule(data)
    except RuleInvalid as exc:
        raise InvalidInput({f"rule.{name}": texts for name, texts in exc.problems.items()}) from None


def _describe(rule: GrayRule) -> str:
    parts = [f"{rule.percent:g}% of customers"] if rule.percent else []
    for name, values in (("branches", rule.branches), ("tags", rule.tags)):
        if values:
            parts.append(f"{name} {', '.join(sorted(values))}")
    if rule.testers:
        parts.append(f"{len(rule.testers)} named testers")
    return "; ".join(parts) or "nobody yet"


def _register(session: Session, version: PackageVersion) -> None:
    """Make sure the registry holds ``version`` active with the scopes its review approved,
    so the storefront serves it: a reviewer's approval is head office's approval of its scopes."""
    found = session.scalar(select(PluginVersion).where(PluginVersion.plugin_id == version.plugin_id,
                                                       PluginVersion.version == version.version))
    scopes = list(version.manifest.get("scopes", []))
    if found is None:
        session.add(PluginVersion(plugin_id=version.plugin_id, version=version.version, manifest=version.manifest,
                                  checksum=version.checksum, source=f"package store: {version.plugin_id} {version.version}",
                                  state=PluginState.ACTIVE, state_reason="", approved_scopes=scopes))
    elif found.checksum != version.checksum:  # never: uploads refuse other files under a registered version
        raise WrongState(f"{version.plugin_id} {version.version} is registered with other files")
    else:
        found.approved_scopes = sorted(set(found.approved_scopes) | set(scopes))


def _package(session: Session, plugin_id: str, version: str | None) -> PackageVersion | None:
    if version is None:
        return None
    return session.scalar(select(PackageVersion).where(PackageVersion.plugin_id == plugin_id,
                                                       PackageVersion.version == version))


def start_gray(session: Session, actor: Actor, plugin_id: str, version: str, *, rule: object, reason: object = "",
               baseline: str | None = None) -> PluginRelease:
    """Serve the approved ``version`` to the customers ``rule`` selects; everyone else keeps
    the stable version. One gray version at a time; not before the approval's ``release_at``."""
    parsed = _rule(rule)
    candidate = lifecycle.find(session, plugin_id, version)
    if candidate.release_at is not None and candidate.release_at > utcnow():
        raise WrongState(f"{plugin_id} {version} was approved for release from {candidate.release_at.isoformat()}")
    row = _release_row(session, actor, plugin_id, baseline)
    _not_suspended(row)
    if row.gray is not None:
        raise WrongState(f"{plugin_id} {row.gray} is in gray release; release it or roll it back first")
    package = lifecycle.apply(session, actor, plugin_id, version, "start_gray",
                              reason=_with(reason, f"to {_describe(parsed)}"))
    _register(session, package)
    row.gray, row.gray_rule, row.gray_since = version, parsed.as_json(), utcnow()
    _save(session, row, actor)
    return row


def widen(session: Session, actor: Actor, plugin_id: str, *, rule: object, reason: object = "") -> PluginRelease:
    """Give the gray version to more customers: the new rule must select everyone the old one
    did (to narrow a gray release, roll it back)."""
    parsed = _rule(rule)
    row = _release_row(session, actor, plugin_id, None)
    _not_suspended(row)
    if row.gray is None:
        raise WrongState(f"{plugin_id} has no version in gray release")
    if not parsed.covers(rule_from_json(row.gray_rule)):
        raise InvalidInput({"rule": ["a widening keeps every branch, tag, tester and at least the percentage "
                                     "of the current rule; to narrow a gray release, roll it back"]})
    lifecycle.apply(session, actor, plugin_id, row.gray, "widen", reason=_with(reason, f"to {_describe(parsed)}"))
    row.gray_rule = parsed.as_json()
    _save(session, row, actor)
    return row


def release(session: Session, actor: Actor, plugin_id: str, *, reason: object = "") -> PluginRelease:
    """Serve the gray version to every customer; the stable one before it becomes ``previous``
    (superseded: a rollback returns to it)."""
    row = _release_row(session, actor, plugin_id, None)
    _not_suspended(row)
    if row.gray is None:
        raise WrongState(f"{plugin_id} has no version in gray release; start one first")
    lifecycle.apply(session, actor, plugin_id, row.gray, "release", reason=reason)
    old = _package(session, plugin_id, row.stable)
    if old is not None and old.status == Status.RELEASED:
        lifecycle.apply(session, RELEASES, plugin_id, old.version, "supersede", reason=f"{row.gray} was released")
    row.previous, row.stable, row.gray, row.gray_rule, row.gray_since = row.stable, row.gray, None, {}, None
    _save(session, row, actor)
    return row


def rollback(session: Session, actor: Actor, plugin_id: str, *, reason: object,
             evidence: dict[str, Any] | None = None, gray: str | None = None) -> PluginRelease:
    """Return every customer to the version before: a gray version is taken back (everyone gets
    the stable one), else the stable version is replaced by ``previous``. ``evidence`` (what
    the automatic rollback measured) is recorded in the audit log; ``gray`` rolls back only
    that gray version (:class:`WrongState` when it is not the gray one any more)."""
    text = lifecycle.clean_reason(reason, required=True)
    row = _release_row(session, actor, plugin_id, None)
    if gray is not None and row.gray != gray:
        raise WrongState(f"{plugin_id} {gray} is not in gray release any more")
    if row.gray is not None:
        lifecycle.apply(session, actor, plugin_id, row.gray, "rollback", reason=text)
        taken = row.gray
        row.gray, row.gray_rule, row.gray_since = None, {}, None
    elif row.stable is not None and row.previous is not None:
        if _package(session, plugin_id, row.stable) is None:
            raise WrongState(f"{plugin_id} {row.stable} was not published through the host; it cannot be rolled back")
        lifecycle.apply(session, actor, plugin_id, row.stable, "rollback", reason=text)
        earlier = _package(session, plugin_id, row.previous)
        if earlier is not None and earlier.status == Status.SUPERSEDED:
            lifecycle.apply(session, RELEASES, plugin_id, earlier.version, "restore",
                            reason=f"{row.stable} was rolled back")
        elif earlier is not None:
            raise WrongState(f"{plugin_id} {row.previous} is {earlier.status}: there is nothing to return to")
        taken = row.stable
        row.stable, row.previous = row.previous, None
    else:
        raise WrongState(f"{plugin_id} has no earlier version to return to; head office can suspend it instead")
    _save(session, row, actor)
    if evidence is not None:
        audit.record("publishing.auto_rollback", outcome=audit.SUCCESS, actor=actor.id, subject=f"{plugin_id}@{taken}",
                     plugin_id=plugin_id, detail={"version": taken, "evidence": evidence}, session=session)
    return row


def _head_office(actor: Actor) -> None:
    if not actor.has(StaffRole.HQ_ADMIN):
        raise NotAllowed("only head office's administrators (hq_admin) suspend and reinstate mini-programs")


def suspend(session: Session, actor: Actor, plugin_id: str, *, reason: object) -> PluginRelease:
    """The kill switch: nothing of the mini-program is served anywhere from the next request
    on, and its tokens and consents stop working, until head office reinstates it."""
    _head_office(actor)
    text = lifecycle.clean_reason(reason, required=True)
    row = _release_row(session, actor, plugin_id, None)
    if row.suspended_at is not None:
        raise WrongState(f"{plugin_id} is suspended already")
    row.suspended_at, row.suspended_reason = utcnow(), text
    _save(session, row, actor)
    token_cache.forget(session, client_id=plugin_id)  # cached grants stop at once too
    lifecycle.record_plugin_change(session, actor, plugin_id, "suspend_plugin", "suspended",
                                   f"{plugin_id} was suspended by head office: {text}", version=row.stable or "")
    return row


def reinstate(session: Session, actor: Actor, plugin_id: str, *, reason: object) -> PluginRelease:
    """Lift the kill switch: the mini-program is served as its release says again."""
    _head_office(actor)
    text = lifecycle.clean_reason(reason, required=True)
    row = session.get(PluginRelease, plugin_id, with_for_update=True)
    if row is None or row.suspended_at is None:
        raise WrongState(f"{plugin_id} is not suspended")
    row.suspended_at, row.suspended_reason = None, ""
    _save(session, row, actor)
    lifecycle.record_plugin_change(session, actor, plugin_id, "reinstate_plugin", "reinstated",
                                   f"{plugin_id} was reinstated by head office: {text}", version=row.stable or "")
    return row


def _with(reason: object, what: str) -> str:
    """The reason given, with what the change did (both in the history)."""
    given = lifecycle.clean_reason(reason, required=False)
    return (f"{what}: {given}" if given else what)[:lifecycle.MAX_REASON]


def suspended(session: Session, plugin_id: str) -> bool:
    """Whether head office has suspended ``plugin_id`` (its tokens and consents do not work)."""
    return session.scalar(select(PluginRelease.suspended_at).where(PluginRelease.plugin_id == plugin_id)) is not None


__all__ = ["AUTO_ROLLBACK", "RELEASES", "Serving", "release", "reinstate", "rollback", "serving", "start_gray",
           "suspend", "suspended", "widen"]
