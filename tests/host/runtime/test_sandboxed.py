"""Partner plugins in the runtime: loaded through the sandbox's proxy, or refused with the reason;
the host's answers to a worker's ctx calls."""

from __future__ import annotations

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
