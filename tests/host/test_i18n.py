"""Choosing the customer's language."""

from __future__ import annotations

import pytest
from flask import Flask

from host.i18n import LOCALES, normalize_locale, pick, request_locale


@pytest.fixture
def bare_app():
    app = Flask(__name__)
    app.config["DEFAULT_LOCALE"] = "zh-CN"
    return app


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("zh", "zh-CN"),
        ("zh-cn", "zh-CN"),
        ("ZH-Hans-CN", "zh-CN"),
        (" en ", "en"),
        ("en-GB", "en"),
        ("fr", None),
        ("", None),
        (None, None),
        ("zh_Hans_CN", "zh-CN"),
        ("english", None),  # a language tag, or nothing
        ("zhongwen", None),
        ("en\r\nSet-Cookie: x=1", None),
        ("en;q=0.9", None),
        ("en-", None),
    ],
)
def test_normalize_locale(value, expected):
    assert normalize_locale(value) == expected


@pytest.mark.parametrize(
    ("query", "accept_language", "expected"),
    [
        ("", "en-GB,en;q=0.9", "en"),
        ("", "fr, en;q=0.5", "en"),  # the best supported one
        ("", "en-US;q=0.2, zh;q=0.8", "zh-CN"),
        ("", "fr-FR", "zh-CN"),  # nothing supported: the default
        ("", "", "zh-CN"),
        ("?lang=en", "zh-CN", "en"),  # ?lang= wins over the header
        ("?lang=zh", "en", "zh-CN"),
        ("?lang=klingon", "en", "en"),  # an unsupported ?lang= falls back to the header
        ("?lang=", "en", "en"),
    ],
)
def test_request_locale(bare_app, query, accept_language, expected):
    headers = {"Accept-Language": accept_language} if accept_language else {}
    with bare_app.test_request_context("/" + query, headers=headers):
        assert request_locale() == expected


def test_request_locale_falls_back_to_the_configured_default(bare_app):
    bare_app.config["DEFAULT_LOCALE"] = "en"
    with bare_app.test_request_context("/", headers={"Accept-Language": "de"}):
        assert request_locale() == "en"


def test_every_chosen_locale_is_supported(bare_app):
    for header in ("en", "zh", "zh-TW", "en-AU", "ja"):
        with bare_app.test_request_context("/", headers={"Accept-Language": header}):
            assert request_locale() in LOCALES


@pytest.mark.parametrize(
    ("locale", "texts", "expected"),
    [
        ("en", {"zh": "财富体检", "en": "Wealth check-up"}, "Wealth check-up"),
        ("en-GB", {"zh": "财富体检", "en": "Wealth check-up"}, "Wealth check-up"),
        ("zh-CN", {"zh": "财富体检", "en": "Wealth check-up"}, "财富体检"),
        ("en", {"zh": "只有中文"}, "只有中文"),  # a missing language falls back to what there is
        ("en", {"zh": "中文", "en": ""}, "中文"),
        ("zh-CN", {}, ""),
    ],
)
def test_pick(locale, texts, expected):
    assert pick(locale, texts) == expected


# -- a chosen language is remembered (the canopy_lang cookie) ----------------------------------------


@pytest.fixture
def lang_app():
    """An app with the host's language handling and two views: a page and a form's POST that redirects."""
    from flask import redirect

    from host import i18n

    app = Flask(__name__)
    app.config.update(DEFAULT_LOCALE="zh-CN", SESSION_COOKIE_SECURE=True)
    i18n.init_app(app)

    @app.get("/page")
    def page():
        return request_locale()

    @app.post("/form")
    def form():
        return redirect("/page", 303)

    return app


def set_cookies(response) -> list[str]:
    return response.headers.getlist("Set-Cookie")


