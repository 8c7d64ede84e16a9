"""Fixtures of the risk centre tests: the demo app in context, attempts, paid intents, staff sessions.

With ``--import-mode=importlib`` test modules cannot import this file, so helpers are fixtures.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from host.audit import AuditEvent
from host.db import get_database
from host.demo import CUSTOMERS
from host.identity.models import Customer, Staff
from host.payments.models import Account, AccountKind, IntentState, PaymentIntent
from host.payments.risk import PaymentAttempt
from host.payments.risk.models import RiskDecision, RiskSetting

#: A Tuesday afternoon in Shanghai (06:00 UTC = 14:00 UTC+8).
NOON = datetime(2025, 3, 4, 6, 0, tzinfo=timezone.utc)
DEVICE = "d" * 64
TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def in_app(demo_app):
    """The demo app with an app context pushed (rules and settings are the app's)."""
    with demo_app.app_context():
        yield demo_app


@pytest.fixture
def transaction(in_app):
    """``with transaction() as session:`` a write transaction on the demo database, committed at the end."""
    return lambda: get_database(in_app).transaction(write=True)


@pytest.fixture
def customer_id(transaction) -> str:
    """The id of the first demo customer (home branch SH001)."""
    with transaction() as session:
        return session.scalars(select(Customer.id).where(Customer.phone == CUSTOMERS[0][0])).one()


@pytest.fixture
def attempt(customer_id):
    """``attempt(**changes)``: a CNY 100.00 attempt by the demo customer in SH001 at :data:`NOON`."""

    def make(**changes) -> PaymentAttempt:
        fields = {
            "intent_id": "pi_" + secrets.token_hex(12), "customer_id": customer_id, "plugin_id": "city.utilities",
            "merchant": "partner:CITYPOWER", "branch_code": "SH001", "amount": 10_000, "currency": "CNY",
            "device": DEVICE, "at": NOON,
        }
        fields.update(changes)
        return PaymentAttempt(**fields)

    return make


@pytest.fixture
def paid(transaction, customer_id):
    """``paid(amount, created_at, currency="CNY", state="succeeded")``: a payment intent of the demo customer."""

    def insert(amount: int, created_at: datetime, currency: str = "CNY", state: str = IntentState.SUCCEEDED) -> str:
        with transaction() as session:
            merchant = session.scalar(select(Account).where(Account.kind == AccountKind.MERCHANT,
                                                            Account.owner == "partner:CITYPOWER", Account.currency == currency))
            if merchant is None:
                merchant = Account(kind=AccountKind.MERCHANT, owner="partner:CITYPOWER", currency=currency, balance=0)
                session.add(merchant)
                session.flush()
            intent = PaymentIntent(
                id="pi_" + secrets.token_hex(12), plugin_id="city.utilities", merchant_account_id=merchant.id,
                customer_id=customer_id, branch_code="SH001", amount=amount, currency=currency, description="electricity",
                state=state, created_at=created_at, updated_at=created_at, expires_at=created_at + timedelta(minutes=15),
            )
            session.add(intent)
            return intent.id

    return insert


@pytest.fixture
def decisions(demo_app):
    """``decisions(intent_id=None)``: risk decisions recorded so far, oldest first."""

    def read(intent_id: str | None = None) -> list[RiskDecision]:
        query = select(RiskDecision).order_by(RiskDecision.id)
        if intent_id is not None:
            query = query.where(RiskDecision.intent_id == intent_id)
        with get_database(demo_app).transaction() as session:
            return list(session.scalars(query))

    return read


@pytest.fixture
def stored_settings(demo_app):
    """``stored_settings()``: the risk_settings rows as {(branch, rule): (enabled, params)}."""

    def read() -> dict:
        with get_database(demo_app).transaction() as session:
            return {(row.branch_code, row.rule): (row.enabled, row.params) for row in session.scalars(select(RiskSetting))}

    return read


@pytest.fixture
def audit_log(demo_app):
    """``audit_log(prefix="risk.")``: audit events whose action starts with ``prefix``, oldest first."""

    def read(prefix: str = "risk.") -> list[AuditEvent]:
        with get_database(demo_app).transaction() as session:
            rows = session.scalars(select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id))
            return list(rows)

    return read


@pytest.fixture
def staff(demo_app):
    """``staff(username)``: a demo staff member's row."""

    def read(username: str) -> Staff:
        with get_database(demo_app).transaction() as session:
            return session.scalars(select(Staff).where(Staff.username == username)).one()

    return read


@pytest.fixture
def signed_in(demo_app, staff):
    """``signed_in(username)``: a test client with that demo staff member's session (None: nobody)."""

    def make(username: str | None):
        client = demo_app.test_client()
        if username is not None:
            member = staff(username)
            with client.session_transaction() as session:
                session["staff_id"] = member.id
        return client

    return make


@pytest.fixture
def form_token():
    """``form_token(client, path)``: the CSRF token of the forms a page renders."""

    def fetch(client, path: str = "/staff/risk") -> str:
        page = client.get(path)
        assert page.status_code == 200, page.status_code
        found = TOKEN_FIELD.search(page.get_data(as_text=True))
        assert found, "the page has no CSRF field"
        return found.group(1)

    return fetch
