"""Partner plugins in the sandbox: the proxy the plugin manager holds, and the host's
answers to a worker's ``ctx`` calls.

A partner plugin is never imported here. At load, a throw-away worker imports it inside the
jail and says which hooks it implements; the runtime registers a :class:`SandboxedPlugin`
with exactly those hooks, so the manager, the invoker and every caller treat it like any
other plugin. Each hook call goes to a worker (``sandbox.client``); each ``ctx`` call the
worker makes is answered by :func:`answer_ctx` on the real :class:`PluginContext` of the
call — the same object, and so the same scope checks and audit, as an in-process plugin's.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import threading
import time
import weakref
from datetime import datetime, timezone
from functools import partial
from typing import Any, Callable, Mapping

from canopy_sdk.errors import InvalidResult, NoCustomer
from canopy_sdk.markers import hookimpl
from sandbox import client, jail, wire
from sandbox.supervisor import START_TIMEOUT, FaultPolicy, PluginSupervisor, SandboxUnavailable, start_worker
from sqlalchemy import select

from ..config import ConfigError
from .invoke import BudgetOverrun
from .loader import SANDBOX_ONLY, LoadedPlugin

log = logging.getLogger("canopy.runtime")

#: Extra time the host's side waits past a hook's budget before it kills the worker and reports
#: the overrun (as a timeout: :class:`~.invoke.BudgetOverrun`); a call in the pool is reported
#: by the invoker at the budget itself, and the kill follows.
KILL_GRACE = 0.05

#: ctx methods a worker may call, with exactly the arguments each takes.
CTX_METHODS: dict[str, tuple[str, ...]] = {
    **{f"{store}.{name}": args for store in ("storage", "customer_storage") for name, args in (
        ("get_item", ("key",)), ("set", ("key", "value", "ttl")), ("compare_and_set", ("key", "value", "version", "ttl")),
        ("delete", ("key",)), ("list", ("prefix", "limit")))},
    "customer.profile": (),
    "payments.create_intent": ("amount", "currency", "description", "idempotency_key", "metadata"),
    "payments.get": ("intent_id",),
    "payments.refund": ("intent_id", "amount", "idempotency_key", "reason"),
    "require": ("scope",),
}

#: Hook argument names, in the order the specs take them (pluggy reads them off the proxy's functions).
_HOOK_FUNCTIONS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "canopy_storefront_tiles": lambda call: lambda ctx: call("canopy_storefront_tiles", ctx=ctx),
    "canopy_page": lambda call: lambda ctx, path, query: call("canopy_page", ctx=ctx, path=path, query=query),
    "canopy_api": lambda call: lambda ctx, method, path, body: call("canopy_api", ctx=ctx, method=method, path=path,
                                                                      body=body),
    "canopy_on_event": lambda call: lambda ctx, event: call("canopy_on_event", ctx=ctx, event=event),
    "canopy_search": lambda call: lambda ctx, query: call("canopy_search", ctx=ctx, query=query),
}


def answer_ctx(ctx: Any, method: str, args: Mapping[str, Any]) -> Any:
    """Answer one ctx call of a sandboxed plugin on the call's own ``ctx``.

    Only the methods of :data:`CTX_METHODS` with exactly their arguments exist; anything
    else is a forged frame. The plugin, customer and branch are the call's — a worker has
    no way to name others. Scope checks happen where they happen for every plugin: in the
    ``ctx`` objects and the services behind them.
    """
    expected = CTX_METHODS.get(method)
    if expected is None or set(args) != set(expected):
        raise client.violation(f"ctx call {method!r} with arguments {sorted(args)!r} does not exist")
    if method == "require":
        ctx.require(args["scope"])
        return None
    if method == "customer.profile":
        if ctx.customer is None:
            raise NoCustomer("customer.profile")
        return ctx.customer.profile()
    target_name, name = method.split(".")
    if target_name == "payments":
        return wire.payment_value_to_wire(getattr(ctx.payments, name)(**args))
    store = ctx.storage if target_name == "storage" else ctx.customer_storage
    if name == "get_item":
        return wire.stored_item_to_wire(store.get_item(args["key"]))
    if name == "list":
        return store.list(args["prefix"], limit=args["limit"])
    if name == "delete":
        return store.delete(args["key"])
    if name == "set":
        return store.set(args["key"], args["value"], ttl=args["ttl"])
    return store.compare_and_set(args["key"], args["value"], version=args["version"], ttl=args["ttl"])


class SandboxedPlugin:
    """The plugin manager's stand-in for a partner plugin: one hook function per hook the
    plugin implements, each forwarding the call to the plugin's workers."""

    def __init__(self, plugin_id: str, hooks: frozenset[str], supervisor: PluginSupervisor,
                 budget: Callable[[str], float], recheck: Callable[[PluginSupervisor], bool] | None = None) -> None:
        self.plugin_id = plugin_id
        self.supervisor = supervisor
        self._budget = budget
        self._recheck = recheck
        for hook in sorted(hooks & set(_HOOK_FUNCTIONS)):
            function = _HOOK_FUNCTIONS[hook](self.call)
            function.keeps_budget = True  # the worker is killed at the deadline: no pool thread needed
            setattr(self, hook, hookimpl(function))

    def call(self, hook: str, **kwargs: Any) -> Any:
        """Run ``hook`` in a worker; return its result as SDK values, or raise what the hook raised."""
        ctx = kwargs["ctx"]
        if ctx.plugin_id != self.plugin_id:
            raise RuntimeError(f"a ctx of plugin {ctx.plugin_id!r} was passed to plugin {self.plugin_id!r}")
        deadline = time.monotonic() + self._budget(hook) + KILL_GRACE
        if self.supervisor.disabled_reason is not None and self._recheck is not None:
            self._recheck(self.supervisor)  # staff may have enabled it again since
        try:
            value = client.call_hook(self.supervisor, hook, wire.ctx_to_wire(ctx), wire.args_to_wire(hook, kwargs),
                                     deadline=deadline, answer=partial(answer_ctx, ctx))
        except client.HookRaised as exc:
            raise wire.error_from_wire(exc.error, self.plugin_id) from None
        except client.CallTimeout as exc:
            raise BudgetOverrun(str(exc)) from None
        result = wire.result_from_wire(hook, value)
        if hook == "canopy_page" and result is not None and result.template is not None:
            # The worker renders templates within the call's budget; one arriving here would
            # be rendered in the host's request thread, outside any budget.
            raise InvalidResult(f"plugin {self.plugin_id}: a sandboxed page must arrive rendered, not as a template")
        return result

    def __repr__(self) -> str:
        return f"<SandboxedPlugin {self.plugin_id}>"


