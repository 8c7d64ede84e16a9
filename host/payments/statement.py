"""A merchant's statement for one bank day (``canopy payments statement``).

The bank day is a calendar date in the bank's time zone (Asia/Shanghai unless told
otherwise); its bounds are converted to UTC, the zone postings are stored in. For each of
the merchant's settlement accounts (one per currency) the statement gives the opening
balance (the sum of every posting before the day), the day's postings, their totals and the
closing balance. Amounts are integers of minor units; :func:`render_text` formats them.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Account, AccountKind, Posting, Transfer, TransferKind
from .money import format_amount

#: The bank's time zone: a bank day runs from midnight to midnight here.
BANK_TIME_ZONE = "Asia/Shanghai"


class StatementError(ValueError):
    """A statement that cannot be made; the message says what to change."""


class UnknownMerchant(StatementError):
    """No merchant settlement account has the owner asked for."""


class UnknownTimeZone(StatementError):
    """The time zone is not an IANA zone name this machine knows."""


class DayOutOfRange(StatementError):
    """The day's bounds cannot be expressed in UTC (a date at the very edge of the calendar)."""


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (e.g. ``Asia/Shanghai``); :class:`UnknownTimeZone` if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownTimeZone(f"{name!r} is not a known IANA time zone (e.g. Asia/Shanghai, UTC)") from None


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants at which bank day ``day`` in ``zone`` starts (inclusive) and ends (exclusive).

    Computed from both midnights, so a day with a daylight-saving change is 23 or 25 hours long.
    Raises :class:`DayOutOfRange` for a day whose bounds fall outside the calendar.
    """
    try:
        start = datetime.combine(day, time.min, tzinfo=zone)
        end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
        return start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    except OverflowError:
        raise DayOutOfRange(f"{day.isoformat()} is too close to the edge of the calendar") from None


def merchant_accounts(session: Session, merchant: str) -> list[Account]:
    """The settlement accounts of ``merchant`` (an owner such as ``partner:CITYPOWER``), by currency.

    Raises :class:`UnknownMerchant`, naming some merchants that exist, when there is none.
    """
    accounts = list(session.scalars(
        select(Account).where(Account.kind == AccountKind.MERCHANT, Account.owner == merchant)
        .order_by(Account.currency)
    ))
    if not accounts:
        known = list(session.scalars(
            select(Account.owner).where(Account.kind == AccountKind.MERCHANT).distinct()
            .order_by(Account.owner).limit(10)
        ))
        hint = f"; merchants with accounts: {', '.join(known)}" if known else "; no merchant has an account yet"
        raise UnknownMerchant(f"no merchant settlement account is owned by {merchant!r}{hint}")
    return accounts


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _account_statement(session: Session, account: Account, start: datetime, end: datetime) -> dict[str, Any]:
    opening = int(session.scalar(
        select(func.coalesce(func.sum(Posting.amount), 0))
        .where(Posting.account_id == account.id, Posting.created_at < start)
    ))
    rows = session.execute(
        select(Posting.created_at, Posting.amount, Transfer.id, Transfer.kind, Transfer.intent_id, Transfer.refund_id,
               Transfer.description)
        .join(Transfer, Transfer.id == Posting.transfer_id)
        .where(Posting.account_id == account.id, Posting.created_at >= start, Posting.created_at < end)
        .order_by(Posting.created_at, Posting.id)
    )
    entries = [
        {"at": _iso(at), "transfer_id": transfer_id, "kind": kind, "intent_id": intent_id, "refund_id": refund_id,
         "description": description, "amount": amount}
        for at, amount, transfer_id, kind, intent_id, refund_id, description in rows
    ]
    payments_in = sum(e["amount"] for e in entries if e["kind"] == TransferKind.PAYMENT)
    refunds_out = -sum(e["amount"] for e in entries if e["kind"] == TransferKind.REFUND)
    net = sum(e["amount"] for e in entries)
    return {
        "account_id": account.id,
        "opening_balance": opening,
        "entries": entries,
        "totals": {
            "payments_in": payments_in,
            "refunds_out": refunds_out,
            "other": net - payments_in + refunds_out,
            "net": net,
            "count": len(entries),
        },
        "closing_balance": opening + net,
    }


def statement(session: Session, merchant: str, day: date, tz: str = BANK_TIME_ZONE) -> dict[str, Any]:
    """The statement of ``merchant``'s settlement accounts for bank day ``day`` in time zone ``tz``.

    Returns ``{"merchant", "date", "tz", "from", "to", "currencies": {code: {"account_id",
    "opening_balance", "entries", "totals", "closing_balance"}}}``: ``from`` and ``to`` are the
    day's bounds in UTC (ISO 8601); each entry has ``at`` (UTC), ``transfer_id``, ``kind``,
    ``intent_id``, ``refund_id``, ``description`` and the signed ``amount`` (minor units; positive
    = money in); ``totals`` has ``payments_in``, ``refunds_out`` (a positive figure), ``other``,
    ``net`` and ``count``; ``closing_balance`` = ``opening_balance`` + ``net``.

    Raises :class:`UnknownMerchant`, :class:`UnknownTimeZone` or :class:`DayOutOfRange`.
    """
    zone = time_zone(tz)
    start, end = day_bounds(day, zone)
    accounts = merchant_accounts(session, merchant)
    return {
        "merchant": merchant,
        "date": day.isoformat(),
        "tz": tz,
        "from": _iso(start),
        "to": _iso(end),
        "currencies": {account.currency: _account_statement(session, account, start, end) for account in accounts},
    }


def _figure(amount: int, currency: str, signed: bool = False) -> str:
    text = format_amount(amount, currency).removesuffix(f" {currency}")
    return f"+{text}" if signed and amount > 0 else text


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if right else text + fill


def _row(cells: tuple[str, ...], widths: list[int]) -> str:
    """One table row: every column left-aligned but the last (the amount), right-aligned."""
    last = len(cells) - 1
    return ("  " + "  ".join(_pad(cell, width, right=i == last) for i, (cell, width) in enumerate(zip(cells, widths)))).rstrip()


def render_text(report: dict[str, Any]) -> str:
    """A :func:`statement` as an aligned plain-text table (times in the statement's zone)."""
    zone = time_zone(report["tz"])
    lines = [f"Statement of {report['merchant']} for {report['date']} ({report['tz']}; "
             f"{report['from']} to {report['to']})"]
    for currency, part in report["currencies"].items():
        header = ("Time", "Kind", "Transfer", "Intent", "Refund", "Description", f"Amount ({currency})")
        rows = [(
            datetime.fromisoformat(entry["at"]).astimezone(zone).strftime("%H:%M:%S"),
            entry["kind"], entry["transfer_id"], entry["intent_id"] or "", entry["refund_id"] or "",
            entry["description"], _figure(entry["amount"], currency, signed=True),
        ) for entry in part["entries"]]
        widths = [max(_width(row[i]) for row in [header, *rows]) for i in range(len(header))]
        totals = part["totals"]
        summary = [
            ("Opening balance", _figure(part["opening_balance"], currency)),
            ("Payments in", _figure(totals["payments_in"], currency)),
            ("Refunds out", _figure(totals["refunds_out"], currency)),
            *([("Other", _figure(totals["other"], currency))] if totals["other"] else []),
            ("Closing balance", _figure(part["closing_balance"], currency)),
            ("Postings", str(totals["count"])),
        ]
        # Summary figures end in the amount column: the table's full width.
        table_width = sum(widths) + 2 * (len(widths) - 1)
        summary_lines = [_row((label, figure), [len(label), table_width - len(label) - 2]) for label, figure in summary]
        lines += ["", f"{currency} (account {part['account_id']})", summary_lines[0], _row(header, widths)]
        lines += [_row(row, widths) for row in rows] or ["  (no postings this day)"]
        lines += summary_lines[1:]
    return "\n".join(lines)
