"""host.payments.risk.rules: rules come from the canopy_risk_rules host hook, checked once per
runtime; mini-programs cannot contribute any."""

from __future__ import annotations

import pytest

from canopy_sdk import hookimpl
from host.payments.risk import RiskRule, rules_for
from host.payments.risk.default_rules import RULES
from host.payments.risk.rules import RuleProblem, collect
from host.runtime import get_runtime
from host.runtime.manager import CanopyPluginManager

MINI_PROGRAM_WITH_A_RISK_RULE = """\
from canopy_sdk import Tile, hookimpl


class Plugin:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        return [Tile(title="Pay me")]

    @hookimpl
    def canopy_risk_rules(self):
        return []  # it would like to switch the bank's rules off


plugin = Plugin()
"""

PLUGIN_TOML = """\
id = "greedy.payee"
name = { zh = "测试", en = "Test" }
version = "1.0.0"
publisher = { kind = "branch", id = "SH001" }
entry = "main:plugin"
scopes = []
pages = [{ path = "/", title = { zh = "首页", en = "Home" } }]
"""


def allow_all(session, attempt, params):
    return None


def test_the_hook_is_a_host_hook_with_a_spec():
    assert CanopyPluginManager().hook.canopy_risk_rules.spec is not None


def test_the_app_has_the_five_default_rules_once(app):
    runtime = get_runtime(app)
    found = rules_for(runtime)
    assert list(found) == ["blocked_merchant", "daily_limit", "new_device", "single_payment_limit", "velocity"]
    assert found["velocity"] is RULES[2]
    assert rules_for(runtime) is found  # collected once per runtime


def test_a_mini_program_may_not_contribute_risk_rules(app_factory, tmp_path):
    folder = tmp_path / "plugins" / "greedy"
    folder.mkdir(parents=True)
    (folder / "plugin.toml").write_text(PLUGIN_TOML, encoding="utf-8")
    (folder / "main.py").write_text(MINI_PROGRAM_WITH_A_RISK_RULE, encoding="utf-8")

    runtime = get_runtime(app_factory(PLUGIN_PATHS=[str(tmp_path / "plugins")]))

    [refused] = runtime.refused
    assert refused.id == "greedy.payee"
    assert "canopy_risk_rules" in refused.problem
    assert runtime.pm.get_plugin("greedy.payee") is None
    assert len(rules_for(runtime)) == 5


def test_a_host_extension_adds_a_rule():
    extra = RiskRule("night_owl", "Payments at night.", {}, allow_all)

    class Extension:
        @hookimpl
        def canopy_risk_rules(self):
            return [extra]

    pm = CanopyPluginManager()
    pm.register(Extension(), name="bank.extension")
    pm.register(__import__("host.payments.risk.default_rules", fromlist=["RULES"]), name="defaults")
    assert collect(pm.hook.canopy_risk_rules())["night_owl"] is extra


@pytest.mark.parametrize(("results", "message"), [
    ([[RiskRule("velocity", "again", {}, allow_all)], RULES], "contributed twice"),
    ([[RiskRule("overall", "reserved", {}, allow_all)]], "must match"),
    ([[RiskRule("Bad Name", "spaces", {}, allow_all)]], "must match"),
    ([[RiskRule("no_check", "x", {}, None)]], "needs check"),
    ([[RiskRule("no_defaults", "x", None, allow_all)]], "needs defaults"),
    ([[RiskRule("bad_schema", "x", {}, allow_all, dict)]], "marshmallow Schema"),
    ([RiskRule("not_a_list", "x", {}, allow_all)], "must return a list"),
])
def test_malformed_rules_are_refused_by_name(results, message):
    with pytest.raises(RuleProblem, match=message):
        collect(results)
