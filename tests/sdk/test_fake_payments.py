"""canopy_sdk.testing.FakePayments: ctx.payments for tests, behaving as the host's payments."""

from __future__ import annotations

import re
import threading

import pytest

from canopy_sdk import (
    Event,
    IdempotencyMismatch,
    InvalidIntentState,
    InvalidPayment,
    PaymentIntent,
    Payments,
    Refund,
    RefundExceedsCapture,
    ScopeDenied,
    UnknownIntent,
)
from canopy_sdk.testing import FakeContext, FakeCustomer, FakePayments, PluginHarness

ALL_SCOPES = {"payments:create", "payments:read", "refunds:create"}
START = 1_795_737_600.0  # 2026-11-27T00:00:00Z


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ctx_for(payments: FakePayments, customer: str | None = "alice", scopes=ALL_SCOPES,
            plugin_id: str = "acme.bills") -> FakeContext:
    return FakeContext(plugin_id, customer=FakeCustomer(customer) if customer else None, scopes=scopes,
                       payments=payments)


def new_intent(payments, key="order-1", amount=1999, **changes):
    args = {"amount": amount, "currency": "CNY", "description": "Order 1", "idempotency_key": key, **changes}
    return payments.create_intent(**args)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def payments(clock) -> FakePayments:
    return FakePayments(clock=clock)


@pytest.fixture
def ctx(payments) -> FakeContext:
    return ctx_for(payments)


# -- the protocol and creating ---------------------------------------------------------------


def test_fake_payments_and_their_views_satisfy_the_protocol(payments, ctx):
    assert isinstance(payments, Payments)
    assert isinstance(ctx.payments, Payments) and isinstance(ctx.payments, FakePayments)
    assert isinstance(FakeContext("acme.bills").payments, Payments)


def test_create_gives_an_intent_awaiting_confirmation(ctx):
    intent = new_intent(ctx.payments, metadata={"order": "o-1", "attempt": 1})

    assert isinstance(intent, PaymentIntent)
    assert re.fullmatch(r"pi_[0-9a-f]{24}", intent.id)
    assert (intent.amount, intent.currency, intent.description) == (1999, "CNY", "Order 1")
    assert (intent.state, intent.amount_refunded, intent.failure_reason) == ("requires_confirmation", 0, None)
    assert intent.confirm_url == f"/pay/{intent.id}"
    assert intent.metadata == {"order": "o-1", "attempt": 1}
    assert (intent.created_at, intent.expires_at) == ("2026-11-27T00:00:00Z", "2026-11-27T00:30:00Z")
    assert ctx.payments.get(intent.id) == intent
    assert ctx.payments.events == []  # nothing happened yet that a plugin hears of


def test_intent_values_are_copies(ctx):
    metadata = {"order": "o-1"}
    intent = new_intent(ctx.payments, metadata=metadata)
    metadata["order"] = "changed"
    intent.metadata["order"] = "changed too"

    assert ctx.payments.get(intent.id).metadata == {"order": "o-1"}


@pytest.mark.parametrize(("changes", "field"), [
    ({"amount": 19.99}, "amount"), ({"amount": True}, "amount"), ({"amount": "1999"}, "amount"),
    ({"amount": 0}, "amount"), ({"amount": -5}, "amount"), ({"amount": 10_000_000_000 * 100 + 1}, "amount"),
    ({"currency": "USD"}, "currency"), ({"currency": "RMB"}, "currency"), ({"currency": 156}, "currency"),
    ({"description": ""}, "description"), ({"description": "x" * 201}, "description"),
    ({"description": "a\x07b"}, "description"), ({"metadata": {"k": [1]}}, "metadata"),
    ({"metadata": {f"k{i}": i for i in range(21)}}, "metadata"), ({"metadata": {"k": "x" * 3000}}, "metadata"),
    ({"idempotency_key": ""}, "idempotency_key"), ({"idempotency_key": "k" * 256}, "idempotency_key"),
    ({"idempotency_key": "ключ"}, "idempotency_key"), ({"idempotency_key": None}, "idempotency_key"),
])
def test_bad_arguments_raise_invalid_payment_naming_the_field(ctx, changes, field):
    with pytest.raises(InvalidPayment) as caught:
        new_intent(ctx.payments, **changes)

    assert caught.value.field == field and caught.value.status == 422
    assert ctx.payments.intents() == []
    assert new_intent(ctx.payments).state == "requires_confirmation"  # a refused request uses up no key


def test_accepted_currencies_are_configurable(clock):
    payments = FakePayments(currencies={"CNY", "HKD"}, clock=clock)
    ctx = ctx_for(payments)

    assert new_intent(ctx.payments, currency="HKD").currency == "HKD"
    with pytest.raises(InvalidPayment, match="not accepted here"):
        new_intent(ctx.payments, key="order-2", currency="USD")


