"""Paid coupons: the customer pays through the bank (``ctx.payments``) and gets the coupon when
the bank reports ``payment_intent.succeeded``.

**Stock is reserved, not sold, when the payment starts.** Asking to buy takes one from the
coupon's stock with the same compare-and-set counter free claims use (:func:`claims.take_one`),
so nobody can pay for a coupon that is sold out and stock is never oversold. The reservation
becomes the customer's coupon on ``payment_intent.succeeded``; it goes back to stock
(:func:`claims.give_back`) on ``payment_intent.failed``, ``.canceled`` or ``.expired`` — an
unconfirmed intent expires after 30 minutes, so an abandoned purchase holds a unit that long.

The customer's order lives in their own store at ``orders/<coupon id>``::

    {"coupon_id": "bund-cruise", "intent_id": "pi_…", "confirm_url": "/pay/pi_…",
     "attempt": 1, "status": "pending" | "granted" | "released"}

and changes only by compare-and-set, so a reservation is released at most once and an event
delivered twice grants one coupon. The idempotency key is per customer, coupon and attempt:
tapping "Buy" twice gives the same intent (the losing tap returns its reservation at once);
after a failed attempt the next one gets a new key. A "Buy" that finds its intent already
succeeded or failed (before the event arrives) applies the same :func:`grant` or
:func:`release` the event would.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from canopy_sdk import InvalidResult, PaymentIntent, UnknownIntent

from . import claims
from .catalogue import CHINA_TIME, CURRENCY, Coupon, find

MAX_ATTEMPTS = 20
STATUSES = ("pending", "granted", "released")
GRANT = "payment_intent.succeeded"
RELEASE = ("payment_intent.failed", "payment_intent.canceled", "payment_intent.expired")


def order_key(coupon_id: str) -> str:
    """Return the customer's key of their order of a paid coupon."""
    return f"orders/{coupon_id}"


def idempotency_key(subject: str, coupon_id: str, attempt: int) -> str:
    """Return the idempotency key of one customer's attempt to buy one coupon (printable ASCII)."""
    who = hashlib.sha256(subject.encode("utf-8")).hexdigest()[:24]
    return f"coupon:{coupon_id}:{who}:{attempt}"


def description(coupon: Coupon) -> str:
    """Return what the bank's confirmation page shows, in both languages (so it never varies)."""
    return f"{coupon.name['zh']} / {coupon.name['en']}"


def _valid(value: Any, coupon_id: str) -> dict[str, Any] | None:
    if (isinstance(value, dict) and value.get("coupon_id") == coupon_id and value.get("status") in STATUSES
            and isinstance(value.get("intent_id"), str) and isinstance(value.get("confirm_url"), str)
            and type(value.get("attempt")) is int and value["attempt"] >= 1):
        return value
    return None


def order_of(customer_storage: Any, coupon_id: str) -> dict[str, Any] | None:
    """Return the customer's order of ``coupon_id``, or None (also for a damaged record)."""
    return _valid(customer_storage.get(order_key(coupon_id)), coupon_id)


def start(ctx: Any, coupon: Coupon, *, today: date) -> dict[str, Any]:
    """Start (or resume) buying ``coupon`` for the signed-in customer.

    Returns the intent to confirm (``claimed`` False). Raises :class:`claims.AlreadyClaimed`
    (also when the payment turns out to have succeeded already), :class:`claims.Expired`,
    :class:`claims.SoldOut`, :class:`claims.Busy`, or what ``ctx.payments`` raises.
    """
    shop, mine = ctx.storage, ctx.customer_storage
    key = order_key(coupon.id)
    for _ in range(MAX_ATTEMPTS):
        if claims.claim_of(mine, coupon.id) is not None:
            raise claims.AlreadyClaimed(coupon.id)
        item = mine.get_item(key)
        order = _valid(item.value if item else None, coupon.id)
        if order is not None and order["status"] == "pending":
            try:
                intent = ctx.payments.get(order["intent_id"])
            except UnknownIntent:
                intent = None
            if intent is not None and intent.state == "requires_confirmation":
                return _to_pay(intent, claims.remaining(shop, coupon))
            if intent is not None and intent.state == "succeeded":
                grant(shop, mine, coupon, intent, log=ctx.log)
            else:
                release(shop, mine, coupon, order["intent_id"], log=ctx.log)
            continue  # look at the order again
        if not coupon.is_valid_on(today):
            raise claims.Expired(coupon.id)
        attempt = order["attempt"] + 1 if order is not None else 1
        left = claims.take_one(shop, coupon)  # the reservation
        try:
            intent = ctx.payments.create_intent(
                amount=coupon.price, currency=CURRENCY, description=description(coupon),
                idempotency_key=idempotency_key(ctx.customer.subject, coupon.id, attempt),
                metadata={"coupon_id": coupon.id, "attempt": attempt},
            )
            new = {"coupon_id": coupon.id, "intent_id": intent.id, "confirm_url": intent.confirm_url,
                   "attempt": attempt, "status": "pending"}
            stored = mine.compare_and_set(key, new, version=item.version if item else None)
        except BaseException:
            claims.give_back_or_log(shop, coupon, ctx.log)
            raise
        if stored:
            return _to_pay(intent, left)
        # A concurrent tap stored its order (for this same intent) first; it holds the reservation.
        claims.give_back_or_log(shop, coupon, ctx.log)
    raise claims.Busy(coupon.id)


