"""Languages: choosing the customer's, and translating the host's pages with gettext.

The language of a request is ``?lang=``, else the one remembered in the ``canopy_lang`` cookie
(set whenever ``?lang=`` chose one, so the choice outlives a form's POST and its redirect), else
the signed-in customer's setting, else the browser's ``Accept-Language``, else
``DEFAULT_LOCALE`` (docs/i18n.md says why in this order). Texts are written in English and
translated through gettext catalogs (Flask-Babel): each package of the host keeps its own
catalog in a ``translations/`` folder beside its code (``host/storefront/translations/…``), and
all of them are merged, so packages never share a file. ``make translations`` extracts new
messages and compiles the catalogs; a test refuses a catalog that misses a translation or a
compiled file that is out of date (docs/i18n.md).

Mini-programs' own names and titles come from their manifests as ``{zh, en}`` (:func:`pick`).
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask, Response, current_app, g, has_request_context, request

LOCALES = ("zh-CN", "en")
#: A language tag (BCP 47's shape, as ``?lang=`` and ``Accept-Language`` carry them), lower-cased.
LANGUAGE_TAG = re.compile(r"(?P<language>[a-z]{2,3})(?:[-_][a-z0-9]{1,8})*\Z")
#: Longest ``?lang=`` read (longer is no language tag a browser or a link sends).
MAX_LANGUAGE_TAG = 35
#: Babel's name of each locale (the catalogs' folder names).
BABEL_LOCALES = {"zh-CN": "zh_Hans_CN", "en": "en"}
HOST = Path(__file__).resolve().parent
#: The catalogs' domain (``translations/<locale>/LC_MESSAGES/messages.po``).
DOMAIN = "messages"
#: The cookie that remembers a language chosen with ``?lang=``: it holds one of :data:`LOCALES`
#: and nothing else (anything else in it is ignored).
COOKIE = "canopy_lang"
COOKIE_SECONDS = 365 * 24 * 3600


def normalize_locale(value: str | None) -> str | None:
    """Map a language tag — ``zh``, ``zh-cn``, ``zh_Hans_CN``, ``en-GB`` … — onto a supported
    locale by its language, or None (for ``fr``, ``english`` or anything that is no tag)."""
    if not value:
        return None
    found = LANGUAGE_TAG.match(value.strip().lower())
    language = found.group("language") if found else None
    return "zh-CN" if language == "zh" else "en" if language == "en" else None


def request_locale() -> str:
    """The locale of the current request (remembered for the rest of it)."""
    chosen = g.get("canopy_locale")
    if chosen is None:
        chosen, g.canopy_locale_source = _choose()
        g.canopy_locale = chosen
    return chosen


def explicit_choice() -> str | None:
    """The supported locale ``?lang=`` asks for (``zh``, ``en-GB`` … mapped), or None."""
    value = request.args.get("lang")
    return normalize_locale(value) if value and len(value) <= MAX_LANGUAGE_TAG else None


def remembered_choice() -> str | None:
    """The locale the ``canopy_lang`` cookie holds, if it holds exactly a supported one."""
    value = request.cookies.get(COOKIE)
    return value if value in LOCALES else None


def _choose() -> tuple[str, str]:
    """The request's locale and what chose it."""
    chosen = explicit_choice()
    if chosen:
        return chosen, "query"
    chosen = remembered_choice()
    if chosen:
        return chosen, "cookie"
    setting = _customer_setting()
    if setting:
        return setting, "customer"
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
    return normalize_locale(best) or current_app.config["DEFAULT_LOCALE"], "header"


def _on_plugin_origin() -> bool:
    """Whether this request came to a mini-program's own origin (never given host cookies)."""
    from .storefront.origins import served_plugin_id  # imported here: the storefront uses this module

    return served_plugin_id() is not None


def remember_choice(response: Response) -> Response:
    """Keep a ``?lang=`` choice in the ``canopy_lang`` cookie (only a supported locale, as the
    host writes it: never the text that came in), and mark answers the cookie chose as varying
    with cookies. Not on a mini-program's origin: host cookies never go there."""
    if g.get("canopy_locale_source") == "cookie":
        response.vary.add("Cookie")
    chosen = explicit_choice()
    if chosen is None or request.cookies.get(COOKIE) == chosen or _on_plugin_origin():
        return response
    response.set_cookie(COOKIE, chosen, max_age=COOKIE_SECONDS, path="/", httponly=True, samesite="Lax",
                        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE", True)))
    return response


#: The app extension that tells the signed-in customer's language (the identity package sets it).
CUSTOMER_LOCALE = "canopy.customer_locale"


def _customer_setting() -> str | None:
    """The signed-in customer's language, as the identity package tells it (None when nobody is
    signed in, or in an app without customers)."""
    tell = current_app.extensions.get(CUSTOMER_LOCALE)
    value = tell() if tell is not None else None
    return normalize_locale(value) if value else None


def catalog_folders() -> list[Path]:
    """Every ``translations`` folder of the host's packages."""
    return sorted(path for path in HOST.rglob("translations") if path.is_dir())


def _babel_locale() -> str | None:
    return BABEL_LOCALES[request_locale()] if has_request_context() else None


def init_app(app: Flask) -> None:
    """Translate the app's templates and messages into the request's language, and remember a
    language chosen with ``?lang=`` in a cookie."""
    from flask_babel import Babel

    Babel(app, locale_selector=_babel_locale, default_domain=DOMAIN,
          default_translation_directories=";".join(str(path) for path in catalog_folders()))
    app.after_request(remember_choice)


def pick(locale: str, texts: dict[str, str]) -> str:
    """The text of ``texts`` (``{"zh": …, "en": …}``) for ``locale``."""
    return texts.get("en" if locale.startswith("en") else "zh") or next(iter(texts.values()), "")
