"""Rendering a plugin's page templates: sandboxed, autoescaped, strict."""

from __future__ import annotations

from pathlib import Path

import pytest
from canopy_sdk import Page
from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SecurityError

from host.storefront.rendering import environment, render_page

BRANCH = {"code": "SH001", "name": "Shanghai Branch"}


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "templates").mkdir()
    return tmp_path


def render(folder: Path, source: str, context: dict | None = None, *, name: str = "page.html", locale: str = "en") -> str:
    (folder / "templates" / name).write_text(source, encoding="utf-8")
    page = Page(title="T", template=name, context=context or {})
    # environments (and their compiled templates) are cached per (plugin, folder): each
    # test has its own folder, and one name per source within a test
    return render_page("test.render", folder, page, branch=BRANCH, locale=locale)


def test_context_values_are_escaped(folder):
    html = render(folder, "<p>{{ value }}</p><a title='{{ value }}'>", {"value": "<script>alert('x')</script>"})
    assert "<script>" not in html
    assert html == "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</p><a title='&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;'>"


@pytest.mark.parametrize("name", ["page.txt", "page.xml", "page"])
def test_autoescape_is_on_whatever_the_file_name(folder, name):
    assert render(folder, "{{ value }}", {"value": "<b>"}, name=name) == "&lt;b&gt;"


def test_ready_html_is_returned_as_the_plugin_wrote_it(folder):
    page = Page(title="T", html="<p>{{ not a template }}</p>")
    assert render_page("test.render", folder, page, branch=BRANCH, locale="en") == "<p>{{ not a template }}</p>"


def test_the_helpers_link_inside_the_plugin_with_branch_and_locale(folder):
    html = render(
        folder,
        "{{ page_url('/result', a=1, branch='EVIL') }}|{{ page_url() }}|{{ static_url('app.css') }}|{{ api_url('/answers') }}"
        "|{{ locale }}|{{ branch.code }}|{{ plugin_id }}",
    )
    assert html.split("|") == [
        # paths of the plugin's own origin, where its pages are served
        "/result?a=1&amp;branch=SH001&amp;lang=en",
        "/?branch=SH001&amp;lang=en",
        "/static/app.css",
        "/api/answers?branch=SH001&amp;lang=en",
        "en",
        "SH001",
        "test.render",
    ]


def test_the_plugins_context_cannot_replace_the_helpers(folder):
    context = {"page_url": "https://evil.example/", "branch": {"code": "EVIL"}, "locale": "xx", "plugin_id": "other"}
    html = render(folder, "{{ page_url('/') }}|{{ branch.code }}|{{ locale }}|{{ plugin_id }}", context)
    assert html == "/?branch=SH001&amp;lang=en|SH001|en|test.render"


def test_templates_can_extend_and_include_their_own_files(folder):
    (folder / "templates" / "base.html").write_text("<main>{% block body %}{% endblock %}</main>", encoding="utf-8")
    (folder / "templates" / "part.html").write_text("<i>{{ value }}</i>", encoding="utf-8")
    html = render(folder, '{% extends "base.html" %}{% block body %}{% include "part.html" %}{% endblock %}', {"value": "&"})
    assert html == "<main><i>&amp;</i></main>"


def test_undefined_variables_raise(folder):
    with pytest.raises(UndefinedError):
        render(folder, "{{ missing }}")
    with pytest.raises(UndefinedError):
        render(folder, "{{ value.missing.deeper }}", {"value": {}}, name="deeper.html")


def test_syntax_errors_and_missing_templates_raise(folder):
    with pytest.raises(TemplateSyntaxError):
        render(folder, "{% for %}")
    with pytest.raises(TemplateNotFound):
        render_page("test.render", folder, Page(title="T", template="absent.html"), branch=BRANCH, locale="en")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ page_url.__globals__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ value|attr('__class__') }}",
        "{{ '{0.__class__}'.format(value) }}",
        "{% set items = [] %}{{ items.append(1) }}",
        "{{ branch.update({'code': 'X'}) }}",
    ],
)
def test_sandbox_escapes_raise_security_errors(folder, source):
    with pytest.raises(SecurityError):
        render(folder, source, {"value": "v"})


@pytest.mark.parametrize("target", ["../secret.txt", "/etc/passwd", "templates/../../secret.txt"])
def test_templates_cannot_reach_files_outside_their_folder(folder, target):
    (folder / "secret.txt").write_text("TOPSECRET", encoding="utf-8")
    with pytest.raises(TemplateNotFound):
        render(folder, "{% include '" + target + "' %}")


def test_each_plugin_folder_has_its_own_cached_environment(folder, tmp_path):
    other = tmp_path / "other"
    (other / "templates").mkdir(parents=True)
    first = environment("test.env", folder)
    assert environment("test.env", folder) is first
    assert environment("test.env", other) is not first
    assert environment("test.other", folder) is not first
    (folder / "templates" / "same.html").write_text("mine", encoding="utf-8")
    (other / "templates" / "same.html").write_text("theirs", encoding="utf-8")
    assert environment("test.env", folder).get_template("same.html").render() == "mine"
    assert environment("test.env", other).get_template("same.html").render() == "theirs"


# -- the host's limits, and where templates are rendered -----------------------------------------

def test_a_page_rendering_past_the_size_limit_is_the_plugins_invalid_result(folder):
    from canopy_sdk.errors import InvalidResult

    from host.storefront.rendering import MAX_PAGE_BYTES

    source = "{% for i in range(100000) %}{{ filler }}{% endfor %}"  # 10 MB if it were let run
    with pytest.raises(InvalidResult, match=f"more than {MAX_PAGE_BYTES} bytes"):
        render(folder, source, {"filler": "é" * 50})
    assert len(render(folder, source, {"filler": "é" * 5}, name="fits.html").encode()) == 1_000_000


def test_ready_html_past_the_size_limit_or_not_a_string_is_invalid(folder):
    from canopy_sdk.errors import InvalidResult

    from host.storefront.rendering import MAX_PAGE_BYTES
    from sandbox.pages import check_size

    with pytest.raises(InvalidResult, match="more than"):
        render_page("test.render", folder, Page(title="T", html="x" * (MAX_PAGE_BYTES + 1)), branch=BRANCH, locale="en")
    for junk in (None, b"<p>", 42, ["<p>"]):
        with pytest.raises(InvalidResult, match="must be a string"):
            check_size(junk)


def test_a_sandboxed_plugins_template_is_never_rendered_here(folder):
    from canopy_sdk.errors import InvalidResult

    (folder / "templates" / "page.html").write_text("<p>{{ locale }}</p>", encoding="utf-8")
    page = Page(title="T", template="page.html")
    with pytest.raises(InvalidResult, match="must arrive rendered"):
        render_page("test.render", folder, page, branch=BRANCH, locale="en", in_process=False)
    html = Page(title="T", html="<p>rendered in its worker</p>")
    assert render_page("test.render", folder, html, branch=BRANCH, locale="en", in_process=False) == html.html
