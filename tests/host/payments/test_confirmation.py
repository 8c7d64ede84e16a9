"""``confirmation.confirm``, the one function that pays an intent, called as the page calls it
(after the PIN, in a write transaction holding the intent's lock): each of its outcomes and
what each leaves written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from canopy_sdk.errors import UnknownIntent
from sqlalchemy import func, select

from host.payments import confirmation, intents
from host.payments.ledger import InsufficientFunds
from host.payments.models import IntentState, IntentTransition, Transfer
from tests.host.payments.test_flow import balance, ledger_ok

from .conftest import SHOP

DEVICE = "d" * 64


@pytest.fixture
def run(pay_app):
    """``run(fn)``: ``fn(session)`` in one write transaction of the app (committed)."""
    from host.db import get_database

    def call(fn):
        with pay_app.app_context(), get_database(pay_app).transaction(write=True) as session:
            return fn(session)

    return call


@pytest.fixture
def people(run):
    from host.identity.models import Customer

    return run(lambda session: {c.phone: (c.id, c.branch_code) for c in session.scalars(select(Customer))})


def _new_intent(run, amount=1500, customer_id=None):
    def make(session):
        asked = intents.IntentRequest.check(amount, "CNY", "Water bill", {}, frozenset({"CNY"}))
        return intents.create(session, plugin_id=SHOP, request=asked, customer_id=customer_id).id

    return run(make)


def _confirm(run, intent_id, customer, **kwargs):
    customer_id, branch = customer

    def go(session):
        intent = intents.find(session, None, intent_id, lock=True)
        done = confirmation.confirm(session, intent, customer_id=customer_id, home_branch=branch,
                                    device=kwargs.pop("device", DEVICE), **kwargs)
        return done.outcome, done.intent.state, done.reason

    return run(go)


def _transfers(run, intent_id):
    return run(lambda s: s.scalar(select(func.count()).select_from(Transfer).where(Transfer.intent_id == intent_id)))


def test_a_new_device_is_challenged_then_paid_once_acknowledged(pay_app, run, people):
    me = people["13800000001"]
    intent_id = _new_intent(run)
    before = balance(pay_app)

    outcome, state, reason = _confirm(run, intent_id, me)
    assert (outcome, state) == (confirmation.CHALLENGED, IntentState.REQUIRES_CONFIRMATION)
    assert reason and _transfers(run, intent_id) == 0

    assert _confirm(run, intent_id, me, acknowledged=True)[:2] == (confirmation.PAID, IntentState.SUCCEEDED)
    assert balance(pay_app) == before - 1500
    # once more: closed, nothing moves
    assert _confirm(run, intent_id, me, acknowledged=True)[:2] == (confirmation.CLOSED, IntentState.SUCCEEDED)
    assert _transfers(run, intent_id) == 1 and balance(pay_app) == before - 1500
    ledger_ok(pay_app)


def test_a_known_device_pays_without_a_challenge(run, people):
    me = people["13800000001"]
    _confirm(run, _new_intent(run), me, acknowledged=True)
    assert _confirm(run, _new_intent(run), me)[0] == confirmation.PAID


def test_too_little_money_writes_nothing(pay_app, run, people):
    me = people["13800000001"]
    intent_id = _new_intent(run, amount=balance(pay_app) + 1)
    with pytest.raises(InsufficientFunds):
        _confirm(run, intent_id, me, acknowledged=True)  # and the transaction rolls back
    transitions = run(lambda s: s.scalars(select(IntentTransition.to_state).where(IntentTransition.intent_id == intent_id)).all())
    assert transitions == [IntentState.REQUIRES_CONFIRMATION]  # the risk verdicts were rolled back with it
    assert _transfers(run, intent_id) == 0
    ledger_ok(pay_app)


def test_a_denial_fails_the_intent_with_the_reason(run, people):
    me = people["13800000001"]
    intent_id = _new_intent(run, amount=5_000_001)  # above the single-payment limit (50,000.00 CNY)
    outcome, state, reason = _confirm(run, intent_id, me, acknowledged=True)
    assert (outcome, state) == (confirmation.DENIED, IntentState.FAILED)
    assert reason and _transfers(run, intent_id) == 0


def test_an_intent_past_its_time_is_recorded_expired_not_paid(run, people):
    from host.payments.models import PaymentIntent

    me = people["13800000001"]
    intent_id = _new_intent(run)
    run(lambda s: setattr(s.get(PaymentIntent, intent_id), "expires_at", s.get(PaymentIntent, intent_id).created_at - timedelta(seconds=1)))
    assert _confirm(run, intent_id, me, acknowledged=True)[:2] == (confirmation.CLOSED, IntentState.EXPIRED)
    assert _transfers(run, intent_id) == 0


def test_another_customers_intent_is_unknown(run, people):
    mine = _new_intent(run, customer_id=people["13800000001"][0])
    with pytest.raises(UnknownIntent):
        _confirm(run, mine, people["13900000002"], acknowledged=True)
    assert _transfers(run, mine) == 0


def test_a_customer_without_a_payment_account_pays_nothing(pay_app, run):
    from host.identity.models import Customer, new_id
    from host.payments.models import Account, AccountKind

    def add(session):
        customer = Customer(id=new_id(), phone="13700009999", password_hash="x", nickname="New", locale="en",
                            branch_code="SH001")
        session.add(customer)
        return customer.id

    newcomer = (run(add), "SH001")
    intent_id = _new_intent(run, amount=100)
    with pytest.raises(InsufficientFunds):
        _confirm(run, intent_id, newcomer, acknowledged=True)
    assert _transfers(run, intent_id) == 0
    assert run(lambda s: s.get(intents.PaymentIntent, intent_id).state) == IntentState.REQUIRES_CONFIRMATION
    accounts = run(lambda s: s.scalars(select(Account).where(Account.kind == AccountKind.CUSTOMER,
                                                             Account.owner == newcomer[0])).all())
    assert [a.balance for a in accounts] in ([], [0])  # opened empty at most, never below zero
    ledger_ok(pay_app)


@pytest.mark.parametrize("legs, named", [
    ([(1, -100, "customer"), (2, 99, "merchant")], "sum to zero"),
    ([(1, 0, "customer"), (2, 0, "merchant")], "non-zero"),
    ([(1, -100, "customer")], "two"),
    ([(1, -100, "customer"), (2, 100, "shop")], "kind"),
])
def test_a_transfer_that_cannot_be_posted_writes_nothing(run, legs, named):
    from host.payments import ledger

    before = run(lambda s: s.scalar(select(func.count()).select_from(Transfer)))
    with pytest.raises(ValueError, match=named):
        run(lambda s: ledger.post(s, kind="payment", currency="CNY",
                                  legs=[ledger.Leg(account, amount, kind) for account, amount, kind in legs]))
    assert run(lambda s: s.scalar(select(func.count()).select_from(Transfer))) == before


def test_accounts_are_moved_customer_first_whatever_their_ids(pay_app, run):
    """The one lock order (docs/payments.md): customer, merchant, clearing — here the shop's
    account is older (a lower id) than the customer's, and is still moved last."""
    from sqlalchemy import event

    from host.db import get_database
    from host.identity.models import Customer, new_id
    from host.payments import ledger
    from host.payments.models import AccountKind

    intent_id = _new_intent(run, amount=100)  # the shop's settlement account exists from here on

    def newcomer(session):
        customer = Customer(id=new_id(), phone="13700008888", password_hash="x", nickname="New", locale="en",
                            branch_code="SH001")
        session.add(customer)
        session.flush()
        ledger.fund(session, customer.id, 10_000, "CNY")
        return customer.id

    customer_id = run(newcomer)
    paying = run(lambda s: ledger.find_account(s, AccountKind.CUSTOMER, customer_id, "CNY").id)
    shop = run(lambda s: s.get(intents.PaymentIntent, intent_id).merchant_account_id)
    assert shop < paying
    moved = []

    def watch(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE LEDGER_ACCOUNTS"):
            moved.append(context.compiled_parameters[0]["account"])

    engine = get_database(pay_app).engine
    event.listen(engine, "before_cursor_execute", watch)
    try:
        assert _confirm(run, intent_id, (customer_id, "SH001"), acknowledged=True)[0] == confirmation.PAID
    finally:
        event.remove(engine, "before_cursor_execute", watch)
    assert moved == [paying, shop]