#: What a folder's plugin implements, by (plugin id, checksum): inspected once per process.
_inspected: dict[tuple[str, str], frozenset[str]] = {}
_inspect_lock = threading.Lock()


#: ``SANDBOX``: run partner plugins where isolation works ("auto"), or never ("off").
SANDBOX_MODES = ("auto", "off")


class SandboxHost:
    """The sandbox of one plugin runtime: decides whether partner plugins can run, inspects
    them at load and owns their supervisors.

    Configuration (the app's config): ``SANDBOX`` ``"auto"`` (default: run partner plugins
    when isolation works here) or ``"off"``; ``SANDBOX_WORKERS`` workers per plugin per host
    process (default 2); ``SANDBOX_MAX_FAULTS`` within ``SANDBOX_FAULT_WINDOW`` seconds
    disable a plugin (3 in 3600); ``SANDBOX_BACKOFF`` seconds before the first restart (1);
    ``SANDBOX_ENABLE_CHECK`` seconds between looks at the registry while a plugin this
    process disabled is refused (5).

    ``on_disable(plugin_id, version, reason)`` records a disabled version (in the registry);
    ``registry_active(plugin_id, version)`` says whether the registry holds that version
    active. A plugin this process disabled, and recorded as disabled, is served again once
    the registry says active: staff enabled it (:meth:`recheck`).
    """

    def __init__(self, config: Mapping[str, Any], *, budget: Callable[[str], float],
                 on_disable: Callable[[str, str, str], None] | None = None,
                 registry_active: Callable[[str, str], bool] | None = None,
                 probe: Callable[[], jail.Probe] | None = None) -> None:
        self.mode = str(config.get("SANDBOX", "auto")).strip().lower()
        if self.mode not in SANDBOX_MODES:
            raise ConfigError(f"SANDBOX must be one of {', '.join(SANDBOX_MODES)}, got {config.get('SANDBOX')!r}")
        self.pool_size = int(config.get("SANDBOX_WORKERS", 2))
        self.policy = FaultPolicy(max_faults=int(config.get("SANDBOX_MAX_FAULTS", 3)),
                                  window=float(config.get("SANDBOX_FAULT_WINDOW", 3600)),
                                  backoff=float(config.get("SANDBOX_BACKOFF", 1.0)))
        try:
            self.limits = jail.Limits(**config.get("SANDBOX_LIMITS", {}))
        except TypeError:
            known = ", ".join(field.name for field in dataclasses.fields(jail.Limits))
            raise ConfigError(f"SANDBOX_LIMITS may set only {known}; got {config.get('SANDBOX_LIMITS')!r}") from None
        self.budget = budget
        self.on_disable = on_disable
        self.registry_active = registry_active
        self.enable_check = float(config.get("SANDBOX_ENABLE_CHECK", 5.0))
        #: Plugins this process disabled whose disabling the registry recorded, and when to look next.
        self._recorded: set[tuple[str, str]] = set()
        self._next_check: dict[tuple[str, str], float] = {}
        self._check_lock = threading.Lock()
        self._probe = probe or (lambda: jail.probe())
        #: By (plugin id, version): a gray release runs two versions of a plugin side by side.
        self.supervisors: dict[tuple[str, str], PluginSupervisor] = {}
        self._warm_after_fork = bool(config.get("SANDBOX_WARM", True))

    def prepare(self, loaded: LoadedPlugin) -> None:
        """Give a partner plugin that validated its proxy (``loaded.plugin``) — or say why not (``problem``)."""
        assert loaded.manifest is not None and loaded.folder is not None and loaded.checksum is not None
        plugin_id, version = loaded.manifest.id, loaded.manifest.version
        if self.mode == "off":
            loaded.problem = SANDBOX_ONLY
            return
        probe = self._probe()
        if not probe.ok:
            loaded.problem = f"partner plugins run only in the sandbox, and it cannot isolate them here: {probe.reason}"
            return
        spec = jail.JailSpec(plugin_id, loaded.folder, self.limits)
        try:
            hooks = self._inspect(spec, loaded.checksum, probe)
        except SandboxUnavailable as exc:
            loaded.problem = f"could not be started in the sandbox: {exc}"
            return
        supervisor = PluginSupervisor(spec, probe=self._probe, pool_size=self.pool_size, policy=self.policy,
                                      on_disable=partial(self._record_disabled, version=version), version=version)
        if not self.supervisors and self._warm_after_fork:
            # A server that loads the app once and forks its workers (gunicorn's preload_app)
            # warms each forked process's own workers at once, so first calls do not pay the start.
            host = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: (lambda found: found and found.warm())(host()))
        self.supervisors[(plugin_id, version)] = supervisor
        loaded.plugin = SandboxedPlugin(plugin_id, hooks, supervisor, self.budget, self.recheck)
        loaded.problem = None
        if probe.unsafe:
            log.critical("plugin %s runs WITHOUT isolation (%s is set)", plugin_id, jail.UNSAFE_ENV)

    def forget(self, loaded: LoadedPlugin) -> None:
        """Drop the supervisor of a plugin the runtime refused after :meth:`prepare` (e.g. unknown scopes)."""
        proxy = loaded.plugin
        if not isinstance(proxy, SandboxedPlugin):
            return
        key = (proxy.plugin_id, proxy.supervisor.version)
        if self.supervisors.get(key) is proxy.supervisor:
            self.supervisors.pop(key).shutdown()

    def supervisor(self, plugin_id: str, version: str | None = None) -> PluginSupervisor:
        """The supervisor of ``plugin_id`` (of its ``version``, or its only one); KeyError if none."""
        found = [s for (pid, v), s in self.supervisors.items() if pid == plugin_id and version in (None, v)]
        if len(found) != 1:
            raise KeyError(f"{plugin_id} {version or ''}: {len(found)} supervisors")
        return found[0]

    def _record_disabled(self, plugin_id: str, reason: str, *, version: str) -> None:
        if self.on_disable is None:
            return
        self.on_disable(plugin_id, version, reason)  # raises when it could not be recorded: the supervisor logs it
        with self._check_lock:
            self._recorded.add((plugin_id, version))
            self._next_check[(plugin_id, version)] = time.monotonic() + self.enable_check

    def recheck(self, supervisor: PluginSupervisor) -> bool:
        """Serve a plugin this process disabled again if staff set it back to active in the
        registry; return whether it was enabled.

        Looks at the registry at most every ``SANDBOX_ENABLE_CHECK`` seconds per plugin (the
        refused calls themselves ask, so an idle plugin costs nothing), and only once the
        registry recorded the disabling: until then "active" there is the old state, not
        staff's decision. A plugin whose disabling could not be recorded stays refused here
        until the process restarts.
        """
        plugin_id, key = supervisor.plugin_id, (supervisor.plugin_id, supervisor.version)
        now = time.monotonic()
        with self._check_lock:
            if (self.registry_active is None or key not in self._recorded
                    or now < self._next_check.get(key, 0.0)):
                return False
            self._next_check[key] = now + self.enable_check
        try:
            active = self.registry_active(plugin_id, supervisor.version)
        except Exception:
            log.exception("plugin %s: reading its registry state failed; it stays disabled here", plugin_id)
            return False
        if not active:
            return False
        with self._check_lock:
            self._recorded.discard(key)
        supervisor.enable()
        log.warning("plugin %s is served again: the registry holds it active", plugin_id, extra={"plugin": plugin_id})
        return True

    def _inspect(self, spec: jail.JailSpec, checksum: str, probe: jail.Probe) -> frozenset[str]:
        key = (spec.plugin_id, checksum)
        with _inspect_lock:
            if key not in _inspected:
                # On this (loading) thread, not the spawner's: nothing of the sandbox's is left
                # running afterwards, so a server that forks after loading forks no thread.
                worker = start_worker(spec, probe, popen=subprocess.Popen)
                worker.kill()
                _inspected[key] = worker.hooks
            return _inspected[key]

    def warm(self, *, wait: bool = False) -> None:
        """Start one worker of every sandboxed plugin (this process's own), in the background
        unless ``wait``; a plugin whose worker cannot start is left to its supervisor's faults."""
        for supervisor in list(self.supervisors.values()):
            if not wait:
                threading.Thread(target=supervisor.prestart, name=f"canopy-sandbox-warm-{supervisor.plugin_id}",
                                 daemon=True).start()
                continue
            try:
                supervisor.release(supervisor.acquire(time.monotonic() + START_TIMEOUT))
            except SandboxUnavailable as exc:
                log.error("plugin %s: warming its worker failed: %s", supervisor.plugin_id, exc)

    def status(self) -> list[dict[str, object]]:
        """Each sandboxed plugin's workers, faults and disabled reason (for staff and metrics)."""
        return [supervisor.status() for supervisor in self.supervisors.values()]

    def shutdown(self) -> None:
        """Stop every idle worker."""
        for supervisor in self.supervisors.values():
            supervisor.shutdown()


def registry_active(database: Any) -> Callable[[str, str], bool]:
    """Return the ``registry_active`` callback: whether the registry holds a version of a
    plugin ``active`` (staff enabled it again after the sandbox disabled it)."""
    from .models import PluginState, PluginVersion

    def active(plugin_id: str, version: str) -> bool:
        with database.transaction() as session:
            state = session.scalar(select(PluginVersion.state).where(PluginVersion.plugin_id == plugin_id,
                                                                     PluginVersion.version == version))
        return state == PluginState.ACTIVE

    return active


def record_disabled(database: Any) -> Callable[[str, str, str], None]:
    """Return the ``on_disable`` callback that marks a version disabled in the registry, with
    the reason staff see (and so every host process stops showing it)."""
    from .models import PluginState, PluginVersion

    def disable(plugin_id: str, version: str, reason: str) -> None:
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with database.transaction(write=True) as session:
            row = session.scalar(select(PluginVersion).where(PluginVersion.plugin_id == plugin_id,
                                                             PluginVersion.version == version))
            if row is not None:
                row.state = PluginState.DISABLED
                row.state_reason = f"disabled by the sandbox at {stamp}: {reason}"[:2000]

    return disable
