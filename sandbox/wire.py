"""How hook arguments, results, ``ctx`` facts and SDK errors cross the sandbox boundary.

Both sides use these functions, so the conversions cannot drift apart. Values become
plain JSON with the SDK's own ``to_wire``/``from_wire``; what arrives from a worker is
rebuilt through the SDK types, which check themselves (a bad tile is an
:class:`~canopy_sdk.errors.InvalidResult`, never a half-built value).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canopy_sdk import errors
from canopy_sdk.errors import InvalidResult
from canopy_sdk.types import BranchInfo, Event, Page, PaymentIntent, Refund, SearchHit, StoredItem, Tile

#: The SDK errors that may cross the boundary by name, in either direction. Anything else a
#: hook raises arrives as a plain failure with its message; anything else the host raises in
#: a ctx call arrives as "the host could not do this" without the host's details.
ERROR_TYPES: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        errors.ScopeDenied, errors.NoCustomer, errors.StorageError, errors.InvalidKey, errors.ValueTooLarge,
        errors.InvalidValue, errors.QuotaExceeded, errors.ApiError, errors.InvalidResult, errors.PaymentError,
        errors.InvalidPayment, errors.UnknownIntent, errors.IdempotencyMismatch, errors.InvalidIntentState,
        errors.RefundExceedsCapture,
    )
}
MAX_ERROR_TEXT = 1000


class HookFailed(Exception):
    """A sandboxed hook raised something other than an SDK error; carries its type and message."""


class HostError(errors.CanopyError):
    """The host could not serve a ctx call (a fault on the host's side; no details cross)."""


def _text(value: Any, limit: int = MAX_ERROR_TEXT) -> str:
    return str(value)[:limit]


def error_to_wire(exc: BaseException) -> dict[str, Any]:
    """Describe an exception for the other side."""
    name = type(exc).__name__
    wire: dict[str, Any] = {"type": name if ERROR_TYPES.get(name) is type(exc) else "error",
                            "message": _text(exc) if ERROR_TYPES.get(name) is type(exc) else _text(f"{name}: {exc}")}
    if isinstance(exc, errors.ScopeDenied):
        wire.update(scope=exc.scope, reason=exc.reason)
    elif isinstance(exc, errors.ApiError):
        wire.update(status=exc.status, title=exc.title, detail=exc.detail)
    elif isinstance(exc, errors.PaymentError):
        wire.update(field=exc.field)
    return wire


def error_from_wire(wire: Mapping[str, Any], plugin_id: str | None = None) -> Exception:
    """Rebuild an exception described by :func:`error_to_wire`; unknown or malformed ones
    become :class:`HookFailed` (never an exception type the sender picked freely)."""
    name, message = wire.get("type"), _text(wire.get("message", ""))
    cls = ERROR_TYPES.get(name) if isinstance(name, str) else None
    try:
        if cls is errors.ScopeDenied:
            return errors.ScopeDenied(_text(wire["scope"], 100), _text(wire["reason"], 300), plugin_id)
        if cls is errors.ApiError:
            return errors.ApiError(int(wire["status"]), _text(wire["title"], 200), _text(wire.get("detail", "")))
        if cls is errors.NoCustomer:
            error = errors.NoCustomer()
            error.args = (message,)
            return error
        if cls is not None and issubclass(cls, errors.PaymentError):
            field = wire.get("field")
            return cls(message, field=field if isinstance(field, str) else None)
        if cls is not None:
            return cls(message)
    except (KeyError, TypeError, ValueError):
        return HookFailed(f"malformed {name} error: {message}")
    if name == "host":
        return HostError(message)
    return HookFailed(message)


# -- ctx facts -----------------------------------------------------------------------------

def ctx_to_wire(ctx: Any) -> dict[str, Any]:
    """The facts of one call's ctx a worker may know: plugin, branch, locale, scopes, customer subject."""
    return {
        "plugin_id": ctx.plugin_id,
        "branch": ctx.branch.to_wire(),
        "locale": ctx.locale,
        "scopes": sorted(ctx.scopes),
        "customer": None if ctx.customer is None else ctx.customer.subject,
    }


def ctx_from_wire(wire: Mapping[str, Any]) -> dict[str, Any]:
    """Check and rebuild the facts of :func:`ctx_to_wire` (worker side)."""
    scopes = wire.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise InvalidResult("ctx.scopes must be a list of strings")
    customer = wire.get("customer")
    return {
        "plugin_id": str(wire["plugin_id"]),
        "branch": BranchInfo.from_wire(wire["branch"]),
        "locale": str(wire["locale"]),
        "scopes": frozenset(scopes),
        "customer": customer if isinstance(customer, str) else None,
    }


# -- hook arguments and results -------------------------------------------------------------

def args_to_wire(hook: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A hook call's arguments (without ``ctx``) as JSON."""
    args = {name: value for name, value in kwargs.items() if name != "ctx"}
    if "event" in args:
        args["event"] = args["event"].to_wire()
    if "query" in args and isinstance(args["query"], Mapping):
        args["query"] = dict(args["query"])
    return args


def args_from_wire(hook: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild a hook call's arguments (worker side)."""
    rebuilt = dict(args)
    if hook == "canopy_on_event":
        rebuilt["event"] = Event.from_wire(args["event"])
    return rebuilt


_LISTS = {"canopy_storefront_tiles": Tile, "canopy_search": SearchHit}


def result_to_wire(hook: str, value: Any) -> Any:
    """A hook's return value as JSON (worker side). Values of the wrong type raise
    :class:`InvalidResult`, so the host hears "invalid" rather than a guess."""
    if value is None or hook in ("canopy_api",):
        return value
    if hook == "canopy_on_event":
        return None
    if hook == "canopy_page":
        if type(value) is not Page:
            raise InvalidResult(f"canopy_page must return a Page or None, got {type(value).__name__}")
        return value.to_wire()
    cls = _LISTS[hook]
    items = [value] if isinstance(value, cls) else value
    if not isinstance(items, (list, tuple)) or not all(type(item) is cls for item in items):
        raise InvalidResult(f"{hook} must return a list of {cls.__name__}")
    return [item.to_wire() for item in items]


def result_from_wire(hook: str, value: Any) -> Any:
    """Rebuild a hook's return value from a worker's JSON (host side); raises :class:`InvalidResult`."""
    if value is None or hook == "canopy_api":
        return value
    if hook == "canopy_on_event":
        return None
    if hook == "canopy_page":
        return Page.from_wire(value)
    if not isinstance(value, list):
        raise InvalidResult(f"{hook} must arrive as a list, got {type(value).__name__}")
    cls = _LISTS[hook]
    return [cls.from_wire(item) for item in value]


# -- ctx call values ------------------------------------------------------------------------

def stored_item_to_wire(item: StoredItem | None) -> dict[str, Any] | None:
    """A storage item as JSON."""
    return None if item is None else {"value": item.value, "version": item.version, "expires_at": item.expires_at}


def stored_item_from_wire(wire: Any) -> StoredItem | None:
    """Rebuild a storage item (worker side)."""
    if wire is None:
        return None
    return StoredItem(value=wire["value"], version=int(wire["version"]), expires_at=wire.get("expires_at"))


def payment_value_to_wire(value: Any) -> Any:
    """A payment intent or refund as JSON."""
    return value.to_wire() if isinstance(value, (PaymentIntent, Refund)) else value


def intent_from_wire(wire: Any) -> PaymentIntent:
    """Rebuild a payment intent (worker side)."""
    return PaymentIntent.from_wire(wire)


def refund_from_wire(wire: Any) -> Refund:
    """Rebuild a refund (worker side)."""
    return Refund.from_wire(wire)
