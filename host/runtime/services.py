"""The plugin runtime of one app: loading, registration, contexts and hook calls.

``create_app`` builds one :class:`PluginRuntime`, loads the plugins, and calls
:meth:`PluginRuntime.start`, after which registration is closed. Views and the CLI
reach it with :func:`host.runtime.get_runtime`.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from canopy_sdk import results
from canopy_sdk.hookspecs import HOOK_NAMES
from canopy_sdk.loading import package_name
from canopy_sdk.types import BranchInfo, Event
from pluggy import PluginValidationError

from ..config import require_secret
from ..db import Database
from ..identity.pairwise import pairwise_subject
from ..oauth.scopes import ScopeCatalog
from .context import PluginContext
from .grants import ConsentSource, NoConsentsYet, grant_for
from .invoke import ERROR, INVALID, TIMEOUT, HookInvoker, Outcome
from .loader import SANDBOX_ONLY, LoadedPlugin, discover_folders, import_folder_code, load_entry_points, load_folder
from .manager import CanopyPluginManager
from .sandboxed import SandboxHost, record_disabled, registry_active
from .storage import PluginStorage

log = logging.getLogger("canopy.runtime")

#: Outcomes that count against a version's health: the plugin's own failures.
FAILURES = frozenset({ERROR, TIMEOUT, INVALID})

#: The host's own features, registered as plugins on the same manager.
DEFAULT_PLUGINS = ("host.oauth.default_scopes", "host.payments.risk.default_rules", "host.payments.rails")


def _accepting(function: Callable[..., Any], accepts: tuple[str, ...], offered: tuple[str, ...]) -> Callable[..., Any]:
    """The function itself, or — when it takes fewer arguments than its hook offers, as
    pluggy allows — an adapter that passes only the ones it takes."""
    if tuple(accepts) == tuple(offered):
        return function

    def adapter(**kwargs: Any) -> Any:
        return function(**{name: kwargs[name] for name in accepts})

    return adapter


class PluginRuntime:
    """Everything the host knows about its plugins while it runs."""

    def __init__(self, config: Mapping[str, Any], database: Database) -> None:
        self.config = config
        self.database = database
        self.pm = CanopyPluginManager()
        self.invoker = HookInvoker(
            pool_size=int(config["PLUGIN_POOL_SIZE"]),
            max_in_flight=int(config["PLUGIN_MAX_IN_FLIGHT"]),
            budgets_ms=config["HOOK_BUDGET_MS"],
        )
        self.consents: ConsentSource = NoConsentsYet()
        #: Builds ``ctx.payments`` from a ctx and the customer's id (set by the payments package).
        self.payments_factory: Callable[[PluginContext, str | None], Any] | None = None
        self._events_noted = False
        self.plugins: dict[str, LoadedPlugin] = {}
        self.refused: list[LoadedPlugin] = []
        #: Hook implementations by (plugin id, version): the loaded plugins' and the released ones'.
        self._impls: dict[tuple[str, str], dict[str, Callable[..., Any]]] = {}
        #: Versions served from the package store (gray and released ones), loaded when first
        #: asked for; None for one that cannot be served (the reason is logged once).
        self.released: dict[tuple[str, str], LoadedPlugin | None] = {}
        #: Grants of calls without a customer, by (plugin id, version, approved scopes).
        self._anonymous_grants: dict[tuple[str, str, tuple[str, ...]], Any] = {}
        self._released_lock = threading.Lock()
        #: Where published versions are stored (``<root>/<plugin id>/<version>/``); set by the app.
        self.package_root: Path | None = None
        #: Told of every call of a published version: (plugin id, version, answered well) —
        #: the release health's counter (host.publishing.health).
        self.observe: Callable[[str, str, bool], None] | None = None
        #: Partner plugins run out of process (docs/sandbox.md); their faults can disable them,
        #: and staff enable them again in the registry.
        self.sandbox = SandboxHost(config, budget=self.invoker.budget, on_disable=record_disabled(database),
                                   registry_active=registry_active(database))
        self.invoker.on_shutdown.append(self.sandbox.shutdown)
        for name in DEFAULT_PLUGINS:
            self.pm.register(importlib.import_module(name), name=name)
        self.catalog = ScopeCatalog.from_hook_results(self.pm.hook.canopy_scope_definitions())

    # -- loading -------------------------------------------------------------

    def load(self, folders: Iterable, *, entry_points: bool = True) -> None:
        """Load plugin folders (and the entry-point group), registering each that is sound."""
        for folder in discover_folders(folders):
            loaded = load_folder(folder, import_code=False)
            # A second folder with a served plugin's id is never imported: its modules would
            # take the served plugin's package name and replace its code.
            if loaded.problem is None and loaded.id not in self.plugins:
                import_folder_code(loaded)
            elif loaded.problem == SANDBOX_ONLY and loaded.id not in self.plugins:
                self.sandbox.prepare(loaded)  # a partner plugin: never imported here
            self.add(loaded)
        if entry_points:
            for loaded in load_entry_points():
                if loaded.problem == SANDBOX_ONLY and loaded.id not in self.plugins:
                    self.sandbox.prepare(loaded)  # its package folder, with only the SDK beside it
                self.add(loaded)

    def add(self, loaded: LoadedPlugin) -> None:
        """Register one loaded plugin, or keep it as refused with the reason."""
        if loaded.manifest is not None:
            unknown = self.catalog.unknown(loaded.manifest.scopes)
            if unknown and loaded.problem is None:
                loaded.problems = [
                    (f"scopes[{loaded.manifest.scopes.index(name)}]", f"unknown scope {name!r}") for name in unknown
                ]
                loaded.problem = "; ".join(f"{path}: {message}" for path, message in loaded.problems)
            existing = self.plugins.get(loaded.manifest.id)
            if existing is not None:
                loaded.problem = f"plugin id {loaded.manifest.id!r} is already loaded from {existing.source}"
        if loaded.ok:
            try:
                self._register(loaded)
            except PluginValidationError as exc:
                loaded.problem = f"hook implementations do not match the contract: {exc}"
            except ValueError as exc:  # pluggy: the same object is on the manager already
                loaded.problem = f"cannot be registered: {str(exc).splitlines()[0]}"
        if loaded.plugin is None and loaded.problem is None:
            loaded.problem = "its entry names None instead of a plugin object"
        if not loaded.ok:
            self.sandbox.forget(loaded)
            # A partner plugin waiting for the sandbox is expected, not an error to page anyone about.
            level = logging.INFO if loaded.problem == SANDBOX_ONLY else logging.ERROR
            log.log(level, "plugin %s not started: %s", loaded.id or loaded.source, loaded.problem)
            self.refused.append(loaded)

    def _register(self, loaded: LoadedPlugin) -> None:
        assert loaded.manifest is not None
        self._impls[(loaded.manifest.id, loaded.manifest.version)] = _hook_impls(self.pm, loaded)
        self.plugins[loaded.manifest.id] = loaded

    def start(self) -> None:
        """Check every registration against the specs and close registration."""
        self.pm.freeze()

    def refuse(self, plugin_id: str, reason: str) -> None:
        """Stop serving a loaded plugin (e.g. its files differ from the registered version)."""
        loaded = self.plugins.pop(plugin_id, None)
        if loaded is not None:
            loaded.problem = reason
            self._impls.pop((plugin_id, loaded.manifest.version), None)  # type: ignore[union-attr]
            self.refused.append(loaded)
            log.error("plugin %s refused: %s", plugin_id, reason)

    def known(self) -> list[LoadedPlugin]:
        """Every plugin found, started or refused, in load order."""
        return list(self.plugins.values()) + self.refused

    # -- versions ------------------------------------------------------------

    def version(self, plugin_id: str, version: str, checksum: str) -> LoadedPlugin | None:
        """The plugin ``plugin_id`` at ``version`` with exactly the files of ``checksum``, ready to
        call — the one loaded from the plugin folders, or a published version from the package
        store, loaded the first time it is asked for — or None when it cannot be served."""
        loaded = self.plugins.get(plugin_id)
        if loaded is not None and loaded.manifest is not None and loaded.manifest.version == version:
            found: LoadedPlugin | None = loaded
        else:
            key = (plugin_id, version)
            found = self.released.get(key, _UNSEEN)
            if found is _UNSEEN:
                with self._released_lock:
                    found = self.released.get(key, _UNSEEN)
                    if found is _UNSEEN:
                        found = self.released[key] = self._load_released(plugin_id, version)
        if found is None or found.checksum != checksum:
            if found is not None:
                log.error("plugin %s %s: the registry has checksum %s, the files %s; not served",
                          plugin_id, version, checksum, found.checksum)
            return None
        return found

    def _load_released(self, plugin_id: str, version: str) -> LoadedPlugin | None:
        """Load one published version from the package store; None (logged) when it cannot run."""
        folder = None if self.package_root is None else self.package_root / plugin_id / version
        if folder is None or not folder.is_dir():
            log.error("plugin %s %s is not in the package store; not served", plugin_id, version)
            return None
        loaded = load_folder(folder, import_code=False, source=f"package store: {plugin_id} {version}")
        if loaded.manifest is not None and (loaded.manifest.id, loaded.manifest.version) != (plugin_id, version):
            loaded.problem = f"the stored package is {loaded.manifest.id} {loaded.manifest.version}"
        elif loaded.problem == SANDBOX_ONLY:
            self.sandbox.prepare(loaded)
        elif loaded.problem is None:
            import_folder_code(loaded, package=f"{package_name(plugin_id)}__v{_short(version)}")
        if loaded.ok:
            try:
                self._impls[(plugin_id, version)] = _hook_impls(CanopyPluginManager(), loaded)
            except (PluginValidationError, ValueError) as exc:
                loaded.problem = f"hook implementations do not match the contract: {exc}"
        if not loaded.ok:
            self.sandbox.forget(loaded)
            log.error("plugin %s %s from the package store not served: %s", plugin_id, version, loaded.problem)
            return None
        return loaded

    # -- contexts and calls --------------------------------------------------

    def context(
        self,
        plugin_id: str,
        *,
        branch: BranchInfo,
        locale: str,
        approved_scopes: Iterable[str],
        customer_id: str | None = None,
        customer_profile: Mapping[str, Any] | None = None,
        plugin: LoadedPlugin | None = None,
    ) -> PluginContext:
        """Build the ``ctx`` for one call of ``plugin_id`` — of the version ``plugin`` (from
        :meth:`version`), or the one loaded from the plugin folders when None."""
        plugin = plugin or self.plugins[plugin_id]
        manifest = plugin.manifest
        assert manifest is not None and manifest.id == plugin_id
        # The plugin sees only its pairwise subject, never the customer's own id.
        customer_subject = None if customer_id is None else pairwise_subject(require_secret(self.config), plugin_id, customer_id)
        if customer_id is None:
            # Without a customer a grant depends on the version and its approved scopes alone:
            # made once (a storefront builds a context per zone per request).
            key = (plugin_id, manifest.version, tuple(approved_scopes))
            grant = self._anonymous_grants.get(key)
            if grant is None:
                grant = self._anonymous_grants[key] = grant_for(
                    self.catalog, frozenset(manifest.scopes), frozenset(key[2]), self.consents, plugin_id, None)
        else:
            grant = grant_for(self.catalog, frozenset(manifest.scopes), frozenset(approved_scopes), self.consents,
                              plugin_id, customer_id)
        return PluginContext(
            plugin_id=plugin_id,
            version=manifest.version,
            branch=branch,
            locale=locale,
            grant=grant,
            storage_factory=lambda customer: PluginStorage(self.database, plugin_id, customer),
            customer_subject=customer_subject,
            customer_profile=customer_profile,
            payments_factory=None if self.payments_factory is None else (
                lambda ctx, make=self.payments_factory: make(ctx, customer_id)),
        )

    def note_events(self) -> None:
        """A plugin's call (on a runtime thread, outside any request) wrote events to the outbox."""
        self._events_noted = True

    def take_noted_events(self) -> bool:
        """Whether events were noted since the last time this was asked (and forget it)."""
        noted, self._events_noted = self._events_noted, False
        return noted

    def impl(self, plugin_id: str, hook: str, version: str | None = None) -> Callable[..., Any] | None:
        """The plugin's implementation of ``hook`` (of ``version``; the loaded one when None), or None."""
        if version is None:
            loaded = self.plugins.get(plugin_id)
            if loaded is None or loaded.manifest is None:
                return None
            version = loaded.manifest.version
        return self._impls.get((plugin_id, version), {}).get(hook)

    def _impl(self, ctx: PluginContext, hook: str) -> Callable[..., Any] | None:
        return self._impls.get((ctx.plugin_id, ctx.version), {}).get(hook)

    def tiles(self, contexts: list[PluginContext]) -> list[Outcome]:
        """Ask each context's plugin for its tiles, all at once within one budget."""
        hook = "canopy_storefront_tiles"
        calls = [(c.plugin_id, self._impl(c, hook), {"ctx": c}) for c in contexts]
        return self._observed(contexts, self.invoker.call_each(hook, calls, results.check_tiles))

    def search(self, contexts: list[PluginContext], query: str) -> list[Outcome]:
        """Ask each context's plugin for search hits, all at once within one budget."""
        hook = "canopy_search"
        calls = [(c.plugin_id, self._impl(c, hook), {"ctx": c, "query": query}) for c in contexts]
        return self._observed(contexts, self.invoker.call_each(hook, calls, results.check_search_hits))

    def page(self, ctx: PluginContext, path: str, query: Mapping[str, str]) -> Outcome:
        """Ask the plugin for its page at ``path``."""
        hook = "canopy_page"
        kwargs = {"ctx": ctx, "path": path, "query": dict(query)}
        return self._observed([ctx], [self.invoker.call(ctx.plugin_id, hook, self._impl(ctx, hook), kwargs,
                                                        results.check_page)])[0]

    def api(self, ctx: PluginContext, method: str, path: str, body: Any) -> Outcome:
        """Call the plugin's back end; a successful outcome's value is the JSON text."""
        hook = "canopy_api"
        kwargs = {"ctx": ctx, "method": method, "path": path, "body": body}
        return self._observed([ctx], [self.invoker.call(ctx.plugin_id, hook, self._impl(ctx, hook), kwargs,
                                                        results.encode_api_result)])[0]

    def event(self, ctx: PluginContext, event: Event) -> Outcome:
        """Deliver ``event`` to the plugin."""
        hook = "canopy_on_event"
        kwargs = {"ctx": ctx, "event": event}
        return self._observed([ctx], [self.invoker.call(ctx.plugin_id, hook, self._impl(ctx, hook), kwargs,
                                                        lambda _: None)])[0]

    def _observed(self, contexts: list[PluginContext], outcomes: list[Outcome]) -> list[Outcome]:
        """Tell :attr:`observe` how each call of a published version went; return ``outcomes``."""
        if self.observe is not None and self.released:
            for ctx, outcome in zip(contexts, outcomes):
                if (ctx.plugin_id, ctx.version) in self.released:
                    self.observe(ctx.plugin_id, ctx.version, outcome.status not in FAILURES)
        return outcomes


