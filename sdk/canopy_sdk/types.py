"""Public value types that hooks return or receive.

Each type checks itself when built, so a value that exists is a valid one. The host
accepts only instances of these classes (or, from the sandbox, their wire form via
``from_wire``), which is how a plugin that returns junk is caught at the boundary.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .errors import InvalidResult

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINK = re.compile(r"^/(?!/)[^\s\\]*\Z")
_QUERY_OR_FRAGMENT = re.compile(r"[?#]")


def _text(owner: str, name: str, value: Any, *, max_len: int, required: bool = True) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str):
        raise InvalidResult(f"{owner}.{name} must be a string, got {type(value).__name__}")
    if required and (not value or value.isspace()):  # what ``not value.strip()`` says, without a copy
        raise InvalidResult(f"{owner}.{name} must not be empty")
    if len(value) > max_len:
        raise InvalidResult(f"{owner}.{name} is {len(value)} characters; the limit is {max_len}")
    if _CONTROL.search(value):
        raise InvalidResult(f"{owner}.{name} holds control characters")


def _link(owner: str, name: str, value: Any) -> None:
    _text(owner, name, value, max_len=500)
    if not _LINK.match(value) or ".." in _link_path(value):
        raise InvalidResult(
            f"{owner}.{name} must be a path inside the mini-program starting with '/', got {value!r}"
        )


def _link_path(link: str) -> list[str]:
    """The segments of ``link``'s path (before any query or fragment), percent-decoded: a '..'
    segment (even as %2e%2e) would climb out of the mini-program's address."""
    path = _QUERY_OR_FRAGMENT.split(link, maxsplit=1)[0]
    return (unquote(path) if "%" in path else path).split("/")


