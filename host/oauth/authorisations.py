""""My authorisations": the signed-in customer reads the consent ledger and withdraws
consent per mini-program or per scope. Withdrawal takes effect at once for tokens and
for the mini-program's ``ctx`` (both read the live ledger)."""

from __future__ import annotations

from itertools import groupby

from flask import Blueprint, redirect, render_template, request

from .. import db
from ..i18n import pick, request_locale
from ..identity.sessions import current_customer, login_customer_required
from ..problems import Problem
from ..runtime import get_runtime
from ..runtime.models import PluginRecord
from .consent import live_grants, withdraw
from .web import audit_later, transactional

bp = Blueprint("oauth_authorisations", __name__, template_folder="templates")


@bp.get("/me/authorisations")
@login_customer_required
def authorisations():
    """Each mini-program's live grants in plain words, with when, where and until when."""
    customer = current_customer()
    locale = request_locale()
    catalog = get_runtime().catalog
    session = db.session()
    plugins = []
    for plugin_id, grants in groupby(live_grants(session, customer.id), key=lambda grant: grant.plugin_id):
        record = session.get(PluginRecord, plugin_id)
        plugins.append({
            "id": plugin_id,
            "name": pick(locale, record.name) if record else plugin_id,
            "grants": [{"scope": grant.scope,
                        "description": catalog[grant.scope].describe(locale) if grant.scope in catalog else grant.scope,
                        "granted_at": grant.granted_at, "expires_at": grant.expires_at, "branch": grant.branch_code}
                       for grant in grants],
        })
    html = render_template("oauth/authorisations.html", locale=locale, plugins=plugins,
                           withdrawn=request.args.get("withdrawn"))
    return html, 200, {"Cache-Control": "no-store"}


@bp.post("/me/authorisations/withdraw")
@login_customer_required
@transactional
def withdraw_consent():
    """Withdraw consent to one scope (``scope``) or to everything (no ``scope``) of a mini-program."""
    customer = current_customer()
    plugin_id = request.form.get("plugin_id", "")
    scope = request.form.get("scope") or None
    if not plugin_id or len(plugin_id) > 64 or (scope is not None and len(scope) > 64):
        raise Problem(400, "Invalid request", "Choose the mini-program (and optionally the permission) to withdraw.")
    withdrawn = withdraw(db.session(), customer.id, plugin_id, scope)
    if not withdrawn:
        raise Problem(404, "Nothing to withdraw", "There is no such authorisation to withdraw.")
    audit_later("consent.withdrawn", outcome="success", actor=customer.id, subject=customer.id, plugin_id=plugin_id,
                branch=customer.branch_code, detail={"scopes": withdrawn, "whole_plugin": scope is None})
    return redirect(f"/me/authorisations?withdrawn={plugin_id}", 303)
