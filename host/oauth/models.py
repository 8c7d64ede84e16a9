"""OAuth tables: clients, pushed requests, codes, tokens, the consent ledger, the replay
cache and mini-program login codes.

Codes and tokens are stored as SHA-256 digests only: a copy of the database gives no
usable credential.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow
from . import clock


class OAuthClient(Base):
    """A mini-program as an OAuth client; ``client_id`` is the plugin id."""

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(ForeignKey("plugins.id", ondelete="CASCADE"), primary_key=True)
    jwks: Mapped[dict[str, Any]] = mapped_column(JSON)
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PushedAuthorization(Base):
    """A pushed authorization request (RFC 9126).

    The ``request_uri`` must reach the authorization endpoint before ``expires_at``; the
    first browser to open it claims it (``claim_digest`` is kept in that browser's
    session) and may finish until ``interaction_expires_at``; ``used_at`` ends it.
    """

    __tablename__ = "oauth_pushed_authorizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id", ondelete="CASCADE"))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claim_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    interaction_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuthorizationCode(Base):
    """An authorization code: single use, short-lived, bound to client, redirect URI, PKCE
    challenge and (when the client asked) a DPoP key."""

    __tablename__ = "oauth_authorization_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id", ondelete="CASCADE"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    branch_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(String(43))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    dpop_jkt: Mapped[str | None] = mapped_column(String(43), nullable=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    # Authlib's AuthorizationCodeMixin
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


class TokenKind:
    """Kinds of stored token."""

    ACCESS = "access"
    REFRESH = "refresh"
    SESSION = "session"  #: a mini-program login session


class OAuthToken(Base):
    """An issued token (access, refresh or mini-program session), stored as a digest.

    ``code_id`` ties every token to the authorization code its grant began with, so a
    replayed code revokes them all; ``jkt`` is the DPoP key an access token is bound to.
    """

    __tablename__ = "oauth_tokens"
    __table_args__ = (
        Index("ix_oauth_tokens_client_customer", "client_id", "customer_id"),
        Index("ix_oauth_tokens_code_id", "code_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id", ondelete="CASCADE"))
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), nullable=True)
    branch_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    jkt: Mapped[str | None] = mapped_column(String(43), nullable=True)
    code_id: Mapped[int | None] = mapped_column(
        ForeignKey("oauth_authorization_codes.id", ondelete="SET NULL"), nullable=True
    )
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def scopes(self) -> frozenset[str]:
        """The token's scopes as a set."""
        return frozenset(self.scope.split())

    # Authlib's TokenMixin
    def check_client(self, client) -> bool:
        return client is not None and client.get_client_id() == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(int((self.expires_at - self.issued_at).total_seconds()), 0)

    def is_expired(self) -> bool:
        return self.expires_at <= clock.now()

    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class ConsentGrant(Base):
    """One line of the consent ledger: a customer let a plugin use one scope.

    At most one live (unrevoked) grant per customer × plugin × scope; renewing consent
    closes the old line and opens a new one, so the ledger keeps the whole history.
    """

    __tablename__ = "consent_grants"
    __table_args__ = (
        Index(
            "uq_consent_grants_live",
            "customer_id",
            "plugin_id",
            "scope",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    plugin_id: Mapped[str] = mapped_column(ForeignKey("plugins.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(64))
    branch_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)


class ReplayEntry(Base):
    """A one-time value seen (digest of a namespaced ``jti``), kept until it could not be accepted anyway."""

    __tablename__ = "oauth_replay"
    __table_args__ = (Index("ix_oauth_replay_expires_at", "expires_at"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MiniProgramLoginCode(Base):
    """A one-time mini-program login code (as ``wx.login`` gives), bound to plugin and customer."""

    __tablename__ = "mp_login_codes"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    plugin_id: Mapped[str] = mapped_column(ForeignKey("plugins.id", ondelete="CASCADE"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    branch_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
