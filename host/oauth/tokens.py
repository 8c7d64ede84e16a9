"""Issued tokens: opaque random values, stored as SHA-256 digests, looked up by digest."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import clock
from .models import OAuthToken, TokenKind
from .token_cache import forget


def digest(value: str) -> str:
    """The stored form of a code or token."""
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def new_secret() -> str:
    """A fresh 256-bit random value for a code or token."""
    return secrets.token_urlsafe(32)


def issue(
    session: Session,
    *,
    kind: str,
    client_id: str,
    seconds: int,
    customer_id: str | None = None,
    scope: str = "",
    jkt: str | None = None,
    code_id: int | None = None,
    branch_code: str | None = None,
    value: str | None = None,
) -> tuple[str, OAuthToken]:
    """Store a new token; return its value (given to the client once, never stored) and its row."""
    value = value or new_secret()
    now = clock.now()
    token = OAuthToken(
        kind=kind, digest=digest(value), client_id=client_id, customer_id=customer_id, scope=scope, jkt=jkt,
        code_id=code_id, branch_code=branch_code, issued_at=now, expires_at=now + timedelta(seconds=seconds),
    )
    session.add(token)
    session.flush()
    return value, token


def find(session: Session, value: object, kind: str | None = None) -> OAuthToken | None:
    """The token whose value is ``value`` (of ``kind`` when given), active or not."""
    if not isinstance(value, str) or not value or len(value) > 512:
        return None
    token = session.scalar(select(OAuthToken).where(OAuthToken.digest == digest(value)))
    if token is None or (kind is not None and token.kind != kind):
        return None
    return token


def is_active(token: OAuthToken | None) -> bool:
    """Whether ``token`` is neither expired nor revoked."""
    return token is not None and token.revoked_at is None and token.expires_at > clock.now()


def revoke(session: Session, token: OAuthToken) -> None:
    """Revoke one token; revoking a refresh token revokes its grant's access tokens too (RFC 7009 §2.1)."""
    now = clock.now()
    token.revoked_at = token.revoked_at or now
    if token.kind == TokenKind.ACCESS:
        forget(session, digest=token.digest)
    if token.kind == TokenKind.REFRESH and token.code_id is not None:
        revoke_from_code(session, token.code_id)


def revoke_from_code(session: Session, code_id: int) -> int:
    """Revoke every token issued from one authorization code's grant; return how many."""
    forget(session, code_id=code_id)
    result = session.execute(
        update(OAuthToken)
        .where(OAuthToken.code_id == code_id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
    return result.rowcount or 0


def revoke_for(session: Session, customer_id: str, client_id: str) -> int:
    """Revoke every token a client holds for a customer (consent withdrawn); return how many."""
    forget(session, customer_id=customer_id, client_id=client_id)
    result = session.execute(
        update(OAuthToken)
        .where(OAuthToken.customer_id == customer_id, OAuthToken.client_id == client_id,
               OAuthToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
    return result.rowcount or 0


__all__ = ["TokenKind", "digest", "find", "is_active", "issue", "new_secret", "revoke", "revoke_for", "revoke_from_code"]
