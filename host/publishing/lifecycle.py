"""The lifecycle of an uploaded version: the one table of who may move a version from which
status to which, and :func:`apply`, the one way a status changes.

The table (:data:`TRANSITIONS`; the diagram is in docs/publishing.md)::

    upload                     -> draft        (the publisher)
    submit         draft       -> submitted    (the publisher)
    pass_precheck  submitted   -> pre_review   (the host's automatic checks)
    fail_precheck  submitted   -> rejected     (the host's automatic checks)
    start_review   pre_review  -> in_review    (an hq_reviewer who does not publish it)
    approve        in_review   -> approved     (the same rule; optionally with release_at)
    reject         in_review   -> rejected     (the same rule)
    suspend        approved | gray | released -> suspended              (an hq_admin)
    reinstate      suspended   -> approved                              (an hq_admin)
    retire         draft | approved | gray | released | suspended | rolled_back -> retired
                                 (the publisher's branch_admin or back end, or an hq_admin)

Every change happens in the caller's transaction with the version row locked (``FOR UPDATE``)
and its ``revision`` checked on update, so two concurrent requests never both move one version;
with it, in the same transaction, one history row (:class:`~.models.VersionTransition`), one
audit entry and one notification to the publisher. A refused action raises a
:class:`~.errors.PublishingRefused` before anything is written.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from .. import audit
from ..db import utcnow
from ..identity.models import StaffRole
from ..runtime.models import PluginRecord
from .actors import PARTNER, SYSTEM, Actor, Decision, allow, deny, publishes_for
from .errors import InvalidInput, NotAllowed, UnknownVersion, WrongState
from .models import PackageVersion, PublisherNotification, VersionTransition


class Status:
    """Where a version stands."""

    DRAFT = "draft"  #: uploaded; the publisher may still submit or retire it
    SUBMITTED = "submitted"  #: handed in; the automatic pre-review runs
    PRE_REVIEW = "pre_review"  #: passed the automatic checks; waits for a reviewer
    IN_REVIEW = "in_review"  #: a reviewer has taken it
    APPROVED = "approved"  #: may be released (from ``release_at``, when set)
    GRAY = "gray"  #: served to the customers its gray rule selects
    RELEASED = "released"  #: served to every customer (outside a newer version's gray release)
    SUPERSEDED = "superseded"  #: was released; a newer version replaced it (a rollback returns to it)
    ROLLED_BACK = "rolled_back"  #: taken back in favour of the version before it
    SUSPENDED = "suspended"  #: stopped by head office
    RETIRED = "retired"  #: withdrawn for good
    REJECTED = "rejected"  #: refused by the pre-review or a reviewer; final
    ALL = (DRAFT, SUBMITTED, PRE_REVIEW, IN_REVIEW, APPROVED, GRAY, RELEASED, SUPERSEDED, ROLLED_BACK, SUSPENDED,
           RETIRED, REJECTED)
    #: Versions customers may be served.
    LIVE = (GRAY, RELEASED)
    #: Nothing leaves these.
    FINAL = (RETIRED, REJECTED)


#: The action that creates a version (its first history row: from nothing to ``draft``).
UPLOAD = "upload"
#: The longest reason accepted.
MAX_REASON = 1000


def _publisher(actor: Actor, version: PackageVersion) -> Decision:
    return publishes_for(actor, version.publisher_kind, version.publisher_id)


def _publisher_admin(doing: str) -> Callable[[Actor, PackageVersion], Decision]:
    """The check "head office, or the publisher's branch_admin or back end" for ``doing``."""

    def check(actor: Actor, version: PackageVersion) -> Decision:
        if actor.has(StaffRole.HQ_ADMIN):
            return allow(f"head office may do this to any version: {doing}")
        found = _publisher(actor, version)
        if found and actor.has(StaffRole.BRANCH_ADMIN, PARTNER):
            return found
        if found:
            return deny(f"{doing} needs the branch's administrator (branch_admin)")
        return found

    return check


_publisher_admin_or_head_office = _publisher_admin("retiring a version")
_releaser = _publisher_admin("releasing and rolling back")


def _independent_reviewer(actor: Actor, version: PackageVersion) -> Decision:
    if not actor.has(StaffRole.HQ_REVIEWER):
        return deny("only head office's reviewers (hq_reviewer) review versions")
    if actor.id in (version.uploaded_by, version.submitted_by) or _publisher(actor, version):
        return deny("you publish this mini-program: another reviewer must review it")
    return allow("an independent reviewer of head office")


def _releaser_or_host(actor: Actor, version: PackageVersion) -> Decision:
    if actor.has(SYSTEM):
        return allow("the host's automatic rollback")
    return _releaser(actor, version)


def _host(actor: Actor, version: PackageVersion) -> Decision:
    if actor.has(SYSTEM):
        return allow("the host, as part of a release or rollback")
    return deny("the host does this itself when another version is released or rolled back")


def _head_office_admin(actor: Actor, version: PackageVersion) -> Decision:
    if actor.has(StaffRole.HQ_ADMIN):
        return allow("head office's administrator")
    return deny("only head office's administrators (hq_admin) suspend and reinstate versions")


def _system(actor: Actor, version: PackageVersion) -> Decision:
    if actor.has(SYSTEM):
        return allow("the host's automatic pre-review")
    return deny("only the host's automatic pre-review decides this")


@dataclass(frozen=True)
class Transition:
    """One action: the statuses it starts from, the status it leads to, and who may take it."""

    action: str
    sources: frozenset[str]
    target: str
    who: str  #: in words, for documents and errors
    check: Callable[[Actor, PackageVersion], Decision]
    needs_reason: bool = False
    message: str = ""  #: what the publisher's notification says happened


def _t(action, sources, target, who, check, *, needs_reason=False, message=""):
    return Transition(action, frozenset(sources), target, who, check, needs_reason, message)


S = Status
#: The transition table: every status change there is, and who may make it.
TRANSITIONS: dict[str, Transition] = {t.action: t for t in (
    _t("submit", [S.DRAFT], S.SUBMITTED, "the publisher", _publisher,
       message="was submitted for review"),
    _t("pass_precheck", [S.SUBMITTED], S.PRE_REVIEW, "the automatic pre-review", _system,
       message="passed the automatic checks and waits for a reviewer"),
    _t("fail_precheck", [S.SUBMITTED], S.REJECTED, "the automatic pre-review", _system, needs_reason=True,
       message="failed the automatic checks"),
    _t("start_review", [S.PRE_REVIEW], S.IN_REVIEW, "an hq_reviewer who does not publish it", _independent_reviewer,
       message="is being reviewed"),
    _t("approve", [S.IN_REVIEW], S.APPROVED, "an hq_reviewer who does not publish it", _independent_reviewer,
       message="was approved"),
    _t("reject", [S.IN_REVIEW], S.REJECTED, "an hq_reviewer who does not publish it", _independent_reviewer,
       needs_reason=True, message="was rejected"),
    _t("start_gray", [S.APPROVED], S.GRAY, "the publisher's branch_admin or back end, or an hq_admin", _releaser,
       message="is in gray release"),
    _t("widen", [S.GRAY], S.GRAY, "the publisher's branch_admin or back end, or an hq_admin", _releaser,
       message="goes to more customers"),
    _t("release", [S.GRAY], S.RELEASED, "the publisher's branch_admin or back end, or an hq_admin", _releaser,
       message="was released to every customer"),
    _t("supersede", [S.RELEASED], S.SUPERSEDED, "the host", _host,
       message="was replaced by a newer release"),
    _t("rollback", [S.GRAY, S.RELEASED], S.ROLLED_BACK,
       "the publisher's branch_admin or back end, an hq_admin, or the host's automatic rollback", _releaser_or_host,
       needs_reason=True, message="was rolled back"),
    _t("restore", [S.SUPERSEDED], S.RELEASED, "the host", _host,
       message="is served again: the release after it was rolled back"),
    _t("suspend", [S.APPROVED, S.SUPERSEDED], S.SUSPENDED, "an hq_admin", _head_office_admin,
       needs_reason=True, message="was suspended by head office"),
    _t("reinstate", [S.SUSPENDED], S.APPROVED, "an hq_admin", _head_office_admin, needs_reason=True,
       message="was reinstated by head office"),
    _t("retire", [S.DRAFT, S.APPROVED, S.SUPERSEDED, S.SUSPENDED, S.ROLLED_BACK], S.RETIRED,
       "the publisher (branch_admin, partner back end) or an hq_admin", _publisher_admin_or_head_office,
       message="was retired"),
)}
del S


def clean_reason(value: object, *, required: bool) -> str:
    """``value`` as a reason: text of at most :data:`MAX_REASON` characters without control
    characters (line breaks and tabs allowed), trimmed; :class:`InvalidInput` otherwise."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput({"reason": ["must be text"]})
    value = value.strip()
    if len(value) > MAX_REASON:
        raise InvalidInput({"reason": [f"must have at most {MAX_REASON} characters"]})
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\t" for ch in value):
        raise InvalidInput({"reason": ["must not hold control characters"]})
    if required and not value:
        raise InvalidInput({"reason": ["say why: this action needs a reason"]})
    return value


