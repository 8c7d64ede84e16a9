"""Paid coupons in sh.deals, with the SDK's FakePayments: reserve on buying, grant on success,
release on failure, never oversold — also when customers race for the last one."""

from __future__ import annotations

import importlib
import re
from datetime import date

import pytest

from canopy_sdk import ApiError, Event, PaymentIntent
from canopy_sdk.loading import package_name

from .conftest import ContendedStorage, run_together

TODAY = date(2026, 11, 22)
PAID = "bund-night-cruise"
PRICE = 8800
STOCK = f"stock/{PAID}"


@pytest.fixture(autouse=True)
def fixed_today(harness, monkeypatch):
    monkeypatch.setattr(harness.plugin, "today", lambda: TODAY)


def buy(harness, customer, coupon_id=PAID, locale="en"):
    return harness.api(harness.context(customer=customer, locale=locale), "POST", "/claim", {"coupon_id": coupon_id})


def status_of(harness, customer, coupon_id=PAID) -> int:
    with pytest.raises(ApiError) as caught:
        buy(harness, customer, coupon_id)
    assert caught.value.title and caught.value.detail
    return caught.value.status


def held(harness, customer) -> list[str]:
    return [c["id"] for c in harness.api(harness.context(customer=customer), "GET", "/claims")["claims"]]


# --- the catalogue and the pages ------------------------------------------------------------

def test_free_coupons_stay_free_and_one_is_paid(harness):
    coupons = importlib.import_module(f"{package_name(harness.manifest.id)}.catalogue").COUPONS
    assert [c.id for c in coupons if c.price is not None] == [PAID]
    assert all(c.price is None or (type(c.price) is int and c.price > 0) for c in coupons)
    result = buy(harness, "alice", "wukang-coffee")  # a free claim is answered as before
    assert set(result) == {"claimed", "code", "remaining"} and result["claimed"] is True
    assert harness.payments.intents() == []


def test_the_deal_page_shows_the_price_and_a_buy_button(harness, render):
    page = harness.page(harness.context(customer="alice", locale="en"), "/deal", {"id": PAID})
    assert page.context["deal"]["price"] == PRICE and page.context["deal"]["price_display"] == "¥88.00"
    html = render(page, "en")
    assert "Price: ¥88.00" in html and f'data-claim="{PAID}">Buy for ¥88.00</button>' in html
    assert "¥88.00 购买" in render(harness.page(harness.context(customer="alice"), "/deal", {"id": PAID}))


# --- buying: reserve, confirm, grant ---------------------------------------------------------

def test_buying_reserves_one_and_asks_the_customer_to_pay(harness, render):
    answer = buy(harness, "alice")

    assert answer["claimed"] is False and answer["payment_required"] is True
    assert (answer["amount"], answer["currency"], answer["remaining"]) == (PRICE, "CNY", 59)
    assert answer["confirm_url"] == f"/pay/{answer['intent_id']}"
    intent = harness.payments.get(answer["intent_id"])
    assert intent.metadata == {"coupon_id": PAID, "attempt": 1} and "¥88" in intent.description
    assert harness.storage.get(STOCK) == 59  # reserved
    assert held(harness, "alice") == []  # not granted before the payment succeeds
    html = render(harness.page(harness.context(customer="alice", locale="en"), "/deal", {"id": PAID}), "en")
    assert f'<button type="button" class="button" data-pay="{answer["intent_id"]}" data-coupon="{PAID}">Continue to pay</button>' in html
    assert "data-claim=" not in html


def test_the_coupon_is_granted_on_payment_intent_succeeded(harness, render):
    answer = buy(harness, "alice")
    harness.payments.confirm(answer["intent_id"])
    (event,) = harness.deliver_events()

    assert event.type == "payment_intent.succeeded" and event.customer == "alice"
    (claim,) = harness.api(harness.context(customer="alice"), "GET", "/claims")["claims"]
    assert claim["id"] == PAID and re.fullmatch(r"BNC-[A-Z2-9]{8}", claim["code"])
    assert harness.storage.get(STOCK) == 59  # the reservation became the coupon: taken once
    html = render(harness.page(harness.context(customer="alice", locale="en"), "/deal", {"id": PAID}), "en")
    assert claim["code"] in html and "Continue to pay" not in html
    assert status_of(harness, "alice") == 409  # one per customer
    assert len(harness.payments.intents()) == 1


