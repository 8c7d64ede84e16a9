"""canopy_sdk.loading: importing a plugin's entry point from its folder."""

from __future__ import annotations

import sys
import types

import pytest

from canopy_sdk.loading import PluginImportError, import_entry, package_name
from canopy_sdk.manifest import load_manifest


def load(folder):
    return import_entry(folder, load_manifest(folder))


def main_naming(name: str) -> str:
    return f"NAME = {name!r}\nplugin = object()\n"


def test_package_name_is_derived_from_the_plugin_id():
    assert package_name("acme.bills") == "canopy_plugin_acme_bills"
    assert package_name("sh-deals2") == "canopy_plugin_sh_deals2"


def test_entry_attribute_or_module_is_returned(tmp_path, make_plugin, valid_manifest, to_toml):
    with_attribute = make_plugin(tmp_path, name="a")
    module_only = make_plugin(
        tmp_path, to_toml(valid_manifest(id="acme.module", entry="main")), {"main.py": "VALUE = 1\n"}, name="b"
    )

    assert type(load(with_attribute)).__name__ == "Plugin"
    module = load(module_only)
    assert isinstance(module, types.ModuleType)
    assert module.__name__ == "canopy_plugin_acme_module.main"
    assert module.VALUE == 1


def test_two_plugins_with_a_main_module_do_not_collide(tmp_path, make_plugin, valid_manifest, to_toml):
    path_before = list(sys.path)
    bills = make_plugin(tmp_path, to_toml(valid_manifest(entry="main")), {"main.py": main_naming("bills")}, name="bills")
    water = make_plugin(
        tmp_path, to_toml(valid_manifest(id="acme.water", entry="main")), {"main.py": main_naming("water")}, name="water"
    )

    first = load(bills)
    second = load(water)

    assert (first.NAME, second.NAME) == ("bills", "water")
    assert first.__name__ == "canopy_plugin_acme_bills.main"
    assert second.__name__ == "canopy_plugin_acme_water.main"
    assert sys.modules["canopy_plugin_acme_bills.main"] is first  # loading the second kept the first
    assert sys.modules.get("main") not in (first, second)  # nothing under a bare top-level name
    assert sys.path == path_before


def test_relative_imports_inside_a_plugin_work(tmp_path, make_plugin):
    files = {
        "main.py": (
            "from . import helpers\n"
            "from .billing.rates import RATE\n\n"
            "class Plugin:\n"
            "    def later(self):\n"
            "        from .billing import rates\n"
            "        return rates.RATE * 2\n\n"
            "plugin = Plugin()\n"
            "TOTAL = helpers.double(RATE)\n"
        ),
        "helpers.py": "def double(x):\n    return 2 * x\n",
        "billing/__init__.py": "",
        "billing/rates.py": "RATE = 21\n",
    }

    plugin = load(make_plugin(tmp_path, files=files))

    assert sys.modules[type(plugin).__module__].TOTAL == 42
    assert plugin.later() == 42


def test_the_same_plugin_from_a_new_folder_replaces_the_old_modules(tmp_path, make_plugin, valid_manifest, to_toml):
    text = to_toml(valid_manifest(entry="main"))
    old = make_plugin(tmp_path, text, {"main.py": main_naming("v1")}, name="v1")
    new = make_plugin(tmp_path, text, {"main.py": main_naming("v2")}, name="v2")

    assert load(old).NAME == "v1"
    assert load(new).NAME == "v2"


def test_ids_that_share_a_package_name_cannot_swap_each_others_modules(tmp_path, make_plugin, valid_manifest, to_toml):
    def files(who: str) -> dict[str, str]:
        main = "class Plugin:\n    def who(self):\n        from . import helper\n        return helper.NAME\n\nplugin = Plugin()\n"
        return {"main.py": main, "helper.py": f"NAME = {who!r}\n"}

    dashed = make_plugin(tmp_path, to_toml(valid_manifest(id="acme-bills")), files("dashed"), name="dashed")
    dotted = make_plugin(tmp_path, to_toml(valid_manifest(id="acme.bills")), files("dotted"), name="dotted")
    assert package_name("acme-bills") == package_name("acme.bills")

    first = load(dashed)
    assert first.who() == "dashed"
    with pytest.raises(PluginImportError, match="acme-bills"):
        load(dotted)

    assert first.who() == "dashed"


def test_an_entry_module_that_raises_at_import_names_the_plugin(tmp_path, make_plugin):
    folder = make_plugin(tmp_path, files={"main.py": "raise RuntimeError('no database here')\n"})

    with pytest.raises(PluginImportError) as caught:
        load(folder)

    message = str(caught.value)
    assert message.startswith("acme.bills:")
    assert "'main'" in message and "no database here" in message
    assert isinstance(caught.value.__cause__, RuntimeError)


@pytest.mark.parametrize(
    "source", ["def broken(:\n", "from . import not_there\n", "import surely_not_a_real_module_xyz\n", "1 / 0\n"]
)
def test_any_import_time_error_becomes_plugin_import_error(tmp_path, make_plugin, source):
    with pytest.raises(PluginImportError, match="^acme.bills: importing 'main' failed"):
        load(make_plugin(tmp_path, files={"main.py": source}))


def test_a_missing_entry_attribute_is_a_plugin_import_error(tmp_path, make_plugin, valid_manifest, to_toml):
    folder = make_plugin(tmp_path, to_toml(valid_manifest(entry="main:app")))

    with pytest.raises(PluginImportError, match="acme.bills: module 'main' has no attribute 'app'"):
        load(folder)
