"""The customer's saved check-up: their answers and last result, in ``ctx.customer_storage``.

One key per customer holds ``{"answers", "result", "saved_at"}``. A record that no longer
reads as a complete, valid set of answers (for example after an option was retired) is
treated as absent rather than shown half-right.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from .questionnaire import read_answers
from .scoring import ASSET_CLASSES, IncompleteAnswers, LEVEL_NAMES, assess

RECORD_KEY = "checkup"

#: China Standard Time; Shanghai keeps no daylight-saving time.
CHINA_TIME = timezone(timedelta(hours=8))


def save(storage: Any, answers: Mapping[str, str], result: Mapping[str, Any]) -> dict[str, Any]:
    """Store ``answers`` and their ``result`` for the customer; return the record stored."""
    record = {
        "answers": dict(answers),
        "result": dict(result),
        "saved_at": datetime.now(CHINA_TIME).isoformat(timespec="seconds"),
    }
    storage.set(RECORD_KEY, record)
    return record


def load(storage: Any) -> dict[str, Any] | None:
    """Return the customer's saved record, or None when there is none or it no longer reads."""
    record = storage.get(RECORD_KEY)
    if not isinstance(record, dict):
        return None
    answers, errors = read_answers(record.get("answers"))
    if errors:
        return None
    result = _normalised_result(record.get("result"))
    if result is None:
        try:
            result = assess(answers)
        except IncompleteAnswers:  # pragma: no cover - read_answers already checked them
            return None
    saved_at = record.get("saved_at")
    return {"answers": answers, "result": result, "saved_at": saved_at if isinstance(saved_at, str) else None}


def forget(storage: Any) -> bool:
    """Delete the customer's record; return whether there was one."""
    return storage.delete(RECORD_KEY)


def _normalised_result(value: Any) -> dict[str, Any] | None:
    """Return a stored result in the shape :func:`.scoring.assess` gives, or None if it is not one."""
    if not isinstance(value, dict):
        return None
    level, shares = value.get("level"), value.get("allocation")
    if type(level) is not int or level not in LEVEL_NAMES or not isinstance(shares, dict):
        return None
    percents = [shares.get(key) for key in ASSET_CLASSES]
    if not all(type(p) is int and 0 <= p <= 100 for p in percents) or sum(percents) != 100:
        return None
    notes = value.get("notes")
    return {
        "score": value.get("score") if type(value.get("score")) is int else None,
        "level": level,
        "name": dict(LEVEL_NAMES[level]),
        "allocation": dict(zip(ASSET_CLASSES, percents)),
        "notes": [
            {"zh": note["zh"], "en": note["en"]}
            for note in (notes if isinstance(notes, list) else [])
            if isinstance(note, dict) and isinstance(note.get("zh"), str) and isinstance(note.get("en"), str)
        ],
    }
