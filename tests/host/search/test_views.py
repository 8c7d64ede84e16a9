"""The search page ``/search?q=&branch=``."""

from __future__ import annotations

import re

import pytest

RESULT = re.compile(r'<li class="tile result" data-kind="([^"]+)" data-plugin="([^"]+)">\s*<a href="([^"]+)">')


def results(html: str) -> list[tuple[str, str, str]]:
    return RESULT.findall(html)


def test_an_empty_search_lists_the_branchs_mini_programs(client):
    response = client.get("/search?branch=SH001&lang=en")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert 'name="viewport"' in html and 'role="search"' in html
    assert 'data-branch="SH001"' in html and "Everything at this branch" in html
    assert [plugin for _, plugin, _ in results(html)] == ["wealth.checkup", "sh.deals"]
    assert ("miniprogram", "sh.deals", "/mp/sh.deals/?branch=SH001&amp;lang=en") in results(html)


def test_results_link_to_the_mini_programs_pages_in_the_branch(client):
    html = client.get("/search?q=咖啡&branch=SH001-PD&lang=zh-CN").get_data(as_text=True)
    found = results(html)
    assert found[0] == ("miniprogram", "sh.deals", "/mp/sh.deals/?branch=SH001-PD&amp;lang=zh-CN")
    assert any(kind == "service" and href.startswith("/mp/sh.deals/deal?id=") and "branch=SH001-PD" in href
               for kind, _, href in found)
    assert "搜索结果" in html  # in Chinese


def test_nothing_found_says_so(client):
    html = client.get("/search?q=mortgage&branch=BJ001&lang=en").get_data(as_text=True)
    assert results(html) == [] and "Nothing found" in html


def test_the_default_branch_is_head_office_or_the_customers_own(client, sign_in_customer):
    assert 'data-branch="HQ"' in client.get("/search").get_data(as_text=True)
    sign_in_customer(client, "13800000001", "canopy-demo-1")  # her home branch is SH001
    assert 'data-branch="SH001"' in client.get("/search").get_data(as_text=True)


def test_the_language_links_keep_the_query_and_branch(client):
    html = client.get("/search?q=coffee&branch=SH001&lang=en").get_data(as_text=True)
    assert 'href="/search?q=coffee&amp;branch=SH001&amp;lang=zh-CN"' in html


@pytest.mark.parametrize("branch", ["NOPE", "x" * 10_000, "SH001\x00", "<b>", "' OR 1=1 --"])
def test_an_unknown_branch_is_a_404(client, branch):
    response = client.get("/search", query_string={"branch": branch, "q": "coffee"})
    assert response.status_code == 404
    assert "<b>" not in response.get_data(as_text=True)


@pytest.mark.parametrize(("query", "message"), [
    ("x" * 10_000, "at most 100 characters"),
    ("coffee\x00", "control characters"),
    ("\x1b[31mred", "control characters"),
])
def test_a_bad_query_shows_the_form_again_with_the_reason(client, query, message):
    response = client.get("/search", query_string={"q": query, "branch": "SH001", "lang": "en"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'data-field="q"' in html and message in html and 'aria-invalid="true"' in html
    assert "\x00" not in html and "\x1b" not in html and "x" * 101 not in html


def test_everything_shown_is_escaped(client):
    html = client.get("/search", query_string={"q": '"><script>alert(1)</script>', "branch": "SH001"}).get_data(as_text=True)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_plugin_texts_are_escaped(installed):
    app = installed({"t.html": """
@hookimpl
def canopy_search(ctx, query):
    return [SearchHit(title="<img src=x onerror=alert(1)>", summary="<script>x()</script>", link="/a?b=<c>")]
"""})
    html = app.test_client().get("/search?q=anything&branch=SH001").get_data(as_text=True)
    assert "<img src=x" not in html and "<script>x()" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.fixture
def sign_in_customer():
    from tests.host.identity.conftest import TOKEN_FIELD

    def post(client, phone, password):
        page = client.get("/signin").get_data(as_text=True)
        token = TOKEN_FIELD.search(page).group(1)
        response = client.post("/signin", data={"csrf_token": token, "phone": phone, "password": password})
        assert response.status_code == 303
        return response

    return post
