"""Checks on what hooks return, shared by the host and the test kit.

Each ``check_*`` returns the value in its canonical form or raises
:class:`~canopy_sdk.errors.InvalidResult` saying what is wrong.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import InvalidResult
from .types import Page, SearchHit, Tile

MAX_TILES = 12
MAX_SEARCH_HITS = 20
MAX_API_RESULT_BYTES = 1024 * 1024


def _items(value: Any, cls: type, limit: int, what: str) -> list:
    if value is None:
        return []
    if isinstance(value, cls):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise InvalidResult(f"{what} must return a list of {cls.__name__}, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidResult(f"{what} returned {len(value)} items; the limit is {limit}")
    for item in value:
        if type(item) is not cls:
            raise InvalidResult(f"{what} must return {cls.__name__} items, got {type(item).__name__}")
    return list(value)


def check_tiles(value: Any) -> list[Tile]:
    """Check a ``canopy_storefront_tiles`` result."""
    return _items(value, Tile, MAX_TILES, "canopy_storefront_tiles")


def check_search_hits(value: Any) -> list[SearchHit]:
    """Check a ``canopy_search`` result."""
    return _items(value, SearchHit, MAX_SEARCH_HITS, "canopy_search")


def check_page(value: Any) -> Page | None:
    """Check a ``canopy_page`` result (None means no such page)."""
    if value is None or type(value) is Page:
        return value
    raise InvalidResult(f"canopy_page must return a Page or None, got {type(value).__name__}")


def encode_api_result(value: Any) -> str:
    """Check a ``canopy_api`` result and return it encoded as JSON."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidResult(f"canopy_api must return a JSON-able value: {exc}") from None
    if len(text.encode("utf-8")) > MAX_API_RESULT_BYTES:
        raise InvalidResult(f"canopy_api returned more than {MAX_API_RESULT_BYTES} bytes")
    return text
