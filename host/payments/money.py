"""Money in the host: an integer number of minor units and an ISO 4217 currency, never a float.

The rules themselves (which currencies, what an amount may be) are the SDK's
(:mod:`canopy_sdk.payment_rules`), shared with the test kit so plugins are tested against
exactly what the host enforces; this module adapts them for host code that names its own
field (settings, configuration) and shows amounts to people (:func:`format_amount`).
"""

from __future__ import annotations

from canopy_sdk import payment_rules
from canopy_sdk.errors import InvalidPayment

#: ISO 4217 currencies the ledger knows, with their minor-unit exponent.
CURRENCIES = payment_rules.CURRENCIES
max_amount = payment_rules.max_amount


class MoneyError(ValueError):
    """An amount or currency that cannot be accepted; ``field`` names it, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def _reworded(error: InvalidPayment, field: str) -> MoneyError:
    message = str(error).partition(": ")[2] or str(error)
    return MoneyError(field, message)


def parse_currency(value: object, allowed: frozenset[str] | set[str] | None = None, field: str = "currency") -> str:
    """``value`` as an upper-case ISO 4217 code the ledger knows (and ``allowed`` lists, when given)."""
    try:
        return payment_rules.check_currency(value, allowed)
    except InvalidPayment as exc:
        raise _reworded(exc, field) from None


def parse_amount(value: object, currency: str, field: str = "amount") -> int:
    """``value`` as a positive whole number of minor units of ``currency`` (no bools, floats or strings)."""
    try:
        return payment_rules.check_amount(value, currency)
    except InvalidPayment as exc:
        raise _reworded(exc, field) from None


def format_amount(amount: int, currency: str) -> str:
    """``amount`` minor units as people read it, e.g. ``1,234.50 CNY`` (``-`` for negatives)."""
    exponent = CURRENCIES.get(currency, 2)
    sign = "-" if amount < 0 else ""
    whole, minor = divmod(abs(amount), 10 ** exponent) if exponent else (abs(amount), 0)
    text = f"{whole:,}" + (f".{minor:0{exponent}d}" if exponent else "")
    return f"{sign}{text} {currency}"
