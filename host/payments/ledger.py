"""Posting transfers to the double-entry ledger.

:func:`post` is the only way money moves. In the caller's transaction it writes one immutable
transfer and its postings (which sum to zero), then moves each account's balance with a
conditional ``UPDATE``. Accounts are locked in one order everywhere — customer accounts, then
merchant accounts, then clearing, each kind in ascending id order — so two transfers never
wait for each other in opposite orders (no deadlock), and the busiest rows (a merchant's
settlement account, the clearing account) are locked last and held the shortest time. A
customer account is debited only ``WHERE balance + amount >= 0``, so no customer balance goes
below zero even under concurrency (and the database's check constraint would refuse it anyway).

These are SQL statements, not ORM units of work: a confirmation is the platform's hottest
write, and the ORM's bookkeeping cost more than the database's work (docs/performance.md).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..db import utcnow
from ..oauth.replay import insert_ignore
from .models import Account, AccountKind, Posting, Transfer, TransferKind


class InsufficientFunds(Exception):
    """The customer's account does not hold enough for the debit."""


@dataclass(frozen=True)
class Leg:
    """One side of a transfer: a signed amount on one account (negative = money out).

    ``kind`` is the account's :class:`~host.payments.models.AccountKind`: it decides when the
    account is locked (the database still refuses a customer balance below zero whatever a
    caller says).
    """

    account_id: int
    amount: int
    kind: str


#: The order in which accounts of each kind are locked (then by id): the busiest last.
LOCK_ORDER = {AccountKind.CUSTOMER: 0, AccountKind.MERCHANT: 1, AccountKind.CLEARING: 2}
_ACCOUNTS = Account.__table__
_MOVE = (update(_ACCOUNTS).where(_ACCOUNTS.c.id == bindparam("account"))
         .values(balance=_ACCOUNTS.c.balance + bindparam("amount")))
#: A debit of a customer account, only when the balance covers it.
_DEBIT = _MOVE.where(_ACCOUNTS.c.balance + bindparam("amount") >= 0)
_TRANSFER = insert(Transfer.__table__)
_PAYMENT_ACCOUNTS = select(_ACCOUNTS.c.id, _ACCOUNTS.c.kind, _ACCOUNTS.c.owner).where(
    ((_ACCOUNTS.c.kind == AccountKind.CUSTOMER) & (_ACCOUNTS.c.owner == bindparam("customer"))
     & (_ACCOUNTS.c.currency == bindparam("currency"))) | (_ACCOUNTS.c.id == bindparam("merchant")))
_POSTINGS = insert(Posting.__table__)


def new_id(prefix: str) -> str:
    """A fresh public id such as ``tr_3f9a…`` (96 random bits)."""
    return f"{prefix}_{secrets.token_hex(12)}"


def find_account(session: Session, kind: str, owner: str, currency: str) -> Account | None:
    """The account of ``kind`` for ``owner`` in ``currency``, or None (nothing is opened)."""
    return session.scalar(select(Account).where(Account.kind == kind, Account.owner == owner, Account.currency == currency))


def account(session: Session, kind: str, owner: str, currency: str) -> Account:
    """The account of ``kind`` for ``owner`` in ``currency``, opened (balance 0) if it does not exist.

    Opening is ``INSERT … ON CONFLICT DO NOTHING`` then a read, so two requests opening the same
    account at once get the same one.
    """
    found = find_account(session, kind, owner, currency)
    if found is not None:
        return found
    session.execute(insert_ignore(session, Account, kind=kind, owner=owner, currency=currency, balance=0))
    return session.scalars(select(Account).where(Account.kind == kind, Account.owner == owner,
                                                 Account.currency == currency)).one()


def customer_account(session: Session, customer_id: str, currency: str) -> Account:
    """The customer's payment account in ``currency``."""
    return account(session, AccountKind.CUSTOMER, customer_id, currency)


