"""Payment intents: created by a plugin, confirmed only by the customer on the host's page,
refunded by the plugin. Every change of state is recorded (:class:`IntentTransition`) and
written to the outbox as an event, in the same transaction as the change.

States (docs/payments.md draws them)::

    requires_confirmation ──confirm (PIN, risk allows)──▶ succeeded ──refund…──▶ (partially) refunded
            │  ├──risk denies / rail refuses──▶ failed
            │  ├──plugin cancels──▶ canceled
            └──────────── not confirmed in time ──▶ expired

Refunds leave the state ``succeeded`` and raise ``amount_refunded``; it never exceeds ``amount``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from canopy_sdk import payment_rules
from canopy_sdk.errors import InvalidIntentState, RefundExceedsCapture, UnknownIntent
from canopy_sdk.types import PaymentIntent as IntentView
from canopy_sdk.types import Refund as RefundView
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..db import utcnow
from ..events.outbox import emit
from ..runtime.models import PluginRecord
from . import ledger
from .models import AccountKind, IntentState, IntentTransition, PaymentIntent, Refund, TransferKind

#: How long a customer has to confirm an intent.
CONFIRM_WINDOW = timedelta(seconds=payment_rules.CONFIRM_WINDOW_SECONDS)
_ID_LENGTH = 40
_INTENTS = PaymentIntent.__table__
_TRANSITION = insert(IntentTransition.__table__)


def iso(moment: datetime) -> str:
    """``moment`` as ISO 8601 UTC with a ``Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def view(intent: PaymentIntent) -> IntentView:
    """The intent as plugins and partner back ends see it (``expired`` as soon as its time is up,
    whether or not the expiry has been recorded yet)."""
    return IntentView(
        id=intent.id, amount=intent.amount, currency=intent.currency, description=intent.description,
        state=IntentState.EXPIRED if is_due(intent) else intent.state, amount_refunded=intent.amount_refunded, created_at=iso(intent.created_at),
        expires_at=iso(intent.expires_at), confirm_url=f"/pay/{intent.id}", metadata=dict(intent.metadata_ or {}),
        failure_reason=intent.failure_reason,
    )


def refund_view(refund: Refund) -> RefundView:
    """A refund as plugins and partner back ends see it."""
    return RefundView(id=refund.id, intent_id=refund.intent_id, amount=refund.amount, currency=refund.currency,
                      reason=refund.reason, created_at=iso(refund.created_at))


@dataclass(frozen=True)
class IntentRequest:
    """What a new intent asks for, checked by the SDK's rules (as the test kit applies them)."""

    amount: int
    currency: str
    description: str
    metadata: dict[str, Any]

    @classmethod
    def check(cls, amount: object, currency: object, description: object, metadata: object,
              accepted: frozenset[str]) -> "IntentRequest":
        """The request, or :class:`~canopy_sdk.errors.InvalidPayment` naming the first argument at fault."""
        return cls(*payment_rules.check_intent_request(amount, currency, description, metadata, accepted))

    def params(self) -> dict[str, Any]:
        """Its canonical parameters (what an idempotency key is compared on)."""
        return asdict(self)


def transition(session: Session, intent: PaymentIntent, to_state: str, *, actor: str, reason: str | None = None,
               event: str | None = None, **changes: Any) -> None:
    """Move ``intent`` to ``to_state`` (setting ``changes`` too, e.g. ``transfer_id``), recording the
    transition and (``event``) an outbox event.

    Written with SQL statements, and ``intent`` updated to match without a flush: this runs on
    every confirmation (docs/performance.md).
    """
    now = utcnow()
    values: dict[str, Any] = {**changes, "state": to_state, "updated_at": now}
    if to_state == IntentState.FAILED:
        values["failure_reason"] = (reason or "")[:200] or None
    connection = session.connection()
    connection.execute(_TRANSITION, {"intent_id": intent.id, "from_state": intent.state, "to_state": to_state,
                                     "actor": actor[:128], "reason": (reason or None) and reason[:200], "at": now})
    connection.execute(update(_INTENTS).where(_INTENTS.c.id == intent.id).values(values))
    for name, value in values.items():
        set_committed_value(intent, name, value)
    if event:
        intent_event(session, intent, event)


def intent_event(session: Session, intent: PaymentIntent, event: str, **extra: Any) -> None:
    """Write ``event`` for the intent's plugin to the outbox (in the caller's transaction)."""
    emit(session, event, plugin_id=intent.plugin_id, customer_id=intent.customer_id, branch_code=intent.branch_code,
         payload={"intent": view(intent).to_wire(), **extra})


