"""The grant check: what a plugin may do in one call.

    granted = manifest scopes ∩ scopes approved by head office ∩ (for scopes that need it)
              the customer's consent

Each part can deny; :func:`explain` names the one that did, so a denial tells
the plugin's developer exactly what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..oauth.scopes import ScopeCatalog


class ConsentSource(Protocol):
    """Where a customer's consents come from."""

    def consented_scopes(self, customer_id: str, plugin_id: str) -> frozenset[str]:
        """Return the scopes ``customer_id`` has consented to for ``plugin_id`` (unexpired, unrevoked)."""


class NoConsentsYet:
    """The consent source until the consent ledger exists: nobody has consented to anything,
    so scopes that need consent are never granted."""

    def consented_scopes(self, customer_id: str, plugin_id: str) -> frozenset[str]:
        return frozenset()


@dataclass(frozen=True, slots=True)
class Grant:
    """The parts of one call's grant."""

    requested: frozenset[str]
    approved: frozenset[str]
    consented: frozenset[str]
    needs_consent: frozenset[str]
    has_customer: bool
    #: The scopes this call may use (worked out once, when the grant is made).
    scopes: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        base = self.requested & self.approved
        object.__setattr__(self, "scopes", frozenset(s for s in base if s not in self.needs_consent or s in self.consented))

    def explain(self, scope: str) -> str:
        """Say why ``scope`` is not granted (or that it is)."""
        if scope not in self.requested:
            return "the plugin's manifest does not request it"
        if scope not in self.approved:
            return "head office has not approved it for this plugin version"
        if scope in self.needs_consent and not self.has_customer:
            return "it needs a signed-in customer's consent and there is no customer"
        if scope in self.needs_consent and scope not in self.consented:
            return "the customer has not consented to it"
        return "granted"


def grant_for(
    catalog: ScopeCatalog,
    requested: frozenset[str],
    approved: frozenset[str],
    consents: ConsentSource,
    plugin_id: str,
    customer_id: str | None,
) -> Grant:
    """Build the grant of one call."""
    # A scope missing from the catalog is treated as needing consent: fail closed.
    needs = frozenset(s for s in requested if s not in catalog or catalog.needs_consent(s))
    consented = consents.consented_scopes(customer_id, plugin_id) if customer_id and needs else frozenset()
    return Grant(requested, approved, consented, needs, customer_id is not None)
