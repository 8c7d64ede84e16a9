"""Partner plugins in the runtime: loaded through the sandbox's proxy, or refused with the reason;
the host's answers to a worker's ctx calls."""

from __future__ import annotations

from functools import partial

import logging

import pytest

from host.runtime.invoke import MISSING, OK
from host.runtime.loader import SANDBOX_ONLY
from host.runtime.sandboxed import CTX_METHODS, SandboxedPlugin, answer_ctx
from sandbox import client, jail

PARTNER = {"kind": "partner", "id": "ACME"}
TILES_ONLY = """\
from canopy_sdk import Tile, hookimpl


class Plugin:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        return [Tile(title="From the jail: " + ctx.branch.code)]


plugin = Plugin()
"""


@pytest.fixture
def isolation(unavailable):
    probe = jail.probe()
    if not probe.ok or probe.unsafe:
        unavailable(f"the sandbox cannot isolate plugins here: {probe.reason}")
    return probe


def test_a_partner_plugin_is_served_by_a_proxy_with_exactly_its_hooks(isolation, make_runtime, plugins_dir,
                                                                      make_plugin, branch):
    make_plugin(plugins_dir, "acme.tiles", TILES_ONLY, publisher=PARTNER)
    runtime = make_runtime(plugins_dir)
    proxy = runtime.plugins["acme.tiles"].plugin
    assert isinstance(proxy, SandboxedPlugin)
    assert runtime.pm.get_plugin("acme.tiles") is proxy
    assert [c.name for c in runtime.pm.get_hookcallers(proxy)] == ["canopy_storefront_tiles"]
    ctx = runtime.context("acme.tiles", branch=branch, locale="en", approved_scopes=[])
    [tiles] = runtime.tiles([ctx])
    assert tiles.status == OK and tiles.value[0].title == "From the jail: SH001"
    assert runtime.page(ctx, "/", {}).status == MISSING


def test_with_the_sandbox_off_a_partner_plugin_stays_refused(make_runtime, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "acme.tiles", TILES_ONLY, publisher=PARTNER)
    runtime = make_runtime(plugins_dir, SANDBOX="off")
    assert [(p.id, p.problem) for p in runtime.refused] == [("acme.tiles", SANDBOX_ONLY)]
    assert runtime.sandbox.supervisors == {}


def test_without_isolation_a_partner_plugin_is_refused_loudly_with_the_reason(make_runtime, plugins_dir, make_plugin,
                                                                              monkeypatch, caplog):
    make_plugin(plugins_dir, "acme.tiles", TILES_ONLY, publisher=PARTNER)
    monkeypatch.setattr(jail, "probe", lambda: jail.Probe(False, "bubblewrap (bwrap) is not installed"))
    with caplog.at_level(logging.ERROR, logger="canopy.runtime"):
        runtime = make_runtime(plugins_dir)
    [refused] = runtime.refused
    assert "cannot isolate them here: bubblewrap (bwrap) is not installed" in refused.problem
    assert any(r.levelno == logging.ERROR and "acme.tiles" in r.getMessage() for r in caplog.records)


def test_a_partner_plugin_refused_for_unknown_scopes_keeps_no_workers(isolation, make_runtime, plugins_dir,
                                                                      make_plugin):
    make_plugin(plugins_dir, "acme.tiles", TILES_ONLY, publisher=PARTNER, scopes=["no.such:scope"])
    runtime = make_runtime(plugins_dir)
    assert "unknown scope" in runtime.refused[0].problem
    assert runtime.sandbox.supervisors == {}


class FakeContext:
    """A stand-in for PluginContext that records what is asked of it."""

    def __init__(self):
        self.asked = []
        self.customer = None

    def require(self, scope):
        self.asked.append(("require", scope))


@pytest.mark.parametrize("method, args", [
    ("storage.get_item", {"key": "k", "plugin_id": "other.plugin"}),
    ("customer_storage.get_item", {"key": "k", "customer": "someone-else"}),
    ("storage.get_item", {}),
    ("storage._where", {"key": "k"}),
    ("payments.create_intent", {"amount": 1}),
    ("__class__", {}),
])
def test_a_ctx_call_that_no_honest_worker_makes_is_a_violation(method, args):
    with pytest.raises(Exception) as raised:
        answer_ctx(FakeContext(), method, args)
    assert type(raised.value).__name__ == "_Violation" and "does not exist" in str(raised.value)


def test_require_is_answered_by_the_calls_own_ctx():
    ctx = FakeContext()
    assert answer_ctx(ctx, "require", {"scope": "payments:create"}) is None
    assert ctx.asked == [("require", "payments:create")]


def test_the_ctx_methods_are_the_sdks():
    from canopy_sdk.context import Payments, Storage

    storage = {name for name in vars(Storage) if not name.startswith("_")} - {"get"}  # get is get_item on the wire
    assert {m.split(".")[1] for m in CTX_METHODS if m.startswith("storage.")} == storage
    assert {m.split(".")[1] for m in CTX_METHODS if m.startswith("payments.")} == {
        name for name in vars(Payments) if not name.startswith("_")}
    assert client.violation("x").__class__.__name__ == "_Violation"


# -- enabled again by staff -------------------------------------------------------------------------

class Registry:
    """The registry as the sandbox host sees it: records disabling, answers whether a plugin is active."""

    def __init__(self) -> None:
        self.state = "active"
        self.asked = 0
        self.fail_writes = False
        self.fail_reads = False

    def on_disable(self, plugin_id: str, version: str, reason: str) -> None:
        if self.fail_writes:
            raise RuntimeError("the database is down")
        self.state = "disabled"

    def active(self, plugin_id: str, version: str) -> bool:
        self.asked += 1
        if self.fail_reads:
            raise RuntimeError("the database is down")
        return self.state == "active"