def create(session: Session, *, plugin_id: str, request: IntentRequest, customer_id: str | None = None,
           branch_code: str | None = None, actor: str | None = None) -> PaymentIntent:
    """A new intent in ``requires_confirmation``; the merchant account is the plugin's publisher's."""
    checked_amount, code, text, extra = request.amount, request.currency, request.description, request.metadata
    record = session.get(PluginRecord, plugin_id)
    if record is None:
        raise UnknownIntent(f"no mini-program {plugin_id[:64]!r} is registered")
    merchant = ledger.account(session, AccountKind.MERCHANT, ledger.merchant_owner(record.publisher_kind, record.publisher_id), code)
    now = utcnow()
    intent = PaymentIntent(
        id=ledger.new_id("pi"), plugin_id=plugin_id, merchant_account_id=merchant.id, customer_id=customer_id,
        branch_code=branch_code, amount=checked_amount, currency=code, description=text, metadata_=extra,
        state=IntentState.REQUIRES_CONFIRMATION, amount_refunded=0, created_at=now, updated_at=now,
        expires_at=now + CONFIRM_WINDOW,
    )
    session.add(intent)
    session.flush()  # the transition refers to it
    session.add(IntentTransition(intent_id=intent.id, from_state=None, to_state=intent.state,
                                 actor=(actor or f"plugin:{plugin_id}")[:128], at=now))
    session.flush()
    return intent


def find(session: Session, plugin_id: str | None, intent_id: object, *, lock: bool = False) -> PaymentIntent:
    """The intent ``intent_id`` of ``plugin_id`` (any plugin's when None); :class:`UnknownIntent` otherwise.

    Another plugin's intent is reported exactly as a missing one.
    """
    if not isinstance(intent_id, str) or not intent_id.startswith("pi_") or len(intent_id) > _ID_LENGTH:
        raise UnknownIntent("no such payment intent")
    query = select(PaymentIntent).where(PaymentIntent.id == intent_id)
    if lock:
        query = query.with_for_update()
    intent = session.scalar(query)
    if intent is None or (plugin_id is not None and intent.plugin_id != plugin_id):
        raise UnknownIntent("no such payment intent")
    return intent


def is_due(intent: PaymentIntent) -> bool:
    """Whether ``intent`` waited for confirmation past its time (and is not yet marked expired)."""
    return intent.state == IntentState.REQUIRES_CONFIRMATION and intent.expires_at <= utcnow()


def expire_if_due(session: Session, intent: PaymentIntent) -> bool:
    """Expire ``intent`` if it waited for confirmation past its time; return whether it did."""
    if is_due(intent):
        transition(session, intent, IntentState.EXPIRED, actor="host", reason="not confirmed in time",
                   event="payment_intent.expired")
        return True
    return False


def cancel(session: Session, plugin_id: str, intent_id: object) -> PaymentIntent:
    """The plugin withdraws its unpaid intent."""
    intent = find(session, plugin_id, intent_id, lock=True)
    if is_due(intent):
        raise InvalidIntentState("this intent expired before it was confirmed; there is nothing to cancel")
    if intent.state != IntentState.REQUIRES_CONFIRMATION:
        raise InvalidIntentState(f"only an intent awaiting confirmation can be canceled; this one is {intent.state}")
    transition(session, intent, IntentState.CANCELED, actor=f"plugin:{plugin_id}", event="payment_intent.canceled")
    return intent


def refund(session: Session, plugin_id: str, intent_id: object, amount: object, reason: object = "") -> Refund:
    """Return ``amount`` of a succeeded intent to its customer: one refund transfer, merchant → customer.

    The intent row is locked first (then the accounts, in the ledger's order), so concurrent refunds of one
    intent take turns and together never exceed what was paid.
    """
    reason = payment_rules.check_reason(reason)
    intent = find(session, plugin_id, intent_id, lock=True)
    checked = payment_rules.check_amount(amount, intent.currency)
    if intent.state != IntentState.SUCCEEDED:
        raise InvalidIntentState(f"only a succeeded payment can be refunded; this one is {intent.state}")
    left = intent.amount - intent.amount_refunded
    if checked > left:
        raise RefundExceedsCapture(f"amount: at most {left} minor units of {intent.currency} are left to refund",
                                   field="amount")
    customer = ledger.customer_account(session, intent.customer_id, intent.currency)
    refund_id = ledger.new_id("re")
    transfer = ledger.post(session, kind=TransferKind.REFUND, currency=intent.currency, intent_id=intent.id,
                           refund_id=refund_id, description=f"refund {intent.id}",
                           legs=[ledger.Leg(intent.merchant_account_id, -checked, AccountKind.MERCHANT),
                                 ledger.Leg(customer.id, checked, AccountKind.CUSTOMER)])
    record = Refund(id=refund_id, intent_id=intent.id, amount=checked, currency=intent.currency, reason=reason,
                    transfer_id=transfer.id)
    session.add(record)
    intent.amount_refunded += checked
    intent.updated_at = utcnow()
    session.add(IntentTransition(intent_id=intent.id, from_state=intent.state, to_state=intent.state,
                                 actor=f"plugin:{plugin_id}", reason=f"refund {refund_id} of {checked}"))
    session.flush()
    intent_event(session, intent, "refund.succeeded", refund=refund_view(record).to_wire())
    return record
