"""host.payments.risk.default_rules: each default rule at its edges (exactly at a limit, one fen above)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from host.payments.models import IntentState
from host.payments.risk import ALLOW, CHALLENGE, DENY, OVERALL, remember_device
from host.payments.risk.default_rules import (
    DAILY_DEFAULTS,
    RULES,
    SINGLE_PAYMENT_DEFAULTS,
    VELOCITY_DEFAULTS,
    bank_day,
    blocked_merchant,
    daily_limit,
    new_device,
    single_payment_limit,
    velocity,
)
from host.payments.risk.models import RiskDecision

#: As in conftest (test modules cannot import it): the time and device of ``attempt()``.
NOON = datetime(2025, 3, 4, 6, 0, tzinfo=timezone.utc)
DEVICE = "d" * 64


def test_the_attempt_fixture_is_at_noon_on_the_device(attempt):
    assert (attempt().at, attempt().device) == (NOON, DEVICE)


def decision(verdict) -> str:
    return ALLOW if verdict is None else verdict.decision


# -- single payment limit ---------------------------------------------------------------------

SINGLE = {"limits": {"CNY": 500_000}, "challenge_above": {"CNY": 100_000}}


@pytest.mark.parametrize(("amount", "expected"), [
    (100_000, ALLOW),  # exactly at the challenge threshold
    (100_001, CHALLENGE),  # one fen above it
    (500_000, CHALLENGE),  # exactly at the limit
    (500_001, DENY),  # one fen above the limit
])
def test_single_payment_limit_edges(transaction, attempt, amount, expected):
    with transaction() as session:
        verdict = single_payment_limit(session, attempt(amount=amount), SINGLE)
    assert decision(verdict) == expected
    if expected == DENY:
        assert verdict.reason == "Above the single-payment limit of 5,000.00 CNY."
        assert verdict.detail == {"amount": 500_001, "currency": "CNY", "limit": 500_000}


def test_a_currency_without_a_limit_is_allowed_by_the_limit_rules(transaction, attempt):
    with transaction() as session:
        big = attempt(amount=10**12, currency="JPY")
        assert single_payment_limit(session, big, SINGLE) is None
        assert daily_limit(session, big, {"limits": {"CNY": 1}, "time_zone": "Asia/Shanghai"}) is None


def test_the_default_single_payment_limit_is_fifty_thousand_yuan(transaction, attempt):
    with transaction() as session:
        assert decision(single_payment_limit(session, attempt(amount=5_000_000), SINGLE_PAYMENT_DEFAULTS)) == CHALLENGE
        assert decision(single_payment_limit(session, attempt(amount=5_000_001), SINGLE_PAYMENT_DEFAULTS)) == DENY
        assert decision(single_payment_limit(session, attempt(amount=1_000_000), SINGLE_PAYMENT_DEFAULTS)) == ALLOW


# -- daily limit ------------------------------------------------------------------------------

DAILY = {"limits": {"CNY": 100_000}, "time_zone": "Asia/Shanghai"}


@pytest.mark.parametrize(("amount", "expected"), [(40_000, ALLOW), (40_001, DENY)])
def test_daily_limit_counts_todays_succeeded_payments(transaction, attempt, paid, amount, expected):
    paid(30_000, NOON - timedelta(hours=1))
    paid(30_000, NOON - timedelta(hours=2))
    with transaction() as session:
        verdict = daily_limit(session, attempt(amount=amount), DAILY)
    assert decision(verdict) == expected
    if expected == DENY:
        assert verdict.reason == "Above the daily limit of 1,000.00 CNY; 400.00 CNY left today."
        assert verdict.detail["spent"] == 60_000


def test_daily_limit_ignores_other_states_currencies_and_days(transaction, attempt, paid):
    for state in (IntentState.FAILED, IntentState.CANCELED, IntentState.EXPIRED, IntentState.REQUIRES_CONFIRMATION):
        paid(90_000, NOON - timedelta(minutes=5), state=state)
    paid(90_000, NOON - timedelta(minutes=5), currency="HKD")
    paid(90_000, NOON - timedelta(days=1))
    with transaction() as session:
        assert daily_limit(session, attempt(amount=100_000), DAILY) is None


def test_the_bank_day_starts_at_midnight_in_shanghai(transaction, attempt, paid):
    midnight = datetime(2025, 3, 4, 16, 0, tzinfo=timezone.utc)  # 00:00 on 5 March in Shanghai
    paid(100_000, midnight - timedelta(seconds=1))  # 23:59:59 on 4 March: yesterday
    with transaction() as session:
        assert daily_limit(session, attempt(amount=100_000, at=midnight), DAILY) is None
        # The same payment is today's for an attempt one second before midnight.
        just_before = attempt(amount=1, at=midnight - timedelta(seconds=1))
        assert decision(daily_limit(session, just_before, DAILY)) == DENY
    paid(1, midnight)  # 00:00:00 on 5 March: today
    with transaction() as session:
        assert decision(daily_limit(session, attempt(amount=100_000, at=midnight), DAILY)) == DENY


def test_the_time_zone_is_a_parameter(transaction, attempt, paid):
    paid(100_000, datetime(2025, 3, 4, 23, 0, tzinfo=timezone.utc))
    next_utc_day = attempt(amount=1, at=datetime(2025, 3, 5, 1, 0, tzinfo=timezone.utc))
    with transaction() as session:
        # 07:00 and 09:00 on 5 March in Shanghai: the same bank day.
        assert decision(daily_limit(session, next_utc_day, DAILY)) == DENY
        assert daily_limit(session, next_utc_day, {**DAILY, "time_zone": "UTC"}) is None


def test_bank_day_bounds():
    start, end = bank_day(datetime(2025, 3, 4, 15, 59, tzinfo=timezone.utc), "Asia/Shanghai")
    assert (start, end) == (datetime(2025, 3, 3, 16, tzinfo=timezone.utc), datetime(2025, 3, 4, 16, tzinfo=timezone.utc))
    assert DAILY_DEFAULTS["time_zone"] == "Asia/Shanghai"


# -- velocity ---------------------------------------------------------------------------------

VELOCITY = {"window_minutes": 10, "challenge_above": 2, "deny_above": 4}


def earlier_attempts(transaction, customer_id, *ages: timedelta, rule: str = OVERALL) -> None:
    with transaction() as session:
        for age in ages:
            session.add(RiskDecision(intent_id="pi_earlier", customer_id=customer_id, branch_code="SH001",
                                     rule=rule, verdict=ALLOW, reason="", detail={}, at=NOON - age))


@pytest.mark.parametrize(("earlier", "expected"), [(0, ALLOW), (1, ALLOW), (2, CHALLENGE), (3, CHALLENGE), (4, DENY)])
def test_velocity_counts_this_attempt_and_the_earlier_ones(transaction, attempt, customer_id, earlier, expected):
    earlier_attempts(transaction, customer_id, *[timedelta(minutes=1)] * earlier)
    with transaction() as session:
        verdict = velocity(session, attempt(), VELOCITY)
    assert decision(verdict) == expected
    if verdict is not None:
        assert verdict.detail == {"attempts": earlier + 1, "window_minutes": 10}


def test_velocity_window_edge_and_what_it_counts(transaction, attempt, customer_id):
    earlier_attempts(transaction, customer_id, timedelta(minutes=10), timedelta(minutes=11))  # outside the window
    earlier_attempts(transaction, customer_id, timedelta(seconds=1), rule="new_device")  # not an attempt of its own
    with transaction() as session:
        assert velocity(session, attempt(), VELOCITY) is None
        other = attempt(customer_id="someone-else")
    earlier_attempts(transaction, customer_id, timedelta(minutes=10) - timedelta(microseconds=1), timedelta(0))
    with transaction() as session:
        assert decision(velocity(session, attempt(), VELOCITY)) == CHALLENGE  # two inside + this one
        assert velocity(session, other, VELOCITY) is None


def test_velocity_defaults():
    assert VELOCITY_DEFAULTS == {"window_minutes": 10, "challenge_above": 5, "deny_above": 10}


# -- new device -------------------------------------------------------------------------------


def test_a_customer_with_no_known_device_is_challenged_saying_so(transaction, attempt):
    with transaction() as session:
        verdict = new_device(session, attempt(), {"decision": CHALLENGE})
    assert (verdict.decision, verdict.reason) == (CHALLENGE, "No device is on record for you yet; confirm it is you.")


def test_a_known_device_passes_and_another_is_challenged(transaction, attempt, customer_id):
    with transaction() as session:
        remember_device(session, customer_id, DEVICE, NOON - timedelta(days=3))
    with transaction() as session:
        assert new_device(session, attempt(), {"decision": CHALLENGE}) is None
        verdict = new_device(session, attempt(device="e" * 64), {"decision": CHALLENGE})
        assert (verdict.decision, verdict.reason) == (CHALLENGE, "A device you have not paid from before; confirm it is you.")
        assert new_device(session, attempt(device="e" * 64), {"decision": DENY}).decision == DENY


# -- blocked merchant -------------------------------------------------------------------------


def test_blocked_merchant_and_blocked_plugin(transaction, attempt):
    with transaction() as session:
        assert blocked_merchant(session, attempt(), {"merchants": [], "plugins": []}) is None
        assert blocked_merchant(session, attempt(), {"merchants": ["partner:OTHER"], "plugins": ["sh.deals"]}) is None
        by_merchant = blocked_merchant(session, attempt(), {"merchants": ["partner:CITYPOWER"], "plugins": []})
        by_plugin = blocked_merchant(session, attempt(), {"merchants": [], "plugins": ["city.utilities"]})
    assert (by_merchant.decision, by_merchant.reason) == (DENY, "The bank does not accept payments to this merchant.")
    assert (by_plugin.decision, by_plugin.reason) == (DENY, "The bank does not accept payments through this mini-program.")


# -- the defaults validate --------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_every_default_passes_its_own_schema(rule):
    assert rule.schema().load(dict(rule.defaults)) == dict(rule.defaults)
