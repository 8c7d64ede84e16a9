"""Payment intents end to end: a partner back end creates one (OAuth, DPoP, Idempotency-Key),
the customer confirms it on the host's page with the payment PIN, the plugin refunds; with
every refusal the issue lists, and the ledger's invariants checked after each story."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.host.oauth.conftest import Browser, form_token

from .conftest import PIN, SHOP

INTENTS = "/api/v1/payments/intents"


def create(partner, token, body=None, key=None, **kwargs):
    body = {"amount": 1234, "currency": "CNY", "description": "Electricity bill, November"} if body is None else body
    headers = {"Idempotency-Key": key or uuid.uuid4().hex}
    headers.update(kwargs.pop("headers", {}))
    return partner.get(INTENTS, token, method="POST", json=body, headers=headers, **kwargs)


def pay(browser, intent_id, pin=PIN, acknowledge=True):
    page = browser.http.get(f"/pay/{intent_id}")
    assert page.status_code == 200, page.get_data(as_text=True)
    form = {"pin": pin, "csrf_token": form_token(page.get_data(as_text=True))}
    if acknowledge:
        form["acknowledge"] = "yes"  # the first payment from a device is a new-device challenge
    return browser.http.post(f"/pay/{intent_id}", data=form)


def ledger_ok(app):
    from host.db import get_database
    from host.payments.invariants import check

    with app.app_context(), get_database(app).transaction() as session:
        report = check(session)
    assert all(entry["ok"] for entry in report.values()), report
    return report


def count(app, model, **where):
    from host.db import get_database

    with app.app_context(), get_database(app).transaction() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return session.scalar(query)


def balance(app, phone="13800000001"):
    from host.db import get_database
    from host.identity.models import Customer
    from host.payments.models import Account

    with app.app_context(), get_database(app).transaction() as session:
        customer_id = session.scalar(select(Customer.id).where(Customer.phone == phone))
        return session.scalar(select(Account.balance).where(Account.owner == customer_id, Account.kind == "customer"))


def test_create_confirm_refund(pay_app, shop, customer, server_token):
    from host.payments.models import Transfer

    token = server_token(shop)
    created = create(shop, token)
    assert created.status_code == 201, created.get_json()
    intent = created.get_json()
    assert intent["state"] == "requires_confirmation" and intent["amount"] == 1234 and intent["currency"] == "CNY"
    assert intent["confirm_url"] == f"/pay/{intent['id']}"

    page = customer.http.get(intent["confirm_url"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "12.34 CNY" in html and "Electricity bill, November" in html
    assert "10,000.00 CNY" in html  # the paying account and its balance
    assert page.headers["Content-Security-Policy"] == "frame-ancestors 'self'"  # the shell's sheet only (docs/bridge.md)

    paid = pay(customer, intent["id"])
    assert paid.status_code == 200 and 'data-state="succeeded"' in paid.get_data(as_text=True)
    assert balance(pay_app) == 1_000_000 - 1234
    seen = shop.get(f"{INTENTS}/{intent['id']}", server_token(shop, "payments:read")).get_json()
    assert seen["state"] == "succeeded"

    refund_token = server_token(shop, "refunds:create")
    first = shop.get(f"{INTENTS}/{intent['id']}/refunds", refund_token, method="POST", json={"amount": 234, "reason": "late"},
                     headers={"Idempotency-Key": "refund-1"})
    assert first.status_code == 201, first.get_json()
    too_much = shop.get(f"{INTENTS}/{intent['id']}/refunds", refund_token, method="POST", json={"amount": 1001},
                        headers={"Idempotency-Key": "refund-2"})
    assert too_much.status_code == 422 and "1000" in too_much.get_json()["detail"]
    rest = shop.get(f"{INTENTS}/{intent['id']}/refunds", refund_token, method="POST", json={"amount": 1000},
                    headers={"Idempotency-Key": "refund-3"})
    assert rest.status_code == 201
    again = shop.get(f"{INTENTS}/{intent['id']}/refunds", refund_token, method="POST", json={"amount": 234, "reason": "late"},
                     headers={"Idempotency-Key": "refund-1"})
    assert again.status_code == 201 and again.get_json()["id"] == first.get_json()["id"]  # replayed, not repeated
    assert balance(pay_app) == 1_000_000
    assert count(pay_app, Transfer, kind="payment") == 1 and count(pay_app, Transfer, kind="refund") == 2
    ledger_ok(pay_app)


def test_confirming_twice_pays_once(pay_app, shop, customer, server_token):
    from host.payments.models import Transfer

    intent = create(shop, server_token(shop)).get_json()
    token = form_token(customer.http.get(f"/pay/{intent['id']}").get_data(as_text=True))
    assert pay(customer, intent["id"]).status_code == 200
    again = customer.http.post(f"/pay/{intent['id']}", data={"pin": PIN, "acknowledge": "yes", "csrf_token": token})
    assert again.status_code == 200 and 'data-state="succeeded"' in again.get_data(as_text=True)
    assert count(pay_app, Transfer, intent_id=intent["id"]) == 1
    assert balance(pay_app) == 1_000_000 - 1234
    ledger_ok(pay_app)


def test_a_wrong_pin_pays_nothing_and_five_lock_payments(pay_app, shop, customer, server_token):
    intent = create(shop, server_token(shop)).get_json()
    wrong = pay(customer, intent["id"], pin="000000")
    assert wrong.status_code == 400 and "还可尝试 4 次" in wrong.get_data(as_text=True)
    for _ in range(4):
        last = pay(customer, intent["id"], pin="000000")
    assert last.status_code == 403
    locked = pay(customer, intent["id"])  # even the right PIN, while locked
    assert locked.status_code == 403
    assert balance(pay_app) == 1_000_000
    ledger_ok(pay_app)


def test_a_new_device_is_challenged_before_paying(pay_app, shop, customer, server_token):
    intent = create(shop, server_token(shop)).get_json()
    challenged = pay(customer, intent["id"], acknowledge=False)
    html = challenged.get_data(as_text=True)
    assert challenged.status_code == 200 and 'name="acknowledge"' in html and 'data-state="requires_confirmation"' in html
    assert balance(pay_app) == 1_000_000
    assert pay(customer, intent["id"]).status_code == 200  # acknowledged: paid
    later = create(shop, server_token(shop)).get_json()
    assert pay(customer, later["id"], acknowledge=False).status_code == 200  # a known device now


def test_the_risk_centre_can_deny_and_the_intent_fails(pay_app, shop, customer, server_token):
    body = {"amount": 6_000_000, "currency": "CNY", "description": "A car"}  # above every default single limit
    intent = create(shop, server_token(shop), body).get_json()
    denied = pay(customer, intent["id"])
    assert denied.status_code == 403
    seen = shop.get(f"{INTENTS}/{intent['id']}", server_token(shop, "payments:read")).get_json()
    assert seen["state"] == "failed" and seen["failure_reason"]
    assert balance(pay_app) == 1_000_000
    ledger_ok(pay_app)


def test_insufficient_funds_leave_the_intent_open(pay_app, shop, customer, server_token):
    from host.db import get_database
    from host.identity.models import Staff
    from host.payments.risk import settings as risk_settings

    with pay_app.app_context(), get_database(pay_app).transaction(write=True) as session:
        admin = session.scalar(select(Staff).where(Staff.username == "hq.admin"))
        for rule in ("single_payment_limit", "daily_limit"):
            current = risk_settings.effective_settings(session, "*")[rule]
            risk_settings.update_setting(session, admin, "*", rule, False, current.params)
    body = {"amount": 1_000_001, "currency": "CNY", "description": "More than the balance"}
    intent = create(shop, server_token(shop), body).get_json()
    short = pay(customer, intent["id"])
    assert short.status_code == 402
    assert shop.get(f"{INTENTS}/{intent['id']}", server_token(shop, "payments:read")).get_json()["state"] == "requires_confirmation"
    ledger_ok(pay_app)


BAD_AMOUNTS = [0, -1, 12.5, 12.0, "1234", None, True, 10**20, [1], {"v": 1}]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_bad_amounts_are_refused_naming_the_field(pay_app, shop, server_token, amount):
    response = create(shop, server_token(shop), {"amount": amount, "currency": "CNY", "description": "x"})
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json" and "amount" in response.get_json()["errors"]


@pytest.mark.parametrize("currency, field", [("XXX", "currency"), ("USD", "currency"), ("cn", "currency"),
                                             (7, "currency"), ("ＣＮＹ", "currency")])
def test_unknown_or_unaccepted_currencies_are_refused(pay_app, shop, server_token, currency, field):
    response = create(shop, server_token(shop), {"amount": 100, "currency": currency, "description": "x"})
    assert response.status_code == 422 and field in response.get_json()["errors"]


@pytest.mark.parametrize("body, field", [
    ({"amount": 1, "currency": "CNY", "description": ""}, "description"),
    ({"amount": 1, "currency": "CNY", "description": "x" * 201}, "description"),
    ({"amount": 1, "currency": "CNY", "description": "a\u202eb"}, "description"),
    ({"amount": 1, "currency": "CNY", "description": "x", "metadata": [1]}, "metadata"),
    ({"amount": 1, "currency": "CNY", "description": "x", "metadata": {"k": {"nested": 1}}}, "metadata"),
    ({"amount": 1, "currency": "CNY", "description": "x", "metadata": {str(i): i for i in range(21)}}, "metadata"),
    ({"amount": 1, "currency": "CNY", "description": "x", "metadata": {"k": "v" * 3000}}, "metadata"),
    ({"amount": 1, "currency": "CNY"}, "description"),
    ({"amount": 1, "currency": "CNY", "description": "x", "customer": "someone"}, "customer"),
])
def test_bad_fields_are_refused_naming_them(pay_app, shop, server_token, body, field):
    response = create(shop, server_token(shop), body)
    assert response.status_code == 422 and field in response.get_json()["errors"], response.get_json()


def test_malformed_bodies_and_keys(pay_app, shop, server_token):
    token = server_token(shop)
    key = {"Idempotency-Key": "k-1"}
    assert shop.get(INTENTS, token, method="POST", data="{nope", headers={**key, "Content-Type": "application/json"}).status_code == 400
    assert shop.get(INTENTS, token, method="POST", data="amount=1", headers={**key, "Content-Type": "text/plain"}).status_code == 415
    huge = shop.get(INTENTS, token, method="POST", data="[" * 20000, headers={**key, "Content-Type": "application/json"})
    assert huge.status_code == 413
    assert create(shop, token, headers={"Idempotency-Key": ""}).status_code in (400, 422)
    assert create(shop, token, key="has space").status_code == 422
    assert create(shop, token, key="k" * 256).status_code == 422
    missing = shop.get(INTENTS, token, method="POST", json={"amount": 1, "currency": "CNY", "description": "x"})
    assert missing.status_code == 400 and "Idempotency-Key" in missing.get_json()["errors"]


def test_idempotency_same_key_same_answer_other_parameters_refused(pay_app, shop, server_token):
    from host.payments.models import PaymentIntent

    token = server_token(shop)
    first = create(shop, token, key="order-42")
    second = create(shop, token, key="order-42")
    assert first.status_code == second.status_code == 201 and first.get_json() == second.get_json()
    other = create(shop, token, {"amount": 999, "currency": "CNY", "description": "x"}, key="order-42")
    assert other.status_code == 422 and "Idempotency-Key" in other.get_json()["errors"]
    assert count(pay_app, PaymentIntent) == 1


def test_another_plugins_and_another_customers_intents_are_not_theirs(pay_app, shop, other_shop, customer, server_token):
    intent = create(shop, server_token(shop)).get_json()
    assert other_shop.get(f"{INTENTS}/{intent['id']}", server_token(other_shop, "payments:read")).status_code == 404
    refund = other_shop.get(f"{INTENTS}/{intent['id']}/refunds", server_token(other_shop, "refunds:create"), method="POST",
                            json={"amount": 1}, headers={"Idempotency-Key": "x"})
    assert refund.status_code == 404
    assert shop.get(f"{INTENTS}/pi_nope", server_token(shop, "payments:read")).status_code == 404
    assert shop.get(f"{INTENTS}/{'x' * 300}", server_token(shop, "payments:read")).status_code == 404

    # An intent bound to the first customer is theirs alone to confirm.
    from host.db import get_database
    from host.identity.models import Customer
    from host.payments import intents as service

    with pay_app.app_context(), get_database(pay_app).transaction(write=True) as session:
        owner = session.scalar(select(Customer.id).where(Customer.phone == "13800000001"))
        request = service.IntentRequest.check(100, "CNY", "mine", None, frozenset({"CNY"}))
        bound = service.create(session, plugin_id=SHOP, request=request, customer_id=owner).id
    stranger = Browser(pay_app)
    stranger.sign_in("13900000002", "canopy-demo-2")
    assert stranger.http.get(f"/pay/{bound}").status_code == 404
    # With a valid form token of their own session (from an unbound intent's page), still nothing.
    token = form_token(stranger.http.get(f"/pay/{intent['id']}").get_data(as_text=True))
    refused = stranger.http.post(f"/pay/{bound}", data={"pin": PIN, "acknowledge": "yes", "csrf_token": token})
    assert refused.status_code == 404
    assert customer.http.get(f"/pay/{bound}").status_code == 200
    assert balance(pay_app, "13900000002") == 1_000_000


def test_refund_of_an_unpaid_intent_and_an_expired_intent(pay_app, shop, customer, server_token, monkeypatch):
    import host.payments.intents as service

    intent = create(shop, server_token(shop)).get_json()
    unpaid = shop.get(f"{INTENTS}/{intent['id']}/refunds", server_token(shop, "refunds:create"), method="POST",
                      json={"amount": 1}, headers={"Idempotency-Key": "r"})
    assert unpaid.status_code == 409
    later = service.utcnow() + timedelta(hours=1)
    monkeypatch.setattr(service, "utcnow", lambda: later)
    # Its time is up: it reads as expired at once, and can be neither canceled nor paid.
    assert shop.get(f"{INTENTS}/{intent['id']}", server_token(shop, "payments:read")).get_json()["state"] == "expired"
    canceled = shop.get(f"{INTENTS}/{intent['id']}/cancel", server_token(shop), method="POST")
    assert canceled.status_code == 409 and "expired" in canceled.get_json()["detail"]
    page = customer.http.get(f"/pay/{intent['id']}")
    assert page.status_code == 200 and 'data-state="expired"' in page.get_data(as_text=True)
    assert 'name="pin"' not in page.get_data(as_text=True)
    # The confirmation page recorded the expiry: a transition and an event.
    from host.events.models import OutboxEvent
    from host.payments.models import IntentTransition

    assert count(pay_app, IntentTransition, intent_id=intent["id"], to_state="expired") == 1
    assert count(pay_app, OutboxEvent, type="payment_intent.expired") == 1


def test_cancel(pay_app, shop, customer, server_token):
    intent = create(shop, server_token(shop)).get_json()
    canceled = shop.get(f"{INTENTS}/{intent['id']}/cancel", server_token(shop), method="POST")
    assert canceled.status_code == 200 and canceled.get_json()["state"] == "canceled"
    assert shop.get(f"{INTENTS}/{intent['id']}/cancel", server_token(shop), method="POST").status_code == 409
    page = customer.http.get(f"/pay/{intent['id']}")
    assert 'data-state="canceled"' in page.get_data(as_text=True) and 'name="pin"' not in page.get_data(as_text=True)


def test_ctx_payments_in_process_and_events_after_commit(pay_app, customer):
    """An in-process plugin asks through ctx.payments; after the customer pays, its
    canopy_on_event hears of it (through the outbox, after the commit)."""
    from canopy_sdk import ScopeDenied, BranchInfo
    from canopy_sdk.errors import InvalidPayment
    from host.db import get_database
    from host.identity.models import Customer
    from host.runtime import get_runtime

    runtime = get_runtime(pay_app)
    with pay_app.app_context(), get_database(pay_app).transaction() as session:
        customer_id = session.scalar(select(Customer.id).where(Customer.phone == "13800000001"))
    ctx = runtime.context(SHOP, branch=BranchInfo(code="SH001", name="SH"), locale="zh-CN",
                          approved_scopes=["payments:create", "payments:read", "refunds:create"], customer_id=customer_id)
    intent = ctx.payments.create_intent(amount=500, currency="CNY", description="Coffee", idempotency_key="c-1",
                                        metadata={"order": "A1"})
    assert ctx.payments.create_intent(amount=500, currency="CNY", description="Coffee", idempotency_key="c-1",
                                      metadata={"order": "A1"}).id == intent.id
    with pytest.raises(InvalidPayment) as bad:
        ctx.payments.create_intent(amount=5.0, currency="CNY", description="Coffee", idempotency_key="c-2")
    assert bad.value.field == "amount"
    no_scope = runtime.context(SHOP, branch=BranchInfo(code="SH001", name="SH"), locale="zh-CN", approved_scopes=[],
                               customer_id=customer_id)
    with pytest.raises(ScopeDenied):
        no_scope.payments.create_intent(amount=500, currency="CNY", description="Coffee", idempotency_key="c-3")

    assert pay(customer, intent.id).status_code == 200
    assert ctx.payments.get(intent.id).state == "succeeded"
    stored = [ctx.storage.get(key) for key in ctx.storage.list("event:")]
    assert [(e["type"], e["intent"]) for e in stored] == [("payment_intent.succeeded", intent.id)]
    assert stored[0]["customer"] == ctx.customer.subject  # the plugin's pairwise id, never the bank's

    refund = ctx.payments.refund(intent.id, amount=500, idempotency_key="r-1", reason="sold out")
    assert refund.amount == 500
    customer.http.get("/healthz")  # any request delivers what the plugin's own call wrote
    types = sorted(ctx.storage.get(key)["type"] for key in ctx.storage.list("event:"))
    assert types == ["payment_intent.succeeded", "refund.succeeded"]
    ledger_ok(pay_app)


def test_concurrent_confirmations_pay_once(pay_app, shop, server_token, postgres_only):
    """Two sessions of the customer confirm the same intent at once: one transfer."""
    from host.payments.models import Transfer

    intent = create(shop, server_token(shop)).get_json()
    browsers = [Browser(pay_app) for _ in range(4)]
    forms = []
    for browser in browsers:
        browser.sign_in()
        html = browser.http.get(f"/pay/{intent['id']}").get_data(as_text=True)
        forms.append({"pin": PIN, "acknowledge": "yes", "csrf_token": form_token(html)})
    results = []
    gate = threading.Barrier(len(browsers))

    def go(browser, form):
        gate.wait()
        results.append(browser.http.post(f"/pay/{intent['id']}", data=form).status_code)

    threads = [threading.Thread(target=go, args=pair) for pair in zip(browsers, forms)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [200] * len(browsers), results
    assert count(pay_app, Transfer, intent_id=intent["id"]) == 1
    assert balance(pay_app) == 1_000_000 - 1234
    ledger_ok(pay_app)


def test_concurrent_creates_with_one_key_execute_once(pay_app, shop, server_token, postgres_only):
    from host.payments.models import PaymentIntent

    token = server_token(shop)
    answers = []
    gate = threading.Barrier(6)

    def go():
        gate.wait()
        answers.append(create(shop, token, key="same-key"))

    threads = [threading.Thread(target=go) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert {r.status_code for r in answers} == {201}
    assert len({r.get_json()["id"] for r in answers}) == 1
    assert count(pay_app, PaymentIntent) == 1


def test_the_demo_customers_are_funded_through_the_simulated_rail(pay_app):
    from host.payments.models import Account, Transfer

    ledger_ok(pay_app)
    assert balance(pay_app) == 1_000_000 and balance(pay_app, "13900000002") == 1_000_000
    assert count(pay_app, Transfer, kind="funding") == 2
    assert count(pay_app, Account, kind="clearing") == 1  # the simulated rail's side holds -20,000.00


def test_an_event_a_plugin_fails_to_take_stays_pending_and_is_delivered_later(pay_app, shop, customer, server_token,
                                                                              monkeypatch):
    from host.db import get_database
    from host.events.models import OutboxEvent
    from host.events.outbox import deliver_pending
    from host.runtime import get_runtime

    runtime = get_runtime(pay_app)
    real = runtime.event
    monkeypatch.setattr(runtime, "event", lambda ctx, event: real(ctx, None))  # the hook call fails
    intent = create(shop, server_token(shop)).get_json()
    assert pay(customer, intent["id"]).status_code == 200
    with pay_app.app_context(), get_database(pay_app).transaction() as session:
        pending = session.scalars(select(OutboxEvent).where(OutboxEvent.plugin_id == SHOP)).all()
    assert [(e.type, e.delivered_at, e.attempts) for e in pending] == [("payment_intent.succeeded", None, 1)]
    assert pending[0].last_error

    monkeypatch.setattr(runtime, "event", real)
    assert deliver_pending(runtime, get_database(pay_app)) == 1
    assert deliver_pending(runtime, get_database(pay_app)) == 0  # delivered once, not again
    assert count(pay_app, OutboxEvent, plugin_id=SHOP, delivered_at=None) == 0


@pytest.mark.parametrize("value", ["", "XXX", "CNY,usd,7", "CN"])
def test_a_bad_payments_currencies_setting_stops_the_start(app_factory, value):
    from host.config import ConfigError

    with pytest.raises(ConfigError, match="PAYMENTS_CURRENCIES"):
        app_factory(PAYMENTS_CURRENCIES=value)
