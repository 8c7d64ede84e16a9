"""Turning a complete set of answers into a risk level and a suggested asset allocation.

The score is the sum of the chosen options' points (1–22). Two answers cap the level whatever
the score, as suitability rules require: money needed within a year, or a customer who would
sell everything after a 20% fall, is never offered more than level 2. Money needed within
one to three years keeps up to ten more percentage points in cash.
"""

from __future__ import annotations

from typing import Any, Mapping

from .questionnaire import QUESTIONS_BY_ID

ASSET_CLASSES = ("cash", "bonds", "equities", "alternatives")
ASSET_NAMES = {
    "cash": {"zh": "现金", "en": "Cash"},
    "bonds": {"zh": "债券", "en": "Bonds"},
    "equities": {"zh": "股票", "en": "Equities"},
    "alternatives": {"zh": "另类投资", "en": "Alternatives"},
}

LEVEL_NAMES = {
    1: {"zh": "保守型", "en": "Conservative"},
    2: {"zh": "稳健型", "en": "Moderate"},
    3: {"zh": "平衡型", "en": "Balanced"},
    4: {"zh": "成长型", "en": "Growth"},
    5: {"zh": "进取型", "en": "Aggressive"},
}

#: Highest score of each level, lowest level first.
LEVEL_CEILINGS = (6, 10, 14, 18, 22)

#: The allocation of each level, in the order of ASSET_CLASSES; each row sums to 100.
BASE_ALLOCATIONS = {
    1: (30, 60, 10, 0),
    2: (15, 55, 25, 5),
    3: (10, 40, 40, 10),
    4: (5, 25, 60, 10),
    5: (5, 10, 70, 15),
}

#: Answers that cap the level, with the reason shown to the customer.
LEVEL_CAPS = {
    ("horizon", "lt1"): (2, {
        "zh": "您计划在 1 年内使用这笔资金，建议不超过稳健型配置。",
        "en": "You plan to use this money within a year, so we suggest no more than a Moderate mix.",
    }),
    ("drawdown", "sell_all"): (2, {
        "zh": "您表示下跌时会全部卖出，建议不超过稳健型配置。",
        "en": "You would sell everything after a fall, so we suggest no more than a Moderate mix.",
    }),
}

#: Percentage points moved from equities to cash for money needed in 1–3 years.
SHORT_HORIZON_CASH_SHIFT = 10


class IncompleteAnswers(ValueError):
    """The answers miss a question or hold an option that does not exist."""


def score(answers: Mapping[str, str]) -> int:
    """Return the risk score of a complete, valid set of answers."""
    total = 0
    for question_id, question in QUESTIONS_BY_ID.items():
        option = question.option(answers.get(question_id, ""))
        if option is None:
            raise IncompleteAnswers(f"question {question_id!r} has no valid answer")
        total += option.points
    return total


def level_for_score(points: int) -> int:
    """Return the risk level (1–5) a score falls in, before any cap."""
    for level, ceiling in enumerate(LEVEL_CEILINGS, start=1):
        if points <= ceiling:
            return level
    return len(LEVEL_CEILINGS)


def allocation(level: int, answers: Mapping[str, str]) -> dict[str, int]:
    """Return the suggested percentages by asset class for ``level``; they sum to 100."""
    cash, bonds, equities, alternatives = BASE_ALLOCATIONS[level]
    if answers.get("horizon") == "1to3":
        shift = min(SHORT_HORIZON_CASH_SHIFT, equities)
        cash, equities = cash + shift, equities - shift
    return dict(zip(ASSET_CLASSES, (cash, bonds, equities, alternatives)))


def assess(answers: Mapping[str, str]) -> dict[str, Any]:
    """Return the full result for a complete set of answers, as plain data.

    Keys: ``score``, ``level`` (1–5), ``name`` (``zh``/``en``), ``allocation`` (percent by
    asset class) and ``notes`` (why the level was capped, in both languages).
    Raises :class:`IncompleteAnswers` when an answer is missing or invalid.
    """
    points = score(answers)
    level = level_for_score(points)
    notes = []
    for (question_id, code), (cap, note) in LEVEL_CAPS.items():
        if answers.get(question_id) == code and level > cap:
            level = cap
            notes.append(note)
    return {
        "score": points,
        "level": level,
        "name": dict(LEVEL_NAMES[level]),
        "allocation": allocation(level, answers),
        "notes": notes,
    }


def allocation_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return a result's allocation as rows (``key``, ``zh``, ``en``, ``percent``) for display."""
    shares = result.get("allocation") or {}
    return [{"key": key, **ASSET_NAMES[key], "percent": shares.get(key, 0)} for key in ASSET_CLASSES]


def summary(result: Mapping[str, Any], lang: str) -> str:
    """Return a one-line summary of an allocation, e.g. ``Cash 10% · Bonds 40% · …``."""
    return " · ".join(f"{row[lang]} {row['percent']}%" for row in allocation_rows(result))
