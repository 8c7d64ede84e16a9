"""The storefront pages: ``/s/<branch_code>``."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, url_for

from .. import db
from ..i18n import pick, request_locale
from ..problems import Problem
from ..runtime import get_runtime
from . import links
from .services import UnknownBranch, context_for, get_branch, zones

bp = Blueprint("storefront", __name__, template_folder="templates")


@bp.get("/")
def home():
    """Send visitors to head office's storefront."""
    return redirect(url_for("storefront.storefront", branch_code=current_app.config["HEAD_OFFICE"]), 303)


@bp.get("/s/<branch_code>")
def storefront(branch_code: str):
    """A branch's storefront: one zone per installed mini-program, filled by its tiles."""
    session = db.session()
    try:
        branch = get_branch(session, branch_code)
    except UnknownBranch as exc:
        raise Problem(404, "No such branch", str(exc)) from None
    locale = request_locale()
    runtime = get_runtime()
    found = zones(session, runtime, branch.code)
    outcomes = runtime.tiles([context_for(runtime, zone, branch, locale) for zone in found])
    rendered = []
    for zone, outcome in zip(found, outcomes):
        manifest = zone.plugin.manifest
        rendered.append(
            {
                "plugin_id": zone.plugin_id,
                "name": pick(locale, manifest.name),
                "start": links.page_url(zone.plugin_id, "/", branch.code, locale),
                "failed": not outcome.ok and outcome.status != "missing",
                "tiles": [
                    {"tile": tile, "href": links.page_url(zone.plugin_id, tile.link, branch.code, locale)}
                    for tile in (outcome.value or [])
                ],
            }
        )
    return render_template(
        "storefront/storefront.html",
        branch=branch,
        branch_name=branch.name(locale),
        zones=rendered,
        locale=locale,
    )
