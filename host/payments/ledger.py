"""Posting transfers to the double-entry ledger.

:func:`post` is the only way money moves. In the caller's transaction it writes one
immutable transfer and its postings (which sum to zero) and moves each account's balance
with a conditional ``UPDATE`` — accounts in ascending id order, so two transfers never wait
for each other in opposite orders (no deadlock); a customer account is debited only
``WHERE balance >= amount``, so no customer balance goes below zero even under concurrency
(and the database's check constraint would refuse it anyway).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..oauth.replay import insert_ignore
from .models import Account, AccountKind, Posting, Transfer, TransferKind


class InsufficientFunds(Exception):
    """The customer's account does not hold enough for the debit."""


@dataclass(frozen=True)
class Leg:
    """One side of a transfer: a signed amount on one account (negative = money out)."""

    account_id: int
    amount: int


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


def merchant_owner(publisher_kind: str, publisher_id: str) -> str:
    """The owner string of a publisher's settlement account, e.g. ``partner:CITYPOWER``."""
    return f"{publisher_kind}:{publisher_id}"


def clearing_account(session: Session, currency: str) -> Account:
    """The account through which money enters and leaves the ledger (the rail's side)."""
    return account(session, AccountKind.CLEARING, "rail", currency)


def post(session: Session, *, kind: str, currency: str, legs: list[Leg], intent_id: str | None = None,
         refund_id: str | None = None, description: str = "") -> Transfer:
    """Write one transfer of ``legs`` (which must sum to zero) and move the balances.

    Raises :class:`InsufficientFunds` (having changed nothing the caller's rollback would
    not undo) when a customer account would go below zero.
    """
    if len(legs) < 2 or sum(leg.amount for leg in legs) != 0 or any(leg.amount == 0 for leg in legs):
        raise ValueError("a transfer needs at least two non-zero legs that sum to zero")
    ordered = sorted(legs, key=lambda leg: leg.account_id)
    rows = session.execute(select(Account.id, Account.kind).where(Account.id.in_([leg.account_id for leg in legs])))
    kinds = {account_id: kind for account_id, kind in rows}
    for leg in ordered:
        statement = update(Account).where(Account.id == leg.account_id).values(balance=Account.balance + leg.amount)
        if leg.amount < 0 and kinds.get(leg.account_id) == AccountKind.CUSTOMER:
            statement = statement.where(Account.balance + leg.amount >= 0)
        if session.execute(statement.execution_options(synchronize_session=False)).rowcount != 1:
            raise InsufficientFunds("the account does not hold enough for this payment")
    amount = sum(leg.amount for leg in legs if leg.amount > 0)
    transfer = Transfer(id=new_id("tr"), kind=kind, currency=currency, amount=amount, intent_id=intent_id,
                        refund_id=refund_id, description=description[:200])
    session.add(transfer)
    session.flush()
    session.add_all(Posting(transfer_id=transfer.id, account_id=leg.account_id, currency=currency, amount=leg.amount)
                    for leg in legs)
    session.flush()
    for changed in session.identity_map.values():  # balances moved in SQL: read them again when asked
        if isinstance(changed, Account) and changed.id in kinds:
            session.expire(changed, ["balance"])
    return transfer


def fund(session: Session, customer_id: str, amount: int, currency: str, description: str = "funding") -> Transfer:
    """Move ``amount`` from the rail into the customer's account (the simulated rail; the demo's top-ups)."""
    target = customer_account(session, customer_id, currency)
    source = clearing_account(session, currency)
    return post(session, kind=TransferKind.FUNDING, currency=currency, description=description,
                legs=[Leg(source.id, -amount), Leg(target.id, amount)])
