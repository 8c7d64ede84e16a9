"""Checks that a rendered page will work in the host: HTML5, mobile-ready, and within the
Content-Security-Policy the host serves pages with (no inline scripts, styles or event
handlers; no resources from other origins)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)


class _Checker(HTMLParser):
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
            if name in ("src", "href", "action") and value and _EXTERNAL.match(value):
                self.problems.append(f"external resource {value!r} on <{tag}>")
            if name == "id":
                if value in self.ids:
                    self.problems.append(f"duplicate id {value!r}")
                self.ids.add(value or "")
        if tag == "script" and not values.get("src"):
            self.problems.append("inline <script> (the page's CSP blocks it)")
        if tag == "style":
            self.problems.append("inline <style> (the page's CSP blocks it)")
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


def page_problems(html: str) -> list[str]:
    """Return what is wrong with a rendered page (an empty list when nothing is)."""
    problems = []
    if not html.lstrip().lower().startswith("<!doctype html>"):
        problems.append("the document must start with <!DOCTYPE html>")
    checker = _Checker()
    checker.feed(html)
    checker.close()
    if not checker.viewport:
        problems.append('no <meta name="viewport"> (pages are shown on phones)')
    if checker.stack:
        problems.append(f"unclosed elements: {', '.join(checker.stack)}")
    return problems + checker.problems
