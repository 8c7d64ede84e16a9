"""Paying a bill through the bank's payments (``ctx.payments``).

Each bill a customer starts paying gets one record in their own ``ctx.customer_storage`` at
``payments/<bill id>``::

    {"bill_id": "gas-55554444-202610", "intent_id": "pi_…", "confirm_url": "/pay/pi_…",
     "amount": 6000, "attempt": 1, "status": "pending" | "paid" | "unpaid", "paid_at": "…"}

``pending``: an intent awaits the customer's confirmation on the bank's page. ``paid``: the
bank reported ``payment_intent.succeeded`` for that intent. ``unpaid``: the last attempt
failed, was canceled or expired; paying again starts attempt ``attempt + 1``.

The idempotency key is derived from the customer, the bill and the attempt, and the intent's
description is the same in both languages, so tapping "Pay" twice (or from two devices, or
after switching language) gives the same intent, never a second charge. Records change only
by compare-and-set; the same :func:`settle` serves the event and a later "Pay" that finds the
intent already succeeded (the event may not have arrived yet).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from canopy_sdk import InvalidResult, PaymentIntent, UnknownIntent

from .billing import CURRENCY, UTILITIES, Bill

MAX_ATTEMPTS = 20
BILL_ID = re.compile(r"(electricity|water|gas)-([0-9]{8,12})-([0-9]{4})(0[1-9]|1[0-2])")
STATUSES = ("pending", "paid", "unpaid")
#: What the bank reports about an intent, and what it means for the bill.
OUTCOMES = {
    "payment_intent.succeeded": "paid",
    "payment_intent.failed": "unpaid",
    "payment_intent.canceled": "unpaid",
    "payment_intent.expired": "unpaid",
}


class PaymentRefused(Exception):
    """Paying a bill cannot start. ``message`` holds the reason in ``zh`` and ``en``."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.message = {"zh": zh, "en": en}


class AlreadyPaid(PaymentRefused):
    """The bill is paid already."""


class Busy(PaymentRefused):
    """Every attempt to save lost a race with another change."""


def parse_bill_id(value: Any) -> tuple[str, str, str] | None:
    """Return ``(utility, account_no, "YYYY-MM")`` of a bill id, or None when it is not one."""
    match = BILL_ID.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    utility, account_no, year, month = match.groups()
    return utility, account_no, f"{year}-{month}"


def record_key(bill_id: str) -> str:
    """Return the customer-storage key of a bill's payment record."""
    return f"payments/{bill_id}"


def idempotency_key(subject: str, bill_id: str, attempt: int) -> str:
    """Return the idempotency key of one attempt to pay one customer's bill (printable ASCII)."""
    who = hashlib.sha256(subject.encode("utf-8")).hexdigest()[:24]
    return f"bill:{bill_id}:{who}:{attempt}"


def description(bill: Bill) -> str:
    """Return what the bank's confirmation page shows, in both languages (so it never varies)."""
    utility = UTILITIES[bill.utility]
    return f"{utility.name['zh']} {utility.name['en']} {bill.period} · 户号 account …{bill.account_no[-4:]}"


def _valid(value: Any, bill_id: str) -> dict[str, Any] | None:
    """Return a stored record if it is one for ``bill_id``; a damaged one counts as none."""
    if (isinstance(value, dict) and value.get("bill_id") == bill_id and value.get("status") in STATUSES
            and isinstance(value.get("intent_id"), str) and isinstance(value.get("confirm_url"), str)
            and type(value.get("attempt")) is int and value["attempt"] >= 1 and type(value.get("amount")) is int):
        return value
    return None


def record_of(storage: Any, bill_id: str) -> dict[str, Any] | None:
    """Return the customer's payment record of ``bill_id``, or None."""
    return _valid(storage.get(record_key(bill_id)), bill_id)


def _answer(intent: PaymentIntent) -> dict[str, Any]:
    return {"intent_id": intent.id, "confirm_url": intent.confirm_url, "amount": intent.amount,
            "currency": intent.currency}


