"""The mini-program shell: ``/mp/<plugin_id>/<path>`` on the host's origin.

The host's header (name, publisher, what the mini-program may see, a link to withdraw
consent) above a sandboxed frame (``allow-scripts allow-forms``, never
``allow-same-origin``) that loads the plugin's page from the plugin's own origin. The page
talks to the shell only through the ``canopy.js`` bridge (``static/canopy.js``; the shell's
side is ``static/shell.js``; the protocol is in docs/bridge.md). The shell's helpers for the
bridge live under ``/shell/<plugin_id>/``: the state of a payment, the consent sheet, the
grants, and analytics events. Sheets (payment, consent) are host pages shown by the shell
above the frame, never inside it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from canopy_sdk.errors import UnknownIntent
from flask import Blueprint, Response, current_app, jsonify, render_template, request
from flask_babel import gettext as _

from .. import audit, db
from ..i18n import pick, request_locale
from ..identity.sessions import current_customer, login_customer_required
from ..oauth.consent import live_scopes, record_consent
from ..oauth.web import begin_write
from ..payments import intents
from ..problems import Problem
from ..runtime import get_runtime
from . import links, origins
from .queries import plugin_query
from .services import UnknownBranch, audience, get_branch, zones

bp = Blueprint("shell", __name__, template_folder="templates", static_folder="static", static_url_path="/bridge")
log = logging.getLogger("canopy.bridge")

#: The shell's policy: its own scripts and styles only; frames: the plugin's origin (the
#: mini-program) and the host's own (the payment and consent sheets); never framed itself.
SHELL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-src 'self' {plugin}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
#: Sheets are host pages framed by the shell only.
SHEET_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'self'"

EVENT_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}\Z")
PROP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}\Z")
MAX_PROPS = 20
MAX_EVENT_BYTES = 2048
MAX_SCOPES = 10
#: What the shell's side may report about messages it ignored.
IGNORED_REASONS = frozenset({"source", "origin", "version", "method", "size", "shape", "nonce"})


def _zone(plugin_id: str):
    session = db.session()
    try:
        branch = get_branch(session, request.args.get("branch") or current_app.config["HEAD_OFFICE"])
    except UnknownBranch as exc:
        raise Problem(404, _("No such branch"), str(exc)) from None
    customer = current_customer()
    found = zones(session, get_runtime(), branch.code, plugin_id,
                  audience(session, None if customer is None else customer.id, branch.code))
    if not found:
        raise Problem(404, _("No such mini-program"), _("%(plugin)s is not available in branch %(branch)s.",
                                                        plugin=repr(plugin_id[:64]), branch=branch.code))
    return branch, found[0]


def _may_see(zone, locale: str, customer_id: str | None) -> list[dict[str, Any]]:
    """The scopes the plugin may use (requested and approved), in plain words."""
    catalog = get_runtime().catalog
    approved = set(zone.version.approved_scopes)
    consented = live_scopes(db.session(), customer_id, zone.plugin_id) if customer_id else frozenset()
    seen = []
    for name in zone.plugin.manifest.scopes:
        if name in approved and name in catalog:
            needs = catalog.needs_consent(name)
            seen.append({"name": name, "description": catalog[name].describe(locale), "needs_consent": needs,
                         "granted": not needs or name in consented})
    return seen


@bp.get("/mp/<plugin_id>/", defaults={"subpath": ""})
@bp.get("/mp/<plugin_id>/<path:subpath>")
def shell(plugin_id: str, subpath: str):
    """The shell around one of the mini-program's pages."""
    branch, zone = _zone(plugin_id)
    query = plugin_query()
    locale = request_locale()
    customer = current_customer()
    found = origins.current_origins()
    plugin_origin = found.plugin(plugin_id)
    link = "/" + subpath + (f"?{urlencode(query)}" if query else "")
    manifest = zone.plugin.manifest
    html = render_template(
        "storefront/shell.html",
        locale=locale, branch=branch, branch_name=branch.name(locale), plugin_id=plugin_id,
        name=pick(locale, manifest.name), publisher={"kind": manifest.publisher_kind, "id": manifest.publisher_id}, may_see=_may_see(zone, locale, customer and customer.id),
        signed_in=customer is not None,
        frame_src=plugin_origin + links.content_path(link, branch.code, locale, zone.version.version),
        plugin_origin=plugin_origin, here=request.full_path.rstrip("?"),
    )
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = SHELL_CSP.format(plugin=plugin_origin)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the plugin never learns the shell's query
    return response


def _json(data: Any, status: int = 200) -> Response:
    response = jsonify(data)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _customer_or_401():
    customer = current_customer()
    if customer is None:
        raise Problem(401, _("Not signed in"), _("Sign in to the bank first."))
    return customer


@bp.get("/shell/<plugin_id>/payments/<intent_id>")
def payment_state(plugin_id: str, intent_id: str):
    """The state of one of this plugin's intents, for the signed-in customer (else 404)."""
    customer = _customer_or_401()
    _zone(plugin_id)
    try:
        intent = intents.find(db.session(), plugin_id, intent_id)
    except UnknownIntent:
        intent = None
    if intent is None or intent.customer_id not in (None, customer.id):
        raise Problem(404, _("No such payment"), _("This mini-program has no such payment for you."))
    state = intent.state.value if hasattr(intent.state, "value") else str(intent.state)
    if intents.is_due(intent):
        state = "expired"
    return _json({"intent_id": intent.id, "state": state})


