"""``FakePayments``: the test kit's ``ctx.payments``. Import it from :mod:`canopy_sdk.testing`.

It follows the host's rules (:mod:`canopy_sdk.payment_rules`) and the host's behaviour:
idempotency keys per plugin (the first answer is replayed as it was), another plugin's intent
reported as unknown, lazy expiry when an overdue intent is read, and one
:class:`~canopy_sdk.Event` per change, shaped as the host delivers it to ``canopy_on_event``.
What only the customer or the host can do — confirm, fail, cancel, expire — are test helpers.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

from . import payment_rules as rules
from .errors import IdempotencyMismatch, InvalidIntentState, RefundExceedsCapture, UnknownIntent
from .types import Event, PaymentIntent, Refund

if TYPE_CHECKING:
    from .context import Context

_MAX_ID_LENGTH = 40


@dataclass
class _Intent:
    """One intent as the fake host keeps it (the public view is :meth:`view`)."""

    id: str
    plugin_id: str
    customer: str | None
    branch: str | None
    amount: int
    currency: str
    description: str
    metadata: dict[str, Any]
    created_at: float
    expires_at: float
    state: str = rules.REQUIRES_CONFIRMATION
    amount_refunded: int = 0
    failure_reason: str | None = None
    refunds: list[Refund] = field(default_factory=list)

    def view(self) -> PaymentIntent:
        return PaymentIntent(
            id=self.id, amount=self.amount, currency=self.currency, description=self.description,
            state=self.state, amount_refunded=self.amount_refunded, created_at=rules.iso_utc(self.created_at),
            expires_at=rules.iso_utc(self.expires_at), confirm_url=f"/pay/{self.id}",
            metadata=dict(self.metadata), failure_reason=self.failure_reason,
        )


class _Book:
    """What every view of one FakePayments shares: intents, idempotency records, events."""

    def __init__(self, currencies: frozenset[str], clock: Callable[[], float], confirm_window: float) -> None:
        self.currencies = currencies
        self.clock = clock
        self.confirm_window = confirm_window
        self.lock = threading.RLock()
        self.intents: dict[str, _Intent] = {}
        self.answers: dict[tuple[str, str], tuple[str, str, Any]] = {}  # (plugin, key) -> (operation, digest, answer)
        self.events: list[Event] = []


def _fingerprint(params: dict[str, Any]) -> str:
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=lambda value: f"{type(value).__name__}:{value!r}"[:300])
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class FakePayments:
    """An in-memory :class:`~canopy_sdk.context.Payments` that behaves as the host's.

    ``currencies`` are the accepted ISO 4217 codes (``{"CNY"}`` by default); ``clock`` returns
    the current time in seconds (pass your own to test expiry); an intent not confirmed within
    ``confirm_window`` seconds expires when it is next read or confirmed.

    Used directly, it acts for ``plugin_id`` and the customer ``customer`` without checking
    scopes. ``ctx.payments`` of a :class:`~canopy_sdk.testing.FakeContext` is a view of one
    (:meth:`bind`) that checks the context's scopes with ``ctx.require`` — ``payments:create``,
    ``payments:read``, ``refunds:create`` — and acts for its plugin, customer and branch. All
    views of one FakePayments share its intents, idempotency keys and :attr:`events`.
    """

    def __init__(
        self,
        *,
        currencies: frozenset[str] | set[str] = rules.DEFAULT_CURRENCIES,
        clock: Callable[[], float] = time.time,
        confirm_window: float = rules.CONFIRM_WINDOW_SECONDS,
        plugin_id: str = "test.plugin",
        customer: str | None = None,
        branch: str | None = "SH001",
    ) -> None:
        self._book = _Book(frozenset(currencies), clock, confirm_window)
        self._ctx: Context | None = None
        self._plugin_id = plugin_id
        self._customer = customer
        self._branch = branch

    def bind(self, ctx: Context) -> FakePayments:
        """Return a view of these payments for ``ctx``: its scopes, plugin, customer and branch."""
        view = object.__new__(FakePayments)
        view._book, view._ctx = self._book, ctx
        view._plugin_id, view._customer, view._branch = self._plugin_id, self._customer, self._branch
        return view

    # -- who is asking ------------------------------------------------------------------------

    @property
    def plugin_id(self) -> str:
        """The plugin this view acts for."""
        return self._ctx.plugin_id if self._ctx is not None else self._plugin_id

    def _customer_subject(self) -> str | None:
        if self._ctx is None:
            return self._customer
        return self._ctx.customer.subject if self._ctx.customer is not None else None

    def _branch_code(self) -> str | None:
        return self._ctx.branch.code if self._ctx is not None else self._branch

    def _require(self, scope: str) -> None:
        if self._ctx is not None:
            self._ctx.require(scope)

    # -- the Payments protocol ----------------------------------------------------------------------

    def create_intent(self, *, amount: int, currency: str, description: str, idempotency_key: str,
                      metadata: dict[str, Any] | None = None) -> PaymentIntent:
        """Ask the current customer to pay ``amount`` minor units of ``currency`` (scope
        ``payments:create``); return the new intent, awaiting the customer's confirmation.

        The same ``idempotency_key`` with the same arguments (and customer) returns the first
        answer again, as it was then; with other arguments it raises ``IdempotencyMismatch``.
        Bad arguments raise ``InvalidPayment`` naming the field.
        """
        self._require("payments:create")
        key = rules.check_idempotency_key(idempotency_key)
        checked_amount, code, text, extra = rules.check_intent_request(
            amount, currency, description, metadata, self._book.currencies)
        customer = self._customer_subject()
        params = {"amount": amount, "currency": currency, "description": description, "metadata": metadata,
                  "customer": customer}

        def run() -> PaymentIntent:
            now = self._book.clock()
            intent = _Intent(id=f"pi_{secrets.token_hex(12)}", plugin_id=self.plugin_id, customer=customer,
                             branch=self._branch_code(), amount=checked_amount, currency=code, description=text,
                             metadata=extra, created_at=now, expires_at=now + self._book.confirm_window)
            self._book.intents[intent.id] = intent
            return intent.view()

        answer = self._once(key, "create_intent", params, run)
        return replace(answer, metadata=dict(answer.metadata))

    def get(self, intent_id: str) -> PaymentIntent:
        """Return this plugin's intent ``intent_id`` as it stands (scope ``payments:read``).

        An overdue intent expires now (with its ``payment_intent.expired`` event). Raises
        ``UnknownIntent`` for an unknown id or another plugin's intent.
        """
        self._require("payments:read")
        with self._book.lock:
            intent = self._find(intent_id, self.plugin_id)
            self._expire_if_due(intent)
            return intent.view()

    def refund(self, intent_id: str, *, amount: int, idempotency_key: str, reason: str = "") -> Refund:
        """Return ``amount`` minor units of a succeeded intent to its customer (scope
        ``refunds:create``) and record a ``refund.succeeded`` event.

        Raises ``UnknownIntent``, ``InvalidPayment``, ``InvalidIntentState`` unless the intent
        succeeded, and ``RefundExceedsCapture`` beyond what is left of it. Idempotent as
        :meth:`create_intent` is.
        """
        self._require("refunds:create")
        key = rules.check_idempotency_key(idempotency_key)
        params = {"intent": intent_id, "amount": amount, "reason": reason}

        def run() -> Refund:
            text = rules.check_reason(reason)
            intent = self._find(intent_id, self.plugin_id)
            checked = rules.check_amount(amount, intent.currency)
            if intent.state != rules.SUCCEEDED:
                raise InvalidIntentState(f"only a succeeded payment can be refunded; this one is {intent.state}")
            left = intent.amount - intent.amount_refunded
            if checked > left:
                raise RefundExceedsCapture(
                    f"amount: at most {left} minor units of {intent.currency} are left to refund", field="amount")
            record = Refund(id=f"re_{secrets.token_hex(12)}", intent_id=intent.id, amount=checked,
                            currency=intent.currency, reason=text, created_at=rules.iso_utc(self._book.clock()))
            intent.amount_refunded += checked
            intent.refunds.append(record)
            self._emit(intent, rules.REFUND_SUCCEEDED, refund=record.to_wire())
            return record

        return self._once(key, "refund", params, run)

    # -- what the customer and the host do (test helpers) -----------------------------------------------

    def confirm(self, intent_id: str) -> PaymentIntent:
        """Mark the intent succeeded, as the customer's confirmation with their PIN would, and
        record ``payment_intent.succeeded``. Raises ``InvalidIntentState`` unless it awaits
        confirmation (an overdue one expires instead)."""
        return self._settle(intent_id, rules.SUCCEEDED)

    def fail(self, intent_id: str, reason: str = "declined") -> PaymentIntent:
        """Mark the intent failed with ``reason`` (as the risk centre or the rail would) and
        record ``payment_intent.failed``."""
        return self._settle(intent_id, rules.FAILED, reason)

    def cancel(self, intent_id: str) -> PaymentIntent:
        """Mark the intent canceled and record ``payment_intent.canceled``."""
        return self._settle(intent_id, rules.CANCELED)

    def expire(self, intent_id: str) -> PaymentIntent:
        """Expire the intent now, whatever the clock says, and record ``payment_intent.expired``."""
        return self._settle(intent_id, rules.EXPIRED)

    @property
    def events(self) -> list[Event]:
        """Every event recorded so far, oldest first: what the host would deliver to the plugin's
        ``canopy_on_event`` after each change commits."""
        with self._book.lock:
            return list(self._book.events)

    def intents(self) -> list[PaymentIntent]:
        """Every intent of every plugin, as it stands, oldest first."""
        with self._book.lock:
            return [intent.view() for intent in self._book.intents.values()]

    def refunds(self, intent_id: str) -> list[Refund]:
        """The refunds of ``intent_id`` (any plugin's), oldest first."""
        with self._book.lock:
            return list(self._find(intent_id, None).refunds)

    def customer_of(self, intent_id: str) -> str | None:
        """The pairwise subject of the customer the intent ``intent_id`` (any plugin's) asks to pay."""
        with self._book.lock:
            return self._find(intent_id, None).customer

    # -- inside ----------------------------------------------------------------------------------------

    def _once(self, key: str, operation: str, params: dict[str, Any], run: Callable[[], Any]) -> Any:
        """Run ``run`` once per (plugin, key); a failed run leaves the key free, as a rollback does."""
        digest = _fingerprint({"op": operation, "params": params})
        with self._book.lock:
            earlier = self._book.answers.get((self.plugin_id, key))
            if earlier is not None:
                if earlier[:2] != (operation, digest):
                    raise IdempotencyMismatch(
                        "idempotency_key: this key was used before with other parameters; use a new key for a new "
                        "request", field="idempotency_key")
                return earlier[2]
            answer = run()
            self._book.answers[(self.plugin_id, key)] = (operation, digest, answer)
            return answer

    def _find(self, intent_id: Any, plugin_id: str | None) -> _Intent:
        if not isinstance(intent_id, str) or not intent_id.startswith("pi_") or len(intent_id) > _MAX_ID_LENGTH:
            raise UnknownIntent("no such payment intent")
        intent = self._book.intents.get(intent_id)
        if intent is None or (plugin_id is not None and intent.plugin_id != plugin_id):
            raise UnknownIntent("no such payment intent")
        return intent

    def _expire_if_due(self, intent: _Intent) -> bool:
        if intent.state == rules.REQUIRES_CONFIRMATION and intent.expires_at <= self._book.clock():
            self._move(intent, rules.EXPIRED)
            return True
        return False

    def _settle(self, intent_id: str, state: str, reason: str | None = None) -> PaymentIntent:
        with self._book.lock:
            intent = self._find(intent_id, None)
            if state != rules.EXPIRED and self._expire_if_due(intent):
                raise InvalidIntentState(f"intent {intent.id} was not confirmed in time and has expired")
            if intent.state != rules.REQUIRES_CONFIRMATION:
                raise InvalidIntentState(f"only an intent awaiting confirmation can become {state}; "
                                         f"this one is {intent.state}")
            self._move(intent, state, reason)
            return intent.view()

    def _move(self, intent: _Intent, state: str, reason: str | None = None) -> None:
        intent.state = state
        if state == rules.FAILED:
            intent.failure_reason = (reason or "")[:200] or None
        self._emit(intent, rules.EVENT_FOR_STATE[state])

    def _emit(self, intent: _Intent, event_type: str, **extra: Any) -> None:
        self._book.events.append(Event(
            id=f"evt_{secrets.token_hex(12)}", type=event_type, plugin_id=intent.plugin_id,
            occurred_at=rules.iso_utc(self._book.clock()), data={"intent": intent.view().to_wire(), **extra},
            branch=intent.branch, customer=intent.customer,
        ))
