"""The consent ledger: which customer let which plugin use which scope, when, where
(branch), until when, and whether it was withdrawn.

:class:`LedgerConsentSource` is the runtime's consent source (``runtime.consents``), so
the grant check of every ``ctx`` reads the live ledger; tokens are checked against the
same ledger on every use, so withdrawing consent takes effect at once for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import Database
from . import clock, tokens
from .clients import CLIENT_MANAGE, plugin_suspended
from .models import ConsentGrant
from .token_cache import forget

RENEWED = "renewed"
WITHDRAWN = "withdrawn"


def _live(query, now: datetime):
    return query.where(ConsentGrant.revoked_at.is_(None), ConsentGrant.expires_at > now)


def record_consent(
    session: Session, customer_id: str, plugin_id: str, scopes: Iterable[str], *, branch_code: str | None, days: int
) -> list[ConsentGrant]:
    """Record the customer's consent to ``scopes``; an existing grant of a scope is renewed
    (its line closed, a new one opened)."""
    now = clock.now()
    wanted = sorted(set(scopes))
    if not wanted:
        return []
    current = session.scalars(
        select(ConsentGrant).where(
            ConsentGrant.customer_id == customer_id, ConsentGrant.plugin_id == plugin_id,
            ConsentGrant.scope.in_(wanted), ConsentGrant.revoked_at.is_(None),
        )
    )
    for grant in current:
        grant.revoked_at, grant.revoked_reason = now, RENEWED
    forget(session, customer_id=customer_id, client_id=plugin_id)
    session.flush()  # the live-grant unique index must see the old lines closed first
    added = [
        ConsentGrant(customer_id=customer_id, plugin_id=plugin_id, scope=scope, branch_code=branch_code,
                     granted_at=now, expires_at=now + timedelta(days=days))
        for scope in wanted
    ]
    session.add_all(added)
    session.flush()
    return added


def live_scopes(session: Session, customer_id: str, plugin_id: str) -> frozenset[str]:
    """The scopes the customer has consented to for the plugin, unexpired and unrevoked."""
    return frozenset(live_consent(session, customer_id, plugin_id))


def live_consent(session: Session, customer_id: str, plugin_id: str) -> dict[str, datetime]:
    """Each scope the customer has consented to for the plugin (unexpired, unrevoked) and until when."""
    query = select(ConsentGrant.scope, ConsentGrant.expires_at).where(
        ConsentGrant.customer_id == customer_id, ConsentGrant.plugin_id == plugin_id)
    return {scope: until for scope, until in session.execute(_live(query, clock.now()))}


def live_grants(session: Session, customer_id: str) -> list[ConsentGrant]:
    """Every live grant of a customer, by plugin and scope."""
    query = select(ConsentGrant).where(ConsentGrant.customer_id == customer_id)
    return list(session.scalars(_live(query, clock.now()).order_by(ConsentGrant.plugin_id, ConsentGrant.scope)))


def withdraw(session: Session, customer_id: str, plugin_id: str, scope: str | None = None) -> list[str]:
    """Withdraw consent to one scope, or (``scope`` None) to all of the plugin's scopes; return
    the scopes withdrawn. Withdrawing all of them also revokes the plugin's tokens for the customer."""
    now = clock.now()
    query = select(ConsentGrant).where(
        ConsentGrant.customer_id == customer_id, ConsentGrant.plugin_id == plugin_id, ConsentGrant.revoked_at.is_(None)
    )
    if scope is not None:
        query = query.where(ConsentGrant.scope == scope)
    withdrawn = []
    for grant in session.scalars(query):
        grant.revoked_at, grant.revoked_reason = now, WITHDRAWN
        withdrawn.append(grant.scope)
    session.flush()
    if scope is None or not live_scopes(session, customer_id, plugin_id):
        tokens.revoke_for(session, customer_id, plugin_id)
    else:
        forget(session, customer_id=customer_id, client_id=plugin_id)
    return sorted(withdrawn)


@dataclass(frozen=True)
class EffectiveScopes:
    """A token's scopes as they stand now."""

    scopes: frozenset[str]
    withdrawn: frozenset[str]
    #: When the earliest consent these scopes rely on expires (None: they rely on none).
    until: datetime | None = None


def effective_scopes(session: Session, catalog, token_scopes: Iterable[str], customer_id: str | None,
                     plugin_id: str) -> EffectiveScopes:
    """``token_scopes`` less those that need consent and no longer have it."""
    scopes = frozenset(token_scopes)
    # Unknown scopes count as needing consent (fail closed); client:manage is the host's own.
    needing = frozenset(s for s in scopes if s != CLIENT_MANAGE and (s not in catalog or catalog.needs_consent(s)))
    if not needing:
        return EffectiveScopes(scopes, frozenset())
    live = live_consent(session, customer_id, plugin_id) if customer_id else {}
    gone = needing - live.keys()
    until = min((live[s] for s in needing & live.keys()), default=None)
    return EffectiveScopes(scopes - gone, gone, until)


class LedgerConsentSource:
    """The runtime's :class:`~host.runtime.grants.ConsentSource`, reading the ledger."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def consented_scopes(self, customer_id: str, plugin_id: str) -> frozenset[str]:
        """Scopes ``customer_id`` consented to for ``plugin_id`` (unexpired, unrevoked); none
        while head office has suspended the plugin."""
        with self.database.transaction() as session:
            if plugin_suspended(session, plugin_id):
                return frozenset()
            return live_scopes(session, customer_id, plugin_id)
