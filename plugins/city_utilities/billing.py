"""CITYPOWER's simulated billing back end.

Until the partner's real billing system is connected, a bill is a pure function of the
utility, the account number and the billing month: the same inputs always give the same
bill, on any machine, with no storage and no network. Usage is drawn from a SHA-256 of the
inputs within a plausible household range and priced at a flat tariff.

Money is integer fen (1/100 yuan) in CNY throughout; tariffs are in li (1/10 fen) per unit,
so the only rounding is the last step, half up, to a whole fen. No floats.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

CURRENCY = "CNY"
#: China Standard Time; Shanghai keeps no daylight-saving time.
CHINA_TIME = timezone(timedelta(hours=8))
#: Bills fall due on this day of the month after the billing month.
DUE_DAY = 20


@dataclass(frozen=True)
class Utility:
    """A utility CITYPOWER bills for, with its unit, tariff and household usage range."""

    code: str
    name: dict[str, str]
    unit: dict[str, str]
    tariff_li: int  # price of one unit in li (0.1 fen)
    min_usage: int
    max_usage: int


UTILITIES: dict[str, Utility] = {
    utility.code: utility
    for utility in (
        Utility("electricity", {"zh": "电费", "en": "Electricity"}, {"zh": "千瓦时", "en": "kWh"}, 617, 80, 600),
        Utility("water", {"zh": "水费", "en": "Water"}, {"zh": "立方米", "en": "m³"}, 5000, 5, 30),
        Utility("gas", {"zh": "燃气费", "en": "Gas"}, {"zh": "立方米", "en": "m³"}, 3000, 5, 60),
    )
}


@dataclass(frozen=True)
class Bill:
    """One month's bill for one account. ``amount`` is in fen."""

    utility: str
    account_no: str
    period: str  # the billing month, "YYYY-MM"
    usage: int
    amount: int
    due_date: str
    currency: str = CURRENCY
    status: str = "unpaid"

    @property
    def id(self) -> str:
        """A stable id for the bill, e.g. ``electricity-12345678-202610``."""
        return f"{self.utility}-{self.account_no}-{self.period.replace('-', '')}"

    def to_dict(self) -> dict[str, Any]:
        """Return the bill as JSON-able data (amount in integer fen)."""
        return {
            "id": self.id,
            "utility": self.utility,
            "account_no": self.account_no,
            "period": self.period,
            "usage": self.usage,
            "amount": self.amount,
            "currency": self.currency,
            "due_date": self.due_date,
            "status": self.status,
        }


def shanghai_today() -> date:
    """Return today's date in Shanghai."""
    return datetime.now(CHINA_TIME).date()


def billing_period(today: date) -> str:
    """Return the latest closed billing month on ``today``: the month before, as ``YYYY-MM``."""
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def _due_date(period: str) -> str:
    year, month = int(period[:4]), int(period[5:7])
    year, month = (year, month + 1) if month < 12 else (year + 1, 1)
    return date(year, month, DUE_DAY).isoformat()


def price(utility: Utility, usage: int) -> int:
    """Return the charge in fen for ``usage`` units, rounded half up to a whole fen."""
    return (usage * utility.tariff_li + 5) // 10


def monthly_bill(utility_code: str, account_no: str, period: str) -> Bill:
    """Return the bill of ``account_no`` for ``utility_code`` in the month ``period`` (``YYYY-MM``).

    Pure and deterministic. Raises KeyError for an unknown utility.
    """
    utility = UTILITIES[utility_code]
    digest = hashlib.sha256(f"{utility_code}:{account_no}:{period}".encode()).digest()
    spread = utility.max_usage - utility.min_usage + 1
    usage = utility.min_usage + int.from_bytes(digest[:8], "big") % spread
    return Bill(utility_code, account_no, period, usage, price(utility, usage), _due_date(period))


def format_amount(fen: int) -> str:
    """Return an amount of fen for people, e.g. ``¥1,234.50``."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}¥{yuan:,}.{cents:02d}"
