"""Paying bills in city.utilities through the SDK's FakePayments: create → confirm → event → paid."""

from __future__ import annotations

import importlib
import threading
from datetime import date

import pytest

from canopy_sdk import ApiError, Event, PaymentIntent
from canopy_sdk.loading import package_name

TODAY = date(2026, 11, 22)  # bills are for 2026-10
GAS = "gas-55554444-202610"
WATER = "water-12345678-202610"


@pytest.fixture(autouse=True)
def fixed_today(harness, monkeypatch):
    monkeypatch.setattr(harness.plugin, "today", lambda: TODAY)


@pytest.fixture
def billing(harness):
    return importlib.import_module(f"{package_name(harness.manifest.id)}.billing")


def link(harness, customer, utility, account_no):
    harness.api(harness.context(customer=customer), "POST", "/accounts", {"utility": utility, "account_no": account_no})


def pay(harness, customer, bill_id, locale="en", body=None):
    return harness.api(harness.context(customer=customer, locale=locale), "POST", f"/bills/{bill_id}/pay", body)


def refusal(harness, customer, bill_id, body=None, path=None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        harness.api(harness.context(customer=customer, locale="en"), "POST", path or f"/bills/{bill_id}/pay", body)
    assert caught.value.title and caught.value.detail and len(caught.value.detail) < 200
    return caught.value


def bill_of(harness, customer, bill_id):
    statement = harness.api(harness.context(customer=customer), "GET", "/bills")
    return next(bill for bill in statement["bills"] if bill["id"] == bill_id)


@pytest.fixture
def alice(harness):
    link(harness, "alice", "gas", "55554444")
    link(harness, "alice", "water", "12345678")
    return "alice"


# --- the whole flow ---------------------------------------------------------------------------

def test_create_confirm_event_paid(harness, alice, billing, render):
    amount = billing.monthly_bill("gas", "55554444", "2026-10").amount
    answer = pay(harness, alice, GAS)

    assert set(answer) == {"intent_id", "confirm_url", "amount", "currency"}
    assert (answer["amount"], answer["currency"]) == (amount, "CNY")
    assert answer["confirm_url"] == f"/pay/{answer['intent_id']}"
    intent = harness.payments.get(answer["intent_id"])
    assert intent.state == "requires_confirmation" and intent.metadata == {"bill_id": GAS, "attempt": 1}
    assert "燃气费" in intent.description and "Gas" in intent.description and "…4444" in intent.description
    assert harness.payments.customer_of(intent.id) == "alice"
    pending = bill_of(harness, alice, GAS)
    assert (pending["status"], pending["confirm_url"]) == ("unpaid", answer["confirm_url"])

    harness.payments.confirm(answer["intent_id"])
    (event,) = harness.deliver_events()

    assert event.type == "payment_intent.succeeded" and event.customer == "alice"
    paid = bill_of(harness, alice, GAS)
    assert paid["status"] == "paid" and paid["paid_at"] == event.occurred_at and paid["confirm_url"] is None
    statement = harness.api(harness.context(customer=alice), "GET", "/bills")
    assert statement["total_due"] == bill_of(harness, alice, WATER)["amount"]  # only the water bill is left

    html = render(harness.page(harness.context(customer=alice, locale="en"), "/bills"), "en")
    assert html.count("data-pay=") == 1 and f"/bills/{WATER}/pay" in html
    assert "Paid · " in html and f"/bills/{GAS}/pay" not in html


def test_a_started_payment_is_shown_as_a_link_to_the_banks_page(harness, alice, render):
    answer = pay(harness, alice, GAS)
    html = render(harness.page(harness.context(customer=alice, locale="en"), "/bills"), "en")

    assert f'<a class="button" href="{answer["confirm_url"]}">Continue to pay</a>' in html
    assert html.count("data-pay=") == 1  # the water bill has not been started


def test_tiles_and_search_count_only_unpaid_bills(harness, alice):
    answer = pay(harness, alice, GAS)
    harness.payments.confirm(answer["intent_id"])
    harness.deliver_events()

    (tile,) = harness.tiles(harness.context(customer=alice, locale="en"))
    assert tile.badge == "1 bill" and tile.subtitle == "1 account · Water"
    (hit,) = harness.search(harness.context(customer=alice, locale="en"), "gas")
    assert hit.summary == "This month's bills are paid" and hit.link == "/bills"

    water = pay(harness, alice, WATER)
    harness.payments.confirm(water["intent_id"])
    harness.deliver_events()
    (tile,) = harness.tiles(harness.context(customer=alice, locale="en"))
    assert (tile.title, tile.link) == ("All bills paid", "/bills")


def test_overview_shows_paid_bills_as_paid(harness, alice, render):
    harness.payments.confirm(pay(harness, alice, GAS)["intent_id"])
    harness.deliver_events()

    html = render(harness.page(harness.context(customer=alice, locale="en"), "/"), "en")
    assert "<strong>Paid</strong>" in html


# --- paying twice ----------------------------------------------------------------------------

def test_paying_twice_returns_the_same_intent_in_any_language(harness, alice):
    first = pay(harness, alice, GAS, locale="zh-CN")

    assert pay(harness, alice, GAS, locale="en") == first
    assert pay(harness, alice, GAS, body={}) == first
    assert len(harness.payments.intents()) == 1


def test_paying_a_paid_bill_is_409_and_creates_nothing(harness, alice):
    harness.payments.confirm(pay(harness, alice, GAS)["intent_id"])
    harness.deliver_events()

    assert refusal(harness, alice, GAS).status == 409
    assert len(harness.payments.intents()) == 1


def test_a_paid_intent_is_found_even_before_its_event_arrives(harness, alice):
    answer = pay(harness, alice, GAS)
    harness.payments.confirm(answer["intent_id"])  # the event is not delivered yet

    assert refusal(harness, alice, GAS).status == 409
    assert bill_of(harness, alice, GAS)["status"] == "paid"
    harness.deliver_events()  # the late event changes nothing
    assert bill_of(harness, alice, GAS)["status"] == "paid" and len(harness.payments.intents()) == 1


def test_concurrent_taps_make_one_intent(harness, alice):
    barrier = threading.Barrier(12)
    answers = []

    def tap():
        barrier.wait()
        answers.append(pay(harness, alice, GAS))

    threads = [threading.Thread(target=tap) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(answers) == 12 and len({a["intent_id"] for a in answers}) == 1
    assert len(harness.payments.intents()) == 1


# --- events ----------------------------------------------------------------------------------

def test_an_event_delivered_twice_changes_nothing_more(harness, alice):
    harness.payments.confirm(pay(harness, alice, GAS)["intent_id"])
    (event,) = harness.deliver_events()
    before = harness.context(customer=alice).customer_storage.get_item(f"payments/{GAS}")

    harness.deliver(event)

    assert harness.context(customer=alice).customer_storage.get_item(f"payments/{GAS}") == before


@pytest.mark.parametrize("outcome", ["fail", "cancel", "expire"])
def test_a_payment_that_does_not_succeed_leaves_the_bill_unpaid_and_payable(harness, alice, outcome):
    first = pay(harness, alice, GAS)
    getattr(harness.payments, outcome)(first["intent_id"])
    (event,) = harness.deliver_events()

    assert event.type.startswith("payment_intent.")
    bill = bill_of(harness, alice, GAS)
    assert (bill["status"], bill["confirm_url"]) == ("unpaid", None)
    again = pay(harness, alice, GAS)
    assert again["intent_id"] != first["intent_id"]
    assert harness.payments.get(again["intent_id"]).metadata == {"bill_id": GAS, "attempt": 2}
    harness.payments.confirm(again["intent_id"])
    harness.deliver_events()
    assert bill_of(harness, alice, GAS)["status"] == "paid"


def test_a_failed_intent_is_noticed_without_its_event(harness, alice):
    first = pay(harness, alice, GAS)
    harness.payments.fail(first["intent_id"], "risk: daily limit")

    again = pay(harness, alice, GAS)  # the failure event has not been delivered yet
    assert again["intent_id"] != first["intent_id"]
    harness.deliver_events()  # the late failure of the first attempt touches nothing
    assert bill_of(harness, alice, GAS)["confirm_url"] == again["confirm_url"]


def test_events_of_other_bills_and_attempts_are_ignored(harness, alice):
    gas = pay(harness, alice, GAS)
    water = pay(harness, alice, WATER)
    harness.payments.confirm(water["intent_id"])
    harness.deliver_events()

    assert bill_of(harness, alice, WATER)["status"] == "paid"
    assert bill_of(harness, alice, GAS)["status"] == "unpaid"
    assert bill_of(harness, alice, GAS)["confirm_url"] == gas["confirm_url"]


def _event(harness, event_type, intent: PaymentIntent, customer="alice") -> Event:
    return Event(id="evt_test", type=event_type, plugin_id=harness.manifest.id, occurred_at="2026-11-22T08:00:00Z",
                 data={"intent": intent.to_wire()}, branch="SH001", customer=customer)


def test_odd_events_change_nothing(harness, alice):
    answer = pay(harness, alice, GAS)
    intent = harness.payments.get(answer["intent_id"])
    succeeded = PaymentIntent.from_wire({**intent.to_wire(), "state": "succeeded"})
    ctx = harness.context(customer=alice)

    harness.event(ctx, _event(harness, "plugin.installed", succeeded))  # not a payment event
    harness.event(ctx, _event(harness, "payment_intent.succeeded", succeeded, customer="mallory"))  # not alice's
    harness.deliver(_event(harness, "payment_intent.succeeded", succeeded, customer="bob"))  # bob has no such bill
    harness.event(ctx, Event(id="evt_x", type="payment_intent.succeeded", plugin_id=harness.manifest.id,
                             occurred_at="2026-11-22T08:00:00Z", data={"intent": "junk"}, customer="alice"))
    other = PaymentIntent.from_wire({**succeeded.to_wire(), "metadata": {"bill_id": "../x"}})
    harness.event(ctx, _event(harness, "payment_intent.succeeded", other))
    cheaper = PaymentIntent.from_wire({**succeeded.to_wire(), "amount": 1})
    harness.event(ctx, _event(harness, "payment_intent.succeeded", cheaper))  # not what the bill asked for

    assert bill_of(harness, alice, GAS)["status"] == "unpaid"


# --- who may pay what --------------------------------------------------------------------------

def test_another_customers_bill_is_404(harness, alice):
    assert refusal(harness, "bob", GAS).status == 404
    link(harness, "bob", "electricity", "310012345678")
    assert refusal(harness, "bob", GAS).status == 404
    assert harness.payments.intents() == []


def test_two_customers_who_linked_one_account_pay_separately(harness, alice):
    link(harness, "bob", "gas", "55554444")  # e.g. two people of one household
    alices = pay(harness, alice, GAS)
    bobs = pay(harness, "bob", GAS)

    assert alices["intent_id"] != bobs["intent_id"]
    harness.payments.confirm(bobs["intent_id"])
    harness.deliver_events()
    assert bill_of(harness, "bob", GAS)["status"] == "paid"
    assert bill_of(harness, alice, GAS)["status"] == "unpaid"


def test_only_the_current_bill_can_be_paid(harness, alice):
    assert refusal(harness, alice, "gas-55554444-202609").status == 404
    assert refusal(harness, alice, "gas-55554444-202611").status == 404


def test_paying_needs_the_payment_scope(harness, alice):
    ctx = harness.context(customer=alice, locale="en", scopes={"payments:read"})
    with pytest.raises(ApiError) as caught:
        harness.api(ctx, "POST", f"/bills/{GAS}/pay")
    assert caught.value.status == 403
    assert harness.payments.intents() == []


@pytest.mark.parametrize("bill_id", [
    "gas", "gas-55554444", "gas-55554444-2026-10", "gas-55554444-202613", "gas-55554444-202600", "GAS-55554444-202610",
    "phone-55554444-202610", "gas-5555444-202610", "gas-5555444455554-202610", "gas-５５５５４４４４-202610",
    "gas-55554444-202610\n", " gas-55554444-202610", "x" * 10_000, "..", "%2e%2e",
])
def test_malformed_bill_ids_are_400(harness, alice, bill_id):
    error = refusal(harness, alice, bill_id)
    assert error.status == 400 and "bill_id" in error.title
    assert harness.payments.intents() == []


@pytest.mark.parametrize("body", [{"amount": 1}, [], "pay", 5, {"x": "y" * 1_000_000}, ["a"] * 100_000])
def test_a_body_is_refused_with_400(harness, alice, body):
    assert refusal(harness, alice, GAS, body=body).status == 400
    assert harness.payments.intents() == []


def test_an_empty_bill_id_is_400(harness, alice):
    assert refusal(harness, alice, "", path="/bills//pay").status == 400
