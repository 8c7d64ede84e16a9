"""The rules every ``ctx.storage`` follows, shared by the host and the test kit.

Keys: 1–200 characters of letters, digits and ``. _ - : /``, not starting with ``/``.
Values: anything JSON can hold (no NaN or infinity), at most 64 KiB once encoded.
A namespace (one plugin, or one plugin × customer) holds at most 10,000 live keys.
Expiry (``ttl``) is in seconds, from 1 second to 366 days.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import InvalidKey, InvalidValue, ValueTooLarge

MAX_KEY_LENGTH = 200
MAX_VALUE_BYTES = 64 * 1024
MAX_KEYS_PER_NAMESPACE = 10_000
MAX_LIST_LIMIT = 1_000
MIN_TTL_SECONDS = 1
MAX_TTL_SECONDS = 366 * 24 * 3600

_KEY = re.compile(r"^[A-Za-z0-9._:\-][A-Za-z0-9._:/\-]*\Z")


def check_key(key: Any) -> str:
    """Return ``key`` if it is a valid storage key, else raise :class:`InvalidKey`."""
    if not isinstance(key, str):
        raise InvalidKey(f"storage keys are strings, got {type(key).__name__}")
    if not key:
        raise InvalidKey("storage key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"storage key is {len(key)} characters; the limit is {MAX_KEY_LENGTH}")
    if not _KEY.match(key):
        raise InvalidKey(
            f"storage key {key[:40]!r} may hold only letters, digits and . _ - : / and must not start with '/'"
        )
    return key


def check_prefix(prefix: Any) -> str:
    """Return ``prefix`` if it could begin a valid key (the empty prefix lists all)."""
    if prefix == "":
        return prefix
    return check_key(prefix)


def encode_value(value: Any) -> str:
    """Encode ``value`` as compact JSON, enforcing the size limit."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidValue(f"storage values must be JSON-able: {exc}") from None
    size = len(text.encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise ValueTooLarge(f"storage value is {size} bytes; the limit is {MAX_VALUE_BYTES}")
    return text


def decode_value(text: str) -> Any:
    """Decode a value stored by :func:`encode_value`."""
    return json.loads(text)


def check_ttl(ttl: Any) -> float | None:
    """Return ``ttl`` in seconds (or None for no expiry), raising ValueError when out of range."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl != ttl:
        raise InvalidValue(f"ttl must be a number of seconds, got {ttl!r}")
    if not MIN_TTL_SECONDS <= ttl <= MAX_TTL_SECONDS:
        raise InvalidValue(f"ttl must be between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS} seconds, got {ttl!r}")
    return float(ttl)


def check_limit(limit: Any) -> int:
    """Return a listing ``limit`` in 1..MAX_LIST_LIMIT."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidValue(f"limit must be an integer from 1 to {MAX_LIST_LIMIT}, got {limit!r}")
    return limit
