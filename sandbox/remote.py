"""The ``ctx`` a sandboxed plugin sees: the SDK's Context protocol, served over the channel.

Facts of the call (plugin id, branch, locale, scopes, the customer's pairwise subject)
arrive with the call. Everything else — storage, profile, payments, ``require`` — is a
``ctx`` message to the host, which checks it against the call's grant and answers. The
messages name only a method and its arguments: which plugin, customer and branch they
are for is the host's to know from the call being served.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from canopy_sdk.errors import NoCustomer
from canopy_sdk.types import PaymentIntent, Refund, StoredItem

from . import wire

Ask = Callable[[str, dict[str, Any]], Any]


class RemoteStorage:
    """``ctx.storage`` / ``ctx.customer_storage`` answered by the host."""

    def __init__(self, ask: Ask, name: str) -> None:
        self._ask = ask
        self._name = name

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key``, or ``default``."""
        item = self.get_item(key)
        return default if item is None else item.value

    def get_item(self, key: str) -> StoredItem | None:
        """The value with its version, or None."""
        return wire.stored_item_from_wire(self._ask(f"{self._name}.get_item", {"key": key}))

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> int:
        """Store ``value``; return its version."""
        return self._ask(f"{self._name}.set", {"key": key, "value": value, "ttl": ttl})

    def compare_and_set(self, key: str, value: Any, *, version: int | None, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is at ``version``."""
        return self._ask(f"{self._name}.compare_and_set", {"key": key, "value": value, "version": version, "ttl": ttl})

    def delete(self, key: str) -> bool:
        """Remove ``key``."""
        return self._ask(f"{self._name}.delete", {"key": key})

    def list(self, prefix: str = "", *, limit: int = 100) -> list[str]:
        """Live keys starting with ``prefix``."""
        return self._ask(f"{self._name}.list", {"prefix": prefix, "limit": limit})


class RemoteCustomer:
    """The customer as this plugin sees them."""

    def __init__(self, ask: Ask, subject: str) -> None:
        self._ask = ask
        self.subject = subject

    def profile(self) -> dict[str, Any]:
        """Profile fields the grant allows."""
        return self._ask("customer.profile", {})


class RemotePayments:
    """``ctx.payments`` answered by the host."""

    def __init__(self, ask: Ask) -> None:
        self._ask = ask

    def create_intent(self, *, amount: int, currency: str, description: str, idempotency_key: str,
                      metadata: dict[str, Any] | None = None) -> PaymentIntent:
        """Ask the customer to pay (scope ``payments:create``)."""
        return wire.intent_from_wire(self._ask("payments.create_intent", {
            "amount": amount, "currency": currency, "description": description,
            "idempotency_key": idempotency_key, "metadata": metadata}))

    def get(self, intent_id: str) -> PaymentIntent:
        """One of this plugin's intents (scope ``payments:read``)."""
        return wire.intent_from_wire(self._ask("payments.get", {"intent_id": intent_id}))

    def refund(self, intent_id: str, *, amount: int, idempotency_key: str, reason: str = "") -> Refund:
        """Refund part or all of a succeeded intent (scope ``refunds:create``)."""
        return wire.refund_from_wire(self._ask("payments.refund", {
            "intent_id": intent_id, "amount": amount, "idempotency_key": idempotency_key, "reason": reason}))


class _LogHandler(logging.Handler):
    def __init__(self, send: Callable[[str, str], None]) -> None:
        super().__init__(logging.DEBUG)
        self.send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = record.levelname.lower()
            self.send(level if level in ("debug", "info", "warning", "error") else "error", self.format(record))
        except Exception:  # a log line must never break the hook
            pass


def _plugin_logger(plugin_id: str, send_log: Callable[[str, str], None]) -> logging.Logger:
    """The logger ``canopy.plugin.<id>``, sending its lines through ``send_log`` (set up once per
    sender: reconfiguring a logger clears every logger's cache, too slow for every call)."""
    logger = logging.getLogger(f"canopy.plugin.{plugin_id}")
    handlers = logger.handlers
    if not (len(handlers) == 1 and isinstance(handlers[0], _LogHandler) and handlers[0].send == send_log):
        logger.propagate = False
        logger.handlers[:] = [_LogHandler(send_log)]
        logger.setLevel(logging.DEBUG)
    return logger


class RemoteContext:
    """What a sandboxed hook's ``ctx`` is. Satisfies :class:`canopy_sdk.Context`."""

    def __init__(self, facts: dict[str, Any], ask: Ask, send_log: Callable[[str, str], None]) -> None:
        self.plugin_id: str = facts["plugin_id"]
        self.branch = facts["branch"]
        self.locale: str = facts["locale"]
        self.scopes: frozenset[str] = facts["scopes"]
        subject = facts["customer"]
        self.customer = None if subject is None else RemoteCustomer(ask, subject)
        self.storage = RemoteStorage(ask, "storage")
        self._customer_storage = None if subject is None else RemoteStorage(ask, "customer_storage")
        self.payments = RemotePayments(ask)
        self._ask = ask
        self._send_log = send_log
        self._log: logging.LoggerAdapter | None = None

    @property
    def log(self) -> logging.LoggerAdapter:
        """The plugin's logger: its lines go to the host with the call (made on first use)."""
        if self._log is None:
            self._log = logging.LoggerAdapter(_plugin_logger(self.plugin_id, self._send_log), {"plugin": self.plugin_id})
        return self._log

    @property
    def customer_storage(self) -> RemoteStorage:
        """The plugin's store for the current customer."""
        if self._customer_storage is None:
            raise NoCustomer("customer storage")
        return self._customer_storage

    def has_scope(self, scope: str) -> bool:
        """Whether ``scope`` is granted for this call."""
        return scope in self.scopes

    def require(self, scope: str) -> None:
        """Raise ScopeDenied unless granted (asked of the host, which audits denials)."""
        self._ask("require", {"scope": scope})
