"""host.payments.risk.settings: effective settings per branch, and changing them (who may, what is
valid, what is audited)."""

from __future__ import annotations

import pytest

from host.payments.risk.default_rules import SINGLE_PAYMENT_DEFAULTS
from host.payments.risk.settings import (
    InvalidSetting,
    SettingRefused,
    effective_settings,
    read_form,
    reset_setting,
    update_setting,
)

LIMITS = {"limits": {"CNY": 300_000}, "challenge_above": {"CNY": 100_000}}


@pytest.fixture
def change(transaction, staff):
    """``change(username, branch, rule, enabled, params)``: update_setting as that member of staff."""

    def run(username, branch, rule="single_payment_limit", enabled=True, params=LIMITS):
        member = staff(username)
        with transaction() as session:
            return update_setting(session, member, branch, rule, enabled, params)

    return run


def effective(transaction, branch):
    with transaction() as session:
        return effective_settings(session, branch)


# -- reading --------------------------------------------------------------------------------------


def test_without_rows_every_rule_has_its_defaults(transaction):
    found = effective(transaction, "SH001")
    assert list(found) == ["blocked_merchant", "daily_limit", "new_device", "single_payment_limit", "velocity"]
    single = found["single_payment_limit"]
    assert (single.enabled, single.params, single.source) == (True, SINGLE_PAYMENT_DEFAULTS, "default")


def test_branch_then_bank_wide_then_defaults(transaction, change):
    change("hq.admin", "*", params={"limits": {"CNY": 400_000}, "challenge_above": {}})
    change("sh.admin", "SH001", enabled=False)
    sh, bj, bank = effective(transaction, "SH001"), effective(transaction, "BJ001"), effective(transaction, "*")
    assert (sh["single_payment_limit"].source, sh["single_payment_limit"].enabled) == ("branch", False)
    assert sh["single_payment_limit"].params == LIMITS
    assert sh["single_payment_limit"].updated_by == "sh.admin"
    assert (bj["single_payment_limit"].source, bj["single_payment_limit"].params["limits"]) == ("bank", {"CNY": 400_000})
    assert bank["single_payment_limit"].source == "bank"
    assert sh["velocity"].source == bj["velocity"].source == "default"


def test_params_left_out_keep_their_defaults(change):
    setting = change("hq.admin", "*", rule="velocity", params={"challenge_above": 3})
    assert setting.params == {"window_minutes": 10, "challenge_above": 3, "deny_above": 10}


# -- who may change what ----------------------------------------------------------------------------


@pytest.mark.parametrize(("username", "branch", "allowed"), [
    ("hq.admin", "*", True),
    ("hq.admin", "BJ001", True),
    ("sh.admin", "SH001", True),
    ("sh.admin", "BJ001", False),
    ("sh.admin", "*", False),
    ("sh.admin", "SH001-PD", False),  # a sub-branch is not their own branch
    ("hq.reviewer", "SH001", False),
    ("sh.operator", "SH001", False),
    ("bj.operator", "BJ001", False),
])
def test_the_permission_matrix(change, stored_settings, audit_log, username, branch, allowed):
    if allowed:
        change(username, branch)
        assert stored_settings() == {(branch, "single_payment_limit"): (True, LIMITS)}
        assert [event.actor for event in audit_log()] == [username]
    else:
        with pytest.raises(SettingRefused, match="may not change the risk settings"):
            change(username, branch)
        assert stored_settings() == {}


# -- what is valid ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("branch", "rule", "enabled", "params", "field"), [
    ("NOWHERE", "velocity", True, {}, "branch"),
    ("", "velocity", True, {}, "branch"),
    ("SH001", "no_such_rule", True, {}, "rule"),
    ("SH001", "velocity", "yes", {}, "enabled"),
    ("SH001", "velocity", True, {"window_minutes": -1}, "params.window_minutes"),
    ("SH001", "velocity", True, {"window_minutes": 0}, "params.window_minutes"),
    ("SH001", "velocity", True, {"window_minutes": "10"}, "params.window_minutes"),
    ("SH001", "velocity", True, {"window_minutes": 10.0}, "params.window_minutes"),
    ("SH001", "velocity", True, {"window_minutes": True}, "params.window_minutes"),
    ("SH001", "velocity", True, {"window_minutes": 10**30}, "params.window_minutes"),
    ("SH001", "velocity", True, {"challenge_above": 9, "deny_above": 8}, "params.deny_above"),
    ("SH001", "velocity", True, {"sideways": 1}, "params.sideways"),
    ("SH001", "single_payment_limit", True, {"limits": {"XYZ": 100}}, "params.limits.XYZ"),
    ("SH001", "single_payment_limit", True, {"limits": {"CNY": -1}}, "params.limits.CNY"),
    ("SH001", "single_payment_limit", True, {"limits": {"CNY": 10**20}}, "params.limits.CNY"),
    ("SH001", "single_payment_limit", True, {"limits": {"CNY": "500000"}}, "params.limits.CNY"),
    ("SH001", "single_payment_limit", True, {"limits": {"CNY": 99.5}}, "params.limits.CNY"),
    ("SH001", "single_payment_limit", True, {"limits": [500000]}, "params.limits"),
    ("SH001", "single_payment_limit", True, {"limits": {"CNY": 100}, "challenge_above": {"CNY": 101}},
     "params.challenge_above.CNY"),
    ("SH001", "daily_limit", True, {"time_zone": "Mars/Olympus"}, "params.time_zone"),
    ("SH001", "new_device", True, {"decision": "allow"}, "params.decision"),
    ("SH001", "blocked_merchant", True, {"merchants": ["CITYPOWER"]}, "params.merchants.0"),
    ("SH001", "blocked_merchant", True, {"plugins": "sh.deals"}, "params.plugins"),
    ("SH001", "blocked_merchant", True, {"plugins": ["sh.deals"] * 1001}, "params.plugins"),
    ("SH001", "velocity", True, ["window_minutes"], "params"),
])
def test_invalid_changes_name_the_field_and_save_nothing(change, stored_settings, audit_log, branch, rule, enabled,
                                                         params, field):
    with pytest.raises(InvalidSetting) as caught:
        change("hq.admin", branch, rule=rule, enabled=enabled, params=params)
    assert field in caught.value.errors, caught.value.errors
    assert stored_settings() == {} and audit_log() == []


