"""Promotion to the whole bank (全行推广): a branch proposes one of its mini-programs, head
office approves or declines it, and an approved one is offered to every branch's storefront.

A branch's mini-program is otherwise installable only by its own branch and the branches
under it (:mod:`host.storefront.installs`). The proposal is the publisher's: its
``branch_admin`` (an operator proposes nothing). Head office's ``hq_admin`` decides, never a
member of the proposing branch, and may withdraw an approval later: then no further branch
can install it (installations already made stay; a branch uninstalls its own).

Each function works in the caller's transaction with the row locked and its revision checked;
each change leaves an audit entry and a notification to the publisher
(:func:`.lifecycle.record_plugin_change`); a refusal raises a
:class:`~.errors.PublishingRefused` and writes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ..db import utcnow
from ..identity.models import StaffRole
from ..runtime.models import PluginRecord
from . import lifecycle
from .actors import BRANCH, Actor, publishes_for
from .errors import NotAllowed, UnknownVersion, WrongState
from .models import PluginPromotion


class Status:
    """Where a proposal stands."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


def _plugin(session: Session, plugin_id: str) -> PluginRecord:
    record = session.get(PluginRecord, plugin_id)
    if record is None:
        raise UnknownVersion(f"no plugin {plugin_id!r} is known")
    return record


def _save(session: Session, row: PluginPromotion) -> None:
    try:
        session.flush()
    except StaleDataError:
        raise WrongState(f"the promotion of {row.plugin_id} changed meanwhile; reload it and try again") from None


def _head_office(actor: Actor, record: PluginRecord) -> None:
    if not actor.has(StaffRole.HQ_ADMIN):
        raise NotAllowed("only head office's administrators (hq_admin) decide promotions to the whole bank")
    if actor.branch is not None and actor.branch == record.publisher_id:
        raise NotAllowed("a branch never decides the promotion of its own mini-program")


def propose(session: Session, actor: Actor, plugin_id: str, *, reason: object) -> PluginPromotion:
    """Propose a branch's mini-program for every branch (its ``branch_admin``, with a reason)."""
    text = lifecycle.clean_reason(reason, required=True)
    record = _plugin(session, plugin_id)
    if record.publisher_kind != BRANCH:
        raise WrongState(f"{plugin_id} is {record.publisher_kind}:{record.publisher_id}'s; only a branch's "
                         f"mini-program is promoted (the bank's and partners' may be installed anywhere)")
    found = publishes_for(actor, record.publisher_kind, record.publisher_id)
    if not found:
        raise NotAllowed(found.reason)
    if not actor.has(StaffRole.BRANCH_ADMIN):
        raise NotAllowed("proposing a mini-program for the whole bank needs the branch's administrator (branch_admin)")
    row = session.get(PluginPromotion, plugin_id, with_for_update=True)
    if row is not None and row.status in (Status.PROPOSED, Status.APPROVED):
        raise WrongState(f"{plugin_id} is {row.status} for the whole bank already")
    if row is None:
        row = PluginPromotion(plugin_id=plugin_id)
        session.add(row)
    row.status, row.proposed_by, row.proposal, row.proposed_at = Status.PROPOSED, actor.id, text, utcnow()
    row.decided_by, row.decision, row.decided_at = None, "", None
    _save(session, row)
    lifecycle.record_plugin_change(session, actor, plugin_id, "propose_promotion", Status.PROPOSED,
                                   f"{plugin_id} was proposed for the whole bank: {text}")
    return row


def _decide(session: Session, actor: Actor, plugin_id: str, reason: object, *, required: bool, start: str,
            target: str, action: str, message: str) -> PluginPromotion:
    text = lifecycle.clean_reason(reason, required=required)
    record = _plugin(session, plugin_id)
    _head_office(actor, record)
    row = session.get(PluginPromotion, plugin_id, with_for_update=True)
    if row is None or row.status != start:
        raise WrongState(f"{plugin_id} is {row.status if row else 'not proposed'}; this starts from {start}")
    row.status, row.decided_by, row.decision, row.decided_at = target, actor.id, text, utcnow()
    _save(session, row)
    lifecycle.record_plugin_change(session, actor, plugin_id, action, target,
                                   f"{plugin_id} {message}" + (f": {text}" if text else "."))
    return row


def approve(session: Session, actor: Actor, plugin_id: str, *, reason: object = "") -> PluginPromotion:
    """Offer a proposed mini-program to every branch (``hq_admin``)."""
    return _decide(session, actor, plugin_id, reason, required=False, start=Status.PROPOSED, target=Status.APPROVED,
                   action="approve_promotion", message="is offered to every branch")


def decline(session: Session, actor: Actor, plugin_id: str, *, reason: object) -> PluginPromotion:
    """Decline a proposal, saying why (``hq_admin``); the branch may propose it again."""
    return _decide(session, actor, plugin_id, reason, required=True, start=Status.PROPOSED, target=Status.DECLINED,
                   action="decline_promotion", message="was not promoted to the whole bank")


def withdraw(session: Session, actor: Actor, plugin_id: str, *, reason: object) -> PluginPromotion:
    """Stop offering a promoted mini-program to further branches (``hq_admin``, with a reason)."""
    return _decide(session, actor, plugin_id, reason, required=True, start=Status.APPROVED, target=Status.WITHDRAWN,
                   action="withdraw_promotion", message="is no longer offered to every branch")


def promoted(session: Session) -> frozenset[str]:
    """The mini-programs head office offers to every branch now."""
    return frozenset(session.scalars(select(PluginPromotion.plugin_id)
                                     .where(PluginPromotion.status == Status.APPROVED)))


def document(row: PluginPromotion | None, plugin_id: str) -> dict[str, Any]:
    """A promotion as the API answers it."""
    if row is None:
        return {"plugin_id": plugin_id, "status": None}
    return {"plugin_id": plugin_id, "status": row.status, "proposed_by": row.proposed_by, "proposal": row.proposal,
            "proposed_at": row.proposed_at, "decided_by": row.decided_by, "decision": row.decision or None,
            "decided_at": row.decided_at}
