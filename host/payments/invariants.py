"""The ledger's invariants, checked by SQL aggregates (``canopy payments check``).

Each invariant is answered by one or a few ``GROUP BY`` queries that return only the
offending rows, at most :data:`MAX_VIOLATIONS` of them: the database does the sums, so the
check runs on a ledger of any size without loading postings into Python. See
docs/ledger.md for what each invariant means and what to do when one fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from ..db import Database, utcnow
from .models import Account, AccountKind, IntentState, PaymentIntent, Posting, Refund, Transfer, TransferKind

#: The most offending rows listed per invariant (``truncated`` says when there were more).
MAX_VIOLATIONS = 20

Violation = dict[str, Any]
Finder = Callable[[Session, int], list[Violation]]


def _sum(expression) -> Any:
    """``SUM(expression)``, 0 over no rows."""
    return func.coalesce(func.sum(expression), 0)


def _count_if(condition) -> Any:
    """How many rows of the group meet ``condition`` (0 over no rows)."""
    return _sum(case((condition, 1), else_=0))


def _posted_by_account():
    """A subquery: each account's id and the sum of its postings."""
    return (
        select(Posting.account_id, func.sum(Posting.amount).label("posted"))
        .group_by(Posting.account_id)
        .subquery("posted_by_account")
    )


# -- 1 -----------------------------------------------------------------------------------


def _postings_sum_to_zero_per_currency(session: Session, limit: int) -> list[Violation]:
    total = func.sum(Posting.amount)
    rows = session.execute(
        select(Posting.currency, total).group_by(Posting.currency).having(total != 0)
        .order_by(Posting.currency).limit(limit)
    )
    return [
        {"problem": f"the {currency} postings sum to {int(amount)}, not 0", "currency": currency, "sum": int(amount)}
        for currency, amount in rows
    ]


# -- 2 -----------------------------------------------------------------------------------


def _transfers_balance(session: Session, limit: int) -> list[Violation]:
    legs = func.count(Posting.id)
    total = _sum(Posting.amount)
    money_out = _sum(case((Posting.amount < 0, Posting.amount), else_=0))
    money_in = _sum(case((Posting.amount > 0, Posting.amount), else_=0))
    other_currency = _count_if(or_(Posting.currency != Transfer.currency, Account.currency != Transfer.currency))
    rows = session.execute(
        select(Transfer.id, Transfer.kind, Transfer.currency, Transfer.amount, legs, total, money_out, money_in,
               other_currency)
        .select_from(Transfer)
        .outerjoin(Posting, Posting.transfer_id == Transfer.id)
        .outerjoin(Account, Account.id == Posting.account_id)
        .group_by(Transfer.id, Transfer.kind, Transfer.currency, Transfer.amount)
        .having(or_(legs < 2, total != 0, money_out != -Transfer.amount, money_in != Transfer.amount,
                    other_currency > 0))
        .order_by(Transfer.id)
        .limit(limit)
    )
    found = []
    for transfer_id, kind, currency, amount, n, net, out, in_, foreign in rows:
        net, out, in_, foreign = int(net), int(out), int(in_), int(foreign)
        problems = []
        if n < 2:
            problems.append(f"has {n} posting(s), fewer than two")
        if net != 0:
            problems.append(f"postings sum to {net}, not 0")
        if out != -amount or in_ != amount:
            problems.append(f"legs move {-out} out and {in_} in, not the transfer's {amount}")
        if foreign:
            problems.append(f"{foreign} posting(s) in a currency other than {currency} (posting or account)")
        found.append({
            "problem": "; ".join(problems), "transfer_id": transfer_id, "kind": kind, "currency": currency,
            "amount": amount, "postings": n, "sum": net, "out": out, "in": in_, "other_currency_postings": foreign,
        })
    return found


# -- 3 and 4 -------------------------------------------------------------------------------


def _balances_match_postings(session: Session, limit: int) -> list[Violation]:
    posted_by_account = _posted_by_account()
    posted = func.coalesce(posted_by_account.c.posted, 0)
    rows = session.execute(
        select(Account.id, Account.kind, Account.owner, Account.currency, Account.balance, posted)
        .outerjoin(posted_by_account, posted_by_account.c.account_id == Account.id)
        .where(Account.balance != posted)
        .order_by(Account.id)
        .limit(limit)
    )
    return [
        {"problem": f"balance {balance} but its postings sum to {int(total)}", "account_id": account_id,
         "kind": kind, "owner": owner, "currency": currency, "balance": balance, "posted": int(total)}
        for account_id, kind, owner, currency, balance, total in rows
    ]