# -- idempotency --------------------------------------------------------------------------------


def test_the_same_key_and_arguments_give_the_same_intent(ctx, payments):
    first = new_intent(ctx.payments, metadata={"order": "o-1"})
    again = new_intent(ctx.payments, metadata={"order": "o-1"})

    assert again == first
    assert len(payments.intents()) == 1


def test_a_replay_answers_as_the_first_time_and_get_tells_the_state_now(ctx, payments):
    first = new_intent(ctx.payments)
    payments.confirm(first.id)

    assert new_intent(ctx.payments).state == "requires_confirmation"  # the first answer, as the host replays it
    assert ctx.payments.get(first.id).state == "succeeded"


@pytest.mark.parametrize("changes", [
    {"amount": 2000}, {"currency": "cny"}, {"description": "Order one"}, {"metadata": {"order": "o-2"}},
])
def test_the_same_key_with_other_arguments_is_a_mismatch(ctx, changes):
    new_intent(ctx.payments)

    with pytest.raises(IdempotencyMismatch) as caught:
        new_intent(ctx.payments, **changes)
    assert caught.value.field == "idempotency_key" and caught.value.status == 422


def test_a_key_belongs_to_one_customer_and_one_plugin(payments):
    alice = ctx_for(payments, "alice")
    bob = ctx_for(payments, "bob")
    other_plugin = ctx_for(payments, "alice", plugin_id="acme.shop")

    first = new_intent(alice.payments)
    with pytest.raises(IdempotencyMismatch):
        new_intent(bob.payments)  # never bob's payment for alice's intent
    assert new_intent(other_plugin.payments).id != first.id  # keys are per plugin