@pytest.mark.parametrize(
    ("query", "cookie", "accept_language", "expected"),
    [
        ("?lang=en", "zh-CN", "zh-CN", "en"),  # ?lang= first
        ("", "en", "zh-CN", "en"),  # then the cookie, over the browser's header
        ("", "zh-CN", "en", "zh-CN"),
        ("?lang=klingon", "en", "zh-CN", "en"),  # an unsupported ?lang= is ignored
        ("", "fr", "en", "en"),  # so is a cookie that holds anything but a supported locale
        ("", "zh", "en", "en"),
        ("", "EN", "zh-CN", "zh-CN"),
        ("", "en; Path=/", "zh-CN", "zh-CN"),
        ("", "<script>", "", "zh-CN"),
        ("", None, "en", "en"),  # no cookie: the header
    ],
)
def test_the_order_of_choices(lang_app, query, cookie, accept_language, expected):
    client = lang_app.test_client()
    if cookie is not None:
        client.set_cookie("canopy_lang", cookie)
    headers = {"Accept-Language": accept_language} if accept_language else {}
    assert client.get("/page" + query, headers=headers).get_data(as_text=True) == expected


def test_lang_is_remembered_with_the_cookies_policy(lang_app):
    client = lang_app.test_client()
    response = client.get("/page?lang=en", headers={"Accept-Language": "zh-CN"})
    (cookie,) = set_cookies(response)
    assert cookie.startswith("canopy_lang=en;")
    for attribute in ("Path=/", "SameSite=Lax", "Secure", "HttpOnly", "Max-Age=31536000"):
        assert attribute in cookie
    assert client.get("/page", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True) == "en"


def test_the_cookie_is_not_secure_where_the_session_cookie_is_not(lang_app):
    lang_app.config["SESSION_COOKIE_SECURE"] = False  # plain http in development, as the other cookies decide
    (cookie,) = set_cookies(lang_app.test_client().get("/page?lang=en"))
    assert "Secure" not in cookie and "SameSite=Lax" in cookie


def test_the_choice_survives_a_forms_post_and_its_redirect(lang_app):
    client = lang_app.test_client()
    client.get("/page?lang=en", headers={"Accept-Language": "zh-CN"})
    response = client.post("/form", headers={"Accept-Language": "zh-CN"}, follow_redirects=True)
    assert response.get_data(as_text=True) == "en"
    # and a POST that chooses (a form's action with ?lang=) remembers it on its redirect
    redirect = client.post("/form?lang=zh-CN")
    assert redirect.status_code == 303 and set_cookies(redirect)[0].startswith("canopy_lang=zh-CN;")
    assert client.get("/page", headers={"Accept-Language": "en"}).get_data(as_text=True) == "zh-CN"


@pytest.mark.parametrize("value", ["zh", "ZH-cn", "zh-Hans-CN", "zh-TW", " zh "])
def test_the_cookie_holds_the_supported_locale_never_what_was_sent(lang_app, value):
    (cookie,) = set_cookies(lang_app.test_client().get("/page", query_string={"lang": value}))
    assert cookie.startswith("canopy_lang=zh-CN;")


@pytest.mark.parametrize("value", ["klingon", "fr", "", "en" + "x" * 100, "<script>alert(1)</script>", "en\r\nSet-Cookie: x=1",
                                   "de;en"])
def test_an_unsupported_lang_sets_nothing(lang_app, value):
    response = lang_app.test_client().get("/page", query_string={"lang": value})
    assert set_cookies(response) == []


def test_a_hostile_cookie_is_ignored_and_never_written_back(lang_app):
    client = lang_app.test_client()
    client.set_cookie("canopy_lang", "<script>alert(1)</script>")
    response = client.get("/page", headers={"Accept-Language": "en"})
    assert response.get_data(as_text=True) == "en" and set_cookies(response) == []


def test_the_same_choice_again_sets_no_cookie(lang_app):
    client = lang_app.test_client()
    assert set_cookies(client.get("/page?lang=en")) != []
    assert set_cookies(client.get("/page?lang=en")) == []
    assert set_cookies(client.get("/page?lang=zh-CN"))[0].startswith("canopy_lang=zh-CN;")  # a new choice replaces it


def test_answers_the_cookie_chose_vary_with_cookies(lang_app):
    client = lang_app.test_client()
    client.set_cookie("canopy_lang", "en")
    assert "Cookie" in client.get("/page").headers.get("Vary", "")
    assert "Cookie" not in lang_app.test_client().get("/page").headers.get("Vary", "")


def test_a_mini_programs_origin_never_gets_the_cookie(lang_app):
    from host.storefront.origins import ENVIRON_KEY

    response = lang_app.test_client().get("/page?lang=en", environ_overrides={ENVIRON_KEY: "sh.deals"})
    assert response.get_data(as_text=True) == "en" and set_cookies(response) == []
