"""Confirming a payment: the one function that moves a customer's money for an intent.

:func:`confirm` runs in the caller's write transaction, after the customer proved who they are
(the confirmation page checks the payment PIN first): it locks the intent, records an expiry
that is due, asks the risk centre, then posts the transfer and moves the intent to
``succeeded`` with its outbox event. The caller commits whatever it returns — a denial, the
challenge's recorded verdicts and an expiry are written too. When the customer's balance is
too low it raises :class:`~host.payments.ledger.InsufficientFunds`, and the caller rolls back:
nothing of the attempt stays.

Locks are taken in one order everywhere (the intent row, then the accounts in the ledger's
order: customer, merchant, clearing), so confirmations and refunds never deadlock; confirming twice never pays twice, the second finds
the intent already succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass

from canopy_sdk.errors import UnknownIntent
from sqlalchemy.orm import Session

from ..db import utcnow
from . import intents, ledger
from .models import AccountKind, IntentState, PaymentIntent, TransferKind

#: The intent was paid now.
PAID = "paid"
#: The intent is not awaiting confirmation (already paid, failed, canceled or expired — maybe just now).
CLOSED = "closed"
#: The risk centre denied the payment; the intent failed.
DENIED = "denied"
#: The risk centre asks the customer to acknowledge a warning first; the intent still waits.
CHALLENGED = "challenged"


@dataclass(frozen=True)
class Confirmation:
    """What :func:`confirm` did: its ``outcome`` (one of the constants above), the intent, and
    the risk centre's reason when it denied or challenged."""

    outcome: str
    intent: PaymentIntent
    reason: str | None = None
    rule: str | None = None


def confirm(session: Session, intent: PaymentIntent, *, customer_id: str, home_branch: str | None, device: str,
            acknowledged: bool = False) -> Confirmation:
    """Pay ``intent`` from ``customer_id``'s account.

    The caller has locked the intent (``intents.find(..., lock=True)``) in this transaction.
    ``device`` is a digest of the customer's device (the new-device rule); ``acknowledged`` says
    the customer accepted a risk challenge on the page. Another customer's intent is
    :class:`~canopy_sdk.errors.UnknownIntent`, exactly as a missing one.
    """
    from .risk import CHALLENGE, DENY, PaymentAttempt, assess, remember_device

    if intent.customer_id not in (None, customer_id):
        raise UnknownIntent("no such payment intent")
    if intents.expire_if_due(session, intent) or intent.state != IntentState.REQUIRES_CONFIRMATION:
        return Confirmation(CLOSED, intent)
    paying, merchant = ledger.payment_accounts(session, customer_id, intent.currency, intent.merchant_account_id)
    verdict = assess(session, PaymentAttempt(
        intent_id=intent.id, customer_id=customer_id, plugin_id=intent.plugin_id, merchant=merchant,
        branch_code=home_branch, amount=intent.amount, currency=intent.currency, device=device, at=utcnow()))
    if verdict.decision == DENY:
        intents.transition(session, intent, IntentState.FAILED, actor="risk", reason=verdict.reason,
                           event="payment_intent.failed")
        return Confirmation(DENIED, intent, verdict.reason, verdict.rule)
    if verdict.decision == CHALLENGE and not acknowledged:
        return Confirmation(CHALLENGED, intent, verdict.reason, verdict.rule)

    # The intent's writes first, the money last: the merchant's account (every payment to the
    # shop credits it) stays locked only for its own UPDATE and the commit.
    transfer_id = ledger.new_id("tr")
    remember_device(session, customer_id, device, utcnow())
    intents.transition(session, intent, IntentState.SUCCEEDED, actor=f"customer:{customer_id}",
                       event="payment_intent.succeeded", customer_id=customer_id, transfer_id=transfer_id)
    ledger.post(session, kind=TransferKind.PAYMENT, currency=intent.currency, intent_id=intent.id,
                description=intent.description, transfer_id=transfer_id,
                legs=[ledger.Leg(paying, -intent.amount, AccountKind.CUSTOMER),
                      ledger.Leg(intent.merchant_account_id, intent.amount, AccountKind.MERCHANT)])
    return Confirmation(PAID, intent)
