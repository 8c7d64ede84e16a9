"""What every OAuth view shares: the host's public URLs, one write transaction per
request with a replay cache in it, DPoP checks of the current request, and audit
events written once the request's own transaction has ended."""

from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from flask import current_app, g, request

from .. import audit, db
from ..config import require_secret
from . import clock
from .dpop import DPoPNonces, DPoPProof, check_proof, verify_proof
from .replay import ReplayCache, request_replay_cache, shared_replay_cache


def issuer() -> str:
    """The issuer identifier (``OAUTH_ISSUER``), without a trailing slash."""
    return str(current_app.config["OAUTH_ISSUER"]).rstrip("/")


def public_url(path: str | None = None) -> str:
    """The public URL of ``path`` (default: this request's path), on the issuer's origin.

    DPoP's ``htu`` is compared with it: behind a proxy, the URL the client called is the
    public one, not the one the worker sees.
    """
    return issuer() + (request.path if path is None else path)


def replay_cache() -> ReplayCache:
    """The replay cache of this request: Redis when ``REDIS_URL`` is set, else the
    ``oauth_replay`` table in this request's transaction."""
    if "oauth_replay" not in g:
        g.oauth_replay = request_replay_cache(current_app, db.session)
    return g.oauth_replay


def dpop_nonces() -> DPoPNonces | None:
    """The server nonce checker when ``OAUTH_DPOP_NONCE`` is on, else None."""
    if not current_app.config.get("OAUTH_DPOP_NONCE"):
        return None
    return DPoPNonces(require_secret(current_app.config))


def check_dpop(*, access_token: str | None = None, nonces: bool = False, spend: bool = True) -> DPoPProof:
    """Verify this request's DPoP proof (RFC 9449) for its method and public URL.

    With ``spend`` False its ``jti`` is not recorded: the caller records it
    (:attr:`~host.oauth.dpop.DPoPProof.replay_key`) and calls :func:`~host.oauth.dpop.spend`.
    """
    headers = request.headers.getlist("DPoP")
    checks = dict(method=request.method, url=public_url(), now=clock.epoch(), access_token=access_token,
                  nonces=dpop_nonces() if nonces else None)
    if not spend:
        return check_proof(headers, **checks)
    return verify_proof(headers, replay=replay_cache(), **checks)


def audit_later(action: str, *, outcome: str, **fields: Any) -> None:
    """Queue an audit event; it is written after this request's transaction ends
    (the audit log writes in a transaction of its own)."""
    g.setdefault("oauth_audit", []).append((action, outcome, fields))


def _flush_audit() -> None:
    for action, outcome, fields in g.pop("oauth_audit", []):
        audit.record(action, outcome=outcome, **fields)


def begin_write() -> None:
    """Start this request's write transaction (SQLite's write lock at BEGIN, so a read
    followed by a write never fails half way)."""
    session = db.session()
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={"sqlite_immediate": True})


def begin_read() -> None:
    """Start this request's transaction as a plain read (on SQLite it runs beside a writer).

    No session is made here: a request answered from the token cache never needs one."""
    _commit_if_begun()


def _commit_if_begun() -> None:
    session = db.session_if_made()
    if session is not None and session.in_transaction():
        session.commit()


def reads_only() -> bool:
    """Whether this request writes nothing to the database: a GET or HEAD whose one-time
    values (DPoP ``jti``) go to Redis rather than the replay table."""
    return request.method in ("GET", "HEAD") and shared_replay_cache(current_app) is not None


def transactional(view: Callable | None = None, *, may_read_only: bool = False):
    """Run ``view`` in one write transaction, committed when it returns a response (OAuth
    error answers included: a replayed code's revocation must stay). When it raises, the
    work is rolled back but the one-time values it saw stay spent.

    ``may_read_only``: for views that never write themselves (the resource server's
    GETs) — when the request :func:`reads_only`, its transaction is a plain read.
    """
    if view is None:
        return lambda inner: transactional(inner, may_read_only=may_read_only)

    @wraps(view)
    def wrapper(*args, **kwargs):
        begin_read() if may_read_only and reads_only() else begin_write()
        try:
            response = view(*args, **kwargs)
        except Exception:
            db.session().rollback()
            cache = g.get("oauth_replay")
            if cache is not None and cache.recorded:
                begin_write()
                cache.restore()
                db.session().commit()
            _flush_audit()
            raise
        _commit_if_begun()
        _flush_audit()
        return response

    return wrapper
