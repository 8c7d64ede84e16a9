"""``canopy payments check`` and ``canopy payments statement``: output, exit codes, bad options."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from host.db import get_database
from host.payments.invariants import INVARIANTS
from host.payments.models import Account, AccountKind, TransferKind

from .conftest import Ledger

MERCHANT = "partner:CITYPOWER"


def run(app, *args: str):
    return app.test_cli_runner().invoke(args=["payments", *args])


@pytest.fixture
def ledger(app):
    """A consistent ledger: the rail funds CITYPOWER's CNY account with 1,234.50 at 10:00 Shanghai, 1 May 2024."""
    with get_database(app).transaction(write=True) as session:
        rows = Ledger(session)
        clearing = rows.account(AccountKind.CLEARING, "rail:simulated")
        merchant = rows.account(AccountKind.MERCHANT, MERCHANT)
        rows.transfer(TransferKind.FUNDING, [(clearing, -123_450), (merchant, 123_450)], transfer_id="tr_settle",
                      description="Opening float", at=datetime(2024, 5, 1, 2, 0, tzinfo=timezone.utc))
        return {"merchant_id": merchant.id}


# -- check -------------------------------------------------------------------------------


def test_check_prints_every_invariant_and_exits_0_when_all_hold(app, ledger):
    result = run(app, "check")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"ok", "checked_at", "invariants"}
    assert report["ok"] is True
    assert datetime.fromisoformat(report["checked_at"]).utcoffset().total_seconds() == 0
    assert list(report["invariants"]) == list(INVARIANTS)
    for outcome in report["invariants"].values():
        assert outcome["ok"] is True and outcome["violations"] == [] and outcome["description"]
    assert result.stdout.startswith('{\n  "ok": true,')  # indented by 2
    assert result.stderr == ""


def test_check_exits_1_and_lists_the_violation_when_one_fails(app, ledger):
    with get_database(app).transaction(write=True) as session:
        session.get(Account, ledger["merchant_id"]).balance += 1
    result = run(app, "check")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    failed = {name for name, outcome in report["invariants"].items() if not outcome["ok"]}
    assert failed == {"balances_match_postings"}
    [violation] = report["invariants"]["balances_match_postings"]["violations"]
    assert (violation["account_id"], violation["balance"], violation["posted"]) == (ledger["merchant_id"], 123_451, 123_450)
    assert "balances_match_postings" in result.stderr


def test_check_with_an_unknown_option_is_a_usage_error(app):
    result = run(app, "check", "--fix")
    assert result.exit_code == 2
    assert "No such option" in result.stderr


def test_the_payments_group_is_registered(app):
    result = run(app, "--help")
    assert result.exit_code == 0
    assert "check" in result.stdout and "statement" in result.stdout


# -- statement ---------------------------------------------------------------------------


def test_statement_as_text(app, ledger):
    result = run(app, "statement", "--merchant", MERCHANT, "--date", "2024-05-01")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Statement of partner:CITYPOWER for 2024-05-01 (Asia/Shanghai;")
    [row] = [line for line in lines if "tr_settle" in line]
    assert row.split()[:2] == ["10:00:00", "funding"] and row.endswith("+1,234.50")
    assert lines[-1].split() == ["Postings", "1"]
    assert any(line.split() == ["Closing", "balance", "1,234.50"] for line in lines)


def test_statement_as_json(app, ledger):
    result = run(app, "statement", "--merchant", MERCHANT, "--date", "2024-05-01", "--tz", "UTC", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["merchant"], report["date"], report["tz"]) == (MERCHANT, "2024-05-01", "UTC")
    assert (report["from"], report["to"]) == ("2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z")
    cny = report["currencies"]["CNY"]
    assert cny["opening_balance"] == 0 and cny["closing_balance"] == 123_450
    assert cny["totals"] == {"payments_in": 0, "refunds_out": 0, "other": 123_450, "net": 123_450, "count": 1}


def test_statement_of_an_empty_day(app, ledger):
    result = run(app, "statement", "--merchant", MERCHANT, "--date", "2024-04-30", "--format", "json")
    assert result.exit_code == 0, result.output
    cny = json.loads(result.stdout)["currencies"]["CNY"]
    assert cny["entries"] == [] and cny["opening_balance"] == cny["closing_balance"] == 0


@pytest.mark.parametrize(("args", "option", "says"), [
    (["--merchant", "partner:NOBODY", "--date", "2024-05-01"], "--merchant", "partner:CITYPOWER"),
    (["--merchant", MERCHANT, "--date", "2024-13-01"], "--date", "2024-13-01"),
    (["--merchant", MERCHANT, "--date", "yesterday"], "--date", "yesterday"),
    (["--merchant", MERCHANT, "--date", "0001-01-01"], "--date", "edge of the calendar"),
    (["--merchant", MERCHANT, "--date", "2024-05-01", "--tz", "Mars/Olympus"], "--tz", "Mars/Olympus"),
    (["--merchant", MERCHANT, "--date", "2024-05-01", "--format", "xml"], "--format", "xml"),
    (["--date", "2024-05-01"], "--merchant", "Missing option"),
    (["--merchant", MERCHANT], "--date", "Missing option"),
])
def test_statement_refuses_bad_options_naming_the_option(app, ledger, args, option, says):
    result = run(app, "statement", *args)
    assert result.exit_code == 2, result.output
    assert f"'{option}'" in result.stderr and says in result.stderr
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output  # a message, not a crash
    assert result.stdout == ""