_UNSEEN: Any = object()  # marks a version not looked for yet


def _short(version: str) -> str:
    """A name-safe, collision-free stand-in for a version in a package name."""
    return hashlib.sha256(version.encode()).hexdigest()[:12]


def _hook_impls(pm: CanopyPluginManager, loaded: LoadedPlugin) -> dict[str, Callable[..., Any]]:
    """Register ``loaded`` on ``pm`` and return its implementations by hook name, each
    accepting the spec's arguments; :class:`PluginValidationError` for hooks the SDK lacks."""
    assert loaded.manifest is not None
    pm.register(loaded.plugin, name=loaded.manifest.id)
    impls: dict[str, Callable[..., Any]] = {}
    unknown = []
    for caller in pm.get_hookcallers(loaded.plugin) or []:
        if caller.spec is None:
            unknown.append(caller.name)
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is loaded.plugin:
                impls[caller.name] = _accepting(impl.function, impl.argnames, caller.spec.argnames)
    if unknown or set(impls) - set(HOOK_NAMES):
        pm.unregister(loaded.plugin)
        names = sorted(set(unknown) | (set(impls) - set(HOOK_NAMES)))
        raise PluginValidationError(loaded.plugin, f"unknown hooks {', '.join(names)}; see canopy_sdk.hookspecs")
    return impls


__all__ = ["DEFAULT_PLUGINS", "Outcome", "PluginRuntime"]
