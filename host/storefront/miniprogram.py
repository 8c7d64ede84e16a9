"""Serving a mini-program's content on its own origin (:mod:`.origins`): its pages (``/…``),
its static files (``/static/…``) and its API (``/api/…``), plus the bridge's session
exchange (``POST /_canopy/session``). The customer opens it through the host's shell
(:mod:`.shell`), which frames these pages.

The plugin must be installed and active in the branch named by ``?branch=`` (head
office when absent). A plugin that fails answers 502 (504 when it runs past its
budget) for its own page only; the host never answers 500 for a plugin's fault.
Inside the app these routes live under ``/_mp/<plugin_id>``, which only the origin router
reaches: on the host's origin they answer 404.
"""

from __future__ import annotations

import json
import re

from canopy_sdk.errors import InvalidResult
from flask import Blueprint, Response, current_app, request, send_from_directory
from markupsafe import escape

from .. import db
from ..i18n import request_locale
from ..identity import csrf
from ..problems import PROBLEM_JSON, Problem
from ..runtime import get_runtime
from ..runtime.invoke import BUSY, ERROR, INVALID, MISSING, OK, REJECTED, TIMEOUT, Outcome
from ..runtime.sandboxed import SandboxedPlugin
from . import origins, sessions
from .queries import plugin_query
from .rendering import render_page
from .services import UnknownBranch, Zone, audience, branch_info, context_for, get_branch, served_plugin, zones

bp = Blueprint("miniprogram", __name__, url_prefix=origins.INTERNAL_PREFIX)

API_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

#: The bridge's script, served by the host (:mod:`.shell`); every page loads it first.
BRIDGE_SCRIPT_PATH = "/bridge/canopy.js"


def page_csp(found: origins.Origins) -> str:
    """The policy of a mini-program's pages: only its own scripts (and the host's
    ``canopy.js``), styles and images; framed only by the host's shell; and ``sandbox``:
    the page runs in an opaque origin, so even opened on its own it cannot act as its
    origin. Its API calls are therefore cross-origin: the API answers CORS for any origin
    without credentials (the customer comes with the bridge's session token)."""
    return (
        "sandbox allow-scripts allow-forms; "
        f"default-src 'self'; script-src 'self' {found.host}{BRIDGE_SCRIPT_PATH}; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
        f"frame-ancestors {found.host}; base-uri 'none'; object-src 'none'"
    )


CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": ", ".join(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    "Access-Control-Allow-Headers": "Content-Type, Accept, Authorization",
    "Access-Control-Max-Age": "600",
}
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)


#: The policy of a mini-program's static files: if one is opened as a document, it runs
#: sandboxed in an opaque origin with nothing allowed.
STATIC_CSP = "sandbox; default-src 'none'; style-src 'self'; img-src 'self' data:"


@bp.record_once
def _set_up(state) -> None:
    # The shell and the origin router come with the content routes: one registration in create_app.
    from .shell import bp as shell_bp

    state.app.register_blueprint(shell_bp)
    origins.install(state.app)


@bp.before_request
def _only_on_the_plugins_origin() -> None:
    """Content is served on its plugin's own origin only (never on the host's, never on
    another plugin's)."""
    plugin_id = (request.view_args or {}).get("plugin_id")
    if origins.served_plugin_id() is None or plugin_id != origins.served_plugin_id():
        raise Problem(404, "Not found", "This address serves nothing here.")


def _resolve(plugin_id: str, customer_id: str | None = None):
    """The branch and the zone of a request on the plugin's origin: the version the customer of
    the bridge's session gets, or — for a page, which comes without one — the version the shell
    chose (``canopy_version``) while it is served, else the one the storefront's branch gets."""
    session = db.session()
    try:
        branch = get_branch(session, request.args.get("branch") or current_app.config["HEAD_OFFICE"])
    except UnknownBranch as exc:
        raise Problem(404, "No such branch", str(exc)) from None
    found = zones(session, get_runtime(), branch.code, plugin_id, audience(session, customer_id, branch.code),
                  version=None if customer_id is not None else request.args.get("canopy_version"))
    if not found:
        raise Problem(404, "No such mini-program", f"{plugin_id!r} is not available in branch {branch.code}.")
    return branch, found[0]


def _plugin_failure(outcome: Outcome) -> Problem:
    if outcome.status == TIMEOUT:
        return Problem(504, "Mini-program timed out", f"{outcome.plugin_id} did not answer in time.")
    if outcome.status == BUSY:
        return Problem(503, "Mini-program busy", f"{outcome.plugin_id} is busy; try again shortly.")
    return Problem(502, "Mini-program failed", f"{outcome.plugin_id} could not answer this request.")