def test_an_event_delivered_twice_grants_one_coupon_with_one_code(harness):
    harness.payments.confirm(buy(harness, "alice")["intent_id"])
    (event,) = harness.deliver_events()
    code = harness.api(harness.context(customer="alice"), "GET", "/claims")["claims"][0]["code"]

    harness.deliver(event)

    assert harness.api(harness.context(customer="alice"), "GET", "/claims")["claims"][0]["code"] == code
    assert harness.storage.get(STOCK) == 59


def test_buying_twice_gives_the_same_intent_and_reserves_once(harness):
    first = buy(harness, "alice", locale="zh-CN")
    again = buy(harness, "alice", locale="en")

    assert again["intent_id"] == first["intent_id"]
    assert harness.storage.get(STOCK) == 59 and len(harness.payments.intents()) == 1


def test_a_succeeded_payment_is_honoured_before_its_event_arrives(harness):
    answer = buy(harness, "alice")
    harness.payments.confirm(answer["intent_id"])

    assert status_of(harness, "alice") == 409  # "already claimed": the tap granted it
    assert held(harness, "alice") == [PAID]
    harness.deliver_events()
    assert held(harness, "alice") == [PAID] and harness.storage.get(STOCK) == 59


# --- payments that do not succeed ------------------------------------------------------------

@pytest.mark.parametrize("outcome", ["fail", "cancel", "expire"])
def test_a_payment_that_does_not_succeed_releases_the_reservation(harness, outcome):
    first = buy(harness, "alice")
    getattr(harness.payments, outcome)(first["intent_id"])
    (event,) = harness.deliver_events()

    assert harness.storage.get(STOCK) == 60
    assert held(harness, "alice") == []
    harness.deliver(event)  # delivered again: released once only
    assert harness.storage.get(STOCK) == 60

    again = buy(harness, "alice")  # the customer may try again, with a new intent
    assert again["intent_id"] != first["intent_id"]
    assert harness.payments.get(again["intent_id"]).metadata["attempt"] == 2
    assert harness.storage.get(STOCK) == 59


def test_a_failed_payment_is_noticed_before_its_event_arrives(harness):
    first = buy(harness, "alice")
    harness.payments.fail(first["intent_id"])

    again = buy(harness, "alice")
    assert again["intent_id"] != first["intent_id"]
    assert harness.storage.get(STOCK) == 59  # the first reservation went back, the second is held
    harness.deliver_events()  # the late failure of the first attempt releases nothing more
    assert harness.storage.get(STOCK) == 59


def test_an_expired_deal_cannot_be_bought_and_takes_no_stock(harness, monkeypatch):
    monkeypatch.setattr(harness.plugin, "today", lambda: date(2027, 5, 1))
    assert status_of(harness, "alice") == 410
    assert harness.storage.get_item(STOCK) is None and harness.payments.intents() == []


def test_a_refused_payment_request_returns_the_reservation(harness):
    harness.payments = type(harness.payments)(currencies={"HKD"}, plugin_id=harness.manifest.id)  # CNY refused

    assert status_of(harness, "alice") == 422
    assert harness.storage.get(STOCK) == 60 and harness.payments.intents() == []


def test_buying_needs_the_payment_scope_and_takes_no_stock(harness):
    ctx = harness.context(customer="alice", locale="en", scopes={"payments:read"})
    with pytest.raises(ApiError) as caught:
        harness.api(ctx, "POST", "/claim", {"coupon_id": PAID})

    assert caught.value.status == 403
    assert harness.storage.get(STOCK) == 60 and harness.payments.intents() == []


def _event(harness, event_type: str, intent: PaymentIntent, customer="alice") -> Event:
    return Event(id="evt_test", type=event_type, plugin_id=harness.manifest.id, occurred_at="2026-11-22T08:00:00Z",
                 data={"intent": intent.to_wire()}, branch="SH001", customer=customer)


