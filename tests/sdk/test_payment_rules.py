"""canopy_sdk.payment_rules: the checks ctx.payments applies, in the host and in the test kit."""

from __future__ import annotations

import pytest

from canopy_sdk import InvalidPayment, payment_rules as rules


def refused(call, *args) -> InvalidPayment:
    with pytest.raises(InvalidPayment) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize("value", [1, 1999, rules.MAX_MAJOR_UNITS * 100])
def test_amounts_in_minor_units_are_accepted(value):
    assert rules.check_amount(value, "CNY") == value


@pytest.mark.parametrize("value", [True, False, 12.0, 19.99, "1999", None, 0, -1, rules.MAX_MAJOR_UNITS * 100 + 1, [1]])
def test_bad_amounts_are_refused_naming_the_field(value):
    error = refused(rules.check_amount, value, "CNY")
    assert error.field == "amount" and str(error).startswith("amount: ")


def test_float_amounts_are_explained():
    assert "not a decimal number" in str(refused(rules.check_amount, 12.5, "CNY"))


def test_the_largest_amount_depends_on_the_currency_exponent():
    assert rules.max_amount("JPY") == rules.MAX_MAJOR_UNITS
    assert rules.check_amount(rules.MAX_MAJOR_UNITS, "JPY") == rules.MAX_MAJOR_UNITS
    assert refused(rules.check_amount, rules.MAX_MAJOR_UNITS + 1, "JPY").field == "amount"


def test_currencies_are_known_codes_the_host_accepts():
    assert rules.check_currency("CNY", rules.DEFAULT_CURRENCIES) == "CNY"
    assert rules.check_currency("cny", rules.DEFAULT_CURRENCIES) == "CNY"
    assert rules.check_currency("USD", {"CNY", "USD"}) == "USD"
    assert "not accepted here; use CNY" in str(refused(rules.check_currency, "USD", rules.DEFAULT_CURRENCIES))
    assert "not an ISO 4217 currency" in str(refused(rules.check_currency, "XYZ", None))


@pytest.mark.parametrize("value", ["", "CN", "CNYY", "C1Y", "ＣＮＹ", 156, None, b"CNY"])
def test_malformed_currencies_are_refused(value):
    assert refused(rules.check_currency, value, rules.DEFAULT_CURRENCIES).field == "currency"


def test_descriptions():
    assert rules.check_description("  Gas bill 2026-10 ") == "Gas bill 2026-10"
    assert rules.check_description("燃" * 200) == "燃" * 200
    for bad in ("", "   ", None, 5, "x" * 201, "tab\there", "new\nline", "nul\x00", "bidi \u202e trick", "zw\u200bsp"):
        assert refused(rules.check_description, bad).field == "description", bad


def test_metadata():
    assert rules.check_metadata(None) == {}
    value = {"bill_id": "gas-1", "attempt": 1, "ratio": 0.5, "ok": True, "none": None}
    checked = rules.check_metadata(value)
    assert checked == value and checked is not value
    assert rules.check_metadata({f"k{i}": i for i in range(20)})
    assert rules.check_metadata({"k": "x" * (rules.MAX_METADATA_BYTES - 10)})


@pytest.mark.parametrize("value", [
    [], "x", {1: "a"}, {"": 1}, {"k" * 41: 1}, {"k": [1]}, {"k": {"a": 1}}, {"k": float("nan")},
    {"k": float("inf")}, {f"k{i}": i for i in range(21)}, {"k": "x" * rules.MAX_METADATA_BYTES}, {"k": b"x"},
])
def test_bad_metadata_is_refused(value):
    assert refused(rules.check_metadata, value).field == "metadata"


def test_idempotency_keys():
    assert rules.check_idempotency_key("bill:gas-1:attempt-1") == "bill:gas-1:attempt-1"
    assert rules.check_idempotency_key("k" * 255)
    for bad in ("", "k" * 256, "with space", "tab\t", "账单", None, 7, "é"):
        assert refused(rules.check_idempotency_key, bad).field == "idempotency_key", bad


def test_refund_reasons():
    assert rules.check_reason(None) == "" and rules.check_reason(" sold out ") == "sold out"
    for bad in (5, "x" * 201, ["x"]):
        assert refused(rules.check_reason, bad).field == "reason"


def test_an_intent_request_is_checked_currency_first():
    assert rules.check_intent_request(100, "cny", " Bill ", None) == (100, "CNY", "Bill", {})
    # The amount's limit depends on the currency, so a bad currency is reported first.
    assert refused(rules.check_intent_request, 1.5, "XYZ", "", None).field == "currency"
    assert refused(rules.check_intent_request, 1.5, "CNY", "", None).field == "amount"
    assert refused(rules.check_intent_request, 1, "CNY", "", None).field == "description"
    assert refused(rules.check_intent_request, 1, "CNY", "d", []).field == "metadata"


def test_event_types_and_times():
    assert rules.EVENT_TYPES == ("payment_intent.succeeded", "payment_intent.failed", "payment_intent.canceled",
                                 "payment_intent.expired", "refund.succeeded")
    assert rules.iso_utc(0) == "1970-01-01T00:00:00Z"
