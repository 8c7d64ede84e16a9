"""Fixtures for the city.utilities tests: a harness, and rendering a page the way the host does.

Kept inside this plugin's folder on purpose: each bundled mini-program is self-contained.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable
from urllib.parse import urlencode

import pytest
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from canopy_sdk import Page
from canopy_sdk.testing import PluginHarness

PLUGIN_FOLDER = Path(__file__).parents[1]
VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@pytest.fixture
def harness() -> PluginHarness:
    """A fresh harness (and so fresh storage) for each test."""
    return PluginHarness(PLUGIN_FOLDER)


@pytest.fixture
def render(harness: PluginHarness) -> Callable[..., str]:
    """Return ``render(page, locale="zh-CN")``: the page's HTML, checked by :func:`check_html`."""

    def _render(page: Page, locale: str = "zh-CN") -> str:
        harness.template_path(page)
        html = render_template(harness, page, locale)
        check_html(html)
        return html

    return _render


def render_template(harness: PluginHarness, page: Page, locale: str) -> str:
    """Render ``page`` with a sandboxed, autoescaping Jinja2 and stubs of the host's globals."""
    folder = harness.folder
    declared = {spec.path for spec in harness.manifest.pages}
    env = SandboxedEnvironment(
        autoescape=True, undefined=StrictUndefined, loader=FileSystemLoader(folder / "templates")
    )

    def page_url(path: str, **query: str) -> str:
        assert path in declared, f"page_url({path!r}) names a page the manifest does not declare"
        return f"/mp/{harness.manifest.id}{path}" + (f"?{urlencode(query)}" if query else "")

    def static_url(filename: str) -> str:
        assert (folder / "static" / filename).is_file(), f"static/{filename} is missing"
        return f"/mp/{harness.manifest.id}/static/{filename}"

    def api_url(path: str) -> str:
        assert path.startswith("/"), path
        return f"/mp/{harness.manifest.id}/api{path}"

    env.globals.update(
        page_url=page_url,
        static_url=static_url,
        api_url=api_url,
        locale=locale,
        branch={"code": "SH001", "name": "上海分行"},
        plugin_id=harness.manifest.id,
    )
    return env.get_template(page.template).render(**page.context)


class _Checker(HTMLParser):
    """Collects what :func:`check_html` asserts about a document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.ids: set[str] = set()
        self.doctype = False
        self.viewport = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"inline event handler {name}= on <{tag}>")
            if name == "style":
                self.problems.append(f"inline style on <{tag}>")
            if name in ("src", "href", "action") and value and re.match(r"^(?:[a-z]+:)?//", value, re.I):
                self.problems.append(f"external resource {value!r} on <{tag}>")
            if name == "id":
                if value in self.ids:
                    self.problems.append(f"duplicate id {value!r}")
                self.ids.add(value or "")
        if tag == "script" and not values.get("src"):
            self.problems.append("inline <script> (a strict CSP blocks it)")
        if tag == "meta" and values.get("name") == "viewport":
            self.viewport = True
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()


def check_html(html: str) -> None:
    """Assert that ``html`` is a well-formed, mobile-ready, CSP-friendly HTML5 document."""
    assert html.lstrip().lower().startswith("<!doctype html>"), "document must start with <!DOCTYPE html>"
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert checker.doctype, "no <!DOCTYPE html>"
    assert checker.viewport, "no <meta name=viewport>"
    assert not checker.stack, f"unclosed elements: {checker.stack}"
    assert not checker.problems, checker.problems
