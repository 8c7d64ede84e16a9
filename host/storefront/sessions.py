"""The bridge's session for a mini-program's own API calls (``canopy_api``, which the host serves).

The page's calls to ``/api/…`` on its origin carry no cookie. To act for the customer, the
page asks the bridge to log in (``canopy.login()``: the one-time code of
:mod:`host.oauth.miniprogram`) and ``canopy.js`` exchanges that code at
``POST /_canopy/session`` on the plugin's origin for a session token, sent with each API
call as ``Authorization: Bearer …``. (A partner's own back end, outside the host, exchanges
codes at ``/api/v1/miniprogram/sessions`` with ``private_key_jwt`` instead.)

The token is the spent code's digest, signed with the host's secret and timed
(``MINIPROGRAM_SESSION_SECONDS``): it names no customer (the code's row, kept after use, says
who), works for that plugin only, and ends when it expires or the row is purged. Consent is
read live by every ``ctx`` anyway, so withdrawing it takes effect at once.
"""

from __future__ import annotations

from flask import current_app, jsonify, request
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from ..config import require_secret
from ..oauth.miniprogram import LoginCodeRefused, spend_login_code
from ..oauth.models import MiniProgramLoginCode
from ..oauth.web import begin_write
from ..problems import Problem


def exchange(session: Session, plugin_id: str, code: object):
    """Spend ``code`` (once, unexpired, issued for ``plugin_id``) for a session token."""
    if not isinstance(code, str) or not 1 <= len(code) <= 200:
        raise Problem(400, "Invalid code", 'Send {"code": "<the code canopy.login() gave>"}.', errors={"code": ["required"]})
    session.rollback()
    begin_write()  # check and spend the code in one write transaction
    try:
        found = spend_login_code(session, plugin_id, code)
    except LoginCodeRefused:
        session.rollback()
        raise Problem(400, "Login code not accepted", "The code is unknown, used, expired or another mini-program's.") from None
    seconds = int(current_app.config["MINIPROGRAM_SESSION_SECONDS"])
    value = _signer().dumps({"p": plugin_id, "d": found.digest})
    session.commit()
    response = jsonify({"session_token": value, "expires_in": seconds})
    response.headers["Cache-Control"] = "no-store"
    return response


def customer_of_request(session: Session, plugin_id: str) -> str | None:
    """The customer whose session token the request carries (None without one); a wrong,
    expired or revoked token, or another plugin's, is a 401 (the page logs in again)."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    kind, _, value = header.partition(" ")
    claims = None
    if kind.lower() == "bearer" and 0 < len(value) <= 512:
        try:
            claims = _signer().loads(value.strip(), max_age=int(current_app.config["MINIPROGRAM_SESSION_SECONDS"]))
        except BadData:
            claims = None
    found = None
    if isinstance(claims, dict) and claims.get("p") == plugin_id and isinstance(claims.get("d"), str):
        found = session.get(MiniProgramLoginCode, claims["d"])
    if found is None or found.plugin_id != plugin_id or found.used_at is None:
        raise Problem(401, "Session ended", "Log in again through the bridge (canopy.login()).")
    return found.customer_id


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(require_secret(current_app.config), salt="canopy.miniprogram-session")
