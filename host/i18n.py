"""Languages: choosing the customer's, and translating the host's pages with gettext.

The language of a request is ``?lang=``, else the signed-in customer's setting, else the
browser's ``Accept-Language``, else ``DEFAULT_LOCALE``. Texts are written in English and
translated through gettext catalogs (Flask-Babel): each package of the host keeps its own
catalog in a ``translations/`` folder beside its code (``host/storefront/translations/…``), and
all of them are merged, so packages never share a file. ``make translations`` extracts new
messages and compiles the catalogs; a test refuses a catalog that misses a translation or a
compiled file that is out of date (docs/i18n.md).

Mini-programs' own names and titles come from their manifests as ``{zh, en}`` (:func:`pick`).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, g, has_request_context, request

LOCALES = ("zh-CN", "en")
#: Babel's name of each locale (the catalogs' folder names).
BABEL_LOCALES = {"zh-CN": "zh_Hans_CN", "en": "en"}
HOST = Path(__file__).resolve().parent
#: The catalogs' domain (``translations/<locale>/LC_MESSAGES/messages.po``).
DOMAIN = "messages"


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
    """The locale of the current request (remembered for the rest of it)."""
    chosen = g.get("canopy_locale")
    if chosen is None:
        chosen = g.canopy_locale = _choose()
    return chosen


def _choose() -> str:
    chosen = normalize_locale(request.args.get("lang"))
    if chosen:
        return chosen
    setting = _customer_setting()
    if setting:
        return setting
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
    return normalize_locale(best) or current_app.config["DEFAULT_LOCALE"]


def _customer_setting() -> str | None:
    """The signed-in customer's language, without loading them when nobody is signed in."""
    if "canopy.db" not in current_app.extensions:
        return None
    from .identity.sessions import current_customer  # imported here: identity uses this module

    customer = current_customer()
    return normalize_locale(customer.locale) if customer is not None else None


def catalog_folders() -> list[Path]:
    """Every ``translations`` folder of the host's packages."""
    return sorted(path for path in HOST.rglob("translations") if path.is_dir())


def _babel_locale() -> str | None:
    return BABEL_LOCALES[request_locale()] if has_request_context() else None


def init_app(app: Flask) -> None:
    """Translate the app's templates and messages into the request's language."""
    from flask_babel import Babel

    Babel(app, locale_selector=_babel_locale, default_domain=DOMAIN,
          default_translation_directories=";".join(str(path) for path in catalog_folders()))


def pick(locale: str, texts: dict[str, str]) -> str:
    """The text of ``texts`` (``{"zh": …, "en": …}``) for ``locale``."""
    return texts.get("en" if locale.startswith("en") else "zh") or next(iter(texts.values()), "")