def start(ctx: Any, bill: Bill) -> dict[str, Any]:
    """Start (or resume) paying ``bill`` for the signed-in customer; return the intent to confirm.

    Raises :class:`AlreadyPaid`, :class:`Busy`, or what ``ctx.payments`` raises.
    """
    storage, key = ctx.customer_storage, record_key(bill.id)
    for _ in range(MAX_ATTEMPTS):
        item = storage.get_item(key)
        record = _valid(item.value if item else None, bill.id)
        attempt = 1
        if record is not None:
            if record["status"] == "paid":
                raise AlreadyPaid("这张账单已经缴清。", "This bill is paid already.")
            if record["status"] == "pending":
                try:
                    intent = ctx.payments.get(record["intent_id"])
                except UnknownIntent:
                    intent = None
                if intent is not None and intent.state == "requires_confirmation":
                    return _answer(intent)
                if intent is not None and intent.state == "succeeded":
                    settle(storage, bill.id, intent, "paid", at=None, log=ctx.log)
                    raise AlreadyPaid("这张账单已经缴清。", "This bill is paid already.")
            attempt = record["attempt"] + 1
        intent = ctx.payments.create_intent(
            amount=bill.amount, currency=CURRENCY, description=description(bill),
            idempotency_key=idempotency_key(ctx.customer.subject, bill.id, attempt),
            metadata={"bill_id": bill.id, "attempt": attempt},
        )
        new = {"bill_id": bill.id, "intent_id": intent.id, "confirm_url": intent.confirm_url,
               "amount": intent.amount, "attempt": attempt, "status": "pending"}
        if storage.compare_and_set(key, new, version=item.version if item else None):
            return _answer(intent)
        # Another request changed the record first (a second tap): look again.
    raise Busy("账单正在更新，请稍后再试。", "This bill is being updated; please try again.")


def settle(storage: Any, bill_id: str, intent: PaymentIntent, status: str, *, at: str | None, log: Any) -> bool:
    """Record what happened to ``intent``: ``paid`` or ``unpaid``. Return whether the record changed.

    Only the record's current intent counts (an event of an older attempt or of another bill
    changes nothing); a paid bill never goes back to unpaid; repeating an event changes nothing.
    """
    key = record_key(bill_id)
    for _ in range(MAX_ATTEMPTS):
        item = storage.get_item(key)
        record = _valid(item.value if item else None, bill_id)
        if record is None or record["intent_id"] != intent.id or record["status"] != "pending":
            return False
        if status == "paid" and (intent.amount != record["amount"] or intent.currency != CURRENCY):
            log.error("intent %s for bill %s does not match the bill's amount; not marked paid", intent.id, bill_id)
            return False
        changed = {**record, "status": status}
        if status == "paid" and at:
            changed["paid_at"] = at
        if storage.compare_and_set(key, changed, version=item.version):
            return True
    log.error("could not record %s for bill %s: too many concurrent changes", status, bill_id)
    return False


def on_event(ctx: Any, event: Any) -> bool:
    """Apply a payment event to the bill it names; return whether a record changed.

    Events of other kinds, of intents not made for a bill, or for another customer are ignored.
    """
    status = OUTCOMES.get(getattr(event, "type", None))
    if status is None:
        return False
    try:
        intent = PaymentIntent.from_wire(event.data.get("intent"))
    except InvalidResult:
        ctx.log.warning("event %s carries no payment intent; ignored", event.id)
        return False
    bill_id = intent.metadata.get("bill_id") if hasattr(intent.metadata, "get") else None
    if parse_bill_id(bill_id) is None:
        return False
    if ctx.customer is None or ctx.customer.subject != event.customer:
        ctx.log.warning("event %s is not for the customer of this call; ignored", event.id)
        return False
    return settle(ctx.customer_storage, bill_id, intent, status, at=event.occurred_at, log=ctx.log)
