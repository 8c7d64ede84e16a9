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
