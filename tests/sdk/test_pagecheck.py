"""canopy_sdk.pagecheck: what a rendered page must be to work in the host."""

from __future__ import annotations

import pytest

from canopy_sdk.pagecheck import page_problems

GOOD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<link rel="stylesheet" href="/mp/a.b/static/app.css"><script src="/mp/a.b/static/app.js" defer></script>
</head><body><main id="m"><p>Hi<br>there</p><img src="data:image/png;base64,AA" alt=""></main></body></html>"""


def test_a_good_page_has_no_problems():
    assert page_problems(GOOD) == []


@pytest.mark.parametrize(
    ("html", "problem"),
    [
        (GOOD.replace("<!DOCTYPE html>", ""), "DOCTYPE"),
        (GOOD.replace('<meta name="viewport" content="width=device-width">', ""), "viewport"),
        (GOOD.replace("</main>", ""), "closes"),
        (GOOD.replace("<p>", '<p onclick="steal()">'), "inline event handler onclick"),
        (GOOD.replace("<p>", '<p style="color:red">'), "inline style"),
        (GOOD.replace("</body>", "<script>alert(1)</script></body>"), "inline <script>"),
        (GOOD.replace("</head>", "<style>p{}</style></head>"), "inline <style>"),
        (GOOD.replace("/mp/a.b/static/app.js", "https://cdn.example/x.js"), "external resource"),
        (GOOD.replace("/mp/a.b/static/app.css", "//cdn.example/x.css"), "external resource"),
        (GOOD.replace("<p>", '<p id="m">'), "duplicate id"),
    ],
)
def test_each_problem_is_named(html, problem):
    problems = page_problems(html)
    assert any(problem in p for p in problems), problems


def test_every_problem_is_reported_at_once():
    html = GOOD.replace("<!DOCTYPE html>", "").replace("<p>", '<p onclick="x()" style="a">')
    assert len(page_problems(html)) == 3