def test_odd_events_change_nothing(harness):
    answer = buy(harness, "alice")
    intent = harness.payments.get(answer["intent_id"])
    ctx = harness.context(customer="alice")
    succeeded = PaymentIntent.from_wire({**intent.to_wire(), "state": "succeeded"})

    harness.event(ctx, _event(harness, "payment_intent.succeeded", succeeded, customer="mallory"))
    harness.deliver(_event(harness, "payment_intent.failed", intent, customer="bob"))  # bob has no order
    harness.event(ctx, _event(harness, "payment_intent.succeeded",
                              PaymentIntent.from_wire({**succeeded.to_wire(), "amount": 1})))  # not the price
    harness.event(ctx, _event(harness, "payment_intent.succeeded",
                              PaymentIntent.from_wire({**succeeded.to_wire(), "metadata": {"coupon_id": "wukang-coffee"}})))
    harness.event(ctx, _event(harness, "payment_intent.succeeded",
                              PaymentIntent.from_wire({**succeeded.to_wire(), "id": "pi_" + "0" * 24})))
    harness.event(ctx, Event(id="evt_x", type="payment_intent.succeeded", plugin_id=harness.manifest.id,
                             occurred_at="2026-11-22T08:00:00Z", data={}, customer="alice"))
    harness.event(ctx, _event(harness, "refund.succeeded", succeeded))

    assert held(harness, "alice") == [] and harness.storage.get(STOCK) == 59


# --- never oversold ---------------------------------------------------------------------------

def test_two_customers_race_for_the_last_paid_coupon(harness):
    harness.storage = ContendedStorage()
    harness.storage.set(STOCK, 1)

    outcomes = run_together([lambda: buy(harness, "alice"), lambda: buy(harness, "bob")])

    winners = [o for o in outcomes if isinstance(o, dict)]
    assert len(winners) == 1 and winners[0]["payment_required"] and winners[0]["remaining"] == 0
    assert [o for o in outcomes if not isinstance(o, dict)] == [410]  # told "sold out" before paying anything
    assert len(harness.payments.intents()) == 1
    harness.payments.confirm(winners[0]["intent_id"])
    harness.deliver_events()
    assert sorted(held(harness, "alice") + held(harness, "bob")) == [PAID]
    assert harness.storage.get(STOCK) == 0


def test_the_last_coupon_goes_to_the_next_customer_when_the_first_payment_fails(harness):
    harness.storage.set(STOCK, 1)
    alice = buy(harness, "alice")
    assert status_of(harness, "bob") == 410  # alice holds the reservation

    harness.payments.fail(alice["intent_id"])
    harness.deliver_events()
    bob = buy(harness, "bob")
    harness.payments.confirm(bob["intent_id"])
    harness.deliver_events()

    assert held(harness, "bob") == [PAID] and held(harness, "alice") == []
    assert harness.storage.get(STOCK) == 0
    assert status_of(harness, "alice") == 410


def test_many_customers_racing_never_oversell(harness):
    harness.storage = ContendedStorage()
    harness.storage.set(STOCK, 3)
    customers = [f"customer-{n}" for n in range(12)]

    outcomes = run_together([lambda c=c: buy(harness, c) for c in customers])

    winners = [o for o in outcomes if isinstance(o, dict)]
    assert len(winners) == 3 and sorted(o for o in outcomes if not isinstance(o, dict)) == [410] * 9
    assert harness.storage.lost > 0, "the threads never contended; the test proves nothing"
    for answer in winners:
        harness.payments.confirm(answer["intent_id"])
    harness.deliver_events()
    assert sum(held(harness, c) == [PAID] for c in customers) == 3
    assert harness.storage.get(STOCK) == 0


def test_one_customer_tapping_buy_many_times_reserves_one(harness):
    harness.storage = ContendedStorage()
    harness.customer_stores["erin"] = ContendedStorage()
    harness.storage.set(STOCK, 5)

    outcomes = run_together([lambda: buy(harness, "erin") for _ in range(10)])

    answers = [o for o in outcomes if isinstance(o, dict)]
    assert answers and len({a["intent_id"] for a in answers}) == 1
    assert set(o for o in outcomes if not isinstance(o, dict)) <= {410, 429}
    assert harness.storage.get(STOCK) == 4  # every losing tap gave its reservation back
    assert len(harness.payments.intents()) == 1