def _requested_scopes(zone) -> list[str]:
    names = request.args.getlist("scope")
    if not 1 <= len(names) <= MAX_SCOPES or len(set(names)) != len(names):
        raise Problem(400, _("Invalid scopes"), _("Ask for 1 to %(count)d different scopes.", count=MAX_SCOPES),
                      errors={"scope": ["1-10 different names"]})
    allowed = {entry["name"] for entry in _may_see(zone, "en", None)}
    wrong = [name[:64] for name in names if name not in allowed]
    if wrong:
        raise Problem(400, _("Invalid scopes"), _("This mini-program may not ask for %(scopes)s.", scopes=", ".join(wrong)),
                      errors={"scope": wrong})
    return names


def _grants(zone, customer_id: str, names: list[str]) -> dict[str, bool]:
    seen = {entry["name"]: entry["granted"] for entry in _may_see(zone, "en", customer_id)}
    return {name: seen[name] for name in names}


@bp.get("/shell/<plugin_id>/grants")
def grants(plugin_id: str):
    """Whether the signed-in customer has granted each ``scope`` to the plugin."""
    customer = _customer_or_401()
    _branch, zone = _zone(plugin_id)
    answer = _grants(zone, customer.id, _requested_scopes(zone))
    return _json({"scopes": answer, "granted": all(answer.values())})


@bp.route("/shell/<plugin_id>/consent", methods=["GET", "POST"])
@login_customer_required
def consent(plugin_id: str):
    """The consent sheet: the scopes in plain words; allow or decline."""
    customer = current_customer()
    branch, zone = _zone(plugin_id)
    names = _requested_scopes(zone)
    locale = request_locale()
    decided = None
    if request.method == "POST":
        decision = request.form.get("decision")
        if decision not in ("allow", "decline"):
            raise Problem(400, _("Invalid decision"), _("Choose allow or decline."))
        if decision == "allow":
            begin_write()
            catalog = get_runtime().catalog
            record_consent(db.session(), customer.id, plugin_id, [n for n in names if catalog.needs_consent(n)],
                           branch_code=branch.code, days=int(current_app.config["OAUTH_CONSENT_DAYS"]))
            db.session().commit()
        audit.record("consent.granted" if decision == "allow" else "consent.declined", outcome=audit.SUCCESS,
                     actor=customer.id, subject=customer.id, plugin_id=plugin_id, branch=branch.code,
                     detail={"scopes": names, "via": "bridge"})
        decided = decision
    catalog = get_runtime().catalog
    html = render_template(
        "storefront/consent_sheet.html", locale=locale, name=pick(locale, zone.plugin.manifest.name),
        scopes=[{"name": n, "description": catalog[n].describe(locale)} for n in names], decided=decided,
        action=request.full_path.rstrip("?"),
    )
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = SHEET_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


def check_event(data: Any) -> tuple[str, dict[str, Any]]:
    """Validate an analytics event ``{"event": name, "props": {…}}``; :class:`Problem` (400) naming the field."""
    if not isinstance(data, dict) or set(data) - {"event", "props"}:
        raise Problem(400, _("Invalid event"), _('Send {"event": …, "props": {…}}.'), errors={"": ["unknown fields"]})
    name, props = data.get("event"), data.get("props", {})
    if not isinstance(name, str) or not EVENT_NAME.match(name):
        raise Problem(400, _("Invalid event"), _("event must be 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter."),
                      errors={"event": ["invalid name"]})
    if not isinstance(props, dict) or len(props) > MAX_PROPS:
        raise Problem(400, _("Invalid event"), _("props must be an object of at most %(count)d keys.", count=MAX_PROPS),
                      errors={"props": ["too many keys or not an object"]})
    for key, value in props.items():
        scalar = value is None or isinstance(value, (str, bool, int)) or (isinstance(value, float) and value == value
                                                                         and abs(value) != float("inf"))
        if not isinstance(key, str) or not PROP_NAME.match(key) or not scalar or (isinstance(value, str) and len(value) > 200):
            raise Problem(400, _("Invalid event"), _("props values must be strings (at most 200 characters), numbers, booleans or null."),
                          errors={f"props.{str(key)[:40]}": ["invalid"]})
    if len(json.dumps(data, ensure_ascii=False).encode()) > MAX_EVENT_BYTES:
        raise Problem(400, _("Invalid event"), _("An event is at most %(bytes)d bytes of JSON.", bytes=MAX_EVENT_BYTES),
                      errors={"": ["too large"]})
    return name, props


def _counts() -> dict[str, Any]:
    store = current_app.extensions.setdefault("canopy.bridge_events", {"lock": threading.Lock(), "counts": Counter()})
    return store


@bp.post("/shell/<plugin_id>/events")
def events(plugin_id: str):
    """One analytics event of the mini-program (``track``), or the shell's note of ignored
    messages (``canopy.ignored``): validated, counted and logged — never stored with the
    customer's identity."""
    if not request.is_json:
        raise Problem(415, _("Unsupported media type"), _("Send the event as application/json."))
    branch, _installed = _zone(plugin_id)
    name, props = check_event(request.get_json(silent=True))
    if name.startswith("canopy.") and (name != "canopy.ignored" or props.get("reason") not in IGNORED_REASONS):
        raise Problem(400, _("Invalid event"), _("Names starting with canopy. are the host's."), errors={"event": ["reserved"]})
    store = _counts()
    with store["lock"]:
        store["counts"][(plugin_id, name)] += 1
    log.info("bridge event", extra={"plugin_id": plugin_id, "branch": branch.code, "event": name, "props": props})
    return Response(status=204)


def event_counts(app) -> dict[tuple[str, str], int]:
    """This process's bridge events by plugin and name (for metrics)."""
    store = app.extensions.get("canopy.bridge_events")
    if not store:
        return {}
    with store["lock"]:
        return dict(store["counts"])
