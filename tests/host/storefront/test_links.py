"""Addresses of a mini-program's pages, static files and API."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from host.storefront.links import api_path, content_path, page_url, static_path


def test_page_url_carries_branch_and_locale():
    assert page_url("wealth.checkup", "/", "SH001", "en") == "/mp/wealth.checkup/?branch=SH001&lang=en"


def test_page_url_keeps_the_plugins_own_query_and_overrides_branch_and_lang():
    url = page_url("sh.deals", "/deal?id=3&branch=EVIL&lang=fr&tag=a&tag=b&empty=", "SH001", "zh-CN")
    parts = urlsplit(url)
    assert parts.path == "/mp/sh.deals/deal"
    assert parse_qsl(parts.query, keep_blank_values=True) == [
        ("id", "3"),
        ("tag", "a"),
        ("tag", "b"),
        ("empty", ""),
        ("branch", "SH001"),
        ("lang", "zh-CN"),
    ]


def test_page_url_encodes_query_values():
    url = page_url("sh.deals", "/search?q=咖啡%20%26%20面包&x=1%2B1", "SH001", "en")
    assert dict(parse_qsl(urlsplit(url).query)) == {"q": "咖啡 & 面包", "x": "1+1", "branch": "SH001", "lang": "en"}


@pytest.mark.parametrize(
    ("link", "path"),
    [
        ("deal", "/mp/p.x/deal"),  # a relative link starts at the plugin's root
        ("/a b/c", "/mp/p.x/a%20b/c"),
        ("/城市/账单", "/mp/p.x/%E5%9F%8E%E5%B8%82/%E8%B4%A6%E5%8D%95"),
        ("/x#section", "/mp/p.x/x"),
        ("?a=1", "/mp/p.x/"),
        ("", "/mp/p.x/"),
        ("/a/./b/", "/mp/p.x/a/b/"),
        ("/../other.plugin/", "/mp/p.x/other.plugin/"),
        ("//evil.example/x", "/mp/p.x/x"),
        ("https://evil.example/x", "/mp/p.x/x"),
    ],
)
def test_page_url_paths_stay_inside_the_plugin(link, path):
    assert urlsplit(page_url("p.x", link, "HQ", "en")).path == path


def test_the_branch_and_locale_are_encoded():
    url = page_url("p.x", "/", "A&B", "en?x")
    assert dict(parse_qsl(urlsplit(url).query)) == {"branch": "A&B", "lang": "en?x"}


def resolved_segments(path: str) -> list[str]:
    # A browser treats '%2e' as '.' when it resolves dot segments.
    return [unquote(segment) for segment in path.split("/")]


@given(link=st.text(max_size=60), plugin_id=st.sampled_from(["p.x", "sh.deals"]))
def test_no_link_leads_out_of_the_plugins_address(link, plugin_id):
    for url, prefix in ((page_url(plugin_id, link, "HQ", "en"), f"/mp/{plugin_id}/"), (static_path(link), "/static/"),
                        (api_path(link, "HQ", "en"), "/api/"), (content_path(link, "HQ", "en"), "/")):
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc
        assert parts.path.startswith(prefix)
        assert not {".", ".."} & set(resolved_segments(parts.path))


def test_static_path_quotes_the_filename():
    assert static_path("wealth.css") == "/static/wealth.css"
    assert static_path("/css/two words.css") == "/static/css/two%20words.css"
    assert static_path("a?b#c") == "/static/a%3Fb%23c"
    assert static_path("../plugin.toml") == "/static/plugin.toml"


def test_api_path_quotes_the_path_and_carries_branch_and_locale():
    assert api_path("/answers", "SH001", "en") == "/api/answers?branch=SH001&lang=en"
    assert api_path("items/1 2", "HQ", "zh-CN") == "/api/items/1%202?branch=HQ&lang=zh-CN"
    assert api_path("a?b=1", "HQ", "en") == "/api/a%3Fb%3D1?branch=HQ&lang=en"
    assert api_path("/../../other/api/x", "HQ", "en") == "/api/other/api/x?branch=HQ&lang=en"


def test_a_content_path_is_the_shells_address_without_its_prefix():
    assert page_url("p.x", "/bills?id=3", "SH001", "en") == "/mp/p.x" + content_path("/bills?id=3", "SH001", "en")
    assert content_path("/bills?id=3&lang=xx", "SH001", "en") == "/bills?id=3&branch=SH001&lang=en"
