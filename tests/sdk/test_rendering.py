"""canopy_sdk.rendering and PluginHarness.render: pages render as the host renders them."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from canopy_sdk import Page
from canopy_sdk.rendering import render_page, template_environment
from canopy_sdk.testing import PluginHarness

PAGE = """<!DOCTYPE html>
<html lang="{{ locale }}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<link rel="stylesheet" href="{{ static_url('app.css') }}"></head>
<body><a href="{{ page_url('/bills', id=3) }}">{{ who }}</a><form data-api="{{ api_url('/pay') }}"></form>
<p>{{ branch.code }} {{ plugin_id }}</p></body></html>
"""


@pytest.fixture
def folder(make_plugin, tmp_path):
    return make_plugin(
        tmp_path,
        files={
            "main.py": "plugin = object()\n",
            "templates/index.html": PAGE,
            "templates/bad_link.html": PAGE.replace("page_url('/bills', id=3)", "page_url('/nowhere')"),
            "templates/inline.html": PAGE.replace("<p>", "<p onclick=\"x()\">"),
            "templates/escape.html": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "templates/undefined.html": "{{ nobody }}",
            "static/app.css": "p{}",
        },
    )


def test_render_page_autoescapes_context_and_helpers_win(folder):
    env = template_environment(folder)
    page = Page(title="t", template="index.html", context={"who": "<script>", "locale": "forged"})
    helpers = {"page_url": lambda p, **q: p, "static_url": lambda f: f, "api_url": lambda p: p,
               "locale": "en", "branch": {"code": "SH001"}, "plugin_id": "acme.bills"}
    html = render_page(env, page, helpers)
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert 'lang="en"' in html


def test_inline_html_is_returned_as_is(folder):
    assert render_page(template_environment(folder), Page(title="t", html="<p>x</p>"), {}) == "<p>x</p>"


def test_the_sandbox_refuses_reaching_python_internals(folder):
    with pytest.raises(SecurityError):
        render_page(template_environment(folder), Page(title="t", template="escape.html"), {})


def test_undefined_names_are_errors(folder):
    with pytest.raises(UndefinedError):
        render_page(template_environment(folder), Page(title="t", template="undefined.html"), {})


def test_harness_render_gives_host_shaped_addresses(folder):
    harness = PluginHarness(folder)
    html = harness.render(Page(title="t", template="index.html", context={"who": "Ann"}), locale="en")
    assert 'href="/mp/acme.bills/bills?branch=SH001&amp;lang=en&amp;id=3"' in html
    assert 'href="/mp/acme.bills/static/app.css"' in html
    assert 'data-api="/mp/acme.bills/api/pay?branch=SH001&amp;lang=en"' in html


@pytest.mark.parametrize(
    ("template", "message"),
    [("bad_link.html", "does not declare"), ("inline.html", "inline event handler"), ("missing.html", "missing")],
)
def test_harness_render_names_what_is_wrong(folder, template, message):
    harness = PluginHarness(folder)
    with pytest.raises(AssertionError, match=message):
        harness.render(Page(title="t", template=template, context={"who": "x"}))