def payment_accounts(session: Session, customer_id: str, currency: str, merchant_account_id: int) -> tuple[int, str]:
    """The id of the customer's account in ``currency`` (opened if need be) and the owner of the
    merchant account, e.g. ``branch:SH001`` — read together, as a confirmation needs both."""
    rows = session.connection().execute(_PAYMENT_ACCOUNTS, {"customer": customer_id, "currency": currency,
                                                            "merchant": merchant_account_id}).all()
    paying = next((row.id for row in rows if row.kind == AccountKind.CUSTOMER), None)
    merchant = next(row.owner for row in rows if row.id == merchant_account_id)
    if paying is None:
        paying = customer_account(session, customer_id, currency).id
    return paying, merchant


def merchant_owner(publisher_kind: str, publisher_id: str) -> str:
    """The owner string of a publisher's settlement account, e.g. ``partner:CITYPOWER``."""
    return f"{publisher_kind}:{publisher_id}"


def clearing_account(session: Session, currency: str) -> Account:
    """The account through which money enters and leaves the ledger (the rail's side)."""
    return account(session, AccountKind.CLEARING, "rail", currency)


def post(session: Session, *, kind: str, currency: str, legs: list[Leg], intent_id: str | None = None,
         refund_id: str | None = None, description: str = "", transfer_id: str | None = None) -> Transfer:
    """Write one transfer of ``legs`` (which must sum to zero) and move the balances; return the
    transfer (not added to ``session``: it is written already and never changes). ``transfer_id``
    is a fresh id from :func:`new_id` when the caller needs to know it beforehand.

    The transfer and its postings are written first, the balances moved last, so the locks on
    the accounts' rows are held for as short a time as the transaction allows. Raises
    :class:`InsufficientFunds` (the caller rolls back) when a customer account would go below zero.
    """
    if len(legs) < 2 or sum(leg.amount for leg in legs) != 0 or any(leg.amount == 0 for leg in legs):
        raise ValueError("a transfer needs at least two non-zero legs that sum to zero")
    if any(leg.kind not in LOCK_ORDER for leg in legs):
        raise ValueError("every leg needs the kind of its account")
    connection, now = session.connection(), utcnow()
    transfer = Transfer(id=transfer_id or new_id("tr"), kind=kind, currency=currency, intent_id=intent_id,
                        amount=sum(leg.amount for leg in legs if leg.amount > 0), refund_id=refund_id,
                        description=description[:200], created_at=now)
    connection.execute(_TRANSFER, {"id": transfer.id, "kind": kind, "currency": currency, "amount": transfer.amount,
                                   "intent_id": intent_id, "refund_id": refund_id, "description": transfer.description,
                                   "created_at": now})
    connection.execute(_POSTINGS, [{"transfer_id": transfer.id, "account_id": leg.account_id, "currency": currency,
                                    "amount": leg.amount, "created_at": now} for leg in legs])
    for leg in sorted(legs, key=lambda leg: (LOCK_ORDER[leg.kind], leg.account_id)):
        debit = leg.amount < 0 and leg.kind == AccountKind.CUSTOMER
        moved = connection.execute(_DEBIT if debit else _MOVE, {"account": leg.account_id, "amount": leg.amount})
        if moved.rowcount != 1:
            raise InsufficientFunds("the account does not hold enough for this payment")
    moved_ids = {leg.account_id for leg in legs}
    for held in session.identity_map.values():  # balances moved in SQL: read them again when asked
        if isinstance(held, Account) and held.id in moved_ids:
            session.expire(held, ["balance"])
    return transfer


def fund(session: Session, customer_id: str, amount: int, currency: str, description: str = "funding") -> Transfer:
    """Move ``amount`` from the rail into the customer's account (the simulated rail; the demo's top-ups)."""
    target = customer_account(session, customer_id, currency)
    source = clearing_account(session, currency)
    return post(session, kind=TransferKind.FUNDING, currency=currency, description=description,
                legs=[Leg(source.id, -amount, AccountKind.CLEARING), Leg(target.id, amount, AccountKind.CUSTOMER)])