@bp.get("/<plugin_id>/", defaults={"subpath": ""})
@bp.get("/<plugin_id>/<path:subpath>")
def page(plugin_id: str, subpath: str):
    """One of the mini-program's pages."""
    branch, zone = _resolve(plugin_id)
    locale = request_locale()
    runtime = get_runtime()
    ctx = context_for(runtime, zone, branch, locale)
    outcome = runtime.page(ctx, "/" + subpath, plugin_query())
    if outcome.status == MISSING or (outcome.ok and outcome.value is None):
        raise Problem(404, "No such page", f"{plugin_id} has no page /{subpath}.")
    if not outcome.ok:
        raise _plugin_failure(outcome)
    try:
        html = render_page(
            plugin_id, _folder(zone), outcome.value, branch={"code": branch.code, "name": ctx.branch.name}, locale=locale,
            in_process=not isinstance(zone.plugin.plugin, SandboxedPlugin), version=zone.version.version,
        )
    except Exception as exc:  # the plugin's template is broken, or its page too large: its fault, its page only
        runtime.invoker.count(plugin_id, "render", INVALID if isinstance(exc, InvalidResult) else ERROR)
        current_app.logger.warning("plugin %s page could not be rendered: %r", plugin_id, exc)
        raise Problem(502, "Mini-program failed", f"{plugin_id} could not render this page.") from None
    response = Response(with_bridge(html), status=outcome.value.status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = page_csp(origins.current_origins())
    response.headers["Content-Language"] = locale
    return response


def _problem_instance(response: Response) -> None:
    """A problem's ``instance`` names the address the client asked for, not the internal route."""
    try:
        body = json.loads(response.get_data())
    except (ValueError, RuntimeError):
        return
    if isinstance(body, dict) and body.get("instance") == request.path:
        body["instance"] = origins.original_path()
        response.set_data(json.dumps(body, ensure_ascii=False))


def with_bridge(html: str) -> str:
    """``html`` with the host's ``canopy.js`` as the first script of the page (so
    ``window.canopy`` exists before the plugin's own scripts run)."""
    tag = f'<script src="{escape(origins.current_origins().host + BRIDGE_SCRIPT_PATH)}"></script>'
    found = _HEAD.search(html)
    if found is None:
        return tag + html
    return html[: found.end()] + tag + html[found.end():]


@bp.get("/<plugin_id>/static/<path:filename>")
def static(plugin_id: str, filename: str):
    """A file from the mini-program's ``static/`` folder (the same in every branch)."""
    loaded = served_plugin(db.session(), get_runtime(), plugin_id, request.args.get("canopy_version"))
    if loaded is None or loaded.folder is None:
        raise Problem(404, "No such mini-program", f"{plugin_id[:64]!r} is not served here.")
    response = send_from_directory(loaded.folder / "static", filename, max_age=3600)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # An HTML or SVG file among the statics must not run as a page of the host's origin.
    response.headers["Content-Security-Policy"] = STATIC_CSP
    return response


@bp.route("/<plugin_id>/api/", defaults={"subpath": ""}, methods=["OPTIONS"])
@bp.route("/<plugin_id>/api/<path:subpath>", methods=["OPTIONS"])
@bp.route("/<plugin_id>/_canopy/session", defaults={"subpath": ""}, methods=["OPTIONS"])
def api_preflight(plugin_id: str, subpath: str):
    """CORS preflight of the page's API calls (the page runs in an opaque origin)."""
    return Response(status=204, headers=CORS_HEADERS)


@bp.after_request
def _cors(response: Response) -> Response:
    if response.mimetype == PROBLEM_JSON and response.status_code >= 400:
        _problem_instance(response)
    # Every answer of a mini-program API, errors included, is readable by its page.
    if request.endpoint in ("miniprogram.api", "miniprogram.session"):
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.route("/<plugin_id>/api/", defaults={"subpath": ""}, methods=API_METHODS)
@bp.route("/<plugin_id>/api/<path:subpath>", methods=API_METHODS)
@csrf.exempt  # JSON only: a form post is refused with 415 before anything happens
def api(plugin_id: str, subpath: str):
    """A call from the mini-program's page to its back end (``canopy_api``)."""
    customer_id = sessions.customer_of_request(db.session(), plugin_id)
    branch, zone = _resolve(plugin_id, customer_id)
    body = _json_body()
    runtime = get_runtime()
    ctx = runtime.context(zone.plugin_id, branch=branch_info(branch, request_locale()), locale=request_locale(),
                          approved_scopes=zone.version.approved_scopes, customer_id=customer_id, plugin=zone.plugin)
    outcome = runtime.api(ctx, request.method, "/" + subpath, body)
    if outcome.status == OK:
        return Response(outcome.value, mimetype="application/json")
    if outcome.status == REJECTED:
        error = outcome.error
        raise Problem(error.status, error.title, error.detail or None)  # type: ignore[union-attr]
    if outcome.status == MISSING:
        raise Problem(404, "No API", f"{plugin_id} has no API.")
    raise _plugin_failure(outcome)


@bp.post("/<plugin_id>/_canopy/session")
@csrf.exempt  # JSON only, and no cookie is ever sent to a plugin's origin
def session(plugin_id: str):
    """The bridge exchanges a login code for a session of this plugin's API calls (the code
    names the branch; the plugin must be served)."""
    if served_plugin(db.session(), get_runtime(), plugin_id) is None:
        raise Problem(404, "No such mini-program", f"{plugin_id[:64]!r} is not served here.")
    body = _json_body()
    code = body.get("code") if isinstance(body, dict) and set(body) == {"code"} else None
    return sessions.exchange(db.session(), plugin_id, code)


def _json_body():
    data = request.get_data(cache=False)
    if not data:
        return None
    if request.mimetype != "application/json":
        raise Problem(415, "Unsupported media type", "Send the body as application/json.")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise Problem(400, "Malformed JSON", f"The body is not valid JSON: {exc}") from None


def _folder(zone: Zone):
    assert zone.plugin.folder is not None
    return zone.plugin.folder
