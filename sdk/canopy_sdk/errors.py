"""Errors a mini-program can meet or raise. Each carries a message a person can act on."""

from __future__ import annotations


class CanopyError(Exception):
    """Base class of every error the SDK defines."""


class ScopeDenied(CanopyError):
    """A ``ctx`` call needs a scope the plugin has not been granted.

    The host audits every denial. ``scope`` names the missing scope and ``reason``
    says which part of the grant is missing (manifest, approval or customer consent).
    """

    def __init__(self, scope: str, reason: str, plugin_id: str | None = None) -> None:
        self.scope = scope
        self.reason = reason
        self.plugin_id = plugin_id
        who = f"plugin {plugin_id!r}" if plugin_id else "this plugin"
        super().__init__(f"{who} may not use scope {scope!r}: {reason}")


class NoCustomer(CanopyError):
    """The call needs a signed-in customer and the current request has none."""

    def __init__(self, what: str = "this call") -> None:
        super().__init__(f"{what} needs a signed-in customer")


class StorageError(CanopyError):
    """Base class of the errors ``ctx.storage`` raises for bad keys, values or quotas."""


class InvalidKey(StorageError):
    """A storage key is empty, too long or holds characters outside the allowed set."""


class ValueTooLarge(StorageError):
    """A storage value is larger than the per-value limit once encoded as JSON."""


class InvalidValue(StorageError):
    """A storage value cannot be encoded as JSON (or holds NaN / infinity)."""


class QuotaExceeded(StorageError):
    """The plugin's namespace already holds as many keys as it may."""


class ApiError(CanopyError):
    """Raise from ``canopy_api`` to answer the page with an error instead of a result.

    The host turns it into an RFC 9457 problem document with the given status
    (4xx only), ``title`` and ``detail``.
    """

    def __init__(self, status: int, title: str, detail: str = "") -> None:
        if not 400 <= int(status) <= 499:
            raise ValueError(f"ApiError status must be a 4xx code, got {status!r}")
        self.status = int(status)
        self.title = str(title)
        self.detail = str(detail)
        super().__init__(f"{self.status} {self.title}: {self.detail}".rstrip(": "))


class InvalidResult(CanopyError):
    """A hook returned something that is not what its spec promises."""


class PaymentError(CanopyError):
    """Base class of what ``ctx.payments`` refuses. ``status`` is the HTTP status the host's
    API answers with for the same refusal; ``field`` names the argument at fault, if one is."""

    status = 400
    title = "Payment refused"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class InvalidPayment(PaymentError):
    """An argument is wrong: an amount that is not a positive whole number of minor units, an
    unknown or mismatched currency, a description too long, metadata not JSON-able or too big."""

    status = 422
    title = "Invalid payment"


class UnknownIntent(PaymentError):
    """No such payment intent — or it belongs to another mini-program (never told apart)."""

    status = 404
    title = "No such payment intent"


class IdempotencyMismatch(PaymentError):
    """The idempotency key was used before with other parameters: use a new key for a new request."""

    status = 422
    title = "Idempotency key reused"


class InvalidIntentState(PaymentError):
    """The intent is not in a state that allows this (e.g. a refund of an unpaid intent)."""

    status = 409
    title = "Payment intent in the wrong state"


class RefundExceedsCapture(PaymentError):
    """The refund, with those before it, would return more than was paid."""

    status = 422
    title = "Refund too large"
