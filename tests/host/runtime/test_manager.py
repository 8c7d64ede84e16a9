"""host.runtime.manager and registration in host.runtime.services: what gets on the manager, and when."""

from __future__ import annotations

import pytest
from pluggy import PluginValidationError

from canopy_sdk import hookimpl
from canopy_sdk.hookspecs import HOOK_NAMES
from host.runtime.manager import CanopyPluginManager, RegistrationClosed

MISSPELT_HOOK = """\
from canopy_sdk import Tile, hookimpl


class Plugin:
    @hookimpl
    def canopy_storefront_tile(self, ctx):  # missing the final "s"
        return [Tile(title="never")]


plugin = Plugin()
"""

WRONG_ARGUMENTS = """\
from canopy_sdk import hookimpl
from canopy_sdk.hookspecs import HOOK_NAMES


class Plugin:
    @hookimpl
    def canopy_search(self, ctx, text):  # the contract says "query"
        return []


plugin = Plugin()
"""

MISSPELT_AND_WRONG_ARGUMENTS = """\
from canopy_sdk import hookimpl
from canopy_sdk.hookspecs import HOOK_NAMES


class Plugin:
    @hookimpl
    def canopy_pages(self, ctx):  # unknown name
        return None

    @hookimpl
    def canopy_search(self, ctx, text):  # wrong argument
        return []


plugin = Plugin()
"""

HOST_HOOK_IN_A_MINI_PROGRAM = """\
from canopy_sdk import hookimpl
from canopy_sdk.hookspecs import HOOK_NAMES


class Plugin:
    @hookimpl
    def canopy_scope_definitions(self):
        return [{"name": "everything:all", "description": {"zh": "全部", "en": "All"},
                 "sensitivity": "low", "needs_consent": False}]


plugin = Plugin()
"""


class Extension:
    @hookimpl
    def canopy_scope_definitions(self):
        return []


# -- the manager itself ---------------------------------------------------------------------------


def test_the_manager_knows_the_sdk_and_host_hooks():
    pm = CanopyPluginManager()

    for name in (*HOOK_NAMES, "canopy_scope_definitions"):
        assert getattr(pm.hook, name).spec is not None, name
    assert pm.project_name == "canopy"


def test_registering_after_freeze_is_refused_with_a_helpful_message():
    pm = CanopyPluginManager()
    pm.register(Extension(), name="before.start")
    pm.freeze()

    with pytest.raises(RegistrationClosed) as caught:
        pm.register(Extension(), name="late.extension")

    message = str(caught.value)
    assert "late.extension" in message
    assert "frozen" in message and "create_app" in message
    assert pm.frozen
    assert pm.get_plugin("late.extension") is None
    assert pm.get_plugin("before.start") is not None


def test_each_manager_is_its_own():
    first, second = CanopyPluginManager(), CanopyPluginManager()
    first.freeze()

    second.register(Extension(), name="still.open")

    assert first.frozen and not second.frozen


def test_freeze_fails_loudly_on_a_hook_that_has_no_spec():
    class Misspelt:
        @hookimpl
        def canopy_scope_definition(self):
            return []

    pm = CanopyPluginManager()
    pm.register(Misspelt(), name="misspelt")

    with pytest.raises(PluginValidationError, match="canopy_scope_definition"):
        pm.freeze()
    assert not pm.frozen


def test_the_runtime_closes_registration_at_start(make_runtime):
    runtime = make_runtime()

    with pytest.raises(RegistrationClosed):
        runtime.pm.register(Extension(), name="late")
    assert runtime.pm.frozen


# -- mini-programs that do not fit the contract ---------------------------------------------------


def test_a_misspelt_hook_is_refused_and_the_host_still_starts(app_factory, plugins_dir, make_plugin):
    from host.runtime import get_runtime

    make_plugin(plugins_dir, "misspelt.plugin", MISSPELT_HOOK)
    make_plugin(plugins_dir, "good.plugin")

    app = app_factory(PLUGIN_PATHS=[str(plugins_dir)])
    runtime = get_runtime(app)

    assert runtime.pm.frozen
    assert list(runtime.plugins) == ["good.plugin"]
    [refused] = runtime.refused
    assert refused.id == "misspelt.plugin"
    assert "unknown hooks canopy_storefront_tile" in refused.problem
    assert runtime.pm.get_plugin("misspelt.plugin") is None
    assert app.test_client().get("/healthz").status_code == 200


def test_wrong_argument_names_are_refused(make_runtime, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "wrong.args", WRONG_ARGUMENTS)

    runtime = make_runtime(plugins_dir)

    assert runtime.plugins == {}
    [refused] = runtime.refused
    assert "do not match the contract" in refused.problem
    assert "text" in refused.problem
    assert runtime.pm.get_plugin("wrong.args") is None


def test_a_plugin_misspelt_and_wrong_leaves_nothing_behind(make_runtime, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "both.wrong", MISSPELT_AND_WRONG_ARGUMENTS)
    make_plugin(plugins_dir, "good.plugin")

    runtime = make_runtime(plugins_dir)  # start() runs check_pending: it must not trip on leftovers

    assert list(runtime.plugins) == ["good.plugin"]
    assert [r.id for r in runtime.refused] == ["both.wrong"]