def test_concurrent_creates_with_one_key_make_one_intent(payments):
    ctx = ctx_for(payments)
    barrier = threading.Barrier(16)
    ids = []

    def create():
        barrier.wait()
        ids.append(new_intent(ctx.payments).id)

    threads = [threading.Thread(target=create) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 16 and len(set(ids)) == 1
    assert len(payments.intents()) == 1


# -- reading ------------------------------------------------------------------------------------


@pytest.mark.parametrize("intent_id", ["pi_0123456789abcdef01234567", "nope", "", None, 5, "pi_" + "a" * 60])
def test_get_of_an_unknown_id_is_unknown_intent(ctx, intent_id):
    with pytest.raises(UnknownIntent) as caught:
        ctx.payments.get(intent_id)
    assert caught.value.status == 404


def test_another_plugins_intent_is_unknown(payments):
    intent = new_intent(ctx_for(payments, plugin_id="acme.shop").payments)

    with pytest.raises(UnknownIntent):
        ctx_for(payments).payments.get(intent.id)


def test_an_overdue_intent_expires_when_read(ctx, payments, clock):
    intent = new_intent(ctx.payments)
    clock.now += 30 * 60 - 1
    assert ctx.payments.get(intent.id).state == "requires_confirmation"

    clock.now += 1
    assert ctx.payments.get(intent.id).state == "expired"
    assert [e.type for e in payments.events] == ["payment_intent.expired"]
    with pytest.raises(InvalidIntentState, match="expired"):
        payments.confirm(intent.id)


# -- the customer's side and the events ----------------------------------------------------------


@pytest.mark.parametrize(("helper", "state", "event_type"), [
    ("confirm", "succeeded", "payment_intent.succeeded"), ("fail", "failed", "payment_intent.failed"),
    ("cancel", "canceled", "payment_intent.canceled"), ("expire", "expired", "payment_intent.expired"),
])
def test_each_outcome_records_the_event_the_host_delivers(ctx, payments, clock, helper, state, event_type):
    intent = new_intent(ctx.payments, metadata={"order": "o-1"})
    clock.now += 60

    changed = getattr(payments, helper)(intent.id)

    assert changed.state == state and ctx.payments.get(intent.id) == changed
    (event,) = payments.events
    assert isinstance(event, Event)
    assert re.fullmatch(r"evt_[0-9a-f]{24}", event.id)
    assert (event.type, event.plugin_id, event.customer, event.branch) == (event_type, "acme.bills", "alice", "SH001")
    assert event.occurred_at == "2026-11-27T00:01:00Z"
    assert event.data == {"intent": changed.to_wire()}
    assert PaymentIntent.from_wire(event.data["intent"]).metadata == {"order": "o-1"}
    with pytest.raises(InvalidIntentState):
        payments.confirm(intent.id)  # only an intent awaiting confirmation changes
    assert len(payments.events) == 1


def test_fail_records_the_reason(ctx, payments):
    intent = new_intent(ctx.payments)

    assert payments.fail(intent.id, "risk: daily limit").failure_reason == "risk: daily limit"
    assert payments.events[0].data["intent"]["failure_reason"] == "risk: daily limit"


def test_helpers_refuse_unknown_intents(payments):
    for helper in (payments.confirm, payments.fail, payments.cancel, payments.expire, payments.refunds):
        with pytest.raises(UnknownIntent):
            helper("pi_000000000000000000000000")


# -- refunds ------------------------------------------------------------------------------------


@pytest.fixture
def paid(ctx, payments) -> PaymentIntent:
    intent = new_intent(ctx.payments, amount=1000)
    payments.confirm(intent.id)
    return intent


def test_partial_and_full_refunds_up_to_what_was_paid(ctx, payments, paid):
    first = ctx.payments.refund(paid.id, amount=300, idempotency_key="refund-1", reason=" partly out of stock ")

    assert isinstance(first, Refund) and re.fullmatch(r"re_[0-9a-f]{24}", first.id)
    assert (first.intent_id, first.amount, first.currency, first.reason) == (paid.id, 300, "CNY", "partly out of stock")
    assert ctx.payments.get(paid.id).amount_refunded == 300
    with pytest.raises(RefundExceedsCapture) as caught:
        ctx.payments.refund(paid.id, amount=701, idempotency_key="refund-2")
    assert caught.value.field == "amount" and "700" in str(caught.value)
    ctx.payments.refund(paid.id, amount=700, idempotency_key="refund-2")
    after = ctx.payments.get(paid.id)
    assert (after.state, after.amount_refunded) == ("succeeded", 1000)
    assert [r.amount for r in payments.refunds(paid.id)] == [300, 700]

    refund_events = [e for e in payments.events if e.type == "refund.succeeded"]
    assert len(refund_events) == 2
    assert refund_events[0].data == {"intent": {**after.to_wire(), "amount_refunded": 300}, "refund": first.to_wire()}
    assert refund_events[0].customer == "alice"


def test_refunds_are_idempotent(ctx, payments, paid):
    first = ctx.payments.refund(paid.id, amount=1000, idempotency_key="refund-1")

    assert ctx.payments.refund(paid.id, amount=1000, idempotency_key="refund-1") == first
    assert ctx.payments.get(paid.id).amount_refunded == 1000
    with pytest.raises(IdempotencyMismatch):
        ctx.payments.refund(paid.id, amount=500, idempotency_key="refund-1")
    with pytest.raises(IdempotencyMismatch):
        new_intent(ctx.payments, key="refund-1")  # one key, one request, whatever the operation


def test_refund_of_an_unpaid_intent_is_the_wrong_state(ctx, payments):
    intent = new_intent(ctx.payments)

    with pytest.raises(InvalidIntentState) as caught:
        ctx.payments.refund(intent.id, amount=1, idempotency_key="refund-1")
    assert caught.value.status == 409
    payments.fail(intent.id)
    with pytest.raises(InvalidIntentState):
        ctx.payments.refund(intent.id, amount=1, idempotency_key="refund-1")


@pytest.mark.parametrize(("intent_id", "amount", "reason", "error", "field"), [
    ("pi_000000000000000000000000", 1, "", UnknownIntent, None),
    (None, 1, "", UnknownIntent, None),
    ("paid", 0, "", InvalidPayment, "amount"),
    ("paid", 1.5, "", InvalidPayment, "amount"),
    ("paid", True, "", InvalidPayment, "amount"),
    ("paid", 1, "x" * 201, InvalidPayment, "reason"),
    ("paid", 1, 5, InvalidPayment, "reason"),
])
def test_bad_refunds_are_refused_and_leave_the_key_free(ctx, paid, intent_id, amount, reason, error, field):
    with pytest.raises(error) as caught:
        ctx.payments.refund(paid.id if intent_id == "paid" else intent_id, amount=amount, idempotency_key="refund-1",
                            reason=reason)
    assert caught.value.field == field
    assert ctx.payments.get(paid.id).amount_refunded == 0
    assert ctx.payments.refund(paid.id, amount=1, idempotency_key="refund-1").amount == 1


def test_concurrent_refunds_never_exceed_the_capture(ctx, payments, paid):
    barrier = threading.Barrier(8)
    outcomes = []

    def refund(n):
        barrier.wait()
        try:
            outcomes.append(ctx.payments.refund(paid.id, amount=300, idempotency_key=f"refund-{n}").amount)
        except RefundExceedsCapture:
            outcomes.append("refused")

    threads = [threading.Thread(target=refund, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str) == [300, 300, 300] + ["refused"] * 5
    assert ctx.payments.get(paid.id).amount_refunded == 900


# -- scopes and customers -----------------------------------------------------------------------


@pytest.mark.parametrize(("scope", "call"), [
    ("payments:create", lambda p, i: new_intent(p, key="other")),
    ("payments:read", lambda p, i: p.get(i.id)),
    ("refunds:create", lambda p, i: p.refund(i.id, amount=1, idempotency_key="refund-1")),
])
def test_each_call_needs_its_scope(payments, scope, call):
    intent = new_intent(ctx_for(payments).payments)
    payments.confirm(intent.id)
    denied = ctx_for(payments, scopes=ALL_SCOPES - {scope})

    with pytest.raises(ScopeDenied) as caught:
        call(denied.payments, intent)
    assert caught.value.scope == scope and caught.value.plugin_id == "acme.bills"
    call(ctx_for(payments, scopes={scope}).payments, intent)  # that scope alone is enough


def test_a_context_without_shared_payments_has_its_own():
    first = FakeContext("acme.bills", customer=FakeCustomer("alice"), scopes=ALL_SCOPES)
    second = FakeContext("acme.bills", customer=FakeCustomer("alice"), scopes=ALL_SCOPES)
    intent = new_intent(first.payments)

    with pytest.raises(UnknownIntent):
        second.payments.get(intent.id)


def test_contexts_sharing_payments_see_each_others_intents_and_events(payments):
    alice = ctx_for(payments, "alice")
    reader = ctx_for(payments, None)  # e.g. a storefront tile for an anonymous visitor
    intent = new_intent(alice.payments)
    payments.confirm(intent.id)

    assert reader.payments.get(intent.id).state == "succeeded"
    assert alice.payments.events == payments.events == reader.payments.events
    assert payments.customer_of(intent.id) == "alice"


def test_an_intent_created_without_a_customer_has_none(payments):
    intent = new_intent(ctx_for(payments, None).payments)
    payments.confirm(intent.id)

    assert payments.customer_of(intent.id) is None and payments.events[0].customer is None


def test_standalone_fake_payments_act_for_the_given_plugin_and_customer():
    payments = FakePayments(plugin_id="acme.bills", customer="alice", branch="BJ001")
    intent = new_intent(payments)
    payments.confirm(intent.id)

    event = payments.events[0]
    assert (event.plugin_id, event.customer, event.branch) == ("acme.bills", "alice", "BJ001")
    assert payments.plugin_id == "acme.bills"


# -- the harness delivers the events ------------------------------------------------------------

PAYING_PLUGIN = '''\
from canopy_sdk import PaymentIntent, hookimpl


class Plugin:
    @hookimpl
    def canopy_api(self, ctx, method, path, body):
        intent = ctx.payments.create_intent(amount=body["amount"], currency="CNY", description="Tea",
                                            idempotency_key="tea-" + ctx.customer.subject)
        return {"intent_id": intent.id, "confirm_url": intent.confirm_url}

    @hookimpl
    def canopy_on_event(self, ctx, event):
        intent = PaymentIntent.from_wire(event.data["intent"])
        seen = ctx.customer_storage.get("seen", [])
        ctx.customer_storage.set("seen", seen + [[event.type, intent.id, ctx.customer.subject, ctx.branch.code]])


plugin = Plugin()
'''


def test_harness_contexts_share_its_payments_and_deliver_events_to_the_payer(tmp_path, make_plugin):
    harness = PluginHarness(make_plugin(tmp_path, files={"main.py": PAYING_PLUGIN}))
    alice = harness.context(customer="alice")
    answer = harness.api(alice, "POST", "/tea", {"amount": 1200})

    assert harness.payments.get(answer["intent_id"]).amount == 1200
    assert harness.deliver_events() == []
    harness.payments.confirm(answer["intent_id"])
    (delivered,) = harness.deliver_events()

    assert delivered.type == "payment_intent.succeeded"
    seen = harness.context(customer="alice").customer_storage.get("seen")
    assert seen == [["payment_intent.succeeded", answer["intent_id"], "alice", "SH001"]]
    assert harness.deliver_events() == []  # each event once, as the host marks it delivered
    harness.deliver(delivered)  # ...unless a test repeats it
    assert len(harness.context(customer="alice").customer_storage.get("seen")) == 2


def test_harness_payments_check_the_contexts_scopes(tmp_path, make_plugin):
    harness = PluginHarness(make_plugin(tmp_path, files={"main.py": PAYING_PLUGIN}))

    with pytest.raises(ScopeDenied, match="payments:create"):
        harness.api(harness.context(customer="alice", scopes=set()), "POST", "/tea", {"amount": 1200})
    assert harness.payments.intents() == []
