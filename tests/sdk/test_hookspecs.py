"""canopy_sdk.hookspecs: the hook contract, and the SDK's own dependencies."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pluggy
import pytest

from canopy_sdk import hookspecs
from canopy_sdk.markers import PROJECT_NAME, hookimpl

EXPECTED_SIGNATURES = {
    "canopy_storefront_tiles": ("ctx",),
    "canopy_page": ("ctx", "path", "query"),
    "canopy_api": ("ctx", "method", "path", "body"),
    "canopy_on_event": ("ctx", "event"),
    "canopy_search": ("ctx", "query"),
}


def test_hook_names_are_the_documented_contract():
    assert hookspecs.HOOK_NAMES == tuple(EXPECTED_SIGNATURES)


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_every_hook_is_a_pluggy_hookspec_with_a_docstring(name):
    function = getattr(hookspecs, name)
    pm = pluggy.PluginManager(PROJECT_NAME)

    assert pm.parse_hookspec_opts(hookspecs, name) is not None
    assert len(inspect.getdoc(function) or "") > 40


def test_no_hookspec_is_missing_from_hook_names():
    marked = {name for name, value in vars(hookspecs).items() if callable(value) and hasattr(value, f"{PROJECT_NAME}_spec")}

    assert marked == set(hookspecs.HOOK_NAMES)


def test_hook_signatures_match_the_functions_and_pluggy():
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)

    signatures = hookspecs.hook_signatures()

    assert signatures == EXPECTED_SIGNATURES
    for name, arguments in signatures.items():
        assert tuple(inspect.signature(getattr(hookspecs, name)).parameters) == arguments
        assert tuple(getattr(pm.hook, name).spec.argnames) == arguments


def test_a_plugin_implementing_every_hook_registers_cleanly():
    class Plugin:
        @hookimpl
        def canopy_storefront_tiles(self, ctx):
            return None

        @hookimpl
        def canopy_page(self, ctx, path, query):
            return None

        @hookimpl
        def canopy_api(self, ctx, method, path, body):
            return None

        @hookimpl
        def canopy_on_event(self, ctx, event):
            return None

        @hookimpl
        def canopy_search(self, ctx, query):
            return None

    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(Plugin(), name="all-hooks")
    pm.check_pending()

    assert {caller.name for caller in pm.get_hookcallers(pm.get_plugin("all-hooks"))} == set(hookspecs.HOOK_NAMES)


def test_the_sdk_imports_neither_flask_nor_sqlalchemy():
    code = (
        "import canopy_sdk, canopy_sdk.testing, canopy_sdk.cli, canopy_sdk.loading, sys; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'sqlalchemy')); "
        "assert not bad, bad"
    )

    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert completed.returncode == 0, completed.stderr
