"""Canopy SDK: everything a mini-program author imports.

    from canopy_sdk import hookimpl, Tile, Page, ApiError
"""

from .context import Context, Customer, Payments, Storage
from .errors import (
    ApiError,
    CanopyError,
    IdempotencyMismatch,
    InvalidIntentState,
    InvalidKey,
    InvalidPayment,
    InvalidResult,
    InvalidValue,
    NoCustomer,
    PaymentError,
    QuotaExceeded,
    RefundExceedsCapture,
    ScopeDenied,
    StorageError,
    UnknownIntent,
    ValueTooLarge,
)
from .manifest import Manifest, ManifestError, load_manifest
from .markers import PROJECT_NAME, hookimpl, hookspec
from .types import BranchInfo, Event, Page, PaymentIntent, Refund, SearchHit, StoredItem, Tile

__version__ = "0.1.0"

__all__ = [
    "PROJECT_NAME",
    "ApiError",
    "BranchInfo",
    "CanopyError",
    "Context",
    "Customer",
    "Event",
    "IdempotencyMismatch",
    "InvalidIntentState",
    "InvalidKey",
    "InvalidPayment",
    "InvalidResult",
    "InvalidValue",
    "Manifest",
    "ManifestError",
    "NoCustomer",
    "Page",
    "PaymentError",
    "PaymentIntent",
    "Payments",
    "QuotaExceeded",
    "Refund",
    "RefundExceedsCapture",
    "ScopeDenied",
    "SearchHit",
    "Storage",
    "StorageError",
    "StoredItem",
    "Tile",
    "UnknownIntent",
    "ValueTooLarge",
    "hookimpl",
    "hookspec",
    "load_manifest",
]
