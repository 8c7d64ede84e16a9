"""``canopy payments check|statement|expire|purge-keys``: output, exit codes, bad options."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

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
    assert all(name in result.stdout for name in ("check", "statement", "expire", "purge-keys"))


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


# -- expire and purge-keys -----------------------------------------------------------------


def test_expire_records_due_intents_and_prints_how_many(pay_app):
    from host.payments.models import IntentState

    from .test_sweep import due_intent, expiry_of

    due = [due_intent(pay_app) for _ in range(2)]
    waiting = due_intent(pay_app, overdue=-timedelta(minutes=5))
    result = run(pay_app, "expire")
    assert result.exit_code == 0, result.output
    assert result.stdout == "expired 2 payment intents\n"
    assert [expiry_of(pay_app, intent_id)[:2] for intent_id in due] == [(IntentState.EXPIRED, 1)] * 2
    assert expiry_of(pay_app, waiting)[0] == IntentState.REQUIRES_CONFIRMATION
    assert run(pay_app, "expire").stdout == "expired 0 payment intents\n"


def test_expire_takes_a_limit(pay_app):
    from .test_sweep import due_intent

    for _ in range(3):
        due_intent(pay_app)
    assert run(pay_app, "expire", "--limit", "1").stdout == "expired 1 payment intent\n"
    assert run(pay_app, "expire", "--limit", "5").stdout == "expired 2 payment intents\n"


@pytest.mark.parametrize("limit", ["0", "-3", "many"])
def test_expire_refuses_a_bad_limit(app, limit):
    result = run(app, "expire", "--limit", limit)
    assert result.exit_code == 2 and "'--limit'" in result.stderr and limit in result.stderr
    assert "Traceback" not in result.output


def test_purge_keys_removes_old_keys_and_prints_how_many(app):
    from sqlalchemy import select, update

    from host.db import utcnow
    from host.payments import idempotency
    from host.payments.models import IdempotencyRecord

    with get_database(app).transaction(write=True) as session:
        for key in ("old-1", "old-2", "new"):
            idempotency.once(session, "client:shop", key, "create_intent", {}, lambda: (201, {}))
        session.execute(update(IdempotencyRecord).where(IdempotencyRecord.key.like("old-%"))
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    result = run(app, "purge-keys")
    assert result.exit_code == 0, result.output
    assert result.stdout == "removed 2 idempotency keys older than 24 hours\n"
    with get_database(app).transaction() as session:
        assert list(session.scalars(select(IdempotencyRecord.key))) == ["new"]
    assert run(app, "purge-keys").stdout == "removed 0 idempotency keys older than 24 hours\n"