def test_a_mini_program_may_not_implement_host_hooks(make_runtime, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "greedy.plugin", HOST_HOOK_IN_A_MINI_PROGRAM)

    runtime = make_runtime(plugins_dir)

    [refused] = runtime.refused
    assert "unknown hooks canopy_scope_definitions" in refused.problem
    assert "everything:all" not in runtime.catalog
    assert runtime.pm.get_plugin("greedy.plugin") is None


def test_a_duplicate_plugin_id_is_refused_and_the_first_one_kept(make_runtime, tmp_path, make_plugin):
    first = make_plugin(tmp_path / "one", "same.id", folder="first")
    make_plugin(tmp_path / "two", "same.id", folder="second")

    runtime = make_runtime(tmp_path / "one", tmp_path / "two")

    assert runtime.plugins["same.id"].folder == first
    [refused] = runtime.refused
    assert refused.folder.name == "second"
    assert refused.problem == f"plugin id 'same.id' is already loaded from {first}"


def test_unknown_scopes_are_refused_with_their_paths(make_runtime, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "scoped.plugin", scopes=["payments:create", "money:print", "profile.basic:read", "vault:open"])

    runtime = make_runtime(plugins_dir)

    [refused] = runtime.refused
    assert refused.problems == [("scopes[1]", "unknown scope 'money:print'"), ("scopes[3]", "unknown scope 'vault:open'")]
    assert refused.problem == "scopes[1]: unknown scope 'money:print'; scopes[3]: unknown scope 'vault:open'"
    assert runtime.plugins == {}


def test_an_entry_that_is_none_is_refused_with_a_reason(make_runtime, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "none.plugin", "plugin = None\n")

    runtime = make_runtime(plugins_dir)

    [refused] = runtime.refused
    assert refused.problem  # never refused without saying why
    assert "None" in refused.problem


def test_a_plugin_object_already_on_the_manager_is_refused_not_fatal(make_runtime, plugins_dir, make_plugin):
    # The host's default scopes module is registered already; a plugin handing it back must not stop the start.
    make_plugin(plugins_dir, "copycat.plugin", "from host.oauth import default_scopes as plugin\n")
    make_plugin(plugins_dir, "good.plugin")

    runtime = make_runtime(plugins_dir)

    assert list(runtime.plugins) == ["good.plugin"]
    [refused] = runtime.refused
    assert refused.id == "copycat.plugin" and refused.problem


def test_impls_are_looked_up_per_plugin(make_runtime, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "good.plugin")

    runtime = make_runtime(plugins_dir)

    assert runtime.impl("good.plugin", "canopy_storefront_tiles") is not None
    assert runtime.impl("good.plugin", "canopy_page") is None
    assert runtime.impl("nobody", "canopy_storefront_tiles") is None


def test_refuse_stops_serving_a_loaded_plugin(make_runtime, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "good.plugin")
    runtime = make_runtime(plugins_dir)

    runtime.refuse("good.plugin", "files changed")
    runtime.refuse("never.loaded", "ignored")

    assert runtime.plugins == {}
    assert runtime.impl("good.plugin", "canopy_storefront_tiles") is None
    assert [(r.id, r.problem) for r in runtime.known()] == [("good.plugin", "files changed")]


LAZY_IMPORT = """\
from canopy_sdk import Tile, hookimpl


class Plugin:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        from . import words  # imported on first call, from this plugin's own folder

        return [Tile(title=words.TITLE)]


plugin = Plugin()
"""


def test_a_duplicate_folder_never_runs_nor_replaces_the_served_plugins_code(make_runtime, tmp_path, make_plugin, branch):
    from host.runtime.invoke import OK

    marker = tmp_path / "duplicate-ran"
    make_plugin(tmp_path / "one", "same.id", LAZY_IMPORT, files={"words.py": "TITLE = 'reviewed'\n"})
    make_plugin(
        tmp_path / "two",
        "same.id",
        LAZY_IMPORT + f"\nfrom pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n",
        files={"words.py": "TITLE = 'from the stray copy'\n"},
    )

    runtime = make_runtime(tmp_path / "one", tmp_path / "two")
    [outcome] = runtime.tiles([runtime.context("same.id", branch=branch, locale="en", approved_scopes=[])])

    assert outcome.status == OK and outcome.value[0].title == "reviewed"
    assert not marker.exists()


def test_a_partner_with_the_sandbox_off_is_logged_as_info_and_a_broken_plugin_as_error(caplog, app_factory, tmp_path):
    import logging
    from pathlib import Path

    from host.runtime import get_runtime

    root = tmp_path / "plugins"
    (root / "broken").mkdir(parents=True)
    (root / "broken" / "plugin.toml").write_text('id = "Not An Id"\n', encoding="utf-8")
    partner = Path(__file__).resolve().parents[3] / "plugins" / "city_utilities"
    with caplog.at_level(logging.INFO, logger="canopy.runtime"):
        runtime = get_runtime(app_factory(PLUGIN_PATHS=[str(root), str(partner)], SANDBOX="off"))
    levels = {r.getMessage().split(":")[0]: r.levelno for r in caplog.records if "not started" in r.getMessage()}
    assert levels["plugin city.utilities not started"] == logging.INFO
    assert any(level == logging.ERROR for message, level in levels.items() if "city.utilities" not in message)
    assert {p.id for p in runtime.refused} >= {"city.utilities"}