def _no_customer_balance_below_zero(session: Session, limit: int) -> list[Violation]:
    # The stored balance has a CHECK constraint; the sum of postings has none, so look at both.
    posted_by_account = _posted_by_account()
    posted = func.coalesce(posted_by_account.c.posted, 0)
    rows = session.execute(
        select(Account.id, Account.owner, Account.currency, Account.balance, posted)
        .outerjoin(posted_by_account, posted_by_account.c.account_id == Account.id)
        .where(Account.kind == AccountKind.CUSTOMER, or_(Account.balance < 0, posted < 0))
        .order_by(Account.id)
        .limit(limit)
    )
    return [
        {"problem": f"customer account below zero (balance {balance}, postings sum {int(total)})",
         "account_id": account_id, "owner": owner, "currency": currency, "balance": balance, "posted": int(total)}
        for account_id, owner, currency, balance, total in rows
    ]


# -- 5 -----------------------------------------------------------------------------------


def _succeeded_intents_have_one_transfer(session: Session, limit: int) -> list[Violation]:
    payments = func.count(Transfer.id)
    matching = _count_if(and_(Transfer.amount == PaymentIntent.amount, Transfer.currency == PaymentIntent.currency,
                              Transfer.id == PaymentIntent.transfer_id))
    succeeded = PaymentIntent.state == IntentState.SUCCEEDED
    rows = session.execute(
        select(PaymentIntent.id, PaymentIntent.state, PaymentIntent.amount, PaymentIntent.currency,
               PaymentIntent.transfer_id, payments, matching)
        .outerjoin(Transfer, and_(Transfer.intent_id == PaymentIntent.id, Transfer.kind == TransferKind.PAYMENT))
        .group_by(PaymentIntent.id, PaymentIntent.state, PaymentIntent.amount, PaymentIntent.currency,
                  PaymentIntent.transfer_id)
        .having(or_(
            and_(succeeded, or_(payments != 1, matching != 1)),
            and_(~succeeded, or_(payments > 0, PaymentIntent.transfer_id.is_not(None))),
        ))
        .order_by(PaymentIntent.id)
        .limit(limit)
    )
    found = []
    for intent_id, state, amount, currency, transfer_id, n, good in rows:
        good = int(good)
        if state != IntentState.SUCCEEDED:
            problem = f"intent is {state} but has {n} payment transfer(s)" + (
                f" and names transfer {transfer_id}" if transfer_id else "")
        elif n != 1:
            problem = f"succeeded intent has {n} payment transfers, not exactly one"
        else:
            problem = ("its payment transfer differs from the intent in amount or currency, or is not the "
                       "transfer the intent names" + (" (the intent names none)" if transfer_id is None else ""))
        found.append({"problem": problem, "intent_id": intent_id, "state": state, "amount": amount,
                      "currency": currency, "transfer_id": transfer_id, "payment_transfers": n,
                      "matching_transfers": good})
    if len(found) < limit:
        rows = session.execute(
            select(Transfer.id, Transfer.amount, Transfer.currency)
            .where(Transfer.kind == TransferKind.PAYMENT, Transfer.intent_id.is_(None))
            .order_by(Transfer.id)
            .limit(limit - len(found))
        )
        found += [{"problem": "payment transfer names no intent", "transfer_id": transfer_id, "amount": amount,
                   "currency": currency} for transfer_id, amount, currency in rows]
    return found


# -- 6 -----------------------------------------------------------------------------------


def _refunds_within_capture(session: Session, limit: int) -> list[Violation]:
    by_intent = (
        select(Refund.intent_id, func.sum(Refund.amount).label("refunded"), func.count(Refund.id).label("refunds"))
        .group_by(Refund.intent_id)
        .subquery("refunds_by_intent")
    )
    refunded = func.coalesce(by_intent.c.refunded, 0)
    # Only a succeeded intent captured money; any refund of another is beyond its capture.
    captured = case((PaymentIntent.state == IntentState.SUCCEEDED, PaymentIntent.amount), else_=0)
    rows = session.execute(
        select(PaymentIntent.id, PaymentIntent.state, PaymentIntent.amount, PaymentIntent.amount_refunded, refunded,
               captured)
        .outerjoin(by_intent, by_intent.c.intent_id == PaymentIntent.id)
        .where(or_(refunded > captured, refunded != PaymentIntent.amount_refunded))
        .order_by(PaymentIntent.id)
        .limit(limit)
    )
    found = []
    for intent_id, state, amount, recorded, total, capture in rows:
        total, capture = int(total), int(capture)
        problems = []
        if total > capture:
            problems.append(f"refunds sum to {total}, more than the {capture} captured")
        if total != recorded:
            problems.append(f"refunds sum to {total} but the intent records {recorded} refunded")
        found.append({"problem": "; ".join(problems), "intent_id": intent_id, "state": state, "amount": amount,
                      "captured": capture, "refunded": total, "amount_refunded": recorded})

    if len(found) < limit:
        transfers = func.count(Transfer.id)
        matching = _count_if(and_(Transfer.amount == Refund.amount, Transfer.currency == Refund.currency,
                                  Transfer.id == Refund.transfer_id))
        rows = session.execute(
            select(Refund.id, Refund.intent_id, Refund.amount, Refund.currency, Refund.transfer_id,
                   PaymentIntent.currency, transfers, matching)
            .join(PaymentIntent, PaymentIntent.id == Refund.intent_id)
            .outerjoin(Transfer, and_(Transfer.refund_id == Refund.id, Transfer.kind == TransferKind.REFUND))
            .group_by(Refund.id, Refund.intent_id, Refund.amount, Refund.currency, Refund.transfer_id,
                      PaymentIntent.currency)
            .having(or_(transfers != 1, matching != 1, Refund.currency != PaymentIntent.currency))
            .order_by(Refund.id)
            .limit(limit - len(found))
        )
        for refund_id, intent_id, amount, currency, transfer_id, intent_currency, n, good in rows:
            problems = []
            if n != 1:
                problems.append(f"refund has {n} refund transfers, not exactly one")
            elif int(good) != 1:
                problems.append("its refund transfer differs from the refund in amount, currency, "
                                "or the transfer the refund names")
            if currency != intent_currency:
                problems.append(f"refund in {currency}, intent in {intent_currency}")
            found.append({"problem": "; ".join(problems), "refund_id": refund_id, "intent_id": intent_id,
                          "amount": amount, "currency": currency, "transfer_id": transfer_id, "refund_transfers": n})

    if len(found) < limit:
        rows = session.execute(
            select(Transfer.id, Transfer.refund_id, Transfer.amount, Transfer.currency)
            .outerjoin(Refund, Refund.id == Transfer.refund_id)
            .where(Transfer.kind == TransferKind.REFUND, Refund.id.is_(None))
            .order_by(Transfer.id)
            .limit(limit - len(found))
        )
        found += [{"problem": "refund transfer names no refund" if refund_id is None
                   else f"refund transfer names refund {refund_id}, which does not exist",
                   "transfer_id": transfer_id, "refund_id": refund_id, "amount": amount, "currency": currency}
                  for transfer_id, refund_id, amount, currency in rows]
    return found


