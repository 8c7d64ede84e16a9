"""Choosing the customer's language: ``?lang=``, then ``Accept-Language``, then the default."""

from __future__ import annotations

from flask import current_app, request

LOCALES = ("zh-CN", "en")


def normalize_locale(value: str | None) -> str | None:
    """Map ``zh``, ``zh-cn``, ``en-GB`` … onto a supported locale, or None."""
    if not value:
        return None
    value = value.strip().lower()
    if value.startswith("zh"):
        return "zh-CN"
    if value.startswith("en"):
        return "en"
    return None


def request_locale() -> str:
    """The locale of the current request."""
    chosen = normalize_locale(request.args.get("lang"))
    if chosen:
        return chosen
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
    return normalize_locale(best) or current_app.config["DEFAULT_LOCALE"]


def pick(locale: str, texts: dict[str, str]) -> str:
    """The text of ``texts`` (``{"zh": …, "en": …}``) for ``locale``."""
    return texts.get("en" if locale.startswith("en") else "zh") or next(iter(texts.values()), "")