def test_currency_codes_are_normalised(change):
    setting = change("hq.admin", "*", params={"limits": {"cny": 100}, "challenge_above": {}})
    assert setting.params["limits"] == {"CNY": 100}


def test_zero_is_a_valid_limit(change):
    assert change("hq.admin", "*", params={"limits": {"CNY": 0}, "challenge_above": {"CNY": 0}}).params["limits"] == {"CNY": 0}


@pytest.mark.parametrize(("form", "fields"), [
    ({"enabled": "maybe", "params": "{}"}, {"enabled"}),
    ({"enabled": "true", "params": "{not json"}, {"params"}),
    ({"enabled": "true", "params": "[1, 2]"}, {"params"}),
    ({"params": "x" * 20_001}, {"enabled", "params"}),
    ({"enabled": "true", "params": "[" * 100_00 + "]" * 100_00}, {"params"}),
])
def test_the_form_fields_are_checked_together(form, fields):
    with pytest.raises(InvalidSetting) as caught:
        read_form(form)
    assert set(caught.value.errors) == fields


def test_read_form_accepts_the_page_form():
    assert read_form({"enabled": "false", "params": '{"decision": "deny"}'}) == (False, {"decision": "deny"})


# -- the audit trail --------------------------------------------------------------------------------


def test_each_change_is_audited_with_old_and_new(change, audit_log):
    change("hq.admin", "*")
    change("sh.admin", "SH001", enabled=False, params={"limits": {"CNY": 200_000}, "challenge_above": {}})
    first, second = audit_log()
    assert (first.action, first.outcome, first.actor, first.branch, first.subject) == (
        "risk.setting_changed", "success", "hq.admin", "*", "single_payment_limit")
    assert first.detail == {
        "rule": "single_payment_limit",
        "old": {"enabled": True, "params": SINGLE_PAYMENT_DEFAULTS, "source": "default"},
        "new": {"enabled": True, "params": LIMITS},
    }
    assert second.detail["old"] == {"enabled": True, "params": LIMITS, "source": "bank"}
    assert second.detail["new"] == {"enabled": False, "params": {"limits": {"CNY": 200_000}, "challenge_above": {}}}


def test_a_change_rolled_back_leaves_no_audit_entry(in_app, staff, stored_settings, audit_log):
    member = staff("hq.admin")
    with in_app.extensions["canopy.db"].sessions() as session:
        update_setting(session, member, "*", "velocity", False, {})
        session.rollback()
    assert stored_settings() == {} and audit_log() == []


def test_reset_returns_to_the_bank_wide_setting(transaction, change, staff, stored_settings, audit_log):
    change("hq.admin", "*", rule="velocity", params={"challenge_above": 1, "deny_above": 2})
    change("sh.admin", "SH001", rule="velocity", params={"challenge_above": 3, "deny_above": 4})
    with transaction() as session:
        after = reset_setting(session, staff("sh.admin"), "SH001", "velocity")
    assert (after.source, after.params["challenge_above"]) == ("bank", 1)
    assert set(stored_settings()) == {("*", "velocity")}
    last = audit_log()[-1]
    assert (last.action, last.actor, last.branch) == ("risk.setting_reset", "sh.admin", "SH001")
    assert last.detail["old"]["source"] == "branch" and last.detail["new"]["source"] == "bank"
    with transaction() as session, pytest.raises(SettingRefused):
        reset_setting(session, staff("sh.admin"), "*", "velocity")
