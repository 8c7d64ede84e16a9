"""Canopy SDK: everything a mini-program author imports.

    from canopy_sdk import hookimpl, Tile, Page, ApiError
"""

from .context import Context, Customer, Storage
from .errors import (
    ApiError,
    CanopyError,
    InvalidKey,
    InvalidResult,
    InvalidValue,
    NoCustomer,
    QuotaExceeded,
    ScopeDenied,
    StorageError,
    ValueTooLarge,
)
from .manifest import Manifest, ManifestError, load_manifest
from .markers import PROJECT_NAME, hookimpl, hookspec
from .types import BranchInfo, Event, Page, SearchHit, StoredItem, Tile

__version__ = "0.1.0"

__all__ = [
    "PROJECT_NAME",
    "ApiError",
    "BranchInfo",
    "CanopyError",
    "Context",
    "Customer",
    "Event",
    "InvalidKey",
    "InvalidResult",
    "InvalidValue",
    "Manifest",
    "ManifestError",
    "NoCustomer",
    "Page",
    "QuotaExceeded",
    "ScopeDenied",
    "SearchHit",
    "Storage",
    "StorageError",
    "StoredItem",
    "Tile",
    "ValueTooLarge",
    "hookimpl",
    "hookspec",
    "load_manifest",
]
