"""The storefront's grid and zones written as HTML in Python: escaped exactly as markupsafe
escapes (whatever a plugin puts in a tile), and the markup the storefront's tests read."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from markupsafe import escape as markupsafe_escape

from canopy_sdk import Tile
from host.storefront.zone_markup import TileView, ZoneView, escape, grid_html, zones_html

HOSTILE = "<script>alert('x')</script> & \"quotes\""


@given(st.text())
def test_escape_is_markupsafes(text):
    assert escape(text) == str(markupsafe_escape(text))


def test_a_hostile_tile_is_text_everywhere_it_appears():
    tile = Tile(title=HOSTILE, subtitle=HOSTILE, badge="<b>&\x27\"", link="/")
    zone = ZoneView("sh.deals", HOSTILE, '/mp/sh.deals/?a="b"&c=<d>', False, [TileView(tile, "/mp/sh.deals/?x='1'")])
    html = str(zones_html([zone], "unavailable")) + str(grid_html([zone], 6, lambda plugin_id: 7))
    assert "<script>" not in html and "alert(&#39;x&#39;)" in html and html.count("&lt;script&gt;") == 4 and "<span class=\"badge\">&lt;b&gt;&amp;&#39;&#34;</span>" in html
    assert 'href="/mp/sh.deals/?a=&#34;b&#34;&amp;c=&lt;d&gt;"' in html and 'href="/mp/sh.deals/?x=&#39;1&#39;"' in html
    assert 'class="icon icon-1"' in html and '<span class="label">&lt;script' in html


def test_zones_keep_their_order_and_a_failed_one_says_so():
    zones = [ZoneView(f"p{n}.zone", f"Zone {n}", f"/mp/p{n}.zone/", n == 1,
                      [TileView(Tile(title=f"t{n}"), f"/mp/p{n}.zone/t")]) for n in range(3)]
    html = str(zones_html(zones, "Temporarily unavailable."))
    assert re.findall(r'data-plugin="([^"]+)"', html) == ["p0.zone", "p1.zone", "p2.zone"]
    assert html.count('class="zone-unavailable">Temporarily unavailable.</p>') == 1 and "t1" not in html
    assert '<span class="badge">' not in html and '<span class="subtitle">' not in html  # only when given
    assert not zones_html([], "x") and not grid_html([], 6, len)
