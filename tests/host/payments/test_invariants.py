"""host/payments/invariants.py: each invariant holds on a consistent ledger and names what breaks it.

Ledgers are built directly with the ORM. Transfers and postings are immutable, so a broken
ledger is made by inserting bad rows; balances and intents are updated in place.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from host.db import get_database
from host.identity.models import Customer
from host.payments.invariants import INVARIANTS, MAX_VIOLATIONS, check, report, snapshot
from host.payments.models import Account, AccountKind, IntentState, PaymentIntent, Refund, TransferKind

from .conftest import Ledger, new_id

PLUGIN = "city.utilities"
MERCHANT = "partner:TESTSHOP"


@pytest.fixture
def database(demo_app):
    return get_database(demo_app)


@pytest.fixture
def build(database):
    """``build(fn)``: run ``fn(ledger, accounts)`` in one committed transaction; return its result.

    ``accounts`` (made on the first call; ``build()`` returns them) are this test's own: a
    funded customer account (10,000.00 CNY), a merchant and a clearing account, and the same
    three in USD. Their owners are the test's, apart from whatever the demo put in the ledger.
    """
    made: dict[str, int] = {}
    names = [("clearing", AccountKind.CLEARING, "rail:test"), ("customer", AccountKind.CUSTOMER, "test:customer"),
             ("merchant", AccountKind.MERCHANT, MERCHANT)]

    def run(fn=None):
        with database.transaction(write=True) as session:
            customer_id = session.scalar(select(Customer.id).order_by(Customer.phone).limit(1))
            ledger = Ledger(session, customer_id)
            if made:
                accounts = {name: session.get(Account, account_id) for name, account_id in made.items()}
            else:
                accounts = {}
                for currency, suffix in (("CNY", ""), ("USD", "_usd")):
                    for name, kind, owner in names:
                        accounts[name + suffix] = ledger.account(kind, owner, currency)
                ledger.fund(accounts["customer"], accounts["clearing"], 1_000_000)
                ledger.fund(accounts["customer_usd"], accounts["clearing_usd"], 50_000)
                made.update({name: account.id for name, account in accounts.items()})
            return fn(ledger, accounts) if fn else accounts

    return run


def consistent(ledger: Ledger, a: dict) -> dict:
    """Payments, a partial and a full refund, a pending and a failed intent, two currencies."""
    paid = ledger.pay(a["customer"], a["merchant"], 12_050)
    ledger.refund(paid, a["customer"], a["merchant"], 2_000)
    ledger.refund(paid, a["customer"], a["merchant"], 1_050)
    whole = ledger.pay(a["customer"], a["merchant"], 3_000)
    ledger.refund(whole, a["customer"], a["merchant"], 3_000)
    ledger.pay(a["customer_usd"], a["merchant_usd"], 999)
    ledger.intent(a["merchant"], 500)
    ledger.intent(a["merchant"], 700, state=IntentState.FAILED)
    return {"paid": paid.id, "whole": whole.id}


def failing(database) -> dict[str, list[dict]]:
    with database.transaction() as session:
        results = check(session)
    return {name: result["violations"] for name, result in results.items() if not result["ok"]}


# -- a consistent ledger ----------------------------------------------------------------------


def test_the_demo_ledger_holds_every_invariant(database):
    with database.transaction() as session:
        results = check(session)
    assert list(results) == list(INVARIANTS)
    assert all(r["ok"] and r["violations"] == [] and not r["truncated"] for r in results.values())
    assert all(r["description"] for r in results.values())


def test_a_consistent_ledger_holds_every_invariant(database, build):
    build(consistent)
    assert failing(database) == {}
    result = report(database)
    assert result["ok"] is True
    assert result["checked_at"].endswith("Z")
    assert set(result["invariants"]) == set(INVARIANTS)


# -- 1. postings sum to zero per currency --------------------------------------------------


def test_money_made_from_nothing_breaks_the_per_currency_sum(database, build):
    build(consistent)
    # One leg only: 5.00 CNY appears on the merchant's account; its balance follows.
    made = build(lambda ledger, a: ledger.transfer(TransferKind.FUNDING, [(a["merchant"], 500)]).id)
    failed = failing(database)
    assert set(failed) == {"postings_sum_to_zero_per_currency", "transfers_balance"}
    [violation] = failed["postings_sum_to_zero_per_currency"]
    assert violation["currency"] == "CNY" and violation["sum"] == 500
    assert "CNY" in violation["problem"]
    [transfer] = failed["transfers_balance"]
    assert transfer["transfer_id"] == made and transfer["postings"] == 1


# -- 2. transfers balance ------------------------------------------------------------------


def test_legs_that_do_not_match_the_amount_break_transfers_balance(database, build):
    build(consistent)
    bad = build(lambda ledger, a: ledger.transfer(
        TransferKind.FUNDING, [(a["clearing"], -300), (a["customer"], 300)], amount=500).id)
    failed = failing(database)
    assert set(failed) == {"transfers_balance"}
    [violation] = failed["transfers_balance"]
    assert violation["transfer_id"] == bad
    assert (violation["amount"], violation["out"], violation["in"], violation["sum"]) == (500, -300, 300, 0)
    assert "not the transfer's 500" in violation["problem"]


def test_a_transfer_without_postings_breaks_transfers_balance(database, build):
    bare = build(lambda ledger, a: ledger.transfer(TransferKind.FUNDING, [], amount=100, currency="CNY").id)
    failed = failing(database)
    assert set(failed) == {"transfers_balance"}
    [violation] = failed["transfers_balance"]
    assert violation["transfer_id"] == bare and violation["postings"] == 0
    assert "fewer than two" in violation["problem"]


def test_postings_in_another_currency_break_transfers_balance(database, build):
    # A "CNY" transfer whose legs are on USD accounts: every currency still sums to zero.
    odd = build(lambda ledger, a: ledger.transfer(
        TransferKind.FUNDING, [(a["clearing_usd"], -100), (a["customer_usd"], 100)], currency="CNY").id)
    failed = failing(database)
    assert set(failed) == {"transfers_balance"}
    [violation] = failed["transfers_balance"]
    assert violation["transfer_id"] == odd and violation["other_currency_postings"] == 2


# -- 3. balances match postings -------------------------------------------------------------


def test_a_balance_that_drifts_from_its_postings_is_listed(database, build):
    build(consistent)

    def drift(ledger, a):
        a["merchant"].balance += 1
        return a["merchant"].id

    merchant_id = build(drift)
    failed = failing(database)
    assert set(failed) == {"balances_match_postings"}
    [violation] = failed["balances_match_postings"]
    assert violation["account_id"] == merchant_id
    assert violation["balance"] == violation["posted"] + 1


def test_violations_are_bounded(database, build):
    def many(ledger, a):
        for n in range(MAX_VIOLATIONS + 5):
            ledger.account(AccountKind.MERCHANT, f"partner:P{n:03}").balance = 7

    build(many)
    with database.transaction() as session:
        result = check(session)["balances_match_postings"]
    assert not result["ok"] and result["truncated"]
    assert len(result["violations"]) == MAX_VIOLATIONS


# -- 4. no customer balance below zero -------------------------------------------------------


def test_a_customer_overdrawn_by_postings_is_listed(database, build):
    def overdraw(ledger, a):
        poor = ledger.account(AccountKind.CUSTOMER, "customer:poor")
        ledger.fund(poor, a["clearing"], 100)
        # The stored balance cannot go below zero (CHECK constraint); the postings can.
        ledger.transfer(TransferKind.PAYMENT, [(poor, -150), (a["merchant"], 150)], balances=False)
        return poor.id

    poor_id = build(overdraw)
    failed = failing(database)
    # The payment transfer names no intent, and the unmoved balances no longer match.
    assert set(failed) == {"no_customer_balance_below_zero", "balances_match_postings",
                           "succeeded_intents_have_one_transfer"}
    [violation] = failed["no_customer_balance_below_zero"]
    assert (violation["account_id"], violation["balance"], violation["posted"]) == (poor_id, 100, -50)


def test_merchant_and_clearing_accounts_may_go_below_zero(database, build):
    def overdraw_a_merchant(ledger, a):
        merchant = ledger.account(AccountKind.MERCHANT, "branch:SH001")
        ledger.transfer(TransferKind.FUNDING, [(merchant, -100), (a["customer"], 100)])
        return merchant.balance, a["clearing"].balance

    merchant_balance, clearing_balance = build(overdraw_a_merchant)
    assert merchant_balance == -100 and clearing_balance < 0
    assert failing(database) == {}


# -- 5. succeeded intents have one transfer --------------------------------------------------


def test_a_succeeded_intent_without_a_transfer_is_listed(database, build):
    def lost(ledger, a):
        intent = ledger.intent(a["merchant"], 800)
        intent.state = IntentState.SUCCEEDED
        return intent.id

    intent_id = build(lost)
    failed = failing(database)
    assert set(failed) == {"succeeded_intents_have_one_transfer"}
    [violation] = failed["succeeded_intents_have_one_transfer"]
    assert violation["intent_id"] == intent_id and violation["payment_transfers"] == 0


def test_an_intent_paid_twice_is_listed(database, build):
    def twice(ledger, a):
        intent = ledger.pay(a["customer"], a["merchant"], 800)
        ledger.transfer(TransferKind.PAYMENT, [(a["customer"], -800), (a["merchant"], 800)], intent_id=intent.id)
        return intent.id

    intent_id = build(twice)
    failed = failing(database)
    assert set(failed) == {"succeeded_intents_have_one_transfer"}
    [violation] = failed["succeeded_intents_have_one_transfer"]
    assert violation["intent_id"] == intent_id and violation["payment_transfers"] == 2


def test_a_payment_of_the_wrong_amount_is_listed(database, build):
    def short(ledger, a):
        intent = ledger.intent(a["merchant"], 800)
        transfer = ledger.transfer(TransferKind.PAYMENT, [(a["customer"], -700), (a["merchant"], 700)],
                                   intent_id=intent.id)
        intent.state, intent.transfer_id = IntentState.SUCCEEDED, transfer.id
        return intent.id

    intent_id = build(short)
    [violation] = failing(database)["succeeded_intents_have_one_transfer"]
    assert violation["intent_id"] == intent_id
    assert (violation["payment_transfers"], violation["matching_transfers"]) == (1, 0)


def test_a_failed_intent_with_a_payment_is_listed(database, build):
    def paid_but_failed(ledger, a):
        intent = ledger.pay(a["customer"], a["merchant"], 800)
        intent.state = IntentState.FAILED
        return intent.id

    intent_id = build(paid_but_failed)
    failed = failing(database)
    assert set(failed) == {"succeeded_intents_have_one_transfer"}
    [violation] = failed["succeeded_intents_have_one_transfer"]
    assert violation["intent_id"] == intent_id and violation["state"] == IntentState.FAILED
    assert "failed" in violation["problem"]


def test_a_payment_transfer_without_an_intent_is_listed(database, build):
    orphan = build(lambda ledger, a: ledger.transfer(
        TransferKind.PAYMENT, [(a["customer"], -800), (a["merchant"], 800)]).id)
    failed = failing(database)
    assert set(failed) == {"succeeded_intents_have_one_transfer"}
    [violation] = failed["succeeded_intents_have_one_transfer"]
    assert violation["transfer_id"] == orphan and "no intent" in violation["problem"]


# -- 6. refunds within capture -------------------------------------------------------------


def test_refunds_beyond_the_capture_are_listed(database, build):
    def over(ledger, a):
        intent = ledger.pay(a["customer"], a["merchant"], 1_000)
        ledger.refund(intent, a["customer"], a["merchant"], 600)
        ledger.refund(intent, a["customer"], a["merchant"], 600, record=False)  # amount_refunded ≤ amount (CHECK)
        return intent.id

    intent_id = build(over)
    failed = failing(database)
    assert set(failed) == {"refunds_within_capture"}
    [violation] = failed["refunds_within_capture"]
    assert violation["intent_id"] == intent_id
    assert (violation["captured"], violation["refunded"], violation["amount_refunded"]) == (1_000, 1_200, 600)
    assert "more than the 1000 captured" in violation["problem"]


def test_a_refund_of_an_intent_that_never_succeeded_is_listed(database, build):
    def uncaptured(ledger, a):
        intent = ledger.pay(a["customer"], a["merchant"], 1_000)
        ledger.refund(intent, a["customer"], a["merchant"], 100)
        return intent.id

    intent_id = build(uncaptured)

    def unpay(ledger, a):
        # Mark it failed: its payment transfer and its refund are now both beyond what it captured.
        ledger.session.get(PaymentIntent, intent_id).state = IntentState.FAILED

    build(unpay)
    failed = failing(database)
    assert set(failed) == {"refunds_within_capture", "succeeded_intents_have_one_transfer"}
    [violation] = failed["refunds_within_capture"]
    assert violation["intent_id"] == intent_id and violation["captured"] == 0


def test_an_unrecorded_refund_total_is_listed(database, build):
    def unrecorded(ledger, a):
        intent = ledger.pay(a["customer"], a["merchant"], 1_000)
        intent.amount_refunded = 250
        return intent.id

    intent_id = build(unrecorded)
    failed = failing(database)
    assert set(failed) == {"refunds_within_capture"}
    [violation] = failed["refunds_within_capture"]
    assert violation["intent_id"] == intent_id and (violation["refunded"], violation["amount_refunded"]) == (0, 250)


def test_a_refund_without_its_transfer_is_listed(database, build):
    def missing(ledger, a):
        intent = ledger.pay(a["customer"], a["merchant"], 1_000)
        refund = Refund(id=new_id("re"), intent_id=intent.id, amount=300, currency="CNY", transfer_id=new_id("tr"))
        ledger.session.add(refund)
        intent.amount_refunded = 300
        return refund.id

    refund_id = build(missing)
    failed = failing(database)
    assert set(failed) == {"refunds_within_capture"}
    [violation] = failed["refunds_within_capture"]
    assert violation["refund_id"] == refund_id and violation["refund_transfers"] == 0


def test_a_refund_transfer_without_a_refund_is_listed(database, build):
    def orphan(ledger, a):
        intent = ledger.pay(a["customer"], a["merchant"], 1_000)
        return ledger.transfer(TransferKind.REFUND, [(a["merchant"], -300), (a["customer"], 300)],
                               intent_id=intent.id, refund_id=new_id("re")).id

    transfer_id = build(orphan)
    failed = failing(database)
    assert set(failed) == {"refunds_within_capture"}
    [violation] = failed["refunds_within_capture"]
    assert violation["transfer_id"] == transfer_id and "does not exist" in violation["problem"]


# -- one snapshot ------------------------------------------------------------------------------


def test_the_check_reads_one_snapshot_while_others_write(database, build):
    """A payment committed half way through a check cannot make one invariant disagree with another."""
    build(consistent)
    merchant_id = build()["merchant"].id
    with snapshot(database) as session:
        assert check(session)["balances_match_postings"]["ok"]  # the snapshot starts here
        with database.transaction(write=True) as writer:
            writer.get(Account, merchant_id).balance += 1  # committed meanwhile
        assert all(result["ok"] for result in check(session).values())
    assert set(failing(database)) == {"balances_match_postings"}



def test_docs_describe_every_invariant_in_order():
    """docs/ledger.md has a heading per invariant, in the order the check reports them."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "ledger.md").read_text(encoding="utf-8")
    section = text.split("## The invariants", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^### (\w+)\s*$", section, re.MULTILINE) == list(INVARIANTS)
