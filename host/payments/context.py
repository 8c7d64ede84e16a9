"""``ctx.payments``: what an in-process mini-program may do with money — ask to be paid, read
its intents, refund — each call checked against the plugin's grant (``ctx.require``) and run
in a transaction of its own (hooks run on the runtime's threads, outside any request)."""

from __future__ import annotations

from typing import Any, Callable

from canopy_sdk.types import PaymentIntent as IntentView
from canopy_sdk.types import Refund as RefundView

from ..db import Database
from . import idempotency, intents


class HostPayments:
    """Satisfies :class:`canopy_sdk.Payments` for one ``ctx``."""

    def __init__(self, *, database: Database, plugin_id: str, customer_id: str | None, branch_code: str | None,
                 require: Callable[[str], None], currencies: frozenset[str], on_events: Callable[[], None]) -> None:
        self._database = database
        self._plugin_id = plugin_id
        self._customer_id = customer_id
        self._branch_code = branch_code
        self._require = require
        self._currencies = currencies
        self._on_events = on_events

    @property
    def _caller(self) -> str:
        return f"plugin:{self._plugin_id}"

    def create_intent(self, *, amount: int, currency: str, description: str, idempotency_key: str,
                      metadata: dict[str, Any] | None = None) -> IntentView:
        """Ask the current customer to pay (see :class:`canopy_sdk.Payments`)."""
        self._require("payments:create")
        key = idempotency.check_key(idempotency_key, "idempotency_key")
        request = intents.IntentRequest.check(amount, currency, description, metadata, self._currencies)
        params = {**request.params(), "customer": self._customer_id}
        with self._database.transaction(write=True) as session:
            def run():
                intent = intents.create(session, plugin_id=self._plugin_id, request=request,
                                        customer_id=self._customer_id, branch_code=self._branch_code)
                return 201, intents.view(intent).to_wire()

            _, body = idempotency.once(session, self._caller, key, "create_intent", params, run)
        return IntentView.from_wire(body)

    def get(self, intent_id: str) -> IntentView:
        """This plugin's intent as it stands (see :class:`canopy_sdk.Payments`)."""
        self._require("payments:read")
        with self._database.transaction() as session:
            return intents.view(intents.find(session, self._plugin_id, intent_id))

    def refund(self, intent_id: str, *, amount: int, idempotency_key: str, reason: str = "") -> RefundView:
        """Refund part or all of a succeeded intent (see :class:`canopy_sdk.Payments`)."""
        self._require("refunds:create")
        key = idempotency.check_key(idempotency_key, "idempotency_key")
        params = {"intent": intent_id, "amount": amount, "reason": reason}
        with self._database.transaction(write=True) as session:
            def run():
                return 201, intents.refund_view(intents.refund(session, self._plugin_id, intent_id, amount, reason)).to_wire()

            _, body = idempotency.once(session, self._caller, key, "refund", params, run)
        self._on_events()
        return RefundView.from_wire(body)

