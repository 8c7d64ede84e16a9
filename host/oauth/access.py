"""What an access token allows right now.

:func:`load_grant` reads it from the database — the token (unexpired, unrevoked), its
client (not disabled), the customer's live consent, and the profile fields the live
scopes show — and refuses what cannot be used with :class:`~host.oauth.errors.InvalidToken`.
The answer is an :class:`AccessGrant`, which the token cache keeps as JSON
(:meth:`AccessGrant.to_dict`) until :attr:`AccessGrant.valid_until` or until something
it depends on changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..identity.models import Customer
from ..identity.pairwise import pairwise_subject
from ..runtime.context import PROFILE_FIELDS
from . import tokens
from .clients import active_client
from .consent import effective_scopes
from .errors import InvalidToken
from .models import OAuthToken, TokenKind

#: The longest an access token's value may be (longer ones are not ours).
MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """Who is calling, for whom, with which scopes (as they stand now)."""

    client_id: str
    customer_id: str | None
    scopes: frozenset[str]  #: the token's scopes that are still in force
    withdrawn: frozenset[str]  #: the token's scopes whose consent was withdrawn or expired
    jkt: str | None  #: the DPoP key the token is bound to
    valid_until: int  #: epoch seconds: the token's expiry, or an earlier consent expiry
    profile: dict[str, Any] | None = None  #: the customer's fields that :attr:`scopes` show
    subject: str | None = None  #: the customer's pairwise id as this client sees it

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for the token cache)."""
        return {"client_id": self.client_id, "customer_id": self.customer_id, "scopes": sorted(self.scopes),
                "withdrawn": sorted(self.withdrawn), "jkt": self.jkt, "valid_until": self.valid_until,
                "profile": self.profile, "subject": self.subject}

    @classmethod
    def read(cls, data: Any) -> "AccessGrant | None":
        """The grant :meth:`to_dict` described, or None when ``data`` is not such a description."""
        try:
            grant = cls(data["client_id"], data["customer_id"], frozenset(data["scopes"]),
                        frozenset(data["withdrawn"]), data["jkt"], int(data["valid_until"]), data["profile"],
                        data["subject"])
        except (KeyError, TypeError, ValueError):
            return None
        return grant if isinstance(grant.client_id, str) and isinstance(grant.profile, (dict, type(None))) else None


def load_grant(session: Session, catalog, digest: str, secret: bytes) -> AccessGrant:
    """The grant of the access token stored as ``digest``, read from the database
    (``secret``: the host's, for the customer's pairwise subject).

    Raises :class:`InvalidToken` when the token is unknown, expired or revoked, its client
    is disabled, or every scope it had needed consent that is no longer given.
    """
    token = session.scalar(select(OAuthToken).where(OAuthToken.digest == digest))
    if token is None or token.kind != TokenKind.ACCESS or not tokens.is_active(token):
        raise InvalidToken("the access token is unknown, expired or revoked")
    if active_client(session, token.client_id) is None:
        raise InvalidToken("the client of this access token is disabled")
    live = effective_scopes(session, catalog, token.scopes, token.customer_id, token.client_id)
    if token.customer_id and token.scopes and not live.scopes:
        raise InvalidToken("the customer has withdrawn consent for this access token")
    valid_until = int(token.expires_at.timestamp())
    if live.until is not None:
        valid_until = min(valid_until, int(live.until.timestamp()))
    profile = None
    if token.customer_id and any(scope in live.scopes for scope in PROFILE_FIELDS):
        customer = session.get(Customer, token.customer_id)
        if customer is not None:
            profile = {field: getattr(customer, field)
                       for scope, fields in PROFILE_FIELDS.items() if scope in live.scopes for field in fields}
    subject = pairwise_subject(secret, token.client_id, token.customer_id) if token.customer_id else None
    return AccessGrant(token.client_id, token.customer_id, live.scopes, live.withdrawn, token.jkt, valid_until, profile,
                       subject)