def find(session: Session, plugin_id: str, version: str, *, lock: bool = False) -> PackageVersion:
    """The uploaded version (locked for this transaction when ``lock``); :class:`UnknownVersion`
    when there is none."""
    query = select(PackageVersion).where(PackageVersion.plugin_id == plugin_id, PackageVersion.version == version)
    if lock:
        query = query.with_for_update()
    found = session.scalar(query)
    if found is None:
        raise UnknownVersion(f"no version {version[:64]!r} of {plugin_id[:64]!r} was uploaded")
    return found


def decide(actor: Actor, action: str, version: PackageVersion) -> Decision:
    """Whether ``actor`` may take ``action`` on ``version`` now (its role, then its status)."""
    transition = TRANSITIONS.get(action)
    if transition is None:
        return deny(f"there is no action {action[:32]!r}")
    found = transition.check(actor, version)
    if not found:
        return found
    if version.status not in transition.sources:
        return deny(_wrong_state(transition, version))
    return found


def _wrong_state(transition: Transition, version: PackageVersion) -> str:
    starts = ", ".join(sorted(transition.sources))
    return f"{version.plugin_id} {version.version} is {version.status}; {transition.action} starts from {starts}"


def apply(session: Session, actor: Actor, plugin_id: str, version: str, action: str, *, reason: object = "",
          release_at: datetime | None = None) -> PackageVersion:
    """Take ``action`` on a version for ``actor``, in the caller's transaction; return the version.

    Raises, writing nothing: :class:`InvalidInput` (unknown action, a missing or bad reason,
    ``release_at`` not in the future or on another action than ``approve``),
    :class:`UnknownVersion`, :class:`NotAllowed` (not this actor's to do) and
    :class:`WrongState` (not from this status, or changed meanwhile).
    """
    transition = TRANSITIONS.get(action)
    if transition is None:
        raise InvalidInput({"action": [f"must be one of: {', '.join(TRANSITIONS)}"]})
    reason = clean_reason(reason, required=transition.needs_reason)
    if release_at is not None:
        if action != "approve":
            raise InvalidInput({"release_at": ["only an approval sets a release time"]})
        if release_at.tzinfo is None or release_at <= utcnow():
            raise InvalidInput({"release_at": ["must be a time in the future, with its time zone"]})
    row = find(session, plugin_id, version, lock=True)
    found = transition.check(actor, row)
    if not found:
        raise NotAllowed(found.reason)
    if row.status not in transition.sources:
        raise WrongState(_wrong_state(transition, row))
    before = row.status
    row.status = transition.target
    row.status_reason = reason
    row.updated_at = utcnow()
    if action == "submit":
        row.submitted_by = actor.id
    if transition.check is _independent_reviewer:
        row.reviewed_by = actor.id
    if action == "approve":
        row.release_at = release_at.astimezone(timezone.utc) if release_at is not None else None
    try:
        session.flush()
    except StaleDataError:  # another transaction moved it first (where rows cannot be locked)
        raise WrongState(f"{plugin_id} {version} changed meanwhile; reload it and try again") from None
    record(session, actor, row, action, before, reason)
    return row


