"""Pushed authorization requests (``/oauth/par``, RFC 9126) and the authorization endpoint
(``/oauth/authorize``), where the customer signs in and decides.

Every authorization request is pushed first: the authorization endpoint takes only
``client_id`` and ``request_uri``. A ``request_uri`` must be opened within 60 s; the
browser that opens it first claims it (a cookie holds the claim) and has 10 minutes
to sign in and decide. The decision ends it: a code or an error goes, by a 303
redirect with ``iss``, to the exact registered redirect URI.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from authlib.oauth2.base import OAuth2Error
from flask import Blueprint, current_app, jsonify, render_template, request
from sqlalchemy import select, update

from .. import db
from ..i18n import pick, request_locale
from ..identity.csrf import exempt
from ..identity.sessions import current_customer, login_customer_required
from ..problems import Problem
from ..runtime import get_runtime
from ..runtime.models import PluginRecord
from . import clock, tokens
from .consent import record_consent
from .errors import InvalidDPoPProof, InvalidRequest
from .models import PushedAuthorization
from .server import AUTH_METHOD, Issuer, PushedRequest, get_server
from .web import audit_later, check_dpop, transactional

bp = Blueprint("oauth_authorize", __name__, template_folder="templates")

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
PAR_SECONDS = 60
INTERACTION_SECONDS = 600
CLAIM_COOKIE = "canopy_oauth_claim"
#: Parameters an authorization request may push, and the longest value of each.
PUSHED = {
    "response_type": 16, "redirect_uri": 500, "scope": 1000, "state": 500,
    "code_challenge": 43, "code_challenge_method": 8, "dpop_jkt": 43, "ui_locales": 35,
}
REQUIRED = ("response_type", "redirect_uri", "scope", "code_challenge", "code_challenge_method")
AUTHENTICATION = ("client_id", "client_assertion", "client_assertion_type")
JKT = re.compile(r"[A-Za-z0-9_-]{43}\Z")


def _pushed_parameters(form, client) -> dict[str, str]:
    for name in ("request_uri", "request"):
        if name in form:
            raise InvalidRequest(f"{name} is not accepted in a pushed authorization request")
    unknown = sorted(set(form) - set(PUSHED) - set(AUTHENTICATION))
    if unknown:
        raise InvalidRequest(f"unsupported parameter {unknown[0][:40]!r}")
    params = {}
    for name, limit in PUSHED.items():
        values = form.getlist(name)
        if len(values) > 1:
            raise InvalidRequest(f"{name} is repeated")
        if values:
            if not values[0] or len(values[0]) > limit or not values[0].isascii() or not values[0].isprintable():
                raise InvalidRequest(f"{name} must be 1-{limit} printable ASCII characters")
            params[name] = values[0]
    missing = [name for name in REQUIRED if name not in params]
    if missing:
        raise InvalidRequest(f"{missing[0]} is required")
    if "dpop_jkt" in params and not JKT.match(params["dpop_jkt"]):
        raise InvalidRequest("dpop_jkt must be a JWK SHA-256 thumbprint (43 base64url characters)")
    if not client.check_redirect_uri(params["redirect_uri"]):
        raise InvalidRequest("redirect_uri is not one the client registered (exact match)")
    params["client_id"] = client.client_id
    return params


@bp.post("/oauth/par")
@exempt
@transactional
def pushed_authorization_request():
    """RFC 9126: the client pushes its authorization request and gets a ``request_uri``."""
    server = get_server()
    oauth_request = server.create_oauth2_request(None)
    try:
        client = server.authenticate_client(oauth_request, [AUTH_METHOD], endpoint="par")
        params = _pushed_parameters(request.form, client)
        if request.headers.getlist("DPoP"):  # RFC 9449 §10.1: bind the code to the proof's key
            proof = check_dpop()
            if params.get("dpop_jkt", proof.jkt) != proof.jkt:
                raise InvalidDPoPProof("dpop_jkt does not match the DPoP proof's key")
            params["dpop_jkt"] = proof.jkt
        server.get_consent_grant(PushedRequest(params), end_user=None)
    except OAuth2Error as error:
        error.redirect_uri = None  # PAR answers errors as JSON, never as redirects
        return server.handle_error_response(oauth_request, error)
    reference = tokens.new_secret()
    db.session().add(PushedAuthorization(
        digest=tokens.digest(reference), client_id=client.client_id, parameters=params,
        expires_at=clock.now() + timedelta(seconds=PAR_SECONDS),
    ))
    response = jsonify({"request_uri": REQUEST_URI_PREFIX + reference, "expires_in": PAR_SECONDS})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


def _stop(detail: str, status: int = 400) -> Problem:
    audit_later("oauth.authorize", outcome="failure", detail={"reason": detail[:200]})
    return Problem(status, "Authorization request not usable", detail)


def _pending() -> tuple[PushedAuthorization, str | None]:
    """The pushed request this browser may continue, claiming it on first sight; and the
    claim cookie to set, if a new one is needed."""
    client_id, request_uri = request.args.get("client_id"), request.args.get("request_uri")
    if set(request.args) - {"client_id", "request_uri", "lang"}:
        raise _stop("Send only client_id and request_uri; every other parameter goes to /oauth/par.")
    if not client_id or not request_uri or not request_uri.startswith(REQUEST_URI_PREFIX):
        raise _stop("client_id and a request_uri from /oauth/par are required: authorization requests must be pushed first.")
    session = db.session()
    pushed = session.scalar(select(PushedAuthorization).where(
        PushedAuthorization.digest == tokens.digest(request_uri[len(REQUEST_URI_PREFIX):])))
    if pushed is None or pushed.client_id != client_id:
        raise _stop("This request_uri is unknown or belongs to another client.")
    if pushed.used_at is not None:
        raise _stop("This authorization request was already completed; start again from the app.")
    now = clock.now()
    browser = request.cookies.get(CLAIM_COOKIE, "")
    new_cookie = None
    if pushed.claim_digest is None:
        if pushed.expires_at <= now:
            raise _stop("This authorization request has expired (60 seconds); start again from the app.")
        if not browser or len(browser) > 100:
            browser = new_cookie = secrets.token_urlsafe(32)
        pushed.claim_digest = tokens.digest(browser)
        pushed.interaction_expires_at = now + timedelta(seconds=INTERACTION_SECONDS)
    elif not secrets.compare_digest(pushed.claim_digest, tokens.digest(browser)):
        raise _stop("This authorization request was opened in another browser.")
    elif pushed.interaction_expires_at is None or pushed.interaction_expires_at <= now:
        raise _stop("This authorization request has expired; start again from the app.")
    return pushed, new_cookie


def _with_cookie(response, cookie: str | None):
    if cookie:
        response.set_cookie(CLAIM_COOKIE, cookie, max_age=INTERACTION_SECONDS, path="/oauth/authorize",
                            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE", True)),
                            httponly=True, samesite="Lax")
    return response


def _error_answer(server, oauth_request, error: OAuth2Error):
    if not error.redirect_uri:
        raise _stop(f"The authorization request is not valid: {error.description or error.error}")
    error.state = oauth_request.payload.state
    response = server.handle_error_response(oauth_request, error)
    Issuer().add_issuer_parameter(server, response)
    return response


def _sign_in_first():
    return login_customer_required(lambda: None)()


@bp.get("/oauth/authorize")
@transactional
def authorize():
    """Show the consent screen of a pushed request (after sign-in)."""
    pushed, cookie = _pending()
    customer = current_customer()
    if customer is None:
        return _with_cookie(_sign_in_first(), cookie)
    server = get_server()
    oauth_request = PushedRequest(pushed.parameters)
    try:
        grant = server.get_consent_grant(oauth_request, end_user=customer)
    except OAuth2Error as error:
        pushed.used_at = clock.now()
        return _with_cookie(_error_answer(server, oauth_request, error), cookie)
    locale = request_locale()
    catalog = get_runtime().catalog
    plugin = db.session().get(PluginRecord, pushed.client_id)
    scopes = [catalog[name] for name in grant.request.scope.split() if name in catalog]
    html = render_template(
        "oauth/consent.html", locale=locale, plugin=plugin, plugin_name=pick(locale, plugin.name) if plugin else pushed.client_id,
        scopes=scopes, customer=customer, action=request.full_path.rstrip("?"),
    )
    response = current_app.make_response(html)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    return _with_cookie(response, cookie)


@bp.post("/oauth/authorize")
@transactional
def decide():
    """The customer's decision: approve (consent recorded, code issued) or deny."""
    pushed, _ = _pending()
    customer = current_customer()
    if customer is None:
        return _sign_in_first()
    decision = request.form.get("decision")
    if decision not in ("approve", "deny"):
        raise Problem(400, "Invalid decision", "decision must be approve or deny.")
    used = db.session().execute(
        update(PushedAuthorization).where(PushedAuthorization.id == pushed.id, PushedAuthorization.used_at.is_(None))
        .values(used_at=clock.now())
    ).rowcount
    if used != 1:
        raise _stop("This authorization request was already completed.")
    server = get_server()
    oauth_request = PushedRequest(pushed.parameters)
    try:
        grant = server.get_consent_grant(oauth_request, end_user=customer)
    except OAuth2Error as error:
        return _error_answer(server, oauth_request, error)
    scopes = grant.request.scope.split()
    if decision == "approve":
        catalog = get_runtime().catalog
        needing = [s for s in scopes if s not in catalog or catalog.needs_consent(s)]
        record_consent(db.session(), customer.id, pushed.client_id, needing, branch_code=customer.branch_code,
                       days=int(current_app.config["OAUTH_CONSENT_DAYS"]))
    audit_later("consent.granted" if decision == "approve" else "consent.declined", outcome="success",
                actor=customer.id, subject=customer.id, plugin_id=pushed.client_id, branch=customer.branch_code,
                detail={"scopes": scopes})
    return server.create_authorization_response(
        request=oauth_request, grant_user=customer if decision == "approve" else None, grant=grant
    )
