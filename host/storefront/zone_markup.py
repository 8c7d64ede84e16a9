"""The storefront's grid and zones as HTML, written here rather than in its template.

A storefront of 50 mini-programs escapes about 800 values (names, addresses, every tile's
title, badge and subtitle). Escaped by Jinja, each becomes a ``Markup`` object on its way into
the page, and that cost about 65 µs per zone — close to half of what each extra zone costs a
page (measured on the storefront benchmark's 50-zone page). Here each value is escaped with
``str.replace``, to exactly the entities markupsafe writes, and each part is joined once; the
markup is the one the template had.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from canopy_sdk import Tile
from markupsafe import Markup


_SPECIAL = re.compile(r"[&<>\"']").search


def escape(value: object) -> str:
    """``value`` as text safe in HTML content and quoted attributes (markupsafe's entities)."""
    text = str(value)
    if _SPECIAL(text) is None:  # most names and addresses: nothing to replace
        return text
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;").replace("'", "&#39;")


@dataclass(frozen=True, slots=True)
class TileView:
    """One tile of a zone, with the address of the page it opens."""

    tile: Tile
    href: str


@dataclass(frozen=True, slots=True)
class ZoneView:
    """One mini-program's zone: its name, start page, tiles, or that it failed."""

    plugin_id: str
    name: str
    start: str
    failed: bool
    tiles: list[TileView]


def _tile(item: TileView) -> str:
    tile = item.tile
    badge = f'<span class="badge">{escape(tile.badge)}</span>' if tile.badge else ""
    subtitle = f'<span class="subtitle">{escape(tile.subtitle)}</span>' if tile.subtitle else ""
    return (f'<li class="tile"><a href="{escape(item.href)}"><strong>{escape(tile.title)}</strong>'
            f"{badge}{subtitle}</a></li>")


def zones_html(zones: list[ZoneView], unavailable: str) -> Markup:
    """Every zone's ``<section>``, in order (``unavailable``: the text of a failed zone)."""
    parts = []
    for zone in zones:
        if zone.failed:
            body = f'<p class="zone-unavailable">{escape(unavailable)}</p>'
        else:
            body = f'<ul class="tiles">{"".join(_tile(item) for item in zone.tiles)}</ul>'
        parts.append(f'<section class="zone" data-plugin="{escape(zone.plugin_id)}">\n'
                     f'  <h2><a href="{escape(zone.start)}">{escape(zone.name)}</a></h2>\n  {body}\n</section>\n')
    return Markup("".join(parts))


def grid_html(zones: list[ZoneView], colours: int, colour_of) -> Markup:
    """The icon grid's items, one per zone (``colour_of(plugin_id)``: its icon's colour, 0 to
    ``colours`` - 1)."""
    return Markup("".join(
        f'<li data-grid="{escape(zone.plugin_id)}"><a href="{escape(zone.start)}"><span class="icon '
        f'icon-{colour_of(zone.plugin_id) % colours}" aria-hidden="true">{escape(zone.name[:1].upper())}</span>'
        f'<span class="label">{escape(zone.name)}</span></a></li>\n'
        for zone in zones))
