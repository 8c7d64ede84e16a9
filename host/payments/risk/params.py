"""Checks of rule params, as marshmallow fields: amounts per currency, counts, time zones.

Rules use these in their params schema (``RiskRule.schema``); staff's changes are loaded through it.
"""

from __future__ import annotations

import zoneinfo
from typing import Any, Mapping

from marshmallow import ValidationError, fields, validate

from ..money import CURRENCIES, MoneyError, max_amount, parse_currency


class PerCurrencyAmounts(fields.Field):
    """``{"CNY": 500000, ...}``: ISO 4217 codes the bank settles → whole minor units, from 0 up
    to the largest amount one payment may carry (booleans, decimals and strings refused)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, int]:
        if not isinstance(value, dict):
            raise ValidationError("must be an object of currency codes and amounts in minor units, e.g. {\"CNY\": 500000}")
        if len(value) > len(CURRENCIES):
            raise ValidationError(f"at most {len(CURRENCIES)} currencies")
        amounts: dict[str, int] = {}
        errors: dict[str, list[str]] = {}
        for key, amount in value.items():
            try:
                currency = parse_currency(key)
            except MoneyError as exc:
                errors[str(key)[:16]] = [str(exc)]
                continue
            if isinstance(amount, bool) or not isinstance(amount, int):
                errors[key] = ["must be a whole number of minor units (e.g. 500000 for 5,000.00 CNY)"]
            elif amount < 0:
                errors[key] = ["must not be negative"]
            elif amount > max_amount(currency):
                errors[key] = [f"must be at most {max_amount(currency)} minor units of {currency}"]
            else:
                amounts[currency] = amount
        if errors:
            raise ValidationError(errors)
        return amounts


def count(minimum: int, maximum: int) -> fields.Integer:
    """A whole number from ``minimum`` to ``maximum`` (booleans, decimals and strings refused)."""
    return fields.Integer(required=True, strict=True, validate=validate.Range(minimum, maximum))


def time_zone_field() -> fields.String:
    """An IANA time zone name, e.g. ``Asia/Shanghai``."""
    return fields.String(
        required=True,
        validate=validate.OneOf(sorted(zoneinfo.available_timezones()), error="must be an IANA time zone such as Asia/Shanghai"),
    )


def below_limits(lower: Mapping[str, int], limits: Mapping[str, int], name: str) -> None:
    """Refuse a lower threshold above the limit of the same currency (it could never apply)."""
    errors = {currency: [f"must not be above the limit of {limits[currency]}"]
              for currency, amount in lower.items() if currency in limits and amount > limits[currency]}
    if errors:
        raise ValidationError({name: errors})


def flatten(messages: Any, prefix: str) -> dict[str, list[str]]:
    """marshmallow's nested messages as ``{"params.limits.XYZ": [...]}``: every error names its field."""
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            path = prefix if key == "_schema" else f"{prefix}.{key}"
            for name, texts in flatten(value, path).items():
                flat.setdefault(name, []).extend(texts)
        return flat
    if isinstance(messages, list) and all(isinstance(text, str) for text in messages):
        return {prefix: list(messages)}
    if isinstance(messages, list):
        flat = {}
        for index, value in enumerate(messages):
            flat.update(flatten(value, f"{prefix}.{index}"))
        return flat
    return {prefix: [str(messages)]}
