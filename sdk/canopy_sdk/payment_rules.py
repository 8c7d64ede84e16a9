"""The rules every ``ctx.payments`` call follows, shared by the host and the test kit.

Money is a whole number of minor units of an ISO 4217 currency (1999 is 19.99 CNY), never a
float. Each ``check_*`` returns the value in its canonical form or raises
:class:`~canopy_sdk.errors.InvalidPayment` whose ``field`` names the argument at fault and
whose message starts with that name.

- ``amount``: an ``int`` (not a bool, float or string), above zero, at most 10 billion major
  units of its currency;
- ``currency``: a three-letter code of :data:`CURRENCIES` (case-insensitive) that the host
  accepts (:data:`DEFAULT_CURRENCIES` unless configured otherwise);
- ``description``: 1–200 characters, not only spaces, without control or formatting
  characters (it is shown on the bank's own confirmation page, so no bidi tricks);
- ``metadata``: None or an object of at most 20 keys (strings of 1–40 characters) whose values
  are strings, numbers, booleans or null, at most 2,048 bytes as JSON;
- ``idempotency_key``: 1–255 printable ASCII characters without spaces;
- a refund's ``reason``: a string of at most 200 characters (None counts as empty).
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import datetime, timezone
from typing import Any

from .errors import InvalidPayment

#: ISO 4217 currencies the bank's ledger knows, with their minor-unit exponent.
CURRENCIES: dict[str, int] = {
    "CNY": 2, "HKD": 2, "MOP": 2, "TWD": 2, "USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KRW": 0, "SGD": 2,
    "AUD": 2, "CAD": 2, "CHF": 2, "NZD": 2, "THB": 2, "MYR": 2,
}
#: What the host accepts unless configured otherwise.
DEFAULT_CURRENCIES = frozenset({"CNY"})
#: The largest amount one payment may carry, in major units.
MAX_MAJOR_UNITS = 10_000_000_000
MAX_DESCRIPTION = 200
MAX_METADATA_KEYS = 20
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_BYTES = 2048
MAX_REASON = 200
#: How long a customer has to confirm an intent before it expires.
CONFIRM_WINDOW_SECONDS = 30 * 60

#: The states of a payment intent. Only ``requires_confirmation`` ever changes.
REQUIRES_CONFIRMATION = "requires_confirmation"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELED = "canceled"
EXPIRED = "expired"
STATES = (REQUIRES_CONFIRMATION, SUCCEEDED, FAILED, CANCELED, EXPIRED)

#: The events ``canopy_on_event`` receives about payments, by the state they report.
EVENT_FOR_STATE = {
    SUCCEEDED: "payment_intent.succeeded",
    FAILED: "payment_intent.failed",
    CANCELED: "payment_intent.canceled",
    EXPIRED: "payment_intent.expired",
}
REFUND_SUCCEEDED = "refund.succeeded"
EVENT_TYPES = (*EVENT_FOR_STATE.values(), REFUND_SUCCEEDED)

_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def _invalid(field: str, message: str) -> InvalidPayment:
    return InvalidPayment(f"{field}: {message}", field=field)


def check_currency(value: Any, accepted: frozenset[str] | set[str] | None = None) -> str:
    """Return ``value`` as an upper-case code of :data:`CURRENCIES` that ``accepted`` lists."""
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise _invalid("currency", "must be a three-letter ISO 4217 code such as CNY")
    code = value.upper()
    if code not in CURRENCIES:
        raise _invalid("currency", f"{code} is not an ISO 4217 currency the bank settles")
    if accepted is not None and code not in accepted:
        raise _invalid("currency", f"{code} is not accepted here; use {', '.join(sorted(accepted))}")
    return code


def max_amount(currency: str) -> int:
    """Return the largest amount, in minor units, one payment in ``currency`` may carry."""
    return MAX_MAJOR_UNITS * 10 ** CURRENCIES[currency]


def check_amount(value: Any, currency: str) -> int:
    """Return ``value`` if it is a positive whole number of minor units of ``currency``, within
    :func:`max_amount`. Booleans, floats (even 12.0) and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "a decimal number" if isinstance(value, float) else type(value).__name__
        raise _invalid("amount", f"must be a whole number of minor units (e.g. 1999 for 19.99 {currency}), not {kind}")
    if value <= 0:
        raise _invalid("amount", "must be greater than zero")
    if value > max_amount(currency):
        raise _invalid("amount", f"must be at most {max_amount(currency)} minor units of {currency}")
    return value


def check_description(value: Any) -> str:
    """Return ``value`` stripped if it is 1–200 characters without control or formatting characters."""
    if not isinstance(value, str) or not value.strip():
        raise _invalid("description", "must be a non-empty string")
    if len(value) > MAX_DESCRIPTION:
        raise _invalid("description", f"must be at most {MAX_DESCRIPTION} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise _invalid("description", "must not hold control or formatting characters")
    return value.strip()


def check_metadata(value: Any) -> dict[str, Any]:
    """Return ``value`` as a new dict (None gives ``{}``) if it is a small JSON object of scalars."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid("metadata", "must be a JSON object")
    if len(value) > MAX_METADATA_KEYS:
        raise _invalid("metadata", f"must have at most {MAX_METADATA_KEYS} keys")
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_METADATA_KEY_LENGTH:
            raise _invalid("metadata", f"keys must be strings of 1-{MAX_METADATA_KEY_LENGTH} characters")
        if item is not None and not isinstance(item, (str, int, float, bool)):
            raise _invalid("metadata", f"value of {key!r} must be a string, number, boolean or null")
        if isinstance(item, float) and item != item:
            raise _invalid("metadata", f"value of {key!r} must not be NaN")
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise _invalid("metadata", "must be JSON (no infinite numbers)") from None
    if len(encoded.encode("utf-8", "surrogatepass")) > MAX_METADATA_BYTES:
        raise _invalid("metadata", f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
    return dict(value)


def check_idempotency_key(value: Any) -> str:
    """Return ``value`` if it is 1–255 printable ASCII characters without spaces."""
    if not isinstance(value, str) or not _IDEMPOTENCY_KEY.fullmatch(value):
        raise _invalid("idempotency_key", "must be 1-255 printable ASCII characters without spaces")
    return value


def check_reason(value: Any) -> str:
    """Return a refund's ``reason`` stripped (None counts as ``""``), at most 200 characters."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_REASON:
        raise _invalid("reason", f"must be a string of at most {MAX_REASON} characters")
    return value.strip()


def check_intent_request(amount: Any, currency: Any, description: Any, metadata: Any,
                         accepted: frozenset[str] | set[str] | None = DEFAULT_CURRENCIES,
                         ) -> tuple[int, str, str, dict[str, Any]]:
    """Return ``(amount, currency, description, metadata)`` of a new intent, checked in that
    order (the currency first, since the amount's limit depends on it)."""
    code = check_currency(currency, accepted)
    return check_amount(amount, code), code, check_description(description), check_metadata(metadata)


def iso_utc(seconds: float) -> str:
    """Return a POSIX time as ISO 8601 UTC to the second, e.g. ``2026-11-22T08:00:00Z``."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