def disabled_plugin(tmp_path, *, check: float):
    """A sandbox host and a supervisor of a plugin it has just disabled (no worker ever runs)."""
    from host.runtime.sandboxed import SandboxHost
    from sandbox.supervisor import FaultPolicy, PluginSupervisor

    registry = Registry()
    host = SandboxHost({"SANDBOX_ENABLE_CHECK": check}, budget=lambda hook: 1.0, on_disable=registry.on_disable,
                       registry_active=registry.active)
    supervisor = PluginSupervisor(jail.JailSpec("acme.faulty", tmp_path), policy=FaultPolicy(max_faults=2, backoff=0.0),
                                  on_disable=partial(host._record_disabled, version="1.0.0"), version="1.0.0")
    host.supervisors[("acme.faulty", "1.0.0")] = supervisor
    return host, supervisor, registry


def fault_twice(supervisor) -> None:
    for _ in range(2):
        supervisor.record_fault("no answer to canopy_api within its budget; worker killed")
    assert supervisor.disabled_reason is not None


def test_a_plugin_the_sandbox_disabled_is_served_again_once_the_registry_says_active(tmp_path, caplog):
    host, supervisor, registry = disabled_plugin(tmp_path, check=0.0)
    fault_twice(supervisor)
    assert registry.state == "disabled"
    assert host.recheck(supervisor) is False and supervisor.disabled_reason is not None  # still disabled there
    registry.state = "active"  # staff: canopy plugins enable
    with caplog.at_level(logging.WARNING, logger="canopy.runtime"):
        assert host.recheck(supervisor) is True
    assert supervisor.disabled_reason is None and supervisor.status()["disabled"] is None
    assert any("served again" in record.getMessage() for record in caplog.records)
    # its faults were forgotten: one more is not enough to disable it again, two are
    supervisor.record_fault("died")
    assert supervisor.disabled_reason is None
    supervisor.record_fault("died")
    assert supervisor.disabled_reason is not None and registry.state == "disabled"


def test_the_registry_is_asked_at_most_once_per_interval(tmp_path):
    host, supervisor, registry = disabled_plugin(tmp_path, check=3600.0)
    fault_twice(supervisor)
    registry.state = "active"
    for _ in range(5):
        assert host.recheck(supervisor) is False
    assert registry.asked == 0 and supervisor.disabled_reason is not None  # the first look is an interval away
    host._next_check[("acme.faulty", "1.0.0")] = 0.0  # the interval has passed
    assert [host.recheck(supervisor) for _ in range(3)] == [True, False, False]
    assert registry.asked == 1


def test_until_the_registry_recorded_the_disabling_its_active_state_enables_nothing(tmp_path):
    host, supervisor, registry = disabled_plugin(tmp_path, check=0.0)
    registry.fail_writes = True
    fault_twice(supervisor)  # the registry could not be told: it still says active, which is not staff's word
    assert registry.state == "active"
    assert host.recheck(supervisor) is False and registry.asked == 0
    assert supervisor.disabled_reason is not None


def test_a_registry_that_cannot_be_read_leaves_the_plugin_disabled(tmp_path, caplog):
    host, supervisor, registry = disabled_plugin(tmp_path, check=0.0)
    fault_twice(supervisor)
    registry.fail_reads = True
    with caplog.at_level(logging.ERROR, logger="canopy.runtime"):
        assert host.recheck(supervisor) is False
    assert supervisor.disabled_reason is not None
    assert any("stays disabled" in record.getMessage() for record in caplog.records)


def test_a_refused_call_of_a_disabled_plugin_is_what_looks_at_the_registry(tmp_path, monkeypatch, branch):
    from types import SimpleNamespace

    from canopy_sdk import Tile

    from sandbox.supervisor import PluginDisabled

    host, supervisor, registry = disabled_plugin(tmp_path, check=0.0)
    fault_twice(supervisor)
    proxy = SandboxedPlugin("acme.faulty", frozenset({"canopy_storefront_tiles"}), supervisor, lambda hook: 1.0,
                            host.recheck)
    ctx = SimpleNamespace(plugin_id="acme.faulty", branch=branch, locale="en", scopes=frozenset(), customer=None)

    def call_hook(found, hook, facts, args, *, deadline, answer):  # as sandbox.client does, without a worker
        if found.disabled_reason is not None:
            raise PluginDisabled("acme.faulty", found.disabled_reason)
        return [Tile(title="Back").to_wire()]

    monkeypatch.setattr(client, "call_hook", call_hook)
    with pytest.raises(PluginDisabled):
        proxy.call("canopy_storefront_tiles", ctx=ctx)
    registry.state = "active"
    assert proxy.call("canopy_storefront_tiles", ctx=ctx)[0].title == "Back"
    assert registry.asked == 2


@pytest.mark.parametrize("config, named", [
    ({"SANDBOX": "sometimes"}, "SANDBOX must be one of auto, off"),
    ({"SANDBOX_LIMITS": {"memory_mib": 256}}, "SANDBOX_LIMITS may set only"),
])
def test_a_wrong_sandbox_setting_stops_the_start_naming_it(config, named):
    from host.config import ConfigError
    from host.runtime.sandboxed import SandboxHost

    with pytest.raises(ConfigError, match=named):
        SandboxHost(config, budget=lambda hook: 1.0)