#: name → (plain-words description, finder of offending rows), in the order they are reported.
INVARIANTS: dict[str, tuple[str, Finder]] = {
    "postings_sum_to_zero_per_currency": (
        "All postings in each currency sum to zero: money is neither created nor lost.",
        _postings_sum_to_zero_per_currency),
    "transfers_balance": (
        "Each transfer has at least two postings, all in its currency (and on accounts in its currency); "
        "its negative legs sum to minus its amount and its positive legs to its amount.",
        _transfers_balance),
    "balances_match_postings": (
        "Each account's stored balance equals the sum of its postings.",
        _balances_match_postings),
    "no_customer_balance_below_zero": (
        "No customer account is below zero, by its stored balance or by the sum of its postings.",
        _no_customer_balance_below_zero),
    "succeeded_intents_have_one_transfer": (
        "Each succeeded payment intent has exactly one payment transfer, of its amount and currency, "
        "and names it; no intent in another state has a payment transfer; every payment transfer "
        "names an intent.",
        _succeeded_intents_have_one_transfer),
    "refunds_within_capture": (
        "An intent's refunds sum to no more than it captured (its amount, once succeeded) and to its "
        "amount_refunded; each refund, in its intent's currency, has exactly one refund transfer of its "
        "amount; every refund transfer names a refund.",
        _refunds_within_capture),
}


def check(session: Session) -> dict[str, dict[str, Any]]:
    """Check every ledger invariant; return ``{name: {"ok", "description", "violations", "truncated"}}``.

    ``violations`` lists at most :data:`MAX_VIOLATIONS` offending rows, each a dict with a
    plain-words ``problem`` and the figures behind it (currency and sum, account id and
    balance, intent id and transfer count...); ``truncated`` is true when there were more.
    Call it inside one transaction; under concurrent writes use :func:`report`, which reads
    from one snapshot.
    """
    results: dict[str, dict[str, Any]] = {}
    for name, (description, find) in INVARIANTS.items():
        found = find(session, MAX_VIOLATIONS + 1)
        results[name] = {
            "ok": not found,
            "description": description,
            "violations": found[:MAX_VIOLATIONS],
            "truncated": len(found) > MAX_VIOLATIONS,
        }
    return results


@contextmanager
def snapshot(database: Database) -> Iterator[Session]:
    """A read-only session whose queries all see one snapshot of the ledger.

    PostgreSQL: a ``REPEATABLE READ READ ONLY`` transaction, so a payment committed half way
    through the check cannot make one query disagree with another. SQLite: a read
    transaction already sees one snapshot.
    """
    with database.sessions() as session:
        if database.dialect == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True})
        try:
            yield session
        finally:
            session.rollback()


def report(database: Database) -> dict[str, Any]:
    """Check the invariants in one snapshot: ``{"ok", "checked_at" (ISO 8601, UTC), "invariants"}``."""
    checked_at = utcnow().isoformat(timespec="seconds").replace("+00:00", "Z")
    with snapshot(database) as session:
        invariants = check(session)
    return {"ok": all(result["ok"] for result in invariants.values()), "checked_at": checked_at,
            "invariants": invariants}
