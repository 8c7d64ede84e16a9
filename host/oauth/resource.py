"""The resource server: :func:`require_token` guards ``/api/v1`` routes.

A request must carry ``Authorization: DPoP <access token>`` and a DPoP proof for this
method and URL with the token's ``ath``. The token must be unexpired and unrevoked,
its client active, and each scope the route needs must still be in the token *and*,
when the scope needs it, in the customer's live consent. Tokens in the query string or
form body are refused. Errors are RFC 6750 (``WWW-Authenticate: DPoP …``), with an RFC
9457 problem body carrying the same ``error`` and ``error_description``.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import wraps
from typing import Callable

from flask import Response, current_app, g, json, request

from .. import db
from ..config import require_secret
from ..problems import PROBLEM_JSON
from ..runtime import get_runtime
from . import clock, tokens
from .access import MAX_TOKEN_LENGTH, AccessGrant, load_grant
from .dpop import spend
from .errors import InsufficientScope, InvalidDPoPProof, InvalidRequest, InvalidToken, OAuthError
from .jose import ALGORITHMS
from .token_cache import shared_token_cache
from .web import audit_later, check_dpop, transactional


class MissingToken(OAuthError):
    """No credentials at all: RFC 6750 §3.1 answers 401 without an error code."""

    error = "invalid_token"
    status_code = 401


def _token_from_header() -> str:
    if "access_token" in request.args or (request.mimetype == "application/x-www-form-urlencoded"
                                         and "access_token" in request.form):
        raise InvalidRequest("access tokens are accepted only in the Authorization header, never in the URL or body")
    values = request.headers.getlist("Authorization")
    if not values:
        raise MissingToken("send Authorization: DPoP <access token> with a DPoP proof")
    if len(values) > 1:
        raise InvalidRequest("send one Authorization header")
    scheme, _, value = values[0].partition(" ")
    if scheme.lower() == "bearer":
        raise InvalidToken("the access token is DPoP-bound: use the DPoP scheme, not Bearer")
    if scheme.lower() != "dpop" or not value.strip():
        raise InvalidToken("use Authorization: DPoP <access token>")
    value = value.strip()
    if len(value) > MAX_TOKEN_LENGTH:
        raise InvalidToken("the access token is unknown, expired or revoked")
    return value


@contextmanager
def _proof_refusals_are_401():
    """A DPoP refusal on a resource request is a 401 (RFC 9449 §7.1), not the token endpoint's 400."""
    try:
        yield
    except InvalidDPoPProof as exc:
        raise InvalidDPoPProof(exc.description, status_code=401) from None


def _current_grant(access_token: str) -> tuple[AccessGrant, str]:
    """The token's grant and the proof's key thumbprint; the proof's ``jti`` is spent.

    With the token cache, spending the ``jti`` and reading the grant are one Redis round
    trip and the database is read only on a miss; without it, the database every time.
    """
    digest = tokens.digest(access_token)

    def load() -> AccessGrant:
        return load_grant(db.session(), get_runtime().catalog, digest, require_secret(current_app.config))

    cache = shared_token_cache(current_app)
    with _proof_refusals_are_401():
        if cache is None:
            proof = check_dpop(access_token=access_token)
            return load(), proof.jkt
        proof = check_dpop(access_token=access_token, spend=False)
        first_use, cached, buried = cache.spend_and_read(digest, proof.replay_key, proof.replay_until)
        spend(proof, first_use)
    grant = AccessGrant.read(cached) if cached is not None else None
    if grant is None or grant.valid_until <= clock.epoch():
        grant = load()
        if not buried:
            cache.store(digest, grant.to_dict(), grant.valid_until)
    return grant, proof.jkt


def authenticate(required: tuple[str, ...], *, any_scope: bool = False) -> AccessGrant:
    """Check the current request's token and proof; return the grant it carries."""
    grant, jkt = _current_grant(_token_from_header())
    if grant.jkt != jkt:
        raise InvalidToken("the access token is not bound to the key of this DPoP proof")
    missing = [scope for scope in required if scope not in grant.scopes]
    if required and (len(missing) == len(required) if any_scope else missing):
        withdrawn = [scope for scope in missing if scope in grant.withdrawn]
        reason = "the customer has withdrawn consent to" if withdrawn else "the access token lacks"
        raise InsufficientScope(f"{reason} {' or '.join(missing) if any_scope else ', '.join(missing)}")
    return grant


def error_response(error: OAuthError, required: tuple[str, ...] = ()) -> Response:
    """An RFC 6750 / RFC 9449 error answer."""
    challenge = [f'algs="{" ".join(ALGORITHMS)}"']
    if not isinstance(error, MissingToken):
        challenge.insert(0, f'error="{error.error}", error_description="{error.description}"')
    if isinstance(error, InsufficientScope) and required:
        challenge.append(f'scope="{" ".join(required)}"')
    body = {"type": "about:blank", "title": "Unauthorized" if error.status_code == 401 else
            ("Forbidden" if error.status_code == 403 else "Bad Request"), "status": error.status_code,
            "detail": error.description, "instance": request.path}
    if not isinstance(error, MissingToken):
        body.update(error=error.error, error_description=error.description)
    response = Response(json.dumps(body), status=error.status_code, mimetype=PROBLEM_JSON)
    response.headers["WWW-Authenticate"] = "DPoP " + ", ".join(challenge)
    response.headers["Cache-Control"] = "no-store"
    return response


def require_token(*scopes: str, any_scope: bool = False) -> Callable[[Callable], Callable]:
    """Guard a view: a valid DPoP-bound access token with every one of ``scopes`` (or,
    with ``any_scope``, at least one). The view finds the grant in ``g.oauth_grant``.

    A guarded GET must not write to the database: with Redis holding the DPoP replay
    cache, its transaction is a plain read (on SQLite it then runs beside a writer).
    """

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        @transactional(may_read_only=True)  # its GETs only read (and their jti goes to Redis)
        def wrapper(*args, **kwargs):
            try:
                g.oauth_grant = authenticate(scopes, any_scope=any_scope)
            except OAuthError as error:
                audit_later("oauth.resource", outcome="denied", detail={
                    "path": request.path[:200], "error": error.error, "description": (error.description or "")[:200]})
                return error_response(error, scopes)
            return view(*args, **kwargs)

        wrapper.required_scopes = scopes  # type: ignore[attr-defined]
        return wrapper

    return decorate


def current_grant() -> AccessGrant:
    """The grant of the current request (inside a :func:`require_token` view)."""
    return g.oauth_grant