def _plain_mapping(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise InvalidResult(f"{owner}.{name} must be a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise InvalidResult(f"{owner}.{name} keys must be strings, got {type(key).__name__}")


def _plain(value: Any) -> Any:
    """``value`` as plain data: wire types as dicts, lists, tuples and mappings (read-only ones
    too) copied as plain ones — what :func:`dataclasses.asdict` gives, without deep-copying
    every string and number."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, _Wire):
        return value.to_wire()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


class _Wire:
    """Conversion to and from the plain dicts that cross the sandbox boundary."""

    def to_wire(self) -> dict[str, Any]:
        """Return this value as a plain, JSON-able dict (a fresh one: nested values are copied)."""
        return {name: _plain(getattr(self, name)) for name in self.__dataclass_fields__}  # type: ignore[attr-defined]

    @classmethod
    def from_wire(cls, data: Any):
        """Build a value from its wire form, raising :class:`InvalidResult` on anything else."""
        if not isinstance(data, Mapping):
            raise InvalidResult(f"{cls.__name__} must arrive as an object, got {type(data).__name__}")
        known = cls.__dataclass_fields__.keys()  # type: ignore[attr-defined]
        if not known >= data.keys():
            unknown = data.keys() - known
            raise InvalidResult(f"{cls.__name__} has unknown fields: {', '.join(sorted(map(str, unknown)))}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidResult(f"{cls.__name__}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Tile(_Wire):
    """One card a mini-program shows in its storefront zone.

    ``link`` is a path inside the mini-program (``/``, ``/bills?id=3``); the host turns it
    into a link to the embedded page, so a tile can never point outside its plugin.
    """

    title: str
    subtitle: str = ""
    link: str = "/"
    badge: str | None = None
    icon: str | None = None

    def __post_init__(self) -> None:
        _text("Tile", "title", self.title, max_len=80)
        _text("Tile", "subtitle", self.subtitle, max_len=200, required=False)
        _link("Tile", "link", self.link)
        _text("Tile", "badge", self.badge, max_len=16, required=False)
        _text("Tile", "icon", self.icon, max_len=64, required=False)


@dataclass(frozen=True, slots=True)
class Page(_Wire):
    """An embedded page. Give either ``template`` (a file in the plugin's ``templates/``
    folder, rendered by the host with autoescaping and ``context``) or ready ``html``."""

    title: str
    template: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    html: str | None = None
    status: int = 200

    def __post_init__(self) -> None:
        _text("Page", "title", self.title, max_len=120)
        if (self.template is None) == (self.html is None):
            raise InvalidResult("Page needs exactly one of 'template' or 'html'")
        if self.template is not None:
            _text("Page", "template", self.template, max_len=200)
            if self.template.startswith("/") or ".." in self.template.split("/") or "\\" in self.template:
                raise InvalidResult(f"Page.template must be a relative path inside templates/, got {self.template!r}")
        if self.html is not None and not isinstance(self.html, str):
            raise InvalidResult(f"Page.html must be a string, got {type(self.html).__name__}")
        _plain_mapping("Page", "context", self.context)
        if type(self.status) is not int or self.status not in (200, 400, 403, 404, 409, 410, 422):
            raise InvalidResult(f"Page.status must be 200 or a client error code, got {self.status!r}")


@dataclass(frozen=True, slots=True)
class SearchHit(_Wire):
    """One answer a mini-program gives the search centre. ``score`` is in [0, 1]."""

    title: str
    summary: str = ""
    link: str = "/"
    score: float = 0.5

    def __post_init__(self) -> None:
        _text("SearchHit", "title", self.title, max_len=120)
        _text("SearchHit", "summary", self.summary, max_len=300, required=False)
        _link("SearchHit", "link", self.link)
        if isinstance(self.score, bool) or not isinstance(self.score, (int, float)):
            raise InvalidResult("SearchHit.score must be a number")
        if math.isnan(self.score) or not 0.0 <= self.score <= 1.0:
            raise InvalidResult(f"SearchHit.score must be between 0 and 1, got {self.score!r}")


@dataclass(frozen=True, slots=True)
class Event(_Wire):
    """Something that happened to this plugin: a payment, refund, consent or install.

    ``type`` is dotted (``payment_intent.succeeded``, ``plugin.installed``); ``data`` is JSON-able;
    ``customer`` is the customer's pairwise subject for this plugin, when there is one.
    """

    id: str
    type: str
    plugin_id: str
    occurred_at: str
    data: Mapping[str, Any] = field(default_factory=dict)
    branch: str | None = None
    customer: str | None = None

    def __post_init__(self) -> None:
        _text("Event", "id", self.id, max_len=64)
        _text("Event", "type", self.type, max_len=64)
        _text("Event", "plugin_id", self.plugin_id, max_len=64)
        _text("Event", "occurred_at", self.occurred_at, max_len=40)
        _plain_mapping("Event", "data", self.data)
        _text("Event", "branch", self.branch, max_len=32, required=False)
        _text("Event", "customer", self.customer, max_len=128, required=False)


@dataclass(frozen=True, slots=True)
class BranchInfo(_Wire):
    """The branch whose storefront the call serves."""

    code: str
    name: str
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class StoredItem:
    """A value read from ``ctx.storage`` with the version that ``compare_and_set`` expects."""

    value: Any
    version: int
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class PaymentIntent(_Wire):
    """A payment the plugin asked for, as it stands.

    ``amount`` and ``amount_refunded`` are whole minor units of ``currency`` (ISO 4217): 1999
    is 19.99 CNY. ``state`` is ``requires_confirmation`` until the customer confirms it on the
    bank's own page (``confirm_url``; in an embedded page, the bridge's ``requestPayment``),
    then ``succeeded`` — or ``failed``, ``canceled`` or ``expired``. Times are ISO 8601 UTC.
    """

    id: str
    amount: int
    currency: str
    description: str
    state: str
    amount_refunded: int
    created_at: str
    expires_at: str
    confirm_url: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Refund(_Wire):
    """Money returned to the customer from a succeeded payment intent."""

    id: str
    intent_id: str
    amount: int
    currency: str
    reason: str
    created_at: str