def _to_pay(intent: PaymentIntent, left: int) -> dict[str, Any]:
    return {"claimed": False, "payment_required": True, "intent_id": intent.id, "confirm_url": intent.confirm_url,
            "amount": intent.amount, "currency": intent.currency, "remaining": left}


def grant(shop: Any, mine: Any, coupon: Coupon, intent: PaymentIntent, *, log: Any) -> bool:
    """Turn the reservation of the order paid by ``intent`` into the customer's coupon.

    Returns whether a coupon was granted now (False when the order is not this intent's,
    or already granted). The coupon record is written before the order is marked, so a
    customer whose payment succeeded always ends up holding their code.
    """
    if intent.amount != coupon.price or intent.currency != CURRENCY:
        log.error("intent %s does not match the price of %s; no coupon granted", intent.id, coupon.id)
        return False
    for _ in range(MAX_ATTEMPTS):
        item = mine.get_item(order_key(coupon.id))
        order = _valid(item.value if item else None, coupon.id)
        if order is None or order["intent_id"] != intent.id or order["status"] == "granted":
            return False
        if order["status"] == "released":  # cannot happen: a succeeded intent never failed before
            log.error("intent %s succeeded after its reservation of %s was released", intent.id, coupon.id)
            return False
        record = {"coupon_id": coupon.id, "code": claims.new_code(coupon), "intent_id": intent.id,
                  "claimed_at": datetime.now(CHINA_TIME).isoformat(timespec="seconds")}
        mine.compare_and_set(claims.claim_key(coupon.id), record, version=None)  # a repeat keeps the first code
        if mine.compare_and_set(order_key(coupon.id), {**order, "status": "granted"}, version=item.version):
            return True
    log.error("could not mark the order of %s paid by %s: too many concurrent changes", coupon.id, intent.id)
    return False


def release(shop: Any, mine: Any, coupon: Coupon, intent_id: str, *, log: Any) -> bool:
    """Return the stock reserved for the order of ``intent_id`` (whose payment did not succeed).

    Returns whether it was returned now; only a pending order of that intent is released, once.
    """
    for _ in range(MAX_ATTEMPTS):
        item = mine.get_item(order_key(coupon.id))
        order = _valid(item.value if item else None, coupon.id)
        if order is None or order["intent_id"] != intent_id or order["status"] != "pending":
            return False
        if mine.compare_and_set(order_key(coupon.id), {**order, "status": "released"}, version=item.version):
            claims.give_back_or_log(shop, coupon, log)
            return True
    log.error("could not release the reservation of %s for %s: too many concurrent changes", coupon.id, intent_id)
    return False


def on_event(ctx: Any, event: Any) -> bool:
    """Grant or release the order a payment event is about; return whether anything changed.

    Events of other kinds, of intents not made for a paid coupon, or for another customer
    than this call's are ignored.
    """
    if getattr(event, "type", None) not in (GRANT, *RELEASE):
        return False
    try:
        intent = PaymentIntent.from_wire(event.data.get("intent"))
    except InvalidResult:
        ctx.log.warning("event %s carries no payment intent; ignored", event.id)
        return False
    coupon = find(intent.metadata.get("coupon_id") if hasattr(intent.metadata, "get") else None)
    if coupon is None or coupon.price is None:
        return False
    if ctx.customer is None or ctx.customer.subject != event.customer:
        ctx.log.warning("event %s is not for the customer of this call; ignored", event.id)
        return False
    if event.type == GRANT:
        return grant(ctx.storage, ctx.customer_storage, coupon, intent, log=ctx.log)
    return release(ctx.storage, ctx.customer_storage, coupon, intent.id, log=ctx.log)
