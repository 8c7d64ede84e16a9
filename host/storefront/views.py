"""The storefront pages: ``/s/<branch_code>``."""

from __future__ import annotations

import zlib
from functools import lru_cache

from flask import Blueprint, current_app, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from .. import db
from ..i18n import pick, request_locale
from ..identity.sessions import current_customer
from ..problems import Problem
from ..runtime import get_runtime
from . import links
from .models import Branch
from .services import UnknownBranch, audience, branch_info, context_for, get_branch, zones
from .slots import storefront_slots
from .zone_markup import TileView, ZoneView, grid_html, zones_html

#: How many colours the grid's icons come in (``.icon-0`` … in canopy.css).
ICON_COLOURS = 6

#: ``links.page_url`` is a pure function of its strings, and a storefront asks it for the same
#: few hundred addresses (every zone's start page and tiles, per branch and language) on every
#: request: remembered per process, boundedly. (Measured: 50 zones' addresses cost 2.4 ms a page.)
_page_url = lru_cache(maxsize=4096)(links.page_url)


def _colour(plugin_id: str) -> int:
    """A mini-program's icon colour: the same everywhere, whatever the grid's order."""
    return zlib.crc32(plugin_id.encode())


bp = Blueprint("storefront", __name__, template_folder="templates")


@bp.get("/")
def home():
    """A signed-in customer's home is their branch's storefront; everyone else's head office's."""
    customer = current_customer()
    code = customer.branch_code if customer is not None else current_app.config["HEAD_OFFICE"]
    return redirect(url_for("storefront.storefront", branch_code=code), 303)


@bp.get("/s/<branch_code>")
def storefront(branch_code: str):
    """A branch's storefront: banners (its own and bank-wide ones), the icon grid of its
    mini-programs, the feed, and one zone per installed mini-program, filled by its tiles.

    Queries: the branch, the slots (plus the customer's tags when a slot targets tags), the
    zones, the list of branches — the same number whatever is installed."""
    session = db.session()
    try:
        branch = get_branch(session, branch_code)
    except UnknownBranch as exc:
        raise Problem(404, "No such branch", str(exc)) from None
    locale = request_locale()
    runtime = get_runtime()
    customer = current_customer()
    found = zones(session, runtime, branch.code, who=audience(session, None if customer is None else customer.id, branch.code))
    slots = storefront_slots(session, branch.code, locale, customer.id if customer is not None else None)
    info = branch_info(branch, locale)
    outcomes = runtime.tiles([context_for(runtime, zone, info, locale) for zone in found])
    rendered = []
    for zone, outcome in zip(found, outcomes):
        manifest = zone.plugin.manifest
        rendered.append(
            ZoneView(
                plugin_id=zone.plugin_id,
                name=pick(locale, manifest.name),
                start=_page_url(zone.plugin_id, "/", branch.code, locale),
                failed=not outcome.ok and outcome.status != "missing",
                tiles=[
                    TileView(tile, _page_url(zone.plugin_id, tile.link, branch.code, locale))
                    for tile in (outcome.value or [])
                ],
            )
        )
    branches = session.execute(select(Branch.code, Branch.name_zh, Branch.name_en).order_by(Branch.code)).all()
    return render_template(
        "storefront/storefront.html",
        branch=branch,
        branch_name=branch.name(locale),
        banners=slots["banner"],
        feed=slots["feed"],
        grid=grid_html(rendered, ICON_COLOURS, _colour),
        zones=zones_html(rendered, _("Temporarily unavailable.")),
        branches=[(code, name_en if locale.startswith("en") else name_zh) for code, name_zh, name_en in branches],
        customer=customer,
        locale=locale,
    )
