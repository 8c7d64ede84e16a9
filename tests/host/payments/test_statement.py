"""host/payments/statement.py: a merchant's bank day, its bounds in Asia/Shanghai, per currency."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from host.db import get_database
from host.payments.models import Account, AccountKind, TransferKind
from host.payments.statement import (
    DayOutOfRange, UnknownMerchant, UnknownTimeZone, day_bounds, render_text, statement, time_zone,
)

from .conftest import Ledger

MERCHANT = "partner:CITYPOWER"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def post(session, kind: str, legs: list[tuple[Account, int]], at: datetime, *, refund_id: str | None = None,
         description: str = "") -> str:
    """Write one transfer and its postings at ``at``; move the balances; return its id."""
    return Ledger(session).transfer(kind, legs, at=at, refund_id=refund_id, description=description or kind).id


@pytest.fixture
def database(app):
    return get_database(app)


@pytest.fixture
def ledger(database):
    """Payments to CITYPOWER either side of Shanghai midnight on 1 and 2 May 2024, and a USD account.

    Shanghai is UTC+8 all year: the bank day 2024-05-01 runs 2024-04-30T16:00Z to 2024-05-01T16:00Z.
    """
    with database.transaction(write=True) as session:
        accounts = {name: Account(kind=kind, owner=owner, currency=currency, balance=0) for name, kind, owner, currency in (
            ("clearing", AccountKind.CLEARING, "rail:simulated", "CNY"),
            ("customer", AccountKind.CUSTOMER, "customer:c1", "CNY"),
            ("clearing_usd", AccountKind.CLEARING, "rail:simulated", "USD"),
            ("merchant", AccountKind.MERCHANT, MERCHANT, "CNY"),
            ("other", AccountKind.MERCHANT, "branch:SH001", "CNY"),
            ("customer_usd", AccountKind.CUSTOMER, "customer:c1", "USD"),
            ("merchant_usd", AccountKind.MERCHANT, MERCHANT, "USD"),
        )}
        session.add_all(accounts.values())
        session.flush()
        a = accounts
        post(session, TransferKind.FUNDING, [(a["clearing"], -100_000), (a["customer"], 100_000)], utc(2024, 1, 1))
        post(session, TransferKind.FUNDING, [(a["clearing_usd"], -5_000), (a["customer_usd"], 5_000)], utc(2024, 1, 1))
        ids = {
            # 30 April, 23:59:59 in Shanghai: before the day.
            "before": post(session, TransferKind.PAYMENT, [(a["customer"], -10_000), (a["merchant"], 10_000)],
                           utc(2024, 4, 30, 15, 59, 59), description="April bill"),
            # 1 May, 00:00:00 in Shanghai: the first instant of the day.
            "first": post(session, TransferKind.PAYMENT, [(a["customer"], -12_050), (a["merchant"], 12_050)],
                          utc(2024, 4, 30, 16, 0, 0), description="电费 May"),
            "refund": post(session, TransferKind.REFUND, [(a["merchant"], -2_000), (a["customer"], 2_000)],
                           utc(2024, 5, 1, 3, 30), refund_id="re_1", description="Overcharge"),
            # Another merchant's payment the same day: not on CITYPOWER's statement.
            "elsewhere": post(session, TransferKind.PAYMENT, [(a["customer"], -500), (a["other"], 500)],
                              utc(2024, 5, 1, 4, 0)),
            # 1 May, 23:59:59.999999 in Shanghai: the last instant of the day.
            "last": post(session, TransferKind.PAYMENT, [(a["customer"], -1), (a["merchant"], 1)],
                         utc(2024, 5, 1, 15, 59, 59, 999_999)),
            # 2 May, 00:00:00 in Shanghai: the next day.
            "after": post(session, TransferKind.PAYMENT, [(a["customer"], -700), (a["merchant"], 700)],
                          utc(2024, 5, 1, 16, 0, 0)),
            "usd": post(session, TransferKind.PAYMENT, [(a["customer_usd"], -999), (a["merchant_usd"], 999)],
                        utc(2024, 5, 1, 2, 0)),
        }
        ids["merchant_id"], ids["usd_id"] = a["merchant"].id, a["merchant_usd"].id
    return ids


def make(database, merchant=MERCHANT, day=date(2024, 5, 1), tz="Asia/Shanghai"):
    with database.transaction() as session:
        return statement(session, merchant, day, tz)


def test_the_day_runs_from_shanghai_midnight_to_midnight(database, ledger):
    result = make(database)
    assert (result["from"], result["to"]) == ("2024-04-30T16:00:00Z", "2024-05-01T16:00:00Z")
    cny = result["currencies"]["CNY"]
    assert cny["account_id"] == ledger["merchant_id"]
    assert cny["opening_balance"] == 10_000
    assert [e["transfer_id"] for e in cny["entries"]] == [ledger["first"], ledger["refund"], ledger["last"]]
    assert [e["amount"] for e in cny["entries"]] == [12_050, -2_000, 1]
    assert cny["entries"][0] == {
        "at": "2024-04-30T16:00:00Z", "transfer_id": ledger["first"], "kind": "payment", "intent_id": None,
        "refund_id": None, "description": "电费 May", "amount": 12_050,
    }
    assert cny["entries"][1]["refund_id"] == "re_1"
    assert cny["totals"] == {"payments_in": 12_051, "refunds_out": 2_000, "other": 0, "net": 10_051, "count": 3}
    assert cny["closing_balance"] == 20_051


def test_the_next_day_opens_at_the_previous_close(database, ledger):
    first, second = make(database), make(database, day=date(2024, 5, 2))
    cny = second["currencies"]["CNY"]
    assert cny["opening_balance"] == first["currencies"]["CNY"]["closing_balance"]
    assert [e["transfer_id"] for e in cny["entries"]] == [ledger["after"]]
    assert cny["closing_balance"] == 20_751


def test_the_same_date_in_utc_has_other_postings(database, ledger):
    cny = make(database, tz="UTC")["currencies"]["CNY"]
    assert cny["opening_balance"] == 10_000 + 12_050
    assert [e["transfer_id"] for e in cny["entries"]] == [ledger["refund"], ledger["last"], ledger["after"]]


def test_an_empty_day_shows_the_balance_unchanged(database, ledger):
    result = make(database, day=date(2024, 6, 1))
    cny = result["currencies"]["CNY"]
    assert cny["entries"] == []
    assert cny["opening_balance"] == cny["closing_balance"] == 20_751
    assert cny["totals"] == {"payments_in": 0, "refunds_out": 0, "other": 0, "net": 0, "count": 0}
    before = make(database, day=date(2024, 1, 1))["currencies"]["CNY"]
    assert before["opening_balance"] == before["closing_balance"] == 0
    assert "(no postings this day)" in render_text(result)


def test_a_merchant_with_two_currencies_has_a_section_each(database, ledger):
    result = make(database)
    assert list(result["currencies"]) == ["CNY", "USD"]
    usd = result["currencies"]["USD"]
    assert usd["account_id"] == ledger["usd_id"]
    assert (usd["opening_balance"], usd["totals"]["payments_in"], usd["closing_balance"]) == (0, 999, 999)
    assert [e["transfer_id"] for e in usd["entries"]] == [ledger["usd"]]


def display_width(line: str) -> int:
    """Terminal columns: CJK ideographs take two."""
    return len(line) + sum(1 for ch in line if "\u4e00" <= ch <= "\u9fff")


def test_the_text_statement_is_an_aligned_table(database, ledger):
    text = render_text(make(database))
    lines = text.splitlines()
    assert lines[0] == ("Statement of partner:CITYPOWER for 2024-05-01 (Asia/Shanghai; "
                        "2024-04-30T16:00:00Z to 2024-05-01T16:00:00Z)")
    cny = lines[lines.index(f"CNY (account {ledger['merchant_id']})") + 1:lines.index(f"USD (account {ledger['usd_id']})") - 1]
    figures = {line.rsplit(maxsplit=1)[0].strip(): line.split()[-1] for line in cny if not line.startswith("  Time")
               and not any(ledger[k] in line for k in ("first", "refund", "last"))}
    assert figures == {"Opening balance": "100.00", "Payments in": "120.51", "Refunds out": "20.00",
                       "Closing balance": "200.51", "Postings": "3"}
    rows = [line for line in cny if any(ledger[k] in line for k in ("first", "refund", "last"))]
    assert [row.split()[0] for row in rows] == ["00:00:00", "11:30:00", "23:59:59"]  # Shanghai times
    assert rows[0].endswith("+120.50") and rows[1].endswith("-20.00") and rows[2].endswith("+0.01")
    assert "re_1" in rows[1] and "电费 May" in rows[0]
    # Every line of the section ends in the amount column, Chinese counted two columns wide.
    assert cny[1].endswith("Amount (CNY)")
    assert {display_width(line) for line in cny} == {display_width(cny[1])}
    usd = lines[lines.index(f"USD (account {ledger['usd_id']})") + 1:]
    assert usd[-1].split() == ["Postings", "1"] and any(line.endswith("+9.99") for line in usd)


def test_an_unknown_merchant_names_those_that_exist(database, ledger):
    with pytest.raises(UnknownMerchant) as caught:
        make(database, merchant="partner:NOBODY")
    assert "partner:NOBODY" in str(caught.value)
    assert "branch:SH001, partner:CITYPOWER" in str(caught.value)
    with pytest.raises(UnknownMerchant):
        make(database, merchant="customer:c1")  # an account, but not a merchant's


def test_an_unknown_time_zone_is_refused(database, ledger):
    for name in ("Mars/Olympus", "", "../etc/passwd", "/etc/localtime"):
        with pytest.raises(UnknownTimeZone):
            time_zone(name)
    with pytest.raises(UnknownTimeZone):
        make(database, tz="Asia/Atlantis")


def test_day_bounds_follow_daylight_saving():
    start, end = day_bounds(date(2024, 3, 10), time_zone("America/New_York"))  # clocks go forward
    assert (start, end) == (utc(2024, 3, 10, 5), utc(2024, 3, 11, 4))
    start, end = day_bounds(date(2024, 5, 1), time_zone("Asia/Shanghai"))
    assert (start, end) == (utc(2024, 4, 30, 16), utc(2024, 5, 1, 16))


def test_a_day_at_the_edge_of_the_calendar_is_refused():
    for day in (date(1, 1, 1), date(9999, 12, 31)):
        with pytest.raises(DayOutOfRange):
            day_bounds(day, time_zone("Asia/Shanghai"))
