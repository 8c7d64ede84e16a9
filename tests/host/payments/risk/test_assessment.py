"""host.payments.risk.assess and remember_device: every enabled rule runs, the strictest verdict
wins, each objection and the overall verdict are recorded in the caller's transaction."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from host.payments.risk import ALLOW, CHALLENGE, DENY, OVERALL, RiskRule, Verdict, assess, remember_device
from host.payments.risk.assessment import ALL_CLEAR, RULE_FAILED
from host.payments.risk.models import KnownDevice, RiskSetting

NOON = datetime(2025, 3, 4, 6, 0, tzinfo=timezone.utc)
DEVICE = "d" * 64


def fixed(name: str, decision: str | None, reason: str = "") -> RiskRule:
    """A rule that always answers ``decision`` (None: nothing to say)."""
    answer = None if decision is None else Verdict(decision, "whatever", reason or f"{name} says {decision}")
    return RiskRule(name, f"always {decision}", {}, lambda session, attempt, params: answer)


def rules(*items: RiskRule) -> dict[str, RiskRule]:
    return {rule.name: rule for rule in items}


@pytest.fixture
def known_device(transaction, customer_id):
    with transaction() as session:
        remember_device(session, customer_id, DEVICE, NOON - timedelta(days=30))


def set_rule(transaction, branch: str, rule: str, *, enabled: bool = True, params: dict | None = None) -> None:
    with transaction() as session:
        session.add(RiskSetting(branch_code=branch, rule=rule, enabled=enabled, params=params or {}, updated_by="test"))


# -- with the default rules -------------------------------------------------------------------


def test_an_ordinary_payment_from_a_known_device_is_allowed(transaction, attempt, known_device, decisions):
    payment = attempt()
    with transaction() as session:
        verdict = assess(session, payment)
    assert verdict == Verdict(ALLOW, OVERALL, ALL_CLEAR)
    [row] = decisions(payment.intent_id)
    assert (row.rule, row.verdict, row.reason, row.branch_code, row.at) == (OVERALL, ALLOW, ALL_CLEAR, "SH001", NOON)
    assert row.detail["rules"] == ["blocked_merchant", "daily_limit", "new_device", "single_payment_limit", "velocity"]
    assert (row.detail["amount"], row.detail["currency"], row.detail["merchant"]) == (10_000, "CNY", "partner:CITYPOWER")


def test_a_first_payment_is_challenged_and_both_rows_are_recorded(transaction, attempt, decisions):
    payment = attempt()
    with transaction() as session:
        verdict = assess(session, payment)
    reason = "No device is on record for you yet; confirm it is you."
    assert (verdict.decision, verdict.rule, verdict.reason) == (CHALLENGE, "new_device", reason)
    rows = decisions(payment.intent_id)
    assert [(r.rule, r.verdict, r.reason) for r in rows] == [("new_device", CHALLENGE, reason), (OVERALL, CHALLENGE, reason)]
    assert rows[0].detail == {"known_devices": 0, "source": "default"}
    assert rows[1].detail["rule"] == "new_device"


def test_deny_beats_challenge(transaction, attempt, decisions):
    payment = attempt(amount=5_000_001)  # above the default limit, and from an unknown device
    with transaction() as session:
        verdict = assess(session, payment)
    assert (verdict.decision, verdict.rule) == (DENY, "single_payment_limit")
    assert verdict.reason == "Above the single-payment limit of 50,000.00 CNY."
    rows = decisions(payment.intent_id)
    assert [(r.rule, r.verdict) for r in rows] == [
        ("new_device", CHALLENGE), ("single_payment_limit", DENY), (OVERALL, DENY)]
    assert rows[-1].rule == OVERALL and rows[-1].reason == verdict.reason


def test_nothing_is_committed_by_assess(in_app, transaction, attempt, decisions):
    payment = attempt()
    with in_app.extensions["canopy.db"].sessions() as session:
        assess(session, payment)
        session.rollback()
    assert decisions(payment.intent_id) == []


def test_velocity_counts_assessments(transaction, attempt, known_device, decisions):
    set_rule(transaction, "*", "velocity", params={"window_minutes": 10, "challenge_above": 2, "deny_above": 3})
    answers = []
    for _ in range(4):
        with transaction() as session:
            answers.append(assess(session, attempt()).decision)
    assert answers == [ALLOW, ALLOW, CHALLENGE, DENY]
    assert [r.rule for r in decisions() if r.rule != OVERALL] == ["velocity", "velocity"]


# -- settings: branch beats bank-wide beats defaults -------------------------------------------


def test_a_branch_setting_beats_the_bank_wide_one(transaction, attempt, known_device, decisions):
    set_rule(transaction, "*", "single_payment_limit", params={"limits": {"CNY": 5_000}, "challenge_above": {}})
    with transaction() as session:
        assert assess(session, attempt()).decision == DENY  # 100.00 above the bank-wide 50.00
        assert assess(session, attempt(branch_code="BJ001")).decision == DENY
    set_rule(transaction, "SH001", "single_payment_limit", params={"limits": {"CNY": 10_000}, "challenge_above": {}})
    with transaction() as session:
        payment = attempt()
        assert assess(session, payment).decision == ALLOW  # exactly at SH001's own limit
        assert assess(session, attempt(amount=10_001)).decision == DENY
        assert assess(session, attempt(branch_code="BJ001")).decision == DENY  # BJ001 still has the bank-wide one
        denied = attempt(amount=10_001)
        assess(session, denied)
    [row] = [r for r in decisions(denied.intent_id) if r.rule == "single_payment_limit"]
    assert row.detail["source"] == "branch" and row.detail["limit"] == 10_000


def test_no_branch_uses_the_bank_wide_settings(transaction, attempt, known_device):
    set_rule(transaction, "*", "single_payment_limit", params={"limits": {"CNY": 5_000}, "challenge_above": {}})
    with transaction() as session:
        assert assess(session, attempt(branch_code=None)).decision == DENY


def test_a_disabled_rule_does_not_run(transaction, attempt, decisions):
    set_rule(transaction, "SH001", "new_device", enabled=False)
    payment = attempt()
    with transaction() as session:
        assert assess(session, payment).decision == ALLOW
        assert assess(session, attempt(branch_code="GZ001")).decision == CHALLENGE  # enabled elsewhere
    [row] = decisions(payment.intent_id)
    assert "new_device" not in row.detail["rules"]


def test_a_bank_wide_disable_is_overridden_by_a_branch_enable(transaction, attempt):
    set_rule(transaction, "*", "new_device", enabled=False)
    set_rule(transaction, "SH001", "new_device", enabled=True, params={"decision": DENY})
    with transaction() as session:
        assert assess(session, attempt()).decision == DENY
        assert assess(session, attempt(branch_code="BJ001")).decision == ALLOW


# -- combining given rules ----------------------------------------------------------------------


def test_the_strictest_verdict_wins_and_ties_go_to_the_first_rule_by_name(transaction, attempt, decisions):
    given = rules(fixed("b_challenge", CHALLENGE), fixed("a_allow", None), fixed("d_deny", DENY), fixed("c_deny", DENY))
    payment = attempt()
    with transaction() as session:
        verdict = assess(session, payment, given)
    assert (verdict.decision, verdict.rule, verdict.reason) == (DENY, "c_deny", "c_deny says deny")
    rows = decisions(payment.intent_id)
    assert [(r.rule, r.verdict) for r in rows] == [
        ("b_challenge", CHALLENGE), ("c_deny", DENY), ("d_deny", DENY), (OVERALL, DENY)]
    assert rows[-1].reason == "c_deny says deny" and rows[-1].detail["rule"] == "c_deny"


def test_a_rule_that_answers_allow_explicitly_is_not_recorded(transaction, attempt, decisions):
    payment = attempt()
    with transaction() as session:
        assert assess(session, payment, rules(fixed("polite", ALLOW, "fine"))).decision == ALLOW
    assert [r.rule for r in decisions(payment.intent_id)] == [OVERALL]


def test_no_rules_at_all_allow(transaction, attempt):
    with transaction() as session:
        assert assess(session, attempt(), {}) == Verdict(ALLOW, OVERALL, ALL_CLEAR)


def test_a_rule_cannot_speak_for_another(transaction, attempt):
    with transaction() as session:
        verdict = assess(session, attempt(), rules(fixed("honest", CHALLENGE)))
    assert verdict.rule == "honest"  # not the "whatever" it claimed


def test_a_failing_rule_denies(transaction, attempt, decisions, caplog):
    def broken(session, attempt, params):
        raise KeyError("limits")

    def junk(session, attempt, params):
        return "allow"

    payment = attempt()
    with transaction() as session:
        verdict = assess(session, payment, rules(RiskRule("broken", "raises", {}, broken), fixed("fine", None)))
        assert assess(session, attempt(), rules(RiskRule("junk", "junk", {}, junk))).decision == DENY
    assert (verdict.decision, verdict.rule, verdict.reason) == (DENY, "broken", RULE_FAILED)
    assert [(r.rule, r.verdict) for r in decisions(payment.intent_id)] == [("broken", DENY), (OVERALL, DENY)]
    assert "risk rule broken failed" in caplog.text and "risk rule junk answered" in caplog.text


def test_a_detail_that_is_not_json_is_dropped_not_fatal(transaction, attempt, decisions):
    odd = RiskRule("odd", "odd detail", {}, lambda session, attempt, params: Verdict(CHALLENGE, "odd", "hm", {"at": object()}))
    payment = attempt()
    with transaction() as session:
        assert assess(session, payment, rules(odd)).decision == CHALLENGE
    assert decisions(payment.intent_id)[0].detail == {"detail_dropped": True, "source": "default"}


def test_a_long_reason_is_cut_to_the_column(transaction, attempt, decisions):
    payment = attempt()
    with transaction() as session:
        verdict = assess(session, payment, rules(fixed("wordy", CHALLENGE, "x" * 500)))
    assert len(verdict.reason) == 200
    assert all(len(row.reason) == 200 for row in decisions(payment.intent_id))


# -- known devices --------------------------------------------------------------------------------


def test_remember_device_inserts_then_refreshes_last_seen(transaction, customer_id):
    later = NOON + timedelta(hours=5)
    with transaction() as session:
        remember_device(session, customer_id, DEVICE, NOON)
    with transaction() as session:
        remember_device(session, customer_id, DEVICE, later)
        remember_device(session, customer_id, "e" * 64, later)
    with transaction() as session:
        rows = {row.device: (row.first_seen, row.last_seen) for row in session.scalars(select(KnownDevice))}
    assert rows == {DEVICE: (NOON, later), "e" * 64: (later, later)}
