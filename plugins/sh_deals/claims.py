"""Claiming a coupon: once per customer, never beyond its stock, safe under concurrency.

Stock lives in the plugin-wide store at ``stock/<coupon id>`` as the number still available
(absent means the coupon's full stock) and changes only by compare-and-set. A customer's
claim lives in their own store at ``claims/<coupon id>`` and is written with
``compare_and_set(..., version=None)``, so of two simultaneous claims by one customer
exactly one wins.

Paid coupons (:mod:`.orders`) use the same counter: buying one reserves a unit with
:func:`take_one` and a payment that does not succeed returns it with :func:`give_back`.

A claim takes the stock first and marks the customer second; if marking fails (a concurrent
claim by the same customer won, or storage refused) the stock is given back. The other order
could leave a customer marked as holding a coupon that was never in stock.

The retry loops are bounded: a compare-and-set only fails because another write to the same
counter succeeded, and every successful take moves the counter one step nearer zero, so with
``MAX_ATTEMPTS`` above a coupon's stock a claimer sees either success or "sold out".
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any

from .catalogue import CHINA_TIME, Coupon

MAX_ATTEMPTS = 1000
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud at the till


class ClaimRefused(Exception):
    """Base class of the reasons a claim is refused."""


class AlreadyClaimed(ClaimRefused):
    """This customer holds this coupon already."""


class SoldOut(ClaimRefused):
    """No stock is left."""


class Expired(ClaimRefused):
    """The coupon's last valid day has passed."""


class Busy(ClaimRefused):
    """Too many simultaneous claims; the customer may try again."""


def stock_key(coupon_id: str) -> str:
    """Return the plugin-wide key of a coupon's remaining stock."""
    return f"stock/{coupon_id}"


def claim_key(coupon_id: str) -> str:
    """Return the customer's key of their claim on a coupon."""
    return f"claims/{coupon_id}"


def _count(value: Any, coupon: Coupon) -> int | None:
    """Return a stored stock count, or None when the stored value is not one."""
    if type(value) is not int or value < 0:
        return None
    return min(value, coupon.total_stock)


def remaining(storage: Any, coupon: Coupon) -> int:
    """Return how many of ``coupon`` are left; a damaged counter counts as none left."""
    item = storage.get_item(stock_key(coupon.id))
    if item is None:
        return coupon.total_stock
    return _count(item.value, coupon) or 0


def take_one(storage: Any, coupon: Coupon) -> int:
    """Take one coupon from stock and return how many are left after it.

    Raises :class:`SoldOut` when none is left and :class:`Busy` if every attempt lost a race.
    """
    key = stock_key(coupon.id)
    for _ in range(MAX_ATTEMPTS):
        item = storage.get_item(key)
        left = coupon.total_stock if item is None else (_count(item.value, coupon) or 0)
        if left <= 0:
            raise SoldOut(coupon.id)
        if storage.compare_and_set(key, left - 1, version=None if item is None else item.version):
            return left - 1
    raise Busy(coupon.id)


def give_back(storage: Any, coupon: Coupon) -> bool:
    """Return one coupon to stock (undoing :func:`take_one`); return whether it was returned."""
    key = stock_key(coupon.id)
    for _ in range(MAX_ATTEMPTS):
        item = storage.get_item(key)
        left = None if item is None else _count(item.value, coupon)
        if left is None:  # nothing we wrote is there: do not invent stock
            return False
        if storage.compare_and_set(key, min(left + 1, coupon.total_stock), version=item.version):
            return True
    return False


def new_code(coupon: Coupon) -> str:
    """Return a fresh, hard-to-guess coupon code such as ``PTC-7KQ2MXRA``."""
    return coupon.code_prefix + "-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


def claim(shop_storage: Any, customer_storage: Any, coupon: Coupon, *, today: date,
          log: Any = None) -> tuple[dict[str, Any], int]:
    """Claim ``coupon`` for the customer whose store is ``customer_storage``.

    Returns the claim record stored for them and how many coupons are left. Raises
    :class:`AlreadyClaimed`, :class:`Expired`, :class:`SoldOut` or :class:`Busy`.
    """
    if customer_storage.get(claim_key(coupon.id)) is not None:
        raise AlreadyClaimed(coupon.id)
    if not coupon.is_valid_on(today):
        raise Expired(coupon.id)
    left = take_one(shop_storage, coupon)
    record = {
        "coupon_id": coupon.id,
        "code": new_code(coupon),
        "claimed_at": datetime.now(CHINA_TIME).isoformat(timespec="seconds"),
    }
    try:
        marked = customer_storage.compare_and_set(claim_key(coupon.id), record, version=None)
    except BaseException:
        give_back_or_log(shop_storage, coupon, log)
        raise
    if not marked:
        give_back_or_log(shop_storage, coupon, log)
        raise AlreadyClaimed(coupon.id)
    return record, left


def give_back_or_log(storage: Any, coupon: Coupon, log: Any) -> None:
    """Return one coupon to stock, logging an error (when given a log) if that was not possible."""
    if not give_back(storage, coupon) and log is not None:
        log.error("could not return one %s coupon to stock after a failed claim", coupon.id)


def claim_of(customer_storage: Any, coupon_id: str) -> dict[str, Any] | None:
    """Return the customer's claim on ``coupon_id``, or None (also for a damaged record)."""
    record = customer_storage.get(claim_key(coupon_id))
    if isinstance(record, dict) and isinstance(record.get("code"), str):
        return record
    return None
