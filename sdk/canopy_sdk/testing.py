"""A test kit: run a mini-program's hooks in your own tests, without the host.

    from canopy_sdk.testing import PluginHarness

    def test_tiles():
        harness = PluginHarness("plugins/sh_deals")
        ctx = harness.context(customer="alice")
        assert harness.tiles(ctx)[0].title == "Today's deals"

The harness validates the manifest, imports the entry point as the host does, checks
hook names against the contract, and checks every result with the host's own rules
(:mod:`canopy_sdk.results`). Storage follows the host's limits
(:mod:`canopy_sdk.storage_rules`) and is kept in memory, one store per harness.
Payments (:class:`FakePayments`) follow the host's rules (:mod:`canopy_sdk.payment_rules`);
confirm an intent as its customer would and deliver the event the host would send:

    intent = harness.api(ctx, "POST", "/bills/gas-12345678-202610/pay")
    harness.payments.confirm(intent["intent_id"])
    harness.deliver_events()      # canopy_on_event, as the host calls it after the commit
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlencode

import pluggy

from . import hookspecs, pagecheck, rendering, results, storage_rules
from .errors import NoCustomer, QuotaExceeded, ScopeDenied
from .fake_payments import FakePayments
from .loading import import_entry
from .manifest import Manifest, load_manifest
from .markers import PROJECT_NAME
from .types import BranchInfo, Event, Page, SearchHit, StoredItem, Tile


class MemoryStorage:
    """An in-memory :class:`~canopy_sdk.context.Storage` with the host's rules and limits.

    ``clock`` returns the current time in seconds; pass your own to test expiry.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._items: dict[str, tuple[str, int, float | None]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str) -> tuple[str, int, float | None] | None:
        item = self._items.get(key)
        if item is not None and item[2] is not None and item[2] <= self._clock():
            del self._items[key]
            return None
        return item

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value at ``key``, or ``default``."""
        item = self.get_item(key)
        return default if item is None else item.value

    def get_item(self, key: str) -> StoredItem | None:
        """Return the value at ``key`` with its version, or None."""
        storage_rules.check_key(key)
        with self._lock:
            item = self._live(key)
        if item is None:
            return None
        return StoredItem(storage_rules.decode_value(item[0]), item[1], item[2])

    def _write(self, key: str, value: Any, ttl: float | None, expect: Any) -> int | None:
        storage_rules.check_key(key)
        text = storage_rules.encode_value(value)
        ttl = storage_rules.check_ttl(ttl)
        with self._lock:
            current = self._live(key)
            if expect is not _ANY and (current[1] if current else None) != expect:
                return None
            if current is None and self._count_live() >= storage_rules.MAX_KEYS_PER_NAMESPACE:
                raise QuotaExceeded(f"namespace holds {storage_rules.MAX_KEYS_PER_NAMESPACE} keys already")
            version = (current[1] if current else 0) + 1
            self._items[key] = (text, version, None if ttl is None else self._clock() + ttl)
            return version

    def _count_live(self) -> int:
        now = self._clock()
        return sum(1 for _, _, exp in self._items.values() if exp is None or exp > now)

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> int:
        """Store ``value`` at ``key``; return its new version."""
        version = self._write(key, value, ttl, _ANY)
        assert version is not None
        return version

    def compare_and_set(self, key: str, value: Any, *, version: int | None, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is at ``version`` (None: only if absent)."""
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise storage_rules.InvalidValue(f"version must be an integer or None, got {version!r}")
        return self._write(key, value, ttl, version) is not None

    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it was there."""
        storage_rules.check_key(key)
        with self._lock:
            return self._live(key) is not None and self._items.pop(key, None) is not None

    def list(self, prefix: str = "", *, limit: int = 100) -> list[str]:
        """Return up to ``limit`` live keys starting with ``prefix``, sorted."""
        storage_rules.check_prefix(prefix)
        storage_rules.check_limit(limit)
        with self._lock:
            keys = sorted(k for k in list(self._items) if k.startswith(prefix) and self._live(k))
        return keys[:limit]


_ANY = object()


@dataclass
class FakeCustomer:
    """A customer for tests: ``subject`` is what the plugin would see as the pairwise id."""

    subject: str
    fields: dict[str, Any] = field(default_factory=dict)
    _ctx: "FakeContext | None" = None

    def profile(self) -> dict[str, Any]:
        """Return the profile, if ``profile.basic:read`` is granted."""
        if self._ctx is not None:
            self._ctx.require("profile.basic:read")
        return dict(self.fields)


class FakeContext:
    """A :class:`~canopy_sdk.context.Context` for tests, with the grant given explicitly.

    ``payments`` is a :class:`FakePayments` to share with other contexts (as one host is
    shared); without it the context gets payments of its own. Either way ``ctx.payments``
    checks this context's scopes, as ``customer.profile()`` does, through :meth:`require`.
    """

    def __init__(
        self,
        plugin_id: str,
        *,
        branch: BranchInfo | None = None,
        locale: str = "en",
        customer: FakeCustomer | None = None,
        scopes: frozenset[str] | set[str] = frozenset(),
        storage: MemoryStorage | None = None,
        customer_stores: dict[str, MemoryStorage] | None = None,
        payments: FakePayments | None = None,
    ) -> None:
        self.plugin_id = plugin_id
        self.branch = branch or BranchInfo(code="SH001", name="Shanghai Branch", parent="HQ")
        self.locale = locale
        self.customer = customer
        if customer is not None:
            customer._ctx = self
        self.scopes = frozenset(scopes)
        self.storage = storage if storage is not None else MemoryStorage()
        self._customer_stores = customer_stores if customer_stores is not None else {}
        self.log = logging.LoggerAdapter(logging.getLogger(f"canopy.plugin.{plugin_id}"), {"plugin": plugin_id})
        self.payments = (payments if payments is not None else FakePayments(plugin_id=plugin_id)).bind(self)

    @property
    def customer_storage(self) -> MemoryStorage:
        """The store of the current customer; raises :class:`NoCustomer` when anonymous."""
        if self.customer is None:
            raise NoCustomer("customer storage")
        return self._customer_stores.setdefault(self.customer.subject, MemoryStorage())

    def has_scope(self, scope: str) -> bool:
        """Return whether ``scope`` is granted."""
        return scope in self.scopes

    def require(self, scope: str) -> None:
        """Raise :class:`ScopeDenied` unless ``scope`` is granted."""
        if scope not in self.scopes:
            raise ScopeDenied(scope, "not in this test context's grant", self.plugin_id)


class PluginHarness:
    """Load a plugin folder as the host would and call its hooks with checked results."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.manifest: Manifest = load_manifest(self.folder)
        self.plugin = import_entry(self.folder, self.manifest)
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.pm.register(self.plugin, name=self.manifest.id)
        self.pm.check_pending()
        # As the host does: a hook the contract does not name is refused even if marked optional.
        unknown = sorted(c.name for c in self.pm.get_hookcallers(self.plugin) or [] if c.spec is None)
        if unknown:
            raise pluggy.PluginValidationError(self.plugin, f"unknown hooks {', '.join(unknown)}; see canopy_sdk.hookspecs")
        self.storage = MemoryStorage()
        self.customer_stores: dict[str, MemoryStorage] = {}
        #: The payments every context of this harness shares; replace it (before making
        #: contexts) to choose currencies or a clock.
        self.payments = FakePayments(plugin_id=self.manifest.id)
        self._delivered = 0
        self._environment = None

    def context(
        self,
        *,
        customer: str | None = None,
        profile: Mapping[str, Any] | None = None,
        branch: BranchInfo | None = None,
        locale: str = "en",
        scopes: set[str] | frozenset[str] | None = None,
    ) -> FakeContext:
        """Return a context for this plugin; ``scopes`` defaults to every manifest scope.
        Contexts from one harness share its storage and :attr:`payments`, as calls to one host do."""
        return FakeContext(
            self.manifest.id,
            branch=branch,
            locale=locale,
            customer=FakeCustomer(customer, dict(profile or {})) if customer else None,
            scopes=frozenset(self.manifest.scopes if scopes is None else scopes),
            storage=self.storage,
            customer_stores=self.customer_stores,
            payments=self.payments,
        )

    def _call(self, name: str, **kwargs: Any) -> Any:
        impls = getattr(self.pm.hook, name).get_hookimpls()
        if not impls:
            return None
        return impls[0].function(**kwargs)

    def tiles(self, ctx: FakeContext) -> list[Tile]:
        """Call ``canopy_storefront_tiles`` and check the result."""
        return results.check_tiles(self._call("canopy_storefront_tiles", ctx=ctx))

    def page(self, ctx: FakeContext, path: str = "/", query: Mapping[str, str] | None = None) -> Page | None:
        """Call ``canopy_page`` and check the result."""
        return results.check_page(self._call("canopy_page", ctx=ctx, path=path, query=dict(query or {})))

    def api(self, ctx: FakeContext, method: str, path: str, body: Any = None) -> Any:
        """Call ``canopy_api``; the result must be JSON-able, as the host requires."""
        result = self._call("canopy_api", ctx=ctx, method=method.upper(), path=path, body=body)
        results.encode_api_result(result)
        return result

    def search(self, ctx: FakeContext, query: str) -> list[SearchHit]:
        """Call ``canopy_search`` and check the result."""
        return results.check_search_hits(self._call("canopy_search", ctx=ctx, query=query))

    def event(self, ctx: FakeContext, event: Event) -> None:
        """Deliver ``event`` through ``canopy_on_event``."""
        self._call("canopy_on_event", ctx=ctx, event=event)

    def deliver(self, event: Event, *, scopes: set[str] | frozenset[str] | None = None) -> None:
        """Deliver ``event`` as the host does: to ``canopy_on_event`` with a context for the
        event's customer (``ctx.customer.subject == event.customer``) and branch, in Chinese."""
        code = event.branch or "HQ"
        ctx = self.context(customer=event.customer, branch=BranchInfo(code=code, name=code), locale="zh-CN",
                           scopes=scopes)
        self.event(ctx, event)

    def deliver_events(self) -> list[Event]:
        """Deliver, oldest first, every event of :attr:`payments` not delivered yet; return them.

        A hook that raises stops the delivery there and the event stays undelivered (the host
        retries it later); call again to retry, or :meth:`deliver` an event to repeat it."""
        delivered = []
        for event in self.payments.events[self._delivered:]:
            self.deliver(event)
            self._delivered += 1
            delivered.append(event)
        return delivered

    def render(self, page: Page, *, locale: str = "zh-CN", branch: BranchInfo | None = None) -> str:
        """Render ``page`` as the host would, and check the HTML (:mod:`canopy_sdk.pagecheck`).

        The helpers check what they are given: ``page_url`` only names pages the manifest
        declares, ``static_url`` only files that exist in ``static/``. Raises
        ``AssertionError`` listing every problem. Needs Jinja2 (``canopy-sdk[render]``).
        """
        if page.template is not None:
            self.template_path(page)
        if self._environment is None:
            self._environment = rendering.template_environment(self.folder)
        branch = branch or BranchInfo(code="SH001", name="Shanghai Branch", parent="HQ")
        html = rendering.render_page(self._environment, page, self._helpers(locale, branch))
        problems = pagecheck.page_problems(html)
        if problems:
            raise AssertionError(f"page {page.title!r} has problems: " + "; ".join(problems))
        return html

    def _helpers(self, locale: str, branch: BranchInfo) -> dict[str, Any]:
        base = f"/mp/{self.manifest.id}"
        declared = {spec.path for spec in self.manifest.pages}
        host_query = urlencode({"branch": branch.code, "lang": locale})

        def page_url(path: str = "/", **query: Any) -> str:
            if path.split("?", 1)[0] not in declared:
                raise AssertionError(f"page_url({path!r}) names a page the manifest does not declare")
            extra = urlencode({k: str(v) for k, v in query.items()})
            return f"{base}{path}?{host_query}" + (f"&{extra}" if extra else "")

        def static_url(filename: str) -> str:
            if not (self.folder / "static" / filename).is_file():
                raise AssertionError(f"static_url({filename!r}): static/{filename} is missing")
            return f"{base}/static/{filename}"

        def api_url(path: str) -> str:
            if not path.startswith("/"):
                raise AssertionError(f"api_url({path!r}) must start with '/'")
            return f"{base}/api{path}?{host_query}"

        return {
            "page_url": page_url,
            "static_url": static_url,
            "api_url": api_url,
            "locale": locale,
            "branch": {"code": branch.code, "name": branch.name},
            "plugin_id": self.manifest.id,
        }

    def template_path(self, page: Page) -> Path:
        """Return the template file a page names, checking that it exists in ``templates/``."""
        assert page.template is not None, "page has inline html, not a template"
        path = self.folder / "templates" / page.template
        if not path.is_file():
            raise AssertionError(f"template {page.template!r} is missing from {self.folder / 'templates'}")
        return path


__all__ = ["FakeContext", "FakeCustomer", "FakePayments", "MemoryStorage", "PluginHarness"]