def record(session: Session, actor: Actor, row: PackageVersion, action: str, before: str | None, reason: str) -> VersionTransition:
    """Write what a status change leaves behind, in the caller's transaction: one history row,
    one audit entry and one notification to the publisher."""
    entry = VersionTransition(version_pk=row.pk, action=action, from_status=before, to_status=row.status,
                              actor=actor.id, reason=reason, at=row.updated_at)
    session.add(entry)
    session.flush()
    audit.record(f"publishing.{action}", outcome=audit.SUCCESS, actor=actor.id, subject=f"{row.plugin_id}@{row.version}",
                 plugin_id=row.plugin_id, branch=actor.branch,
                 detail={"version": row.version, "from": before, "to": row.status, "reason": reason[:200]},
                 session=session)
    message = TRANSITIONS[action].message if action in TRANSITIONS else "was uploaded as a draft"
    text = f"{row.plugin_id} {row.version} {message}" + (f": {reason}" if reason else ".")
    session.add(PublisherNotification(publisher_kind=row.publisher_kind, publisher_id=row.publisher_id,
                                      plugin_id=row.plugin_id, version=row.version, transition_id=entry.id,
                                      action=action, status=row.status, message=text, created_at=row.updated_at))
    return entry


def record_plugin_change(session: Session, actor: Actor, plugin_id: str, action: str, status: str, message: str,
                         *, version: str = "") -> None:
    """What a change of a whole mini-program (its suspension, its promotion) leaves, in the
    caller's transaction: one audit entry and one notification to its publisher."""
    record = session.get(PluginRecord, plugin_id)
    assert record is not None
    audit.record(f"publishing.{action}", outcome=audit.SUCCESS, actor=actor.id, subject=plugin_id, plugin_id=plugin_id,
                 branch=actor.branch, detail={"message": message[:300]}, session=session)
    session.add(PublisherNotification(publisher_kind=record.publisher_kind, publisher_id=record.publisher_id,
                                      plugin_id=plugin_id, version=version, transition_id=None, action=action,
                                      status=status, message=message, created_at=utcnow()))


def history(session: Session, row: PackageVersion) -> list[VersionTransition]:
    """Every status change of a version, oldest first."""
    query = select(VersionTransition).where(VersionTransition.version_pk == row.pk).order_by(VersionTransition.id)
    return list(session.scalars(query))
