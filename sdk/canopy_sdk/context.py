"""What a hook's ``ctx`` offers. The host builds one per plugin, branch and customer.

These are typing Protocols: the host's context and the test kit's ``FakeContext``
both satisfy them, so code written against this page runs in either.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

from .types import BranchInfo, PaymentIntent, Refund, StoredItem


@runtime_checkable
class Storage(Protocol):
    """A key–value store private to one plugin (and, for ``ctx.customer_storage``,
    to one customer of that plugin). No plugin can name another plugin's keys.

    Limits are in :mod:`canopy_sdk.storage_rules`; breaking one raises a
    :class:`~canopy_sdk.errors.StorageError` and writes nothing.
    """

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value at ``key``, or ``default`` when it is absent or expired."""

    def get_item(self, key: str) -> StoredItem | None:
        """Return the value with its version (for :meth:`compare_and_set`), or None."""

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> int:
        """Store ``value`` at ``key`` (expiring after ``ttl`` seconds if given); return its new version."""

    def compare_and_set(self, key: str, value: Any, *, version: int | None, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is at ``version`` now (``None``: only if absent).

        Returns True when stored, False when someone else changed the key first.
        Of any number of concurrent callers expecting the same version, exactly one wins.
        """

    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it was there."""

    def list(self, prefix: str = "", *, limit: int = 100) -> list[str]:
        """Return up to ``limit`` live keys starting with ``prefix``, in sorted order."""


@runtime_checkable
class Customer(Protocol):
    """The signed-in customer, as this plugin sees them."""

    #: A pairwise pseudonymous id: stable for this plugin, different in every other.
    subject: str

    def profile(self) -> dict[str, Any]:
        """Return the profile fields the plugin's grant allows (needs ``profile.basic:read``)."""


@runtime_checkable
class Payments(Protocol):
    """Payments for this plugin. Only the host moves money: a plugin asks to be paid, the
    customer confirms on the bank's own page with their payment PIN.

    Refusals raise a :class:`~canopy_sdk.errors.PaymentError` subclass naming the problem;
    a call outside the plugin's grant raises :class:`~canopy_sdk.errors.ScopeDenied`.
    """

    def create_intent(self, *, amount: int, currency: str, description: str, idempotency_key: str,
                      metadata: dict[str, Any] | None = None) -> PaymentIntent:
        """Ask the current customer to pay ``amount`` minor units of ``currency`` (scope
        ``payments:create``). The same ``idempotency_key`` with the same arguments returns the
        same intent; with other arguments it raises ``IdempotencyMismatch``. ``description``
        (1–200 characters) is shown on the bank's confirmation page; ``metadata`` (a small
        JSON object, at most 20 keys) comes back with the intent and its events."""

    def get(self, intent_id: str) -> PaymentIntent:
        """This plugin's intent ``intent_id`` as it stands (scope ``payments:read``)."""

    def refund(self, intent_id: str, *, amount: int, idempotency_key: str, reason: str = "") -> Refund:
        """Return ``amount`` minor units of a succeeded intent to its customer (scope
        ``refunds:create``). All refunds of an intent never exceed what was paid."""


@runtime_checkable
class Context(Protocol):
    """The scoped context every hook receives."""

    #: The id of the plugin this context serves.
    plugin_id: str
    #: The branch whose storefront or page the call serves.
    branch: BranchInfo
    #: The customer's language, ``zh-CN`` or ``en``.
    locale: str
    #: The signed-in customer, or None for an anonymous visitor.
    customer: Customer | None
    #: The plugin's own store, shared by all its customers.
    storage: Storage
    #: The scopes this call may use: manifest ∩ approved ∩ the customer's consent.
    scopes: frozenset[str]
    #: A logger whose records carry the plugin id.
    log: logging.LoggerAdapter
    #: Payment intents and refunds for this plugin (see :class:`Payments`).
    payments: Payments

    @property
    def customer_storage(self) -> Storage:
        """The plugin's store for the current customer; raises ``NoCustomer`` when anonymous."""

    def has_scope(self, scope: str) -> bool:
        """Return whether ``scope`` is granted for this call."""

    def require(self, scope: str) -> None:
        """Raise :class:`~canopy_sdk.errors.ScopeDenied` unless ``scope`` is granted."""
