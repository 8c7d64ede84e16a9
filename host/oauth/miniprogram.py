"""Mini-program login, as ``wx.login`` does it.

1. The embedded page asks the bridge; the host's shell (signed-in customer) calls
   ``POST /mp/<plugin_id>/login-code`` and hands the one-time code to the page.
2. The plugin's back end exchanges it at ``POST /api/v1/miniprogram/sessions``,
   authenticated with ``private_key_jwt``, for the customer's pairwise ``sub`` and a
   short session token (introspectable and revocable at ``/oauth/introspect`` and
   ``/oauth/revoke``).

A code lives 60 s, is used once, and is bound to the plugin and the customer.
"""

from __future__ import annotations

from datetime import timedelta

from authlib.oauth2.base import OAuth2Error
from flask import Blueprint, Response, current_app, g, json, jsonify, request
from sqlalchemy import select, update

from .. import db
from ..config import require_secret
from ..identity.csrf import exempt
from ..identity.pairwise import pairwise_subject
from ..identity.sessions import current_customer
from ..problems import PROBLEM_JSON, Problem
from ..runtime import get_runtime
from ..storefront.services import UnknownBranch, audience, get_branch, zones
from . import clock, tokens
from .errors import InvalidGrant, InvalidRequest
from .models import MiniProgramLoginCode, TokenKind
from .server import AUTH_METHOD, get_server
from .web import audit_later, transactional

bp = Blueprint("oauth_miniprogram", __name__)

CODE_SECONDS = 60


@bp.post("/mp/<plugin_id>/login-code")
@transactional
def login_code(plugin_id: str):
    """A one-time login code for the signed-in customer and this mini-program."""
    customer = current_customer()
    if customer is None:
        raise Problem(401, "Not signed in", "Sign in to the bank before a mini-program can log you in.")
    if not request.is_json:  # a cross-site form cannot send JSON without a CORS preflight
        raise Problem(415, "Unsupported media type", "Call this from the host's bridge with Content-Type: application/json.")
    session = db.session()
    try:
        branch = get_branch(session, request.args.get("branch") or current_app.config["HEAD_OFFICE"])
    except UnknownBranch as exc:
        raise Problem(404, "No such branch", str(exc)) from None
    if not zones(session, get_runtime(), branch.code, plugin_id, audience(session, customer.id, branch.code)):
        raise Problem(404, "No such mini-program", f"{plugin_id[:64]!r} is not available in branch {branch.code}.")
    code = tokens.new_secret()
    now = clock.now()
    session.add(MiniProgramLoginCode(digest=tokens.digest(code), plugin_id=plugin_id, customer_id=customer.id,
                                     branch_code=branch.code, issued_at=now,
                                     expires_at=now + timedelta(seconds=CODE_SECONDS)))
    response = jsonify({"code": code, "expires_in": CODE_SECONDS})
    response.headers["Cache-Control"] = "no-store"
    return response


def _oauth_problem(error: OAuth2Error) -> Response:
    body = {"type": "about:blank", "title": "Login code not accepted", "status": error.status_code,
            "detail": error.description, "instance": request.path, "error": error.error,
            "error_description": error.description}
    response = Response(json.dumps(body), status=error.status_code, mimetype=PROBLEM_JSON)
    response.headers["Cache-Control"] = "no-store"
    return response


class LoginCodeRefused(Exception):
    """A login code that cannot be spent; the message says why (unknown, another mini-program's,
    used before, expired)."""


def spend_login_code(session, plugin_id: str, code: str) -> MiniProgramLoginCode:
    """Spend ``code`` for ``plugin_id`` in the caller's write transaction and return its row:
    once only (a conditional UPDATE, so two exchanges at once cannot both win), and only
    before it expires. :class:`LoginCodeRefused` otherwise."""
    found = session.scalar(select(MiniProgramLoginCode).where(MiniProgramLoginCode.digest == tokens.digest(code)))
    if found is None or found.plugin_id != plugin_id:
        raise LoginCodeRefused("the login code is unknown or belongs to another mini-program")
    now = clock.now()
    won = session.execute(
        update(MiniProgramLoginCode)
        .where(MiniProgramLoginCode.digest == found.digest, MiniProgramLoginCode.used_at.is_(None))
        .values(used_at=now)
    ).rowcount == 1
    if not won:
        raise LoginCodeRefused("the login code was used before")
    if found.expires_at <= now:
        raise LoginCodeRefused("the login code has expired")
    return found


@bp.post("/api/v1/miniprogram/sessions")
@exempt
@transactional
def exchange():
    """The plugin's back end exchanges a login code for the pairwise id and a session."""
    server = get_server()
    try:
        client = server.authenticate_client(server.create_oauth2_request(None), [AUTH_METHOD], endpoint="miniprogram")
        code = request.form.get("code")
        if not code or len(request.form.getlist("code")) != 1:
            raise InvalidRequest("send exactly one code")
        session = db.session()
        try:
            found = spend_login_code(session, client.client_id, code)
        except LoginCodeRefused as refused:
            raise InvalidGrant(str(refused)) from None
    except OAuth2Error as error:
        audit_later("miniprogram.login", outcome="failure", plugin_id=g.get("oauth_client_id"),
                    detail={"error": error.error, "description": (error.description or "")[:200]})
        return _oauth_problem(error)
    seconds = int(current_app.config["MINIPROGRAM_SESSION_SECONDS"])
    value, _ = tokens.issue(session, kind=TokenKind.SESSION, client_id=client.client_id, customer_id=found.customer_id,
                            branch_code=found.branch_code, seconds=seconds)
    subject = pairwise_subject(require_secret(current_app.config), client.client_id, found.customer_id)
    audit_later("miniprogram.login", outcome="success", actor=found.customer_id, subject=found.customer_id,
                plugin_id=client.client_id, branch=found.branch_code)
    response = jsonify({"sub": subject, "session_token": value, "expires_in": seconds})
    response.headers["Cache-Control"] = "no-store"
    return response
